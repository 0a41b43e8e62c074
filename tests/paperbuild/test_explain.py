"""Infeasible requests give an explanation whose rows, relaxed, make the request feasible."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paperbuild as pb
from paperbuild.formmip import FormSpec, solve_form
from paperbuild.model import ItemPool
from paperbuild.problem import compile_problem
from paperbuild.synthetic import Bank, generate_bank, small_bank, small_layout


def _feasible_without(pool: ItemPool, bp: pb.Blueprint, layout: pb.Layout, req: pb.AssemblyRequest,
                      relaxed: set[str]) -> bool:
    prob = compile_problem(pool, bp, layout, req)
    spec = FormSpec(available=prob.usable.copy(), cost=np.zeros(prob.n), relaxed=frozenset(relaxed),
                    must=prob.include if prob.include.size else None, feasibility_only=True)
    return solve_form(prob, spec, 20.0).status in ("optimal", "feasible")


def _rows(expl: pb.Explanation) -> set[str]:
    return {r.row for g in expl.groups for r in g}


def test_starved_scope_full_bank(big_layout: pb.Layout) -> None:
    bank = generate_bank(0, starve=True)
    req = pb.AssemblyRequest(time_limit=10)
    t = time.perf_counter()
    res = pb.assemble(bank.pool, bank.blueprint, big_layout, req)
    assert time.perf_counter() - t < 15
    assert res.status == pb.Status.INFEASIBLE and not res.forms
    expl = res.explanation
    assert expl is not None and expl.groups
    assert bank.starved_scope is not None
    assert f"scope:{bank.starved_scope}" in _rows(expl)
    msg = expl.summary
    assert bank.starved_scope in msg and "enemy group" in msg and "7 approved items" in msg
    assert not _feasible_without(bank.pool, bank.blueprint, big_layout, req, set())
    assert _feasible_without(bank.pool, bank.blueprint, big_layout, req, _rows(expl))
    # each group is irreducible: drop any one of its rows and the rest of the group holds together
    prob = compile_problem(bank.pool, bank.blueprint, big_layout, req)
    from paperbuild.explain import _rows as all_rows

    everything = set(all_rows(prob))
    for g in expl.groups:
        keys = {r.row for r in g}
        assert not _feasible_without(bank.pool, bank.blueprint, big_layout, req, everything - keys)
        for r in keys:
            assert _feasible_without(bank.pool, bank.blueprint, big_layout, req, everything - (keys - {r}))


def test_section_short_after_exclusion(bank: Bank, layout: pb.Layout) -> None:
    tf = [int(x) for x in bank.pool.ids[bank.pool.item_type == 0]]
    req = pb.AssemblyRequest(exclude=tuple(tf[:55]))
    expl = pb.explain_infeasible(bank.pool, bank.blueprint, layout, req)
    assert "section:0" in _rows(expl)
    assert "excluded" in expl.summary
    assert _feasible_without(bank.pool, bank.blueprint, layout, req, _rows(expl))


def test_facility_out_of_reach(bank: Bank) -> None:
    layout = pb.Layout(sections=small_layout().sections, facility_min=0.93, facility_max=0.97)
    res = pb.assemble(bank.pool, bank.blueprint, layout, pb.AssemblyRequest())
    assert res.status == pb.Status.INFEASIBLE
    assert res.explanation is not None
    rows = _rows(res.explanation)
    assert "facility" in rows
    assert "the bank allows" in res.explanation.summary
    assert _feasible_without(bank.pool, bank.blueprint, layout, pb.AssemblyRequest(), rows)


def test_feasible_request_has_empty_explanation(bank: Bank, layout: pb.Layout) -> None:
    expl = pb.explain_infeasible(bank.pool, bank.blueprint, layout, pb.AssemblyRequest())
    assert expl.groups == ()


def test_item_use_too_small_for_forms(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=7, max_item_use=1, time_limit=10)  # 7 x 10 true/false > 60 in the bank
    res = pb.assemble(bank.pool, bank.blueprint, layout, req)
    assert not res.forms
    assert res.explanation is not None
    kinds = {r.kind for g in res.explanation.groups for r in g}
    assert "item_use" in kinds
    assert "70 true/false" in res.explanation.summary


def test_pairwise_cap_below_includes(bank: Bank, layout: pb.Layout) -> None:
    inc = tuple(int(x) for x in bank.pool.ids[[0, 100, 200]])
    req = pb.AssemblyRequest(forms=3, include=inc, max_shared=2, time_limit=5)
    res = pb.assemble(bank.pool, bank.blueprint, layout, req)
    assert not res.forms and res.explanation is not None
    assert any(r.kind == "max_shared" for g in res.explanation.groups for r in g)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 50), keep=st.integers(0, 6), leaf=st.integers(0, 11), tol=st.sampled_from([0.0, 1.0]))
def test_explanation_rows_relaxed_make_it_feasible(seed: int, keep: int, leaf: int, tol: float) -> None:
    bank = small_bank(seed % 5)
    layout = small_layout()
    leaves = [s.code for s in bank.blueprint.scopes if s.code.count(".") == 2]
    code = leaves[leaf % len(leaves)]
    in_leaf = np.flatnonzero(bank.pool.scope == code)
    mask = np.ones(len(bank.pool), dtype=bool)
    mask[in_leaf[max(1, keep):]] = False  # starve one leaf scope (keep at least one item)
    pool = bank.pool.subset(mask)
    req = pb.AssemblyRequest(scope_tolerance=tol, time_limit=10)
    expl = pb.explain_infeasible(pool, bank.blueprint, layout, req)
    if not expl.groups:
        assert _feasible_without(pool, bank.blueprint, layout, req, set())
        return
    assert not _feasible_without(pool, bank.blueprint, layout, req, set())
    assert _feasible_without(pool, bank.blueprint, layout, req, _rows(expl))
    for g in expl.groups:
        for r in g:
            assert r.message
