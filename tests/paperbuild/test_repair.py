"""Repair replaces leaving items with as few changes as possible; the batch still passes the checker."""

from __future__ import annotations

import paperbuild as pb
from paperbuild.synthetic import Bank


def test_repair_one_form_of_a_batch(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=3, max_item_use=2, max_shared=20, time_limit=10, seed=1)
    res = pb.assemble(bank.pool, bank.blueprint, layout, req)
    assert len(res.forms) == 3
    target = res.forms[0]
    leaving = [target.items[0], target.items[15], target.items[-1]]
    others = list(res.forms[1:])
    rep = pb.repair(bank.pool, bank.blueprint, layout, req, target, leaving, others)
    assert rep.status in (pb.Status.OPTIMAL, pb.Status.FEASIBLE)
    assert rep.form is not None
    assert set(rep.removed) >= set(leaving)
    assert not set(leaving) & set(rep.form.items)
    assert len(rep.added) == len(rep.removed)
    assert len(rep.removed) <= 3 + 2  # proven minimal by the first MIP; a scope may need one more swap
    assert pb.check_forms(bank.pool, bank.blueprint, layout, req, [rep.form, *others]) == []
    # kept items keep their place and their option order
    for k, x in enumerate(target.items):
        if x not in rep.removed:
            assert rep.form.items[k] == x
            if str(x) in target.permutations:
                assert rep.form.permutations[str(x)] == target.permutations[str(x)]


def test_repair_plain_item_list(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(seed=4)
    form = pb.assemble(bank.pool, bank.blueprint, layout, req).forms[0]
    rep = pb.repair(bank.pool, bank.blueprint, layout, req, list(form.items), list(form.items[:5]))
    assert rep.form is not None
    assert pb.check_form(bank.pool, bank.blueprint, layout, req, rep.form) == []
    assert len(rep.removed) >= 5


def test_repair_impossible_is_explained(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(seed=4)
    form = pb.assemble(bank.pool, bank.blueprint, layout, req).forms[0]
    tf = [int(x) for x in bank.pool.ids[bank.pool.item_type == 0]]
    rep = pb.repair(bank.pool, bank.blueprint, layout, req, form, tf[:55])
    assert rep.status == pb.Status.INFEASIBLE and rep.form is None
    assert rep.explanation is not None
