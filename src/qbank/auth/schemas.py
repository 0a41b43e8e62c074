from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from qbank.lib.actors import OccupationCode, Role


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
