"""The `qbank` command: run the service, manage tokens, and the bulk work item writers do."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.auth.schemas import TokenCreate
from qbank.lib.actors import Actor, Role
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


# ------------------------------------------------------------------------------------------- papers and sites
@main.group(help="Papers of exam sessions.")
def papers() -> None:
    pass


@papers.command("assemble", help="Assemble a session's theory paper (the same job as POST "
                                 "/api/v1/sessions/{id}/papers, run here with a progress bar).")
@click.argument("session_id", type=int)
@click.option("--layout", "layout_id", required=True, type=int, help="layout id")
@click.option("--mode", type=click.Choice(["parallel", "per_candidate"]), default="parallel", show_default=True)
@click.option("--forms", default=2, show_default=True, type=click.IntRange(1, 50), help="parallel forms")
@click.option("--max-shared", type=int, default=None, help="most items two forms may share")
@click.option("--max-item-use", type=int, default=None, help="most forms an item may appear in")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--time-limit", "time_limit_s", default=30.0, show_default=True, type=float, help="seconds")
def papers_assemble(session_id: int, layout_id: int, mode: str, forms: int, max_shared: int | None,
                    max_item_use: int | None, seed: int, time_limit_s: float) -> None:
    import msgspec
    from rich.console import Console
    from rich.table import Table

    from qbank.jobs.local import run_job_here
    from qbank.jobs.schemas import JobOut
    from qbank.papers.schemas import AssemblyIn
    from qbank.papers.services import request_assembly
    from qbank.sessions.services import get_session

    try:
        data = msgspec.convert({"layout_id": layout_id, "mode": mode, "forms": forms, "max_shared": max_shared,
                                "max_item_use": max_item_use, "seed": seed, "time_limit_s": time_limit_s}, AssemblyIn)
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    async def request(db: AsyncSession) -> JobOut:
        return await request_assembly(db, CLI_ACTOR, await get_session(db, session_id), data)

    row = run_job_here(_settings(), request, "assembling")
    if row.status != "succeeded":
        error = row.error or {}
        click.echo(f"no paper: {error.get('detail', 'the job failed')}", err=True)
        rows = error.get("explanation") or []
        if rows:
            table = Table("group", "kind", "key", "demand", "supply", "why", title="rows that cannot hold together")
            for r in rows:
                table.add_row(str(r.get("group")), str(r.get("kind")), str(r.get("key")), str(r.get("demand") or ""),
                              str(r.get("supply") or ""), str(r.get("message")))
            Console().print(table)
        sys.exit(1)
    result = row.result or {}
    click.echo(f"paper {result.get('paper_id')}: {result.get('forms')} form(s), {result.get('status')}, "
               f"{result.get('wall_time_s')} s; most items shared by two forms: {result.get('max_pairwise_shared')}")


@main.group(help="The test-site side: site keys and sealed paper packages.")
def site() -> None:
    pass


@site.command("keygen", help="Make a site key pair: the private key (PEM) to FILE, the public key (base64) to "
                             "FILE.pub and stdout; register it with PUT /api/v1/sites/{code}/public-key.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="private key file")
def site_keygen(output: str) -> None:
    import os
    from pathlib import Path

    from qbank.papers.keys import new_site_key

    path = Path(output)
    if path.exists():
        raise click.ClickException(f"{path} exists; a site key is never overwritten")
    pem, public = new_site_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    Path(f"{path}.pub").write_text(public + "\n")
    click.echo(public)


@site.command("unseal", help="Verify a sealed package with the centre's key, fetch the release share (only in the "
                             "exam window), decrypt, and write the papers. Refuses a tampered or foreign package.")
@click.argument("package", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the site's private key (from `qbank site keygen`)")
@click.option("--url", required=True, help="the service, e.g. https://qbank.example.org")
@click.option("--token", required=True, envvar="QBANK_SITE_TOKEN", help="the site's bearer token")
@click.option("--session", "session_id", type=int, default=None, help="the session (default: the package's)")
@click.option("--centre-key", "centre_key_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the centre's public key (base64, as GET /api/v1/centre-key gives it); default: fetch it")
@click.option("-o", "--output", default="papers", show_default=True, type=click.Path(file_okay=False),
              help="directory for papers.json and one file per candidate")
def site_unseal(package: str, key_file: str, url: str, token: str, session_id: int | None,
                centre_key_file: str | None, output: str) -> None:
    import base64
    import binascii
    from pathlib import Path

    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from paperbuild.sealing import SealError, open_site_share, read_package, unseal, verify
    from qbank.papers.keys import load_site_key

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}

    def refuse(reason: str) -> None:
        raise click.ClickException(f"REFUSED: {reason}")

    def get(path: str) -> Any:
        try:
            r = httpx.get(base + path, headers=headers, timeout=60)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {base}: {exc}") from exc
        body = r.json() if r.headers.get("content-type", "").startswith(("application/json",
                                                                          "application/problem+json")) else {}
        if r.status_code != 200:
            raise click.ClickException(f"{path}: {r.status_code} {body.get('detail', r.text[:300])}")
        return body

    data = Path(package).read_bytes()
    try:
        pkg = read_package(data)
    except SealError as exc:
        refuse(exc.reason)
    try:
        site_key = load_site_key(Path(key_file).read_bytes())
    except ValueError as exc:
        raise click.ClickException(f"{key_file}: {exc}") from exc
    try:
        text = Path(centre_key_file).read_text() if centre_key_file else get("/api/v1/centre-key")["public_key"]
        centre = Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise click.ClickException(f"the centre's public key is not 32 bytes of base64: {exc}") from exc
    try:
        pkg = verify(data, centre)
        site_share = open_site_share(pkg, site_key)
    except SealError as exc:
        refuse(exc.reason)
    header = pkg.header
    if session_id is not None and session_id != header.get("session"):
        refuse(f"this package is for session {header.get('session')}, not session {session_id}")
    click.echo(f"package {header.get('package_id')}: session {header.get('session')}, site {header.get('site')}, "
               "signature verified", err=True)
    release = get(f"/api/v1/sessions/{header.get('session')}/release")
    if release.get("package_id") != header.get("package_id"):
        refuse(f"the release share is for package {release.get('package_id')}, not {header.get('package_id')} "
               "(the centre sealed a newer package: download it again)")
    try:
        content = unseal(pkg, site_share, base64.b64decode(release["centre_share"]))
    except SealError as exc:
        refuse(exc.reason)
    out = Path(output)
    (out / "candidates").mkdir(parents=True, exist_ok=True)
    (out / "papers.json").write_text(json.dumps(content, ensure_ascii=False, indent=1))
    for cand in content.get("candidates", []):
        (out / "candidates" / f"{cand['number']}.json").write_text(json.dumps(cand, ensure_ascii=False, indent=1))
    click.echo(f"{len(content.get('candidates', []))} candidate paper(s) written to {out}")


# ------------------------------------------------------------------------------- panels, supervisors, draws
from qbank.panels.cli import assignments, draw  # noqa: E402

main.add_command(assignments)
main.add_command(draw)
