"""Practical operation papers: pick sets for a batch, avoiding the sets used in the last R batches, seeded."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from paperbuild.errors import Infeasible, InvalidInput
from paperbuild.model import ItemId, PracticalSet


def pick_practical(sets: Sequence[PracticalSet | ItemId], history: Sequence[Sequence[ItemId]], count: int = 1,
                   avoid_last: int = 3, seed: int = 0) -> tuple[ItemId, ...]:
    """Pick ``count`` practical sets for a batch.

    ``history`` lists the sets used by earlier batches, oldest first. Sets used in the last ``avoid_last``
    batches are never picked; among the rest, sets never used come first, then those used longest ago; ties
    are broken by a seeded order, so the same inputs and seed give the same pick. Raises
    :class:`~paperbuild.errors.InvalidInput` for bad arguments and :class:`~paperbuild.errors.Infeasible` when
    too few sets are left.
    """
    if not isinstance(count, int) or count <= 0:
        raise InvalidInput("count", f"must be a positive integer, got {count!r}")
    if not isinstance(avoid_last, int) or avoid_last < 0:
        raise InvalidInput("avoid_last", f"must be an integer ≥ 0, got {avoid_last!r}")
    if not isinstance(seed, int):
        raise InvalidInput("seed", f"must be an integer, got {seed!r}")
    ids: list[ItemId] = [s.id if isinstance(s, PracticalSet) else s for s in sets]
    if not ids:
        raise InvalidInput("sets", "the bank has no practical sets")
    seen: set[ItemId] = set()
    for k, x in enumerate(ids):
        if x in seen:
            raise InvalidInput(f"sets[{k}]", f"duplicate set {x!r}")
        seen.add(x)
    recent: set[ItemId] = set()
    if avoid_last:
        for batch in history[-avoid_last:]:
            recent.update(batch)
    last_used: dict[ItemId, int] = {}
    for b, batch in enumerate(history):
        for x in batch:
            last_used[x] = b
    free = [x for x in ids if x not in recent]
    if len(free) < count:
        raise Infeasible(f"{count} practical sets needed; {len(ids)} in the bank, {len(ids) - len(free)} of them "
                         f"used in the last {avoid_last} batches, so only {len(free)} can be picked")

    def key(x: ItemId) -> tuple[int, str]:
        h = hashlib.sha256(f"{seed}:{type(x).__name__}:{x}".encode()).hexdigest()
        return last_used.get(x, -1), h

    return tuple(sorted(free, key=key)[:count])
