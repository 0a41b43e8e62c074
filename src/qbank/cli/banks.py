"""Bulk work on a bank: `qbank bank health`, `qbank import`, `qbank export`."""

from __future__ import annotations

import re

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.cli.common import CLI_ACTOR, run_in_db
from qbank.imports.schemas import IMPORT_FORMATS
from qbank.lib.actors import Actor, Role
from qbank.settings import Settings


@click.group(help="Question banks.")
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



@click.command("import", help="Import items from FILE (xlsx template, QTI 2.1/2.2/3.0 zip package or Moodle XML; the "
                             "format is detected) into one occupation and level, with the media the questions show: "
                             "all or nothing, as the import job the service runs (here, with a progress bar). Every "
                             "problem is printed, naming the question as the file does, and nothing is stored; exit "
                             "code 1. Columns and point mapping: docs/import-formats.md. Media go to the evidence "
                             "archive (QBANK_S3_*; without it the local S3 server is started here for QTI and Moodle "
                             "files).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--occupation", required=True, help="occupation code, e.g. 4-04-05-01")
@click.option("--level", required=True, type=click.IntRange(1, 5), help="level 5 (初级工) … 1 (高级技师)")
@click.option("--format", "fmt", type=click.Choice(list(IMPORT_FORMATS)), default=None,
              help="skip detection (qti: either QTI version)")
@click.option("--point", "file_point", default=None, help="file-wide appraisal point (3 digits) for the questions "
                                                          "the file and the point map place nowhere")
@click.option("--point-map", "point_map", type=click.Path(exists=True, dir_okay=False, readable=True), default=None,
              help="CSV (kind,key,point) or JSON rules placing questions by Moodle category, QTI identifier, label "
                   "or metadata")
@click.option("--author", default="cli", show_default=True, help="name recorded as author of the items")
def import_file(file: str, occupation: str, level: int, fmt: str | None, file_point: str | None,
                point_map: str | None, author: str) -> None:
    import csv
    import gzip
    import io
    from pathlib import Path

    from qbank.cli.common import load_cli_settings
    from qbank.imports.jobs import ITEM_IMPORT, request_import
    from qbank.imports.models import ImportUpload
    from qbank.imports.safety import Limits
    from qbank.imports.services import detect_format
    from qbank.jobs.local import run_job_here
    from qbank.jobs.schemas import JobOut
    from qbank.lib.problems import ProblemError

    if file_point is not None and not re.fullmatch(r"\d{3}", file_point):
        raise click.BadParameter(f"{file_point!r} is not a 3-digit appraisal point code", param_hint="--point")
    path = Path(file)
    actor = Actor(token_id=0, name=author, role=Role.admin)
    settings = load_cli_settings()
    data = path.read_bytes()
    map_bytes = Path(point_map).read_bytes() if point_map else None
    try:  # an xlsx carries no media of its own: the archive is needed only to find media it names by key
        needs_store = (fmt or detect_format(data, Limits.of(settings))) != "xlsx" or bool(settings.s3_endpoint)
    except ProblemError:
        needs_store = False  # the job says what is wrong with the file

    async def request(db: AsyncSession) -> JobOut:
        return await request_import(db, actor, settings, data, occupation, level, fmt=fmt, filename=path.name,
                                    file_point=file_point, point_map=map_bytes)

    row = run_job_here(settings, ITEM_IMPORT, request, f"importing {path.name}", with_store=needs_store)
    if row.status != "succeeded":
        error = row.error or {}
        upload_id = str(row.params.get("upload", ""))

        async def report(db: AsyncSession, _settings: Settings) -> bytes | None:
            upload = await db.get(ImportUpload, upload_id)
            return upload.report if upload is not None else None

        stored = run_in_db(report)
        rows = list(csv.reader(io.StringIO(gzip.decompress(stored).decode("utf-8-sig"))))[1:] if stored else []
        for where, problem in rows:  # every problem, not only the first ones the job's error lists
            click.echo(f"{where}: {problem}", err=True)
        detail = str(error.get("detail", "the import failed"))
        head = detail.split(": nothing was imported", 1)[0] + ": nothing was imported" \
            if ": nothing was imported" in detail else detail
        problems = int(error.get("problems") or 0)
        raise click.ClickException(f"{head} ({problems} problem(s) listed above)" if problems else head)
    out = row.result or {}
    click.echo(f"imported {out['count']} items ({out['format']}) into {occupation} level {level}: "
               f"ids {out['first_id']}–{out['last_id']}; {out['media']} media; {out['near_duplicates']} flagged as "
               f"near duplicates; file sha256 {out['sha256']}")
    for placement in out.get("placed") or []:
        click.echo(f"  {placement['count']:>5} placed by {placement['rule']}"
                   + (f" → {placement['point_code']}" if placement.get("point_code") else ""))
    if out.get("left_out"):
        click.echo("  left out (no candidate reads them): " + ", ".join(f"{k} {n}" for k, n in out["left_out"].items()))


@click.command("export", help="Export a bank (or a filtered part of it) as a QTI 3.0 package, Moodle XML or the xlsx "
                             "template; importing the file gives the same items. QTI and Moodle carry the media.")
@click.option("--occupation", required=True, help="occupation code")
@click.option("--level", required=True, type=click.IntRange(1, 5))
@click.option("--format", "fmt", type=click.Choice(["qti3", "moodle", "xlsx"]), default="xlsx", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True), help="file to write")
@click.option("--status", type=click.Choice(["draft", "in_review", "approved", "retired"]), default=None)
@click.option("--point", default=None, help="appraisal point code")
@click.option("--type", "item_type", type=click.Choice(["true_false", "single_choice", "multiple_choice",
                                                        "practical_task"]), default=None)
def export_file(occupation: str, level: int, fmt: str, output: str, status: str | None, point: str | None,
                item_type: str | None) -> None:
    from pathlib import Path

    from qbank.imports import exports
    from qbank.storage import evidence_store

    async def work(db: AsyncSession, settings: Settings) -> tuple[bytes, int]:
        rows = await exports.select_items(db, CLI_ACTOR, occupation, level, status=status, point=point,
                                          item_type=item_type)
        if fmt == "xlsx" or not any(row.content.get("media") for row in rows):
            return await exports.export_file(db, None, rows, fmt, occupation, level)
        async with evidence_store(settings) as store:
            return await exports.export_file(db, store.archive, rows, fmt, occupation, level)

    body, count = run_in_db(work)
    Path(output).write_bytes(body)
    click.echo(f"exported {count} items to {output} ({len(body)} bytes)")
