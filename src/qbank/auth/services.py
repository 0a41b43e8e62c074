"""Tokens: create (shown once), look up by HMAC, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.auth.cache import TokenCache
from qbank.auth.models import ApiToken
from qbank.auth.schemas import TokenCreate, TokenCreated, TokenOut
from qbank.db import get_or_404, utcnow
from qbank.lib.actors import SCOPED_ROLES, Actor, Role, token_of
from qbank.lib.problems import bad_request, conflict
from qbank.sessions.models import Site

TOKEN_PREFIX = "qb_"


def hash_token(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def token_out(row: ApiToken) -> TokenOut:
    return TokenOut(id=row.id, name=row.name, role=Role(row.role), occupations=list(row.occupations),
                    site=row.site_code, created_at=row.created_at, revoked_at=row.revoked_at)


def actor_of(row: ApiToken) -> Actor:
    return Actor(token_id=row.id, name=row.name, role=Role(row.role), occupations=tuple(row.occupations),
                 site=row.site_code)


async def create_token(db: AsyncSession, secret: str, data: TokenCreate) -> tuple[TokenCreated, ApiToken]:
    if data.role in SCOPED_ROLES and not data.occupations:
        raise bad_request("occupations", f"{token_of(Role(data.role))} must name at least one occupation")
    if data.role not in SCOPED_ROLES and data.occupations:
        raise bad_request("occupations", f"{token_of(Role(data.role))} is not scoped to occupations")
    if (data.role == Role.site) != (data.site is not None):
        raise bad_request("site", "a site token names its site, and only a site token does")
    if data.site is not None and await db.get(Site, data.site) is None:
        raise bad_request("site", f"site {data.site} does not exist")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=data.name, role=data.role.value, occupations=sorted(set(data.occupations)),
                   site_code=data.site, token_hash=hash_token(secret, token), created_at=utcnow())
    db.add(row)
    await db.flush()
    out = token_out(row)
    return TokenCreated(**{f: getattr(out, f) for f in out.__struct_fields__}, token=token), row


async def find_actor(db: AsyncSession, secret: str, token: str, cache: TokenCache | None = None) -> Actor | None:
    """Who the token is, or None when it is unknown or revoked; ``cache``: a token seen within its lifetime is
    not looked up again (:mod:`qbank.auth.cache`)."""
    key = hash_token(secret, token)
    if cache is not None and (known := cache.get(key)) is not None:
        return known
    row = await db.scalar(select(ApiToken).where(ApiToken.token_hash == key))
    if row is None or row.revoked_at is not None:
        return None
    actor = actor_of(row)
    if cache is not None:
        cache.put(key, actor)
    return actor


async def revoke_token(db: AsyncSession, token_id: int) -> ApiToken:
    row = await get_or_404(db, ApiToken, token_id, "token")
    if row.revoked_at is not None:
        raise conflict(f"token {token_id} was already revoked at {row.revoked_at.isoformat()}")
    row.revoked_at = utcnow()
    await db.flush()
    return row


async def issue_token(db: AsyncSession, actor: Actor, secret: str, data: TokenCreate) -> TokenCreated:
    """A new token (shown once) and its trail entry; what the API and `qbank token create` both do."""
    created, row = await create_token(db, secret, data)
    await record(db, actor, "token.create", "token", row.id, after=token_out(row))
    return created


async def list_tokens(db: AsyncSession) -> list[TokenOut]:
    return [token_out(r) for r in (await db.scalars(select(ApiToken).order_by(ApiToken.id))).all()]


async def withdraw_token(db: AsyncSession, actor: Actor, token_id: int) -> TokenOut:
    """Revoke a token and record it; what the API and `qbank token revoke` both do."""
    row = await revoke_token(db, token_id)
    out = token_out(row)
    await record(db, actor, "token.revoke", "token", row.id, after=out)
    return out
