"""Database base class, engine and migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from qbank.lib.problems import not_found

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


M = TypeVar("M", bound=Base)


async def get_or_404(db: AsyncSession, model: type[M], key: Any, entity: str) -> M:
    """The row of ``model`` with primary key ``key``, or a 404 problem naming the ``entity``."""
    row = await db.get(model, key)
    if row is None:
        raise not_found(entity, key)
    return row


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # WAL: readers never wait. Writers are serialised in-process by the WriteGate, because a
        # transaction that read and then writes after another connection committed fails at once in SQLite.
        engine = create_async_engine(
            database_url, pool_size=5, max_overflow=0, pool_timeout=60, connect_args={"timeout": 30}
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # aiosqlite wraps the sqlite3 connection, so test nothing about its type: just run the pragma.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class WriteGate:
    """On SQLite, one writing transaction at a time in this process; on PostgreSQL, no gate at all.

    Requests that may write (every method but GET, HEAD, OPTIONS) and job state updates pass through it."""

    def __init__(self, database_url: str) -> None:
        self.enabled = make_url(database_url).get_backend_name() == "sqlite"
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if not self.enabled:
            yield
            return
        async with self._lock:
            yield


@dataclass
class Database:
    """The service's database: sessions for reading, and short writing transactions through the write gate."""

    session_maker: async_sessionmaker[AsyncSession]
    gate: WriteGate

    @classmethod
    def open(cls, database_url: str, session_info: dict[str, Any] | None = None) -> tuple[Database, AsyncEngine]:
        """``session_info``: what every session carries (``qbank.lib.keys.trail_session_info``: the trail key)."""
        engine = create_engine(database_url)
        maker = async_sessionmaker(engine, expire_on_commit=False, info=session_info)
        return cls(maker, WriteGate(database_url)), engine

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A short writing transaction of its own (e.g. a trail entry for a read), through the write gate."""
        async with self.gate.hold(), self.session_maker() as db, db.begin():
            yield db


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Apply every migration (synchronous; call before the event loop or from a thread)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class WriteGateMiddleware:
    """Requests that may write pass the write gate for their whole life, commit included."""

    def __init__(self, app: Any, gate: WriteGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or not self.gate.enabled:
            await self.app(scope, receive, send)
            return
        async with self.gate.hold():
            await self.app(scope, receive, send)
