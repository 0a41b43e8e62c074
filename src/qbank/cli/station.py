"""`qbank station …`: the exam station on a test site's LAN (its own app and SQLite file), and its seat cards."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from qbank.station.package import OpenedPackage


@click.group(help="The exam station: computer-based theory exams at a test site (§20).")
def station() -> None:
    pass


def _open(package: str, key_file: str, centre_url: str | None, token: str | None, centre_key_file: str | None,
          remembered: str | None) -> tuple[OpenedPackage, str]:
    """The verified package and the centre's public key (base64): from --centre-key, else as the station's database
    remembers it (so a restart needs no network), else fetched from the centre."""
    from qbank.papers.keys import b64
    from qbank.station.package import Centre, CentreError, PackageRefused, open_package, parse_centre_key, read_site_key

    async def centre_key() -> Ed25519PublicKey:
        if centre_key_file:
            return parse_centre_key(Path(centre_key_file).read_text())
        if remembered:
            return parse_centre_key(remembered)
        if not centre_url or not token:
            raise click.ClickException("give --centre-key FILE, or --centre URL and --token to fetch the centre's key")
        async with Centre(centre_url, token) as centre:
            return await centre.centre_key()

    try:
        public = asyncio.run(centre_key())
        opened = open_package(Path(package).read_bytes(), read_site_key(key_file), public)
    except PackageRefused as exc:
        raise click.ClickException(f"REFUSED: {exc.reason}") from exc
    except CentreError as exc:
        raise click.ClickException(exc.detail) from exc
    from paperbuild.sealing import raw_public

    return opened, b64(raw_public(public))


@station.command("serve", help="Serve the exam to the candidates' browsers: verify the package, fetch the centre's "
                               "release share in the window, then run the rooms; send each room's signed response "
                               "bundle to the centre until it acknowledges it.")
@click.option("--package", required=True, type=click.Path(exists=True, dir_okay=False), help="the sealed package")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the site's private key (from `qbank site keygen`)")
@click.option("--centre", "centre_url", default=None, help="the centre's service, e.g. https://qbank.example.org")
@click.option("--token", default=None, envvar="QBANK_SITE_TOKEN", help="the site's bearer token")
@click.option("--centre-key", "centre_key_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the centre's public key (base64); default: remembered from the last start, else fetched")
@click.option("--db", "db_file", default="station.sqlite3", show_default=True, type=click.Path(dir_okay=False),
              help="the station's database (one per package)")
@click.option("--id-digits", default=6, show_default=True, type=click.IntRange(4, 6),
              help="how many last characters of the id number a candidate enters with their admission number")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to serve the room's LAN")
@click.option("--port", default=8100, show_default=True, type=int)
def station_serve(package: str, key_file: str, centre_url: str | None, token: str | None,
                  centre_key_file: str | None, db_file: str, id_digits: int, host: str, port: int) -> None:
    import uvicorn

    from qbank.station.app import create_station_app
    from qbank.station.package import Centre, PackageRefused
    from qbank.station.runtime import Station
    from qbank.station.store import Store, StoreError

    try:
        store = Store(Path(db_file))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    opened, centre_key = _open(package, key_file, centre_url, token, centre_key_file, store.meta("centre_key"))
    centre = Centre(centre_url, token) if centre_url and token else None
    try:
        st = Station(store, opened, centre=centre, id_digits=id_digits)
        st.bind(centre_key)
    except (StoreError, PackageRefused) as exc:
        store.close()
        raise click.ClickException(f"REFUSED: {getattr(exc, 'reason', exc)}") from exc
    click.echo(f"station: package {opened.package_id}, session {opened.session_id}, site {opened.site}, rooms "
               f"{', '.join(sorted(st.rooms))}; papers {'unsealed' if st.content else 'sealed until the window'}; "
               f"candidates at http://{host}:{port}/, proctors at http://{host}:{port}/proctor")
    uvicorn.run(create_station_app(st), host=host, port=port, log_level="warning")


@station.command("cards", help="Print the seat cards (one-time desk codes) and each room's proctor code as a PDF, "
                               "from the package and the site key alone (before the window too).")
@click.option("--package", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--centre", "centre_url", default=None, help="to fetch the centre's key (or give --centre-key)")
@click.option("--token", default=None, envvar="QBANK_SITE_TOKEN")
@click.option("--centre-key", "centre_key_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("-o", "--output", default="cards.pdf", show_default=True, type=click.Path(dir_okay=False))
def station_cards(package: str, key_file: str, centre_url: str | None, token: str | None,
                  centre_key_file: str | None, output: str) -> None:
    from qbank.station.cards import cards_pdf, codes_key
    from qbank.station.package import PackageRefused

    opened, _ = _open(package, key_file, centre_url, token, centre_key_file, None)
    try:
        roster = opened.roster()
    except PackageRefused as exc:
        raise click.ClickException(f"REFUSED: {exc.reason}") from exc
    seats = roster.get("candidates") or []
    Path(output).write_bytes(cards_pdf(opened.header, roster.get("session") or {}, seats,
                                       codes_key(opened.site_key)))
    click.echo(f"{len(seats)} seat card(s) and {len({s['room'] for s in seats})} proctor code(s) written to {output}")


@station.command("export", help="Write the response bundles a station's database holds to files, e.g. to carry them "
                                "from an offline site; an admin sends one with POST "
                                "/api/v1/sessions/{id}/response-bundles (the station's signature travels with it).")
@click.option("--db", "db_file", default="station.sqlite3", show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default="bundles", show_default=True, type=click.Path(file_okay=False))
def station_export(db_file: str, output: str) -> None:
    from qbank.station.store import StoreError, iso, outbox_of

    try:
        rows = outbox_of(Path(db_file))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for r in rows:
        path = out / f"response-bundle-{r['room']}-{r['bundle_id']}.json"
        path.write_bytes(r["body"])
        state = (f"acknowledged by the centre at {iso(r['acknowledged_at'])}" if r["acknowledged_at"] else
                 f"NOT acknowledged yet ({r['attempts']} attempt(s); last error: {r['last_error'] or '-'})")
        click.echo(f"{path}  sha256 {r['sha256']}  room {r['room']}: {state}")
    if not rows:
        click.echo("no response bundle yet: a room's bundle is made when the room ends")
