"""What every `qbank` command shares: its settings, one database transaction, and the actor it acts as."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.lib.actors import Actor, Role
from qbank.lib.keys import trail_session_info
from qbank.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
CLI_ACTOR = Actor(token_id=0, name="cli", role=Role.admin)


def load_cli_settings() -> Settings:
    """The settings, once per command; says on stderr which database and data directory the command uses (the
    data directory is ``~/.local/share/qbank`` unless QBANK_DATA_DIR says otherwise, whatever the working
    directory), so that a command never works on another database than the operator thinks."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx = click.get_current_context(silent=True)
    if ctx is None or not ctx.meta.get("qbank.announced"):
        click.echo(f"qbank: database {settings.masked()['database_url']} · data directory {settings.data_dir}",
                   err=True)
        if ctx is not None:
            ctx.meta["qbank.announced"] = True
    return settings


def run_in_db(work: Callable[[AsyncSession, Settings], Awaitable[T]], *, refusal_as_error: bool = True) -> T:
    """Migrate, open one transaction, run ``work``, commit. A refusal (a ProblemError: nothing was changed)
    becomes a click error in its own words, unless ``refusal_as_error`` is False (the caller reads its body)."""
    from qbank.db import create_engine, upgrade
    from qbank.lib.problems import ProblemError

    settings = load_cli_settings()
    upgrade(settings.database_url)

    async def go() -> T:
        engine = create_engine(settings.database_url)
        try:
            maker = async_sessionmaker(engine, expire_on_commit=False, info=trail_session_info(settings))
            async with maker() as db, db.begin():
                return await work(db, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except ProblemError as exc:
        if not refusal_as_error:
            raise
        raise click.ClickException(exc.detail) from exc
