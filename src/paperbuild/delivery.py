"""What each candidate sees, how their answers score, and whose paper a leak came from.

Every candidate's delivery is their form's items in a candidate-specific order with candidate-specific option
orders, derived from a secret seed: reproducible by the centre, unpredictable to anyone else. With four
options an item has 24 orders, so a handful of leaked items (with their option order) names one candidate
even among candidates who share a form."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import msgspec
import numpy as np


class FormItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item of an assembled form, as the engine needs it to deliver and score."""

    version_id: int
    type: str  # true_false, single_choice, multiple_choice
    options: int  # number of options
    answer: tuple[int, ...]  # correct option indexes in the item's own order
    points: float
    section: int = 0  # items are shuffled within their section only


class DeliveredItem(msgspec.Struct, frozen=True, kw_only=True):
    version_id: int
    option_order: tuple[int, ...]  # option_order[k] = the item's own index of the option shown in place k


class LeakedItem(msgspec.Struct, frozen=True, kw_only=True):
    """A leaked item as seen: which item, and the options in the order seen (item's own indexes; may be empty)."""

    version_id: int
    option_order: tuple[int, ...] = ()


class LeakMatch(msgspec.Struct, frozen=True, kw_only=True):
    candidate: str
    score: float
    items_present: int
    option_orders_matching: int
    order_pairs_agreeing: int
    order_pairs: int
    evidence: list[str]


def _rng(seed: bytes, *parts: object) -> np.random.Generator:
    digest = hmac.new(seed, "|".join(str(p) for p in parts).encode(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def deliver(items: Sequence[FormItem], seed: bytes, candidate: str) -> list[DeliveredItem]:
    """The candidate's delivery: sections in their order, items shuffled within each, options shuffled
    (true/false keeps its order)."""
    rng = _rng(seed, "order", candidate)
    out: list[DeliveredItem] = []
    sections = sorted({it.section for it in items})
    for section in sections:
        members = [it for it in items if it.section == section]
        for idx in rng.permutation(len(members)).tolist():
            it = members[idx]
            if it.type == "true_false":
                order = tuple(range(it.options))
            else:
                order = tuple(int(x) for x in _rng(seed, "options", candidate, it.version_id).permutation(it.options))
            out.append(DeliveredItem(version_id=it.version_id, option_order=order))
    return out


def score(items: Sequence[FormItem], delivery: Sequence[DeliveredItem], responses: dict[int, Sequence[int]],
          *, partial_multiple: bool = False) -> float:
    """Points for ``responses`` (version id → option places chosen, as shown to the candidate).

    Single choice and true/false: full points for the right option. Multiple choice: all-or-nothing unless
    ``partial_multiple`` (then half points for a correct subset with no wrong option)."""
    by_id = {it.version_id: it for it in items}
    order = {d.version_id: d.option_order for d in delivery}
    total = 0.0
    for version_id, places in responses.items():
        it = by_id.get(version_id)
        if it is None:
            continue
        shown = order[version_id]
        chosen = {shown[p] for p in places if 0 <= p < len(shown)}
        correct = set(it.answer)
        if chosen == correct:
            total += it.points
        elif partial_multiple and it.type == "multiple_choice" and chosen and chosen < correct:
            total += it.points / 2
    return round(total, 4)


def trace(leaked: Sequence[LeakedItem], deliveries: dict[str, Sequence[DeliveredItem]],
          limit: int = 10) -> list[LeakMatch]:
    """Candidates whose delivery the leaked items match, best first, with the evidence."""
    matches: list[LeakMatch] = []
    for candidate, delivery in deliveries.items():
        position = {d.version_id: (i, d.option_order) for i, d in enumerate(delivery)}
        present = [it for it in leaked if it.version_id in position]
        if not present:
            continue
        options_match = sum(1 for it in present if it.option_order and position[it.version_id][1] == it.option_order)
        places = [position[it.version_id][0] for it in present]
        pairs = len(places) * (len(places) - 1) // 2
        agreeing = sum(1 for i in range(len(places)) for j in range(i + 1, len(places)) if places[i] < places[j])
        # option orders are the strong signal (1 in 24 by chance for 4 options); order and presence break ties
        value = 3.0 * options_match + len(present) + (agreeing / pairs if pairs else 0.0)
        evidence = [f"{len(present)} of {len(leaked)} leaked items are on this paper",
                    f"{options_match} of them with the options in the same order as delivered"]
        if pairs:
            evidence.append(f"{agreeing} of {pairs} item pairs in the delivered order")
        matches.append(LeakMatch(candidate=candidate, score=round(value, 4), items_present=len(present),
                                 option_orders_matching=options_match, order_pairs_agreeing=agreeing,
                                 order_pairs=pairs, evidence=evidence))
    matches.sort(key=lambda m: (-m.score, m.candidate))
    return matches[:limit]
