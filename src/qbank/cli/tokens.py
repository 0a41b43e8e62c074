"""`qbank token …`: bearer tokens."""

from __future__ import annotations

import json

import click
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.auth.schemas import TokenCreate, TokenCreated
from qbank.cli.common import CLI_ACTOR, run_in_db
from qbank.lib.actors import Role
from qbank.settings import Settings


@click.group(help="Bearer tokens.")
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

    from qbank.auth.services import issue_token
    from qbank.lib.text import TextRefused, clean_tree

    try:
        fields = clean_tree({"name": name, "role": role, "occupations": list(occupations), "site": site})
        data = msgspec.convert(fields, TokenCreate)
    except (msgspec.ValidationError, TextRefused) as exc:
        raise click.ClickException(str(exc)) from exc

    async def work(db: AsyncSession, settings: Settings) -> TokenCreated:
        return await issue_token(db, CLI_ACTOR, settings.token_secret, data)

    created = run_in_db(work)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(created), ensure_ascii=False))
    else:
        click.echo(created.token)


@token.command("revoke", help="Revoke a token by its id.")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    from qbank.auth.services import withdraw_token

    async def work(db: AsyncSession, settings: Settings) -> None:
        await withdraw_token(db, CLI_ACTOR, token_id)

    run_in_db(work)
    click.echo(f"token {token_id} revoked")


