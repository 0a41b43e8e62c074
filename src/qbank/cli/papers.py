"""`qbank papers …` and `qbank site …`: assembling papers at the centre, unsealing them at a test site."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.cli.common import CLI_ACTOR, load_cli_settings

if TYPE_CHECKING:
    from qbank.jobs.models import Job
    from qbank.station.package import OpenedPackage


T = TypeVar("T")


def verified(opened: OpenedPackage, session_id: int | None) -> OpenedPackage:
    """A package whose signature held, refused when it is for another session than the one asked for."""
    from qbank.station.package import PackageRefused

    if session_id is not None and session_id != opened.session_id:
        raise PackageRefused(f"this package is for session {opened.session_id}, not session {session_id}")
    click.echo(f"package {opened.package_id}: session {opened.session_id}, site {opened.site}, "
               "signature verified", err=True)
    return opened


def with_centre(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a conversation with the centre; a refused package or the centre's refusal as one line."""
    import asyncio

    from qbank.station.package import CentreError, PackageRefused

    try:
        return asyncio.run(work())
    except PackageRefused as exc:
        raise click.ClickException(f"REFUSED: {exc.reason}") from exc
    except CentreError as exc:
        raise click.ClickException(exc.detail) from exc


@click.group(help="Papers of exam sessions.")
def papers() -> None:
    pass


@papers.command("assemble", help="Assemble a session's theory paper (the same job as POST "
                                 "/api/v1/sessions/{id}/papers, run here with a progress bar).")
@click.argument("session_id", type=int)
@click.option("--layout", "layout_id", required=True, type=int, help="layout id")
@click.option("--mode", type=click.Choice(["parallel", "per_candidate"]), default="parallel", show_default=True)
@click.option("--forms", default=None, type=click.IntRange(1, 50),
              help="parallel forms (default 2; per_candidate: one per candidate)")
@click.option("--max-shared", type=int, default=None, help="most items two forms may share")
@click.option("--max-item-use", type=int, default=None, help="most forms an item may appear in")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--time-limit", "time_limit_s", default=30.0, show_default=True, type=float, help="seconds")
def papers_assemble(session_id: int, layout_id: int, mode: str, forms: int | None, max_shared: int | None,
                    max_item_use: int | None, seed: int, time_limit_s: float) -> None:
    import msgspec

    from qbank.jobs.local import run_job_here
    from qbank.jobs.schemas import JobOut
    from qbank.papers.jobs import PAPER_ASSEMBLY, request_assembly
    from qbank.papers.schemas import AssemblyIn
    from qbank.sessions.services import get_session

    try:
        sent = {"layout_id": layout_id, "mode": mode, "forms": forms, "max_shared": max_shared,
                "max_item_use": max_item_use, "seed": seed, "time_limit_s": time_limit_s}
        data = msgspec.convert({k: v for k, v in sent.items() if v is not None}, AssemblyIn)
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    async def request(db: AsyncSession) -> JobOut:
        return await request_assembly(db, CLI_ACTOR, await get_session(db, session_id), data)

    row = run_job_here(load_cli_settings(), PAPER_ASSEMBLY, request, "assembling")
    say_paper(row, session_id)


@papers.command("continue", help="Continue a partial paper: the forms made are kept, the missing ones made (the "
                                 "same job as POST /api/v1/sessions/{id}/papers/{paper}/continue, run here).")
@click.argument("session_id", type=int)
@click.argument("paper_id", type=int)
@click.option("--time-limit", "time_limit_s", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="seconds for the forms still missing")
def papers_continue(session_id: int, paper_id: int, time_limit_s: float) -> None:
    from qbank.jobs.local import run_job_here
    from qbank.jobs.schemas import JobOut
    from qbank.papers.jobs import PAPER_CONTINUE, request_continue
    from qbank.papers.schemas import ContinueIn
    from qbank.sessions.services import get_session

    async def request(db: AsyncSession) -> JobOut:
        return await request_continue(db, CLI_ACTOR, await get_session(db, session_id), paper_id,
                                      ContinueIn(time_limit_s=time_limit_s))

    say_paper(run_job_here(load_cli_settings(), PAPER_CONTINUE, request, f"continuing paper {paper_id}"), session_id)


@papers.command("discard", help="Set a partial or failed paper aside: the session's paper in force becomes its "
                                "previous assembly that was not discarded (if any).")
