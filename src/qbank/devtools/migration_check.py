"""Fails when the migrated schema differs from the models: `python -m qbank.devtools.migration_check [URL]`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from qbank.db import Base, upgrade
from qbank.server.models import load_all


async def schema_diff(database_url: str) -> list[Any]:
    """Differences between the database at ``database_url`` and the models (empty when they match)."""
    load_all()
    engine = create_async_engine(database_url, poolclass=NullPool)

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        diff = await connection.run_sync(compare)
    await engine.dispose()
    return diff


def main() -> int:
    if len(sys.argv) > 1:
        url = sys.argv[1]
        upgrade(url)
        diff = asyncio.run(schema_diff(url))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'check.db'}"
            upgrade(url)
            diff = asyncio.run(schema_diff(url))
    if diff:
        print("migration check: the migrated schema differs from the models:")
        for entry in diff:
            print("  ", entry)
        print("write a migration: alembic revision --autogenerate -m '...'")
        return 1
    print("migration check: the migrated schema equals the models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
