"""`qbank items submit|approve|reject`: bulk review here, with a progress bar (the same rules and trail as
POST /api/v1/items/review)."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.settings import Settings

FILTER_KEYS = ("occupation", "level", "point", "type", "q")


@click.group(help="Items: bulk review (submit, approve, reject) by ids or a filter.")
def items() -> None:
    pass


def parse_filter(pairs: tuple[str, ...]) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise click.BadParameter(f"{pair!r}: use KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}",
                                     param_hint="--filter")
        out[key] = int(value) if key == "level" and value.isdigit() else value
    return out


def parse_ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a list of item ids", param_hint="--ids") from exc


def review_command(action: str) -> click.Command:
    @click.command(action, help=f"{action.capitalize()} many items at once, each checked as one (four eyes for "
                                "approve); all or nothing unless --per-item.")
    @click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
                  help=f"choose the items in the status the action needs; KEY: {', '.join(FILTER_KEYS)}")
    @click.option("--ids", default=None, help="item ids, comma or space separated (instead of --filter)")
    @click.option("--token", envvar="QBANK_TOKEN", required=True,
                  help="the bearer token of the person acting (four eyes compares identities); or QBANK_TOKEN")
    @click.option("--reason", default=None, help="why (required to reject)")
    @click.option("--per-item", is_flag=True, help="change the items that pass and list the others (default: "
                                                   "nothing changes when any item is refused)")
    def command(filters: tuple[str, ...], ids: str | None, token: str, reason: str | None, per_item: bool) -> None:
        import msgspec
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from qbank.auth.services import find_actor
        from qbank.cli.common import run_in_db
        from qbank.items.review import review_items
        from qbank.items.schemas import BulkReviewIn, BulkReviewOut, BulkReviewProblem
        from qbank.lib.problems import ProblemError

        try:
            data = msgspec.convert({"action": action, "ids": parse_ids(ids), "filter": parse_filter(filters),
                                    "reason": reason, "mode": "per_item" if per_item else "all_or_nothing"},
                                   BulkReviewIn)
        except msgspec.ValidationError as exc:
            raise click.ClickException(str(exc)) from exc
        err = Console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err) as bar:
            task = bar.add_task(f"{action}: checking", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            async def work(db: AsyncSession, settings: Settings) -> BulkReviewOut:
                actor = await find_actor(db, settings.token_secret, token)
                if actor is None:
                    raise click.ClickException("the token is not valid (unknown or revoked)")
                return await review_items(db, actor, data, progress)

            try:
                out = run_in_db(work, refusal_as_error=False)
            except ProblemError as exc:
                bar.stop()
                body = exc.body
                if isinstance(body, BulkReviewProblem):
                    for r in body.results:
                        if not r.ok:
                            err.print(r.reason, markup=False, highlight=False)
                raise click.ClickException(exc.detail.split(". ", 1)[0]) from exc
            except Exception as exc:
                detail = getattr(exc, "detail", None)
                if detail and not isinstance(exc, click.ClickException):
                    raise click.ClickException(str(detail)) from exc
                raise
        for r in out.results:
            if not r.ok:
                err.print(r.reason, markup=False, highlight=False)
        click.echo(f"{action}: {out.changed} of {out.matched} item(s) changed, {out.refused} refused")

    return command


submit_items = review_command("submit")
approve_items = review_command("approve")
reject_items = review_command("reject")
for _command in (submit_items, approve_items, reject_items):
    items.add_command(_command)