@click.argument("session_id", type=int)
@click.argument("paper_id", type=int)
def papers_discard(session_id: int, paper_id: int) -> None:
    from qbank.cli.common import run_in_db
    from qbank.papers.jobs import discard_paper
    from qbank.papers.schemas import PaperOut
    from qbank.sessions.services import get_session
    from qbank.settings import Settings

    async def work(db: AsyncSession, _: Settings) -> PaperOut:
        return await discard_paper(db, CLI_ACTOR, await get_session(db, session_id), paper_id)

    out = run_in_db(work)
    click.echo(f"paper {out.id} of session {session_id}: {out.status}")


def say_paper(row: Job, session_id: int) -> None:
    """What an assembly or continue job made: one line, or why no paper (a partial one: how to go on) and the rows
    that cannot hold together (exit status 1)."""
    from rich.console import Console
    from rich.table import Table

    if row.status != "succeeded":
        error = row.error or {}
        click.echo(f"no paper: {error.get('detail', 'the job failed')}", err=True)
        if error.get("paper_status") == "partial":
            click.echo(f"paper {error.get('paper_id')} is partial and cannot be sealed; make the missing forms with "
                       f"`qbank papers continue {session_id} {error.get('paper_id')}` or set it aside with "
                       f"`qbank papers discard {session_id} {error.get('paper_id')}`", err=True)
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


@click.group(help="The test-site side: site keys and sealed paper packages.")
def site() -> None:
    pass


@site.command("keygen", help="Make a site key: the private key (PEM) to FILE; its public X25519 key (base64) to "
                             "FILE.pub and stdout, its Ed25519 signing key (derived from it) to FILE.sign.pub. "
                             "Register them with PUT /api/v1/sites/{code}/public-key and …/signing-key.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="private key file")
def site_keygen(output: str) -> None:
    import os
    from pathlib import Path

    from qbank.papers.keys import new_site_key

    path = Path(output)
    if path.exists():
        raise click.ClickException(f"{path} exists; a site key is never overwritten")
    pem, public, signing = new_site_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    Path(f"{path}.pub").write_text(public + "\n")
    Path(f"{path}.sign.pub").write_text(signing + "\n")
    click.echo(public)
    click.echo(f"signing key: {signing}", err=True)


@site.command("fetch", help="Download the site's sealed package of a session (from the centre's S3 server, through "
                            "the short-lived link the centre redirects to), check its digest and the centre's "
                            "signature, and write it to FILE for `qbank site unseal` or `qbank station serve`.")
@click.option("--url", required=True, help="the service, e.g. https://qbank.example.org")
@click.option("--token", required=True, envvar="QBANK_SITE_TOKEN", help="the site's bearer token")
@click.option("--session", "session_id", type=int, required=True, help="the session")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the site's private key (from `qbank site keygen`)")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="package file to write")
def site_fetch(url: str, token: str, session_id: int, key_file: str, output: str) -> None:
    from pathlib import Path

    from qbank.station.package import Centre, open_package, read_site_key

    async def fetch() -> bytes:
        async with Centre(url, token, timeout=60) as centre:
            data = await centre.package(session_id)
            verified(open_package(data, read_site_key(key_file), await centre.centre_key()), session_id)
            return data

    data = with_centre(fetch)
    Path(output).write_bytes(data)
    click.echo(f"{len(data)} bytes written to {output}")


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
    from pathlib import Path

    from qbank.station.package import Centre, open_package, parse_centre_key, read_site_key

    async def fetch() -> Any:
        async with Centre(url, token, timeout=60) as centre:
            site_key = read_site_key(key_file)
            public = parse_centre_key(Path(centre_key_file).read_text()) if centre_key_file else \
                await centre.centre_key()
            opened = verified(open_package(Path(package).read_bytes(), site_key, public), session_id)
            return opened.open(await centre.release(opened.session_id))

    content = with_centre(fetch)
    out = Path(output)
    (out / "candidates").mkdir(parents=True, exist_ok=True)
    (out / "papers.json").write_text(json.dumps(content, ensure_ascii=False, indent=1))
    for cand in content.get("candidates", []):
        (out / "candidates" / f"{cand['number']}.json").write_text(json.dumps(cand, ensure_ascii=False, indent=1))
    click.echo(f"{len(content.get('candidates', []))} candidate paper(s) written to {out}")
