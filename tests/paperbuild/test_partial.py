"""Only a complete paper is a paper: runs that end short say so, keep their valid forms, and can be continued."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

import paperbuild as pb
from paperbuild.synthetic import Bank

Run = Callable[..., pb.AssemblyResult]
MODES = [pytest.param(pb.assemble_per_candidate, id="per_candidate"), pytest.param(pb.assemble, id="parallel")]


def _stop_after(k: int) -> tuple[Callable[[], bool], Callable[[int, int], None], list[tuple[int, int]]]:
    """A cancel hook that says stop once ``k`` forms are made, and a progress hook that records the calls."""
    seen: list[tuple[int, int]] = []
    return (lambda: bool(seen) and seen[-1][0] >= k), (lambda made, n: seen.append((made, n))), seen


@pytest.mark.parametrize("run", MODES)
def test_cancelled_run_keeps_its_forms_and_continues(bank: Bank, layout: pb.Layout, run: Run) -> None:
    req = pb.AssemblyRequest(forms=8, max_shared=22, max_item_use=4, seed=3, time_limit=60)
    stop, progress, seen = _stop_after(3)
    res = run(bank.pool, bank.blueprint, layout, req, should_stop=stop, on_form=progress)
    assert res.status == pb.Status.CANCELLED and not res.complete
    assert res.forms == ()  # not a paper
    assert seen[0] == (1, 8) and seen[-1][0] == len(res.partial_forms) >= 3
    made = res.partial_forms
    assert [f.index for f in made] == list(range(len(made)))
    assert res.shortfall is not None
    assert res.shortfall.reason == "cancelled" and res.shortfall.requested == 8
    assert res.shortfall.made == len(made) and res.shortfall.missing == tuple(range(len(made), 8))
    assert "not a paper" in res.shortfall.message_en and "不是一套完整的试卷" in res.shortfall.message_zh
    assert pb.check_forms(bank.pool, bank.blueprint, layout, req, made) == []

    more = run(bank.pool, bank.blueprint, layout, req, made=made)
    assert more.complete and more.status in (pb.Status.OPTIMAL, pb.Status.FEASIBLE), more.messages
    assert more.shortfall is None and more.partial_forms == ()
    assert len(more.forms) == 8 and more.continued_from == len(made)
    for old, new in zip(made, more.forms, strict=False):  # kept as they were
        assert (new.index, new.items, new.permutations) == (old.index, old.items, old.permutations)
    # the new forms keep every cap against the kept ones
    assert pb.check_forms(bank.pool, bank.blueprint, layout, req, more.forms) == []
    assert more.stats.time_to_first_form is not None and more.stats.time_to_last_form is not None
    assert more.stats.time_to_first_form <= more.stats.time_to_last_form <= more.stats.wall_time


def test_continue_from_plain_item_lists(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=3, max_shared=20, seed=1, time_limit=30)
    stop, progress, _ = _stop_after(1)
    first = pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req, should_stop=stop, on_form=progress)
    ids = [list(reversed(f.items)) for f in first.partial_forms]  # any order: the engine orders them
    res = pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req, made=ids)
    assert res.complete
    assert set(res.forms[0].items) == set(ids[0])
    assert pb.check_forms(bank.pool, bank.blueprint, layout, req, res.forms) == []


def test_time_limit_gives_partial_forms_after_using_the_time(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=400, max_shared=30, time_limit=1.0)
    res = pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req)
    assert res.status in (pb.Status.PARTIAL, pb.Status.UNKNOWN)
    assert res.forms == () and not res.complete
    assert res.shortfall is not None and res.shortfall.reason == "time_limit"
    assert res.shortfall.made == len(res.partial_forms) < 400
    assert res.shortfall.missing[0] == len(res.partial_forms) and res.shortfall.missing[-1] == 399
    assert "time limit" in res.shortfall.message_en and any("400" in m for m in res.messages)
    # it stopped because the time was used, not before (a lower bound: a slow machine only makes it larger)
    assert res.stats.wall_time >= 0.85 * req.time_limit
    assert pb.check_forms(bank.pool, bank.blueprint, layout, req, res.partial_forms) == []
    data = msgspec.json.decode(msgspec.json.encode(res))
    assert data["complete"] is False and data["forms"] == [] and data["shortfall"]["reason"] == "time_limit"


def test_continuing_a_complete_run_is_refused(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=2, max_shared=25, time_limit=20)
    done = pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req)
    assert done.complete
    with pytest.raises(pb.InvalidInput) as ei:
        pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req, made=done.forms)
    assert ei.value.field == "made" and "complete" in ei.value.reason


def test_made_forms_that_break_a_rule_are_refused(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=3, max_shared=10, time_limit=20)
    one = pb.assemble(bank.pool, bank.blueprint, layout, pb.AssemblyRequest(time_limit=20)).forms[0]
    twin = msgspec.structs.replace(one, index=1)
    with pytest.raises(pb.InvalidInput) as ei:  # the same form twice shares 46 items > 10
        pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req, made=[one, twin])
    assert ei.value.field == "made" and "share" in ei.value.reason
    with pytest.raises(pb.InvalidInput) as ei:
        pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req, made=[[*one.items[:-1], 987654]])
    assert ei.value.field == "made[0]" and "987654" in ei.value.reason
    with pytest.raises(pb.InvalidInput) as ei:
        pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req, made=[twin])
    assert ei.value.field == "made[0].index"


def test_complete_result_says_so(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=3, max_shared=25, time_limit=20)
    res = pb.assemble_per_candidate(bank.pool, bank.blueprint, layout, req)
    assert res.complete and res.requested == 3 and res.shortfall is None and res.partial_forms == ()
    assert res.stats.time_to_first_form is not None and res.stats.time_to_last_form is not None
    assert 0 < res.stats.time_to_first_form <= res.stats.time_to_last_form <= res.stats.wall_time
