"""`qbank assignments run` and `qbank draw verify`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


@click.group(help="Evaluator panels and internal supervisors of exam sessions.")
def assignments() -> None:
    pass


@assignments.command("run", help="Assign panels and internal supervisors to sessions (the same job as POST "
                                 "/api/v1/assignments, run here with a progress bar).")
@click.option("--session", "sessions", multiple=True, required=True, type=int, help="session id (repeat for more)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--time-limit", "time_limit_s", default=20.0, show_default=True, type=float, help="seconds")
def assignments_run(sessions: tuple[int, ...], seed: int, time_limit_s: float) -> None:
    import msgspec
    from sqlalchemy.ext.asyncio import AsyncSession

    from qbank.cli.common import CLI_ACTOR, load_cli_settings
    from qbank.jobs.local import run_job_here
    from qbank.jobs.schemas import JobOut
    from qbank.panels.jobs import PANEL_ASSIGNMENT, request_assignment
    from qbank.panels.schemas import AssignmentIn

    try:
        data = msgspec.convert({"sessions": list(sessions), "seed": seed, "time_limit_s": time_limit_s}, AssignmentIn)
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    async def request(db: AsyncSession) -> JobOut:
        return await request_assignment(db, CLI_ACTOR, data)

    row = run_job_here(load_cli_settings(), PANEL_ASSIGNMENT, request, "assigning")
    if row.status != "succeeded":
        error: dict[str, Any] = row.error or {}
        click.echo(f"no assignment: {error.get('detail', 'the job failed')}", err=True)
        for reason in error.get("reasons") or []:
            click.echo(f"  - {reason.get('message')}", err=True)
        sys.exit(1)
    result = row.result or {}
    stats = result.get("stats", {})
    click.echo(f"{len(result.get('panels', {}).get('panels', []))} panel(s), {result.get('status')}, "
               f"first assignment {result.get('time_to_feasible_s')} s, best {result.get('wall_time_s')} s; "
               f"largest load {stats.get('max_load')} (bound {stats.get('lower_bound')}), stdev {stats.get('stdev')}")


@click.group(help="Draws of external supervisors (§26).")
def draw() -> None:
    pass


@draw.command("verify", help="Re-run a draw from the seed and request published in the audit trail and compare.")
@click.argument("draw_id", type=int)
def draw_verify(draw_id: int) -> None:
    import msgspec
    from sqlalchemy.ext.asyncio import AsyncSession

    from qbank.cli.common import run_in_db
    from qbank.panels.draws import verify_draw
    from qbank.panels.schemas import DrawVerification
    from qbank.settings import Settings

    async def work(db: AsyncSession, settings: Settings) -> DrawVerification:
        return await verify_draw(db, draw_id)

    out = run_in_db(work)
    click.echo(json.dumps(msgspec.to_builtins(out), ensure_ascii=False))
    sys.exit(0 if out.same else 1)
