from __future__ import annotations

from qbank.devtools.migration_check import schema_diff
from tests.qbank.helpers import Api


async def test_migrated_schema_equals_models(api: Api) -> None:
    """The api fixture migrated this database (SQLite or PostgreSQL) with Alembic; nothing may differ."""
    assert await schema_diff(api.app.state.settings.database_url) == []


async def test_foreign_keys_are_enforced(api: Api) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    async with api.db() as db:
        try:
            await db.execute(text(
                "INSERT INTO blueprint (occupation_code, level, version, scopes, created_at, created_by) "
                "VALUES ('9-99-99-99', 3, 1, '[]', CURRENT_TIMESTAMP, 'x')"))
            await db.commit()
            raise AssertionError("a blueprint of an unknown occupation was stored")
        except IntegrityError:
            await db.rollback()
