from __future__ import annotations

import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from paperbuild.delivery import DeliveredItem, FormItem, LeakedItem, deliver, score, trace

SEED = b"session-secret"


def form(n: int = 40, offset: int = 0) -> list[FormItem]:
    items = []
    for i in range(n):
        kind = ("true_false", "single_choice", "multiple_choice")[i % 3]
        options = 2 if kind == "true_false" else 4
        answer = (0, 2) if kind == "multiple_choice" else (1,)
        items.append(FormItem(version_id=offset + i, type=kind, options=options, answer=answer, points=1.0,
                              section=i % 3))
    return items


def test_delivery_is_reproducible_and_differs_between_candidates() -> None:
    items = form()
    a, again, b = deliver(items, SEED, "001"), deliver(items, SEED, "001"), deliver(items, SEED, "002")
    assert a == again and a != b
    assert sorted(d.version_id for d in a) == sorted(it.version_id for it in items)
    assert deliver(items, b"other-secret", "001") != a


def test_scoring_maps_places_back_through_the_option_order() -> None:
    items = form(6)
    delivery = deliver(items, SEED, "007")
    right = {}
    for d in delivery:
        it = next(i for i in items if i.version_id == d.version_id)
        right[d.version_id] = [d.option_order.index(k) for k in it.answer]
    assert score(items, delivery, right) == 6.0
    multiple = next(it for it in items if it.type == "multiple_choice")
    half = dict(right) | {multiple.version_id: right[multiple.version_id][:1]}
    assert score(items, delivery, half) == 5.0
    assert score(items, delivery, half, partial_multiple=True) == 5.5
    assert score(items, delivery, {}) == 0.0


@functools.cache
def two_hundred_candidates() -> dict[str, list[DeliveredItem]]:
    forms = [form(40, 0), form(40, 20), form(40, 40)]  # overlapping forms share half their items
    return {f"{c:03d}": deliver(forms[c % 3], SEED, f"{c:03d}") for c in range(200)}


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=199))
def test_eight_leaked_items_name_the_candidate(seed: int, who: int) -> None:
    """200 candidates on three parallel forms: 8 leaked items with their option order point at the right one."""
    deliveries = two_hundred_candidates()
    target = f"{who:03d}"
    rnd = random.Random(seed)
    seen = sorted(rnd.sample(range(40), 8))
    leaked = [LeakedItem(version_id=deliveries[target][k].version_id, option_order=deliveries[target][k].option_order)
              for k in seen]
    ranking = trace(leaked, deliveries)
    assert ranking[0].candidate == target, ranking[:3]
    assert ranking[0].items_present == 8
