"""The `qbank` command: run the service, manage tokens, and the bulk work item writers do."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.auth.schemas import Actor, Role, TokenCreate
from qbank.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
CLI_ACTOR = Actor(token_id=0, name="cli", role=Role.admin)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def run_in_db(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Migrate, open one transaction, run ``work``, commit."""
    from qbank.db import create_engine, upgrade

    settings = _settings()
    upgrade(settings.database_url)

    async def go() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as db, db.begin():
                return await work(db, settings)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@click.group(help="Question bank, paper assembly and video audit service. Settings come from QBANK_* variables.")
def main() -> None:
    pass


@main.command(help="Run the HTTP service (migrations applied first; starts a local S3 server when "
                   "QBANK_S3_ENDPOINT is empty).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    import uvicorn

    from qbank.app import configure_logging, create_app
    from qbank.db import upgrade

    settings = _settings()
    configure_logging(settings.log_level)
    click.echo("qbank settings:")
    for name, value in settings.masked().items():
        click.echo(f"  {name} = {value}")
    upgrade(settings.database_url)
    click.echo(f"migrations applied; API docs at http://{host}:{port}/schema")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@main.command(help="Run a job worker: takes jobs from the SAQ queue at QBANK_JOB_QUEUE_URL (Redis) until stopped.")
def worker() -> None:
    from qbank.app import configure_logging
    from qbank.jobs.worker import run_worker

    settings = _settings()
    if not settings.job_queue_url:
        raise click.ClickException("QBANK_JOB_QUEUE_URL is empty: set it to the Redis URL the service enqueues to")
    configure_logging(settings.log_level)
    click.echo(f"qbank worker: taking jobs from {settings.masked()['job_queue_url']}")
    asyncio.run(run_worker(settings))


@main.group(help="Bearer tokens.")
def token() -> None:
    pass


@token.command("create", help="Create a token and print it (it is shown only once).")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", required=True, help="who holds the token")
@click.option("--occupation", "occupations", multiple=True, help="occupation code (authors and reviewers)")
@click.option("--site", default=None, help="site code (site tokens)")
@click.option("--json", "as_json", is_flag=True, help="print the whole record as JSON")
def token_create(role: str, name: str, occupations: tuple[str, ...], site: str | None, as_json: bool) -> None:
    import msgspec

    from qbank.audit.services import record
    from qbank.auth.services import create_token, token_out
    from qbank.lib.problems import ProblemError

    try:
        data = msgspec.convert({"name": name, "role": role, "occupations": list(occupations), "site": site},
                               TokenCreate)
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from exc

    async def work(db: AsyncSession, settings: Settings) -> Any:
        created, row = await create_token(db, settings.token_secret, data)
        await record(db, CLI_ACTOR, "token.create", "token", row.id, after=token_out(row))
        return created

    try:
        created = run_in_db(work)
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(created), ensure_ascii=False))
    else:
        click.echo(created.token)


@token.command("revoke", help="Revoke a token by its id.")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    from qbank.audit.services import record
    from qbank.auth.services import revoke_token, token_out
    from qbank.lib.problems import ProblemError

    async def work(db: AsyncSession, settings: Settings) -> None:
        row = await revoke_token(db, token_id)
        await record(db, CLI_ACTOR, "token.revoke", "token", row.id, after=token_out(row))

    try:
        run_in_db(work)
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"token {token_id} revoked")


@main.group(help="Database.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply every migration.")
def db_upgrade() -> None:
    from qbank.db import upgrade

    upgrade(_settings().database_url)
    click.echo("migrations applied")


@main.group(help="Question banks.")
def bank() -> None:
    pass


@bank.command("health", help="Bank health of an occupation's level (§17(二)): the same report as the API.")
@click.option("--occupation", required=True, help="occupation code, e.g. 4-04-05-01")
@click.option("--level", required=True, type=click.IntRange(1, 5))
@click.option("--layout-id", type=int, default=None, help="only this layout (default: every layout of the level)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def bank_health_command(occupation: str, level: int, layout_id: int | None, as_json: bool) -> None:
    import msgspec
    from litestar.exceptions import HTTPException
    from rich.console import Console

    from qbank.banks.report import render_health
    from qbank.banks.services import bank_health

    try:
        report = run_in_db(lambda db, _settings: bank_health(db, CLI_ACTOR, occupation, level, layout_id))
    except HTTPException as exc:
        raise click.ClickException(exc.detail) from exc
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    else:
        render_health(report, Console(width=120, soft_wrap=True))



@main.command("import", help="Import items from FILE (xlsx template, QTI 2.1/3.0 zip package or Moodle XML; the "
                             "format is detected) into one occupation and level: all or nothing. Every bad row is "
                             "printed and nothing is stored; exit code 1. Columns: docs/import-formats.md.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--occupation", required=True, help="occupation code, e.g. 4-04-05-01")
@click.option("--level", required=True, type=click.IntRange(1, 5), help="level 5 (初级工) … 1 (高级技师)")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "qti", "moodle"]), default=None,
              help="skip detection")
