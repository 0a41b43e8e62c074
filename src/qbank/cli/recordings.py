"""`qbank video-audit SESSION`: the video audit of an exam session in the terminal; `qbank recordings reanalyse ID`:
run a recording's analysis again; `qbank site upload FILE`: a recording straight to the centre's storage."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.cli.common import CLI_ACTOR, load_cli_settings, run_in_db
from qbank.cli.papers import site
from qbank.settings import Settings


@click.command("video-audit", help="The video audit of an exam session (the same report as "
                                  "GET /api/v1/sessions/{id}/video-audit), with a timeline per room and view.")
@click.argument("session_id", type=int)
@click.option("--width", default=60, show_default=True, type=click.IntRange(10, 400), help="timeline columns")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def video_audit_command(session_id: int, width: int, as_json: bool) -> None:
    import msgspec

    from qbank.recordings.audit import finding_rows, session_video_audit, timeline
    from qbank.recordings.schemas import VideoAudit
    from qbank.recordings.words import kind_words
    from qbank.sessions.services import get_session

    async def work(db: AsyncSession, settings: Settings) -> VideoAudit:
        return await session_video_audit(db, settings, await get_session(db, session_id))

    audit = run_in_db(work)
    if as_json:
        click.echo(msgspec.json.encode(audit).decode())
        return
    settings = load_cli_settings()
    tz = settings.tz
    window = audit.report.window
    click.echo(f"session {audit.session_id}: {window.start.astimezone(tz):%Y-%m-%d %H:%M:%S} – "
               f"{window.end.astimezone(tz):%H:%M:%S} ({tz.key}), {audit.recordings} recording(s)")
    click.echo(f"verdict: {'PASS' if audit.passes else 'FAIL'}")
    click.echo("legend: █ usable  ▒ unusable  · gap  (blank) not recorded; below each view one row per finding "
               "kind (× corrupt), then notes about whole recordings")
    for room in audit.report.rooms:
        for view in room.views:
            mark = "ok  " if view.passes else "FAIL"
            click.echo(f"{mark} {room.room:<20} {view.view:<10} |{timeline(view, window, width)}|")
            for kind, cells in finding_rows(view, window, width):
                click.echo(f"{'':4} {kind_words(kind, 'en')[:20]:>20} {'':<10} |{cells}|")
            for note in view.recording_notes:
                detail = f": {note.detail}" if note.detail else ""
                click.echo(f"{'':26} note: recording {note.recording} {kind_words(note.kind, 'en')}{detail}")
            for rec_id in view.unplaced:
                click.echo(f"{'':26} note: recording {rec_id} is corrupt, its length unknown: not on the timeline")
    for reason in audit.reasons:
        click.echo(f"  - {reason}")
    sys.exit(0 if audit.passes else 1)




@click.group(help="Room recordings.")
def recordings() -> None:
    pass


@recordings.command("reanalyse", help="Run the analysis of a recording again, here, with a progress bar (the same as "
                                      "POST /api/v1/recordings/{id}/analysis); its findings are replaced.")
@click.argument("recording_id", type=int)
def reanalyse_command(recording_id: int) -> None:
    from qbank.jobs.local import run_job_here
    from qbank.jobs.schemas import JobOut
    from qbank.recordings.jobs import RECORDING_ANALYSIS, reanalyse

    async def request(db: AsyncSession) -> JobOut:
        return await reanalyse(db, CLI_ACTOR, recording_id)

    row = run_job_here(load_cli_settings(), RECORDING_ANALYSIS, request, "analysing", with_store=True)
    if row.status != "succeeded":
        raise click.ClickException(f"job {row.id}: {(row.error or {}).get('detail', row.status)}")
    result = row.result or {}
    click.echo(f"recording {recording_id}: {result.get('status')}, {result.get('findings')} finding(s) (job {row.id})")


@site.command("upload", help="Send a recording straight to the centre's S3 server (presigned parts, in parallel, "
                             "each retried), then have the centre check and store it. Broken off, the same command "
                             "resumes it: the parts storage already holds are skipped. (The streamed POST "
                             "/api/v1/sessions/{id}/recordings stays for small clients.)")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--centre", "url", required=True, help="the service, e.g. https://qbank.example.org")
@click.option("--token", required=True, envvar="QBANK_SITE_TOKEN", help="the site's bearer token")
@click.option("--session", "session_id", type=int, required=True, help="the session")
@click.option("--room", required=True, help="site/room code, e.g. CD-01/T101")
@click.option("--view", required=True, help="camera view")
@click.option("--start", required=True, type=datetime.fromisoformat,
              help="claimed start with its time zone, e.g. 2026-12-03T09:00:00+08:00")
@click.option("--upload-id", default=None, help="resume this upload (default: the one FILE.qbank-upload remembers)")
def site_upload(file: Path, url: str, token: str, session_id: int, room: str, view: str, start: datetime,
                upload_id: str | None) -> None:
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from qbank.station.package import Centre, CentreError
    from qbank.station.recording_upload import PartFailed, file_sha256, send_recording

    state = file.with_name(file.name + ".qbank-upload")
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err) as bar:
        size = file.stat().st_size
        hashing = bar.add_task("SHA-256", total=size)
        sha256 = file_sha256(file, lambda n: bar.advance(hashing, n))
        sending = bar.add_task("upload", total=size)

        resumed: list[int] = []

        def progress(done: int, total: int, skipped: int) -> None:
            if skipped and not resumed:
                resumed.append(skipped)
                bar.update(sending, description="upload (resumed)")
            bar.update(sending, completed=done, total=total)

        async def work() -> dict[str, Any]:
            async with Centre(url, token, timeout=600) as centre:  # the complete step reads the stored bytes
                return await send_recording(centre, session_id, file, room=room, view=view, start=start,
                                            sha256=sha256, state=state, upload_id=upload_id, progress=progress)

        try:
            rec = asyncio.run(work())
        except (CentreError, PartFailed) as exc:
            raise click.ClickException(getattr(exc, "detail", None) or str(exc)) from exc
    if resumed:
        click.echo(f"resumed: {resumed[0]} bytes were already in storage")
    state_words = "already stored" if rec.get("already_stored") else "stored and verified"
    click.echo(f"recording {rec['id']}: {state_words} (SHA-256 {rec['sha256']}, {rec['size']} bytes, "
               f"status {rec['status']}, kept until {rec['retain_until']})")
