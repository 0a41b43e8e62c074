"""The double random draw of external supervisors (§26): which sessions to inspect, then who inspects each.

The draw depends only on the published request (seed, sessions, pool): it uses the raw 64-bit PCG64 stream,
which NumPy keeps stable across versions (NEP 19), so anyone can re-run it and get the same result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec
import numpy as np

from paperbuild.errors import InvalidInput
from paperbuild.panels.rules import overlaps

__all__ = ["DRAW_ALGORITHM", "DrawRequest", "DrawResult", "DrawSession", "DrawnSession", "draw_supervisors"]

DRAW_ALGORITHM = "pcg64-raw-fisher-yates-v1"


class DrawSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    start: datetime
    end: datetime
    excluded: list[str] = []  # supervisors with a conflict with this session's candidates or its site


class DrawRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a draw depends on: publish it with the result and anyone can re-run it."""

    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    sessions: list[DrawSession]
    pool: list[str]
    inspect: int | None = None  # how many sessions to inspect (None: all)
    per_session: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1


class DrawnSession(msgspec.Struct, kw_only=True):
    session: str
    supervisors: list[str]
    short: int = 0  # places left empty: too few supervisors free of conflicts


class DrawResult(msgspec.Struct, kw_only=True):
    algorithm: str
    seed: int
    inspected: list[str]
    drawn: list[DrawnSession]


def _below(bits: np.random.PCG64, n: int) -> int:
    """A uniform integer in [0, n) from the raw 64-bit PCG64 stream (rejection, no modulo bias). Only the bit
    generator's stream is used, which NumPy keeps stable across versions (NEP 19), not Generator methods."""
    limit = 2**64 - (2**64 % n)
    while True:
        u = int(bits.random_raw())
        if u < limit:
            return u % n


def _sample(bits: np.random.PCG64, items: Sequence[str], k: int) -> list[str]:
    """k of the items without replacement: the first k steps of a Fisher–Yates shuffle."""
    pool = list(items)
    for i in range(min(k, len(pool))):
        j = i + _below(bits, len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def draw_supervisors(req: DrawRequest) -> DrawResult:
    """Double random draw (§26): which sessions to inspect, then who inspects each, excluding conflicts and
    nobody in two overlapping sessions. Sessions are taken in (start, id) order and the pool in id order, so
    the result depends only on the published request."""
    if len({s.id for s in req.sessions}) != len(req.sessions):
        raise InvalidInput("sessions", "session ids repeat")
    if len(set(req.pool)) != len(req.pool):
        raise InvalidInput("pool", "supervisor ids repeat")
    if req.inspect is not None and not 0 <= req.inspect <= len(req.sessions):
        raise InvalidInput("inspect", f"between 0 and the {len(req.sessions)} sessions")
    bits = np.random.PCG64(req.seed)
    ordered = sorted(req.sessions, key=lambda s: (s.start, s.id))
    n = len(ordered) if req.inspect is None else req.inspect
    chosen_ids = set(_sample(bits, [s.id for s in ordered], n))
    inspected = [s for s in ordered if s.id in chosen_ids]
    pool = sorted(req.pool)
    taken: dict[str, list[DrawSession]] = defaultdict(list)
    drawn: list[DrawnSession] = []
    for s in inspected:
        excluded = set(s.excluded)
        free = [p for p in pool if p not in excluded and not any(overlaps(s, t) for t in taken[p])]
        picked = sorted(_sample(bits, free, req.per_session))
        for p in picked:
            taken[p].append(s)
        drawn.append(DrawnSession(session=s.id, supervisors=picked, short=req.per_session - len(picked)))
    return DrawResult(algorithm=DRAW_ALGORITHM, seed=req.seed, inspected=[s.id for s in inspected], drawn=drawn)
