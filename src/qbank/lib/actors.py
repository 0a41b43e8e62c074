"""Who is calling and what their role lets them do: the one actor type every domain, job and trail entry uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

OccupationCode = Annotated[str, msgspec.Meta(pattern=r"^\d-\d{2}-\d{2}-\d{2}$", examples=["4-04-05-01"],
                                             description="national occupation code")]


class Role(StrEnum):
    admin = "admin"
    author = "author"
    reviewer = "reviewer"
    site = "site"
    supervisor = "supervisor"


SCOPED_ROLES = {Role.author, Role.reviewer}


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the token's id, name, role and (authors and reviewers) its occupations, (sites) its site."""

    token_id: int
    name: str
    role: Role
    occupations: tuple[str, ...] = ()
    site: str | None = None

    def may_touch(self, occupation: str) -> bool:
        return self.role not in SCOPED_ROLES or occupation in self.occupations

    @property
    def label(self) -> str:
        return f"{self.name}#{self.token_id}"


def token_of(role: Role) -> str:
    """"an author token", "a site token": the role's token with its article."""
    return f"{'an' if role.value[:1] in 'aeiou' else 'a'} {role.value} token"


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def requires(*roles: Role) -> Guard:
    """A route guard that lets only tokens of these roles through (403 naming the roles otherwise)."""
    allowed = set(roles)

    # async: Litestar runs a plain function guard in a worker thread, a thread hop on every request for a set lookup
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        actor: Actor = connection.user
        if actor.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise PermissionDeniedException(f"{token_of(actor.role)} may not do this; it needs: {names}")

    guard.__name__ = "requires_" + "_".join(sorted(r.value for r in allowed))
    return guard


def check_occupation(actor: Actor, occupation: str) -> None:
    if not actor.may_touch(occupation):
        raise PermissionDeniedException(f"this token is not scoped to occupation {occupation}")


def provide_actor(request: Request[Actor, Any, Any]) -> Actor:
    """The ``actor`` dependency: the caller the bearer-token middleware identified."""
    return request.user
