"""Bulk work on a bank: `qbank bank health`, `qbank import`, `qbank export`."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.cli.common import CLI_ACTOR, run_in_db
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



@click.command("import", help="Import items from FILE (xlsx template, QTI 2.1/3.0 zip package or Moodle XML; the "
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


@click.command("export", help="Export a bank (or a filtered part of it) as a QTI 3.0 package or as the xlsx "
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



