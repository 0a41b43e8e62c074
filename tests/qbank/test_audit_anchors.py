"""A trail anchored outside the database (issue 15, finding 2), on SQLite and PostgreSQL: each entry's hash is keyed
with a key the database does not hold, and the head is signed with the centre's key into the Object Lock bucket.
Both rewrites from the issue are detected: rows cut from the end with the head reset to an earlier row, and a row
edited with every later hash recomputed (without the key, and even with it). The anchors check offline with the
centre's public key alone. Each test runs on a database of its own (it tampers with the trail)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import _pg_execute, _run, pg_admin_url, service_settings

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg)]
# The service's own background anchoring is off in the other tests: they count anchors exactly.
ANCHORING_ON = {"test_the_service_anchors_in_the_background"}


@dataclass
class Trail:
    client: AsyncTestClient[Litestar]
    app: Litestar
    url: str
    env: dict[str, str]
    db: async_sessionmaker[AsyncSession]
    admin: dict[str, str]
    made: int = 0

    async def grow(self, n: int) -> int:
        """``n`` more trail entries (a token each); the head's seq afterwards."""
        for _ in range(n):
            self.made += 1
            r = await self.client.post("/api/v1/tokens", json={"name": f"t{self.made}", "role": "supervisor"},
                                       headers=self.admin)
            assert r.status_code == 201, r.text
        return await self.head_seq()

    async def head_seq(self) -> int:
        async with self.db() as db:
            return int((await db.execute(text("SELECT seq FROM audit_head"))).scalar_one())

    async def verify(self) -> dict[str, Any]:
        r = await self.client.get("/api/v1/audit/verify", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _database(backend: str, tmp: Path) -> tuple[str, Callable[[], None] | None]:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'trail.db'}", None
    from sqlalchemy.engine import make_url

    admin_url = pg_admin_url()
    if not admin_url:
        pytest.fail("QBANK_TEST_PG_URL is not set: run the tests through scripts/test")
    base = make_url(admin_url)
    name = f"qbank_trail_{secrets.token_hex(6)}"
    dsn = dict(host=base.host, port=base.port or 5432, user=base.username, password=base.password,
               database=base.database or "postgres")
    _run(_pg_execute(dsn, f'CREATE DATABASE "{name}"'))
    return (base.set(database=name).render_as_string(hide_password=False),
            lambda: _run(_pg_execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture(params=BACKENDS)
async def trail(request: pytest.FixtureRequest, s3_server: Any, tmp_path: Path) -> AsyncIterator[Trail]:
    from qbank.db import create_engine, upgrade
    from qbank.server.app import create_app

    url, drop = _database(request.param, tmp_path)
    try:
        await anyio.to_thread.run_sync(upgrade, url)
        settings = msgspec.structs.replace(service_settings(url, s3_server, tmp_path / "data"),  # type: ignore[type-var]
                                           audit_anchoring=request.node.originalname in ANCHORING_ON)
        app = create_app(settings)
        engine = create_engine(url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        admin = await _admin(sessions, settings)
        env = {"QBANK_DATA_DIR": str(tmp_path / "data"), "QBANK_DATABASE_URL": url,
               "QBANK_S3_ENDPOINT": s3_server.endpoint, "QBANK_S3_ACCESS_KEY": s3_server.access_key,
               "QBANK_S3_SECRET_KEY": s3_server.secret_key, "QBANK_TOKEN_SECRET": "test-token-secret"}
        async with AsyncTestClient(app=app) as client:
            yield Trail(client=client, app=app, url=url, env=env, db=sessions, admin=admin)
        await engine.dispose()
    finally:
        if drop is not None:
            drop()


async def _admin(sessions: async_sessionmaker[AsyncSession], settings: Any) -> dict[str, str]:
    from qbank.auth.schemas import TokenCreate
    from qbank.auth.services import create_token

    async with sessions() as db, db.begin():
        created, _ = await create_token(db, settings.token_secret,
                                        msgspec.convert({"name": "centre", "role": "admin"}, TokenCreate))
    return {"Authorization": f"Bearer {created.token}"}


async def _rewrite_from(trail: Trail, seq: int, key: bytes | None) -> None:
    """What an attacker with database access does after editing entry ``seq``: recompute every later link and hash
    (plain SHA-256 without the key, HMAC with it) and the head."""
    from qbank.audit.models import AuditEntry, AuditHead
    from qbank.audit.services import GENESIS, entry_hash

    async with trail.db() as db, db.begin():
        rows = (await db.scalars(select(AuditEntry).where(AuditEntry.seq >= seq - 1).order_by(AuditEntry.seq))).all()
        prev = rows[0].hash if seq > 1 else GENESIS
        for row in rows[1:] if seq > 1 else rows:
            row.prev_hash, row.hash = prev, entry_hash(prev, row, key)
            prev = row.hash
        head = await db.get(AuditHead, 1)
        assert head is not None
        head.hash = prev


async def test_cutting_rows_and_resetting_the_head_is_detected(trail: Trail) -> None:
    first = await trail.grow(30)
    v = await trail.verify()
    assert v["ok"] and v["anchored_now"] == first and v["unanchored"] == first, v
    head = await trail.grow(20)
    v = await trail.verify()
    assert v["ok"] and v["unanchored"] == head - first and v["anchored_now"] == head and v["anchors"] == 1, v

    # DELETE … WHERE seq > 40; UPDATE audit_head SET seq = 40, hash = <row 40's hash>
    cut = first + 10
    async with trail.db() as db, db.begin():
        await db.execute(text("DELETE FROM audit_entry WHERE seq > :s"), {"s": cut})
        row_hash = (await db.execute(text("SELECT hash FROM audit_entry WHERE seq = :s"), {"s": cut})).scalar_one()
        await db.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": cut, "h": row_hash})
    v = await trail.verify()
    assert not v["ok"] and v["first_bad_seq"] == first + 1, v
    assert f"entry {head}, anchored at" in v["reason"] and "removed" in v["reason"], v
    assert v["anchored_now"] is None  # a broken trail is never anchored
    await trail.grow(15)  # the service goes on writing: the rows grow back past the anchor, differently
    v = await trail.verify()
    assert not v["ok"] and v["first_bad_seq"] == first + 1 and "rewritten" in v["reason"], v


async def test_editing_a_row_and_recomputing_the_later_hashes_is_detected(trail: Trail) -> None:
    from qbank.audit.models import AuditEntry
    from qbank.lib.keys import trail_key

    assert (await trail.grow(100)) >= 100 and (await trail.verify())["anchored_now"] >= 100
    head = await trail.grow(110)
    assert (await trail.verify())["anchored_now"] == head
    async with trail.db() as db:
        saved = [msgspec.structs.asdict(msgspec.convert(r, AuditRow, from_attributes=True)) for r in (
            await db.scalars(select(AuditEntry).where(AuditEntry.seq >= 199).order_by(AuditEntry.seq))).all()]
        head_hash = (await db.execute(text("SELECT hash FROM audit_head"))).scalar_one()

    async def edit_row_200(key: bytes | None) -> None:
        async with trail.db() as db, db.begin():
            await db.execute(text("UPDATE audit_entry SET actor = 'someone-else#1' WHERE seq = 200"))
        await _rewrite_from(trail, 200, key)

    async def restore() -> None:
        async with trail.db() as db, db.begin():
            await db.execute(delete(AuditEntry).where(AuditEntry.seq >= 199))
            db.add_all([AuditEntry(**row) for row in saved])
            await db.execute(text("UPDATE audit_head SET hash = :h"), {"h": head_hash})

    # without the key (unkeyed SHA-256, as the trail was before): the keyed hash of row 200 does not hold
    await edit_row_200(None)
    v = await trail.verify()
    assert not v["ok"] and v["first_bad_seq"] == 200 and "edited" in v["reason"], v
    await restore()
    assert (await trail.verify())["ok"]
    # even with the key (leaked): the anchors outside the database tell, and bound where
    app_settings = trail.app.state.settings
    await edit_row_200(trail_key(app_settings))
    v = await trail.verify()
    assert not v["ok"], v
    assert v["first_bad_seq"] in range(101, 201) and "rewritten" in v["reason"], v
    await restore()
    v = await trail.verify()
    assert v["ok"] and v["unanchored"] == 0 and v["anchored_now"] is None, v


class AuditRow(msgspec.Struct):
    id: int
    seq: int
    at: Any
    actor: str
    role: str
    action: str
    entity_type: str
    entity_id: str
    before_digest: str | None
    after_digest: str | None
    detail: Any
    prev_hash: str
    hash: str


async def test_moving_the_switch_to_keyed_hashes_is_detected(trail: Trail) -> None:
    """Rewriting keyed entries as if they were from before keyed hashes (so no key is needed) moves the switch in
    the database; the anchors, which sign where it is, tell."""
    from qbank.audit.models import AuditHead

    await trail.grow(12)
    v = await trail.verify()
    assert v["ok"] and v["keyed_from"] == 1, v
    async with trail.db() as db, db.begin():
        await db.execute(text("UPDATE audit_entry SET actor = 'someone-else#1' WHERE seq = 5"))
        head = await db.get(AuditHead, 1)
        assert head is not None
        head.keyed_from = 10**6
    await _rewrite_from(trail, 1, None)
    v = await trail.verify()
    assert not v["ok"] and "switch was moved" in v["reason"], v


async def test_the_head_is_anchored_at_the_configured_cadence(trail: Trail) -> None:
    from qbank.audit.anchoring import Anchorer
    from qbank.audit.anchors import AnchorBook
    from qbank.db import Database
    from qbank.lib.keys import trail_session_info

    settings = msgspec.structs.replace(trail.app.state.settings, audit_anchor_entries=5, audit_anchor_seconds=3600)
    database, engine = Database.open(trail.url, trail_session_info(settings))  # on this test's loop, not the app's
    try:
        await _ticks(trail, Anchorer(database, AnchorBook(trail.app.state.store.archive, settings)), settings)
    finally:
        await engine.dispose()


async def _ticks(trail: Trail, anchorer: Any, settings: Any) -> None:
    assert await anchorer.tick() is None  # an empty trail
    seq = await trail.grow(3)
    assert await anchorer.tick() == seq  # no anchor yet (as after the upgrade to keyed hashes): anchored at once
    await trail.grow(4)
    assert await anchorer.tick() is None  # 4 < 5 new entries, and not an hour yet
    seq = await trail.grow(1)
    assert await anchorer.tick() == seq
    v = await trail.verify()
    assert v["ok"] and v["last_anchor_seq"] == seq and v["unanchored"] == 0 and v["anchors"] == 2, v
    anchorer.book.settings = msgspec.structs.replace(settings, audit_anchor_seconds=1)
    seq = await trail.grow(1)
    assert await anchorer.tick() is None
    await asyncio.sleep(1.1)
    assert await anchorer.tick() == seq  # one entry, but a second after the last anchor
    async with trail.db() as db, db.begin():  # the trail is cut back and grows again: never anchored
        await db.execute(text("DELETE FROM audit_entry WHERE seq > 2"))
        row_hash = (await db.execute(text("SELECT hash FROM audit_entry WHERE seq = 2"))).scalar_one()
        await db.execute(text("UPDATE audit_head SET seq = 2, hash = :h"), {"h": row_hash})
    assert await anchorer.tick() is None
    await trail.grow(20)
    assert await anchorer.tick() is None
    assert not (await trail.verify())["ok"]


async def test_the_service_anchors_in_the_background(trail: Trail) -> None:
    """The service's own anchorer (QBANK_AUDIT_ANCHORING on): an empty bucket is anchored within seconds."""
    from qbank.audit.anchors import AnchorBook

    seq = await trail.grow(2)
    book = AnchorBook(trail.app.state.store.archive, trail.app.state.settings)
    for _ in range(50):
        names = await book.names()
        if names:
            break
        await asyncio.sleep(0.2)
    assert names and names[-1][0] == seq, names


async def test_anchors_verify_offline_with_the_centre_public_key(trail: Trail, tmp_path: Path) -> None:
    from qbank.server.cli import main

    await trail.grow(8)
    assert (await trail.verify())["ok"]
    await trail.grow(4)
    assert (await trail.verify())["anchored_now"]
    key = (await trail.client.get("/api/v1/centre-key", headers=trail.admin)).json()["public_key"]
    pages = (await trail.client.get("/api/v1/audit", params={"limit": 1000}, headers=trail.admin)).json()
    (tmp_path / "trail.json").write_text(json.dumps(pages))

    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=trail.env)

    fetched = await anyio.to_thread.run_sync(cli, "audit", "fetch-anchors", str(tmp_path / "anchors"))
    assert fetched.exit_code == 0 and "2 anchor(s)" in fetched.output, fetched.output
    ok = await anyio.to_thread.run_sync(cli, "audit", "verify-anchors", "--public-key", key, "--trail",
                                        str(tmp_path / "trail.json"), str(tmp_path / "anchors"))
    assert ok.exit_code == 0 and "2 anchor(s) signed" in ok.output and "ok" in ok.output, ok.output
    pages["items"] = [e for e in pages["items"] if e["seq"] < 10]  # the exported trail lost its end
    (tmp_path / "cut.json").write_text(json.dumps(pages))
    cut = await anyio.to_thread.run_sync(cli, "audit", "verify-anchors", "--public-key", key, "--trail",
                                         str(tmp_path / "cut.json"), str(tmp_path / "anchors"))
    assert cut.exit_code == 1 and "rows were removed" in cut.output, cut.output
    forged = tmp_path / "anchors" / "forged.json"  # a forged anchor (no valid signature) is named
    anchor = json.loads(next((tmp_path / "anchors").glob("*.json")).read_text()) | {"seq": 99}
    forged.write_text(json.dumps(anchor))
    bad = await anyio.to_thread.run_sync(cli, "audit", "verify-anchors", "--public-key", key, str(forged))
    assert bad.exit_code == 1 and "signature does not hold" in bad.output, bad.output
    other = await anyio.to_thread.run_sync(cli, "audit", "verify", )
    assert other.exit_code == 0 and json.loads(other.stdout)["ok"], other.output


@pytest.fixture(params=BACKENDS)
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A database at revision 0008 (before keyed hashes and token identities), with a trail and an item."""
    url, drop = _database(request.param, tmp_path)
    try:
        yield url
    finally:
        if drop is not None:
            drop()


async def test_the_upgrade_keeps_the_old_trail_and_anchors_the_switch(legacy_url: str, s3_server: Any,
                                                                     tmp_path: Path) -> None:
    """Migrations 0015/0015b on a database with data: the entries written before keyed hashes verify the old way up
    to the switch, later ones keyed; the switch is anchored at the first check; item versions get their token ids
    from their labels and an approved item its approved version."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import insert

    from qbank.audit.models import AuditEntry
    from qbank.audit.services import GENESIS, entry_hash
    from qbank.db import alembic_config, create_engine, upgrade
    from qbank.server.app import create_app

    await anyio.to_thread.run_sync(lambda: command.upgrade(alembic_config(legacy_url), "0008"))
    engine = create_engine(legacy_url)
    prev, rows = GENESIS, []
    for seq in (1, 2, 3):
        entry = AuditEntry(seq=seq, at=datetime(2026, 1, seq, 9, 0, 0, 123456, tzinfo=UTC), actor="cli#0",
                           role="admin", action="token.create", entity_type="token", entity_id=str(seq),
                           before_digest=None, after_digest=None, detail={"n": seq}, prev_hash=prev)
        entry.hash = prev = entry_hash(prev, entry, None)  # unkeyed, as before keyed hashes
        rows.append({c.name: getattr(entry, c.key) for c in AuditEntry.__table__.columns if c.name != "id"})
    now = datetime(2026, 1, 4, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(AuditEntry.__table__), rows)
        await conn.execute(text("UPDATE audit_head SET seq = 3, hash = :h WHERE id = 1"), {"h": prev})
        await conn.execute(text("INSERT INTO occupation (code, name, levels, created_at) VALUES "
                                "('6-31-01-03', '电工', '[3]', :t)"), {"t": now})
        await conn.execute(text(
            "INSERT INTO item (occupation_code, level, type, status, version, stem, stem_key, point_code, author, "
            "maintainer, near_duplicates, times_used, created_at, updated_at) VALUES ('6-31-01-03', 3, "
            "'single_choice', 'approved', 3, 's', 'k', '001', '王五', '王五', '[]', 0, :t, :t)"), {"t": now})
        for version, label in ((1, "王五#7"), (2, "cli#0"), (3, "legacy name")):
            await conn.execute(text(
                "INSERT INTO item_version (item_id, version, content, digest, created_at, created_by) "
                "SELECT id, :v, '{}', 'd', :t, :by FROM item"), {"v": version, "t": now, "by": label})
    await anyio.to_thread.run_sync(upgrade, legacy_url)
    async with engine.connect() as conn:
        ids = (await conn.execute(text("SELECT created_by_token_id FROM item_version ORDER BY version"))).all()
        assert [r[0] for r in ids] == [7, 0, None]
        assert (await conn.execute(text("SELECT approved_version FROM item"))).scalar_one() == 3
        assert (await conn.execute(text("SELECT keyed_from FROM audit_head"))).scalar_one() == 4
    await engine.dispose()

    settings = msgspec.structs.replace(service_settings(legacy_url, s3_server, tmp_path / "data"),  # type: ignore[type-var]
                                       audit_anchoring=False)
    app = create_app(settings)
    sessions = async_sessionmaker(create_engine(legacy_url), expire_on_commit=False)
    admin = await _admin(sessions, settings)
    async with AsyncTestClient(app=app) as client:
        v = (await client.get("/api/v1/audit/verify", headers=admin)).json()
        assert v["ok"] and v["entries"] == 3 and v["keyed_from"] == 4 and v["anchored_now"] == 3, v  # the switch
        r = await client.post("/api/v1/tokens", json={"name": "新", "role": "supervisor"}, headers=admin)
        assert r.status_code == 201, r.text
        v = (await client.get("/api/v1/audit/verify", headers=admin)).json()
        assert v["ok"] and v["entries"] == 4 and v["unanchored"] == 1 and v["anchored_now"] == 4, v
