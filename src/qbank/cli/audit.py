"""`qbank audit …`: check the trail on the centre (chain and anchors), fetch the anchors, and check them offline with
nothing but the centre's public key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.cli.common import load_cli_settings, run_in_db
from qbank.settings import Settings


@click.group(help="The audit trail: verify it, fetch its anchors, verify anchors offline.")
def audit() -> None:
    pass


@audit.command("verify", help="Recompute the keyed hash chain, compare the database with the anchors in the Object "
                              "Lock bucket and anchor the head (what GET /api/v1/audit/verify does). Exit 1 when the "
                              "trail does not hold.")
def audit_verify() -> None:
    import msgspec

    from qbank.audit.anchors import AnchorBook
    from qbank.audit.schemas import AuditVerification
    from qbank.audit.services import verify
    from qbank.storage import evidence_store

    async def work(db: AsyncSession, settings: Settings) -> AuditVerification:
        async with evidence_store(settings) as store:
            return await verify(db, AnchorBook(store.archive, settings))

    outcome = run_in_db(work)
    click.echo(msgspec.json.encode(outcome).decode())
    sys.exit(0 if outcome.ok else 1)


@audit.command("fetch-anchors", help="Copy every anchor of this centre's key from the bucket into DIRECTORY "
                                     "(one JSON file each), for offline verification elsewhere.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def fetch_anchors(directory: Path) -> None:
    import asyncio

    from qbank.audit.anchors import AnchorBook
    from qbank.storage import evidence_store

    settings = load_cli_settings()

    async def go() -> int:
        async with evidence_store(settings) as store:
            book = AnchorBook(store.archive, settings)
            names = await book.names()
            directory.mkdir(parents=True, exist_ok=True)
            for seq, name in names:
                data = store.archive.get(name)
                (directory / f"{seq:012d}-{name.rsplit('/', 1)[-1][:16]}.json").write_bytes(data)
            return len(names)

    click.echo(f"{asyncio.run(go())} anchor(s) written to {directory}")


def _load_trail(path: Path) -> list[dict[str, Any]]:
    """Entries from a file of GET /api/v1/audit answers: one page, a list of entries or of pages, or JSON lines."""
    import msgspec

    text = path.read_bytes()
    try:
        values: list[Any] = [msgspec.json.decode(text)]
    except msgspec.DecodeError:
        values = [msgspec.json.decode(line) for line in text.splitlines() if line.strip()]
    entries: list[dict[str, Any]] = []
    for value in values:
        for part in value if isinstance(value, list) else [value]:
            if isinstance(part, dict) and "items" in part:
                entries.extend(part["items"])
            elif isinstance(part, dict):
                entries.append(part)
    return entries


@audit.command("verify-anchors", help="Offline: check anchor files with the centre's public key alone (base64, as "
                                      "GET /api/v1/centre-key gives it) and, with --trail, an exported trail "
                                      "against them. Needs no database, no bucket and no secret. Exit 1 on any "
                                      "problem.")
@click.argument("anchors", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--public-key", required=True, help="the centre's Ed25519 public key, base64 (or @FILE)")
@click.option("--trail", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the trail as exported from GET /api/v1/audit (pages, entries or JSON lines)")
def verify_anchors(anchors: tuple[Path, ...], public_key: str, trail: Path | None) -> None:
    from qbank.audit.anchors import check_offline, parse_public_key

    if public_key.startswith("@"):
        public_key = Path(public_key[1:]).read_text()
    try:
        key = parse_public_key(public_key)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    files = [f for p in anchors for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    report = check_offline(((f.name, f.read_bytes()) for f in files), key,
                           _load_trail(trail) if trail is not None else None)
    click.echo(f"{report.anchors} anchor(s) signed by this centre key; last anchored entry: {report.last_anchor_seq}")
    if report.entries is not None:
        click.echo(f"{report.entries} trail entries checked against them")
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}")
    click.echo("ok" if report.ok else "NOT OK")
    sys.exit(0 if report.ok else 1)