@click.option("--author", default="cli", show_default=True, help="name recorded as author of the items")
def import_file(file: str, occupation: str, level: int, fmt: str | None, author: str) -> None:
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qbank.imports.safety import Limits
    from qbank.imports.services import import_items
    from qbank.lib.problems import ProblemError

    path = Path(file)
    err = Console(stderr=True)
    actor = Actor(token_id=0, name=author, role=Role.admin)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as bar:
        task = bar.add_task(f"validating {path.name}", total=None)

        def progress(phase: str, done: int, total: int) -> None:
            label = {"create": "creating items", "near-duplicates": "near duplicates, audit"}.get(phase, phase)
            bar.update(task, description=label, completed=done, total=total)

        async def work(db: AsyncSession, settings: Settings) -> Any:
            data = path.read_bytes()
            return await import_items(db, actor, data, occupation, level, fmt=fmt, filename=path.name,
                                      limits=Limits(max_bytes=settings.max_import_bytes), progress=progress)

        try:
            out = run_in_db(work)
        except ProblemError as exc:
            bar.stop()
            for e in exc.errors:
                err.print(f"{e.field}: {e.reason}", markup=False, highlight=False)
            head = exc.detail.split("; ", 1)[0] if exc.errors else exc.detail
            raise click.ClickException(f"{head} ({len(exc.errors)} error(s) listed above)" if exc.errors
                                       else head) from exc
    click.echo(f"imported {out.count} items ({out.format}) into {occupation} level {level}: "
               f"ids {out.first_id}–{out.last_id}; {out.near_duplicates} flagged as near duplicates; "
               f"file sha256 {out.sha256}")


@main.command("export", help="Export a bank (or a filtered part of it) as a QTI 3.0 package or as the xlsx "
                             "template; importing the file gives the same items.")
@click.option("--occupation", required=True, help="occupation code")
@click.option("--level", required=True, type=click.IntRange(1, 5))
@click.option("--format", "fmt", type=click.Choice(["qti3", "xlsx"]), default="xlsx", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True), help="file to write")
@click.option("--status", type=click.Choice(["draft", "in_review", "approved", "retired"]), default=None)
@click.option("--point", default=None, help="appraisal point code")
@click.option("--type", "item_type", type=click.Choice(["true_false", "single_choice", "multiple_choice",
                                                        "practical_task"]), default=None)
def export_file(occupation: str, level: int, fmt: str, output: str, status: str | None, point: str | None,
                item_type: str | None) -> None:
    from pathlib import Path

    from qbank.imports.services import export_bytes, select_items
    from qbank.lib.problems import ProblemError

    async def work(db: AsyncSession, settings: Settings) -> tuple[bytes, int]:
        rows = await select_items(db, CLI_ACTOR, occupation, level, status=status, point=point, item_type=item_type)
        return export_bytes(rows, fmt, f"{occupation} level {level}")

    try:
        body, count = run_in_db(work)
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    Path(output).write_bytes(body)
    click.echo(f"exported {count} items to {output} ({len(body)} bytes)")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


@main.command("video-audit", help="The video audit of an exam session (the same report as "
                                  "GET /api/v1/sessions/{id}/video-audit), with a timeline per room and view.")
@click.argument("session_id", type=int)
@click.option("--width", default=60, show_default=True, type=click.IntRange(10, 400), help="timeline columns")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def video_audit_command(session_id: int, width: int, as_json: bool) -> None:
    import msgspec

    from qbank.lib.problems import ProblemError
    from qbank.recordings.schemas import VideoAudit
    from qbank.recordings.services import session_video_audit, timeline
    from qbank.sessions.services import get_session

    async def work(db: AsyncSession, settings: Settings) -> VideoAudit:
        return await session_video_audit(db, settings, await get_session(db, session_id))

    try:
        audit = run_in_db(work)
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    if as_json:
        click.echo(msgspec.json.encode(audit).decode())
        return
    settings = _settings()
    tz = settings.tz
    window = audit.report.window
    click.echo(f"session {audit.session_id}: {window.start.astimezone(tz):%Y-%m-%d %H:%M:%S} – "
               f"{window.end.astimezone(tz):%H:%M:%S} ({tz.key}), {audit.recordings} recording(s)")
    click.echo(f"verdict: {'PASS' if audit.passes else 'FAIL'}")
    click.echo("legend: █ usable  ▒ unusable  · gap  (blank) not recorded")
    for room in audit.report.rooms:
        for view in room.views:
            mark = "ok  " if view.passes else "FAIL"
            click.echo(f"{mark} {room.room:<20} {view.view:<10} |{timeline(view, window, width)}|")
    for reason in audit.reasons:
        click.echo(f"  - {reason}")
    sys.exit(0 if audit.passes else 1)
