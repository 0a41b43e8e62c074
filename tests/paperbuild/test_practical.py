"""Practical set picking: avoids the last R batches, seeded, deterministic."""

from __future__ import annotations

import pytest

import paperbuild as pb


def test_avoids_recent_batches() -> None:
    sets = [f"P{k:02d}" for k in range(12)]
    history = [["P00", "P01"], ["P02", "P03"], ["P04", "P05"], ["P06"]]
    pick = pb.pick_practical(sets, history, count=3, avoid_last=3, seed=7)
    assert len(pick) == 3 and len(set(pick)) == 3
    assert not set(pick) & {"P02", "P03", "P04", "P05", "P06"}
    # never-used sets come before ones used long ago
    assert not set(pick) & {"P00", "P01"}
    assert pick == pb.pick_practical(sets, history, count=3, avoid_last=3, seed=7)
    picks = {pb.pick_practical(sets, history, count=3, avoid_last=3, seed=s) for s in range(20)}
    assert len(picks) > 1


def test_practical_set_objects_and_shortage() -> None:
    sets = [pb.PracticalSet(id=k, name=f"set {k}") for k in range(10)]
    history = [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert set(pb.pick_practical(sets, history, count=2, avoid_last=3)) == {8, 9}
    with pytest.raises(pb.Infeasible) as ei:
        pb.pick_practical(sets, history, count=3, avoid_last=3)
    assert "only 2" in ei.value.reason
    with pytest.raises(pb.InvalidInput) as e2:
        pb.pick_practical([1, 1], [], 1)
    assert e2.value.field == "sets[1]"
