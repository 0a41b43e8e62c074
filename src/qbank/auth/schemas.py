from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

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
    """Who is calling: the token's id, name, role and (authors and reviewers) its occupations."""

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


class TokenCreate(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["王老师"])]
    role: Role
    occupations: list[OccupationCode] = []
    site: Annotated[str, msgspec.Meta(max_length=40, description="the test site a site token acts for")] | None = None


class TokenOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    role: Role
    occupations: list[str]
    site: str | None
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut, kw_only=True):
    token: str
