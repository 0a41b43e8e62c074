"""Infeasible requests give an explanation whose rows, relaxed, make the request feasible."""

from __future__ import annotations

import re
import time

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paperbuild as pb
from paperbuild.formmip import FormSpec, solve_form
from paperbuild.model import ItemPool
from paperbuild.problem import compile_problem
from paperbuild.synthetic import Bank, generate_bank, small_bank, small_layout
from paperbuild.wording import num


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


_BARE_POINTS = re.compile(r"(?<!score )(?<!appraisal )\bpoints\b")


def _all_rows(expl: pb.Explanation) -> list[pb.ExplanationRow]:
    return [r for g in expl.groups for r in g]


def test_rows_speak_both_languages_in_one_unit(big_layout: pb.Layout) -> None:
    bank = generate_bank(0, starve=True)
    expl = pb.explain_infeasible(bank.pool, bank.blueprint, big_layout, pb.AssemblyRequest(time_limit=10))
    scope = next(r for r in _all_rows(expl) if r.kind == "scope")
    assert scope.unit == "score_points" and scope.key == bank.starved_scope
    assert f"needs {num(scope.demand or 0)}" in scope.message_en and f"at most {num(scope.supply or 0)} score points" \
        in scope.message_en
    assert "appraisal points" in scope.message_en and "鉴定点" in scope.message_zh and "鉴定范围" in scope.message_zh
    assert f"最多只能从中抽出 {num(scope.supply or 0)} 分" in scope.message_zh
    for r in _all_rows(expl):
        assert r.message_zh and r.message == r.message_en
        assert not _BARE_POINTS.search(r.message_en), r.message_en
    assert expl.summary_zh and "鉴定范围" in expl.summary_zh


def test_item_use_rows_count_score_points(bank: Bank, layout: pb.Layout) -> None:
    # one leaf keeps just enough for one form: two forms with items used once cannot both fill it
    prob = compile_problem(bank.pool, bank.blueprint, layout, pb.AssemblyRequest())
    j = max(range(len(prob.scope_codes)), key=lambda k: (prob.scope_codes[k].count("."), prob.scope_lo[k]))
    leaf, lo = prob.scope_codes[j], int(prob.scope_lo[j])
    its = sorted(prob.scope_items[j].tolist(), key=lambda i: (int(bank.pool.item_type[i]) != 1, i))
    keep, got = [], 0
    for i in its:  # single-choice items (2 score points each) on distinct appraisal points
        if got >= lo or int(bank.pool.item_type[i]) != 1 or any(prob.item_point[i] == prob.item_point[k] for k in keep):
            continue
        keep.append(i)
        got += int(prob.item_points[i])
    mask = np.ones(len(bank.pool), dtype=bool)
    mask[[i for i in its if i not in keep]] = False
    pool = bank.pool.subset(mask)
    req = pb.AssemblyRequest(forms=2, max_item_use=1, time_limit=10)
    res = pb.assemble(pool, bank.blueprint, layout, req)
    assert not res.forms and res.explanation is not None
    row = next(r for r in _all_rows(res.explanation) if r.kind == "item_use" and f"scope {leaf}" in r.message_en)
    assert row.unit == "score_points" and row.demand == 2 * lo and row.supply == got
    assert f"need {num(2 * lo)} score points from scope {leaf}" in row.message_en
    assert f"give at most {num(got)}" in row.message_en and f"抽出 {num(2 * lo)} 分" in row.message_zh


def test_one_form_reasons_come_before_caps_across_forms(bank: Bank, layout: pb.Layout) -> None:
    leaf = [s.code for s in bank.blueprint.scopes if s.code.count(".") == 2][4]
    in_leaf = np.flatnonzero(bank.pool.scope == leaf)
    mask = np.ones(len(bank.pool), dtype=bool)
    mask[in_leaf[1:]] = False  # one item left: no form can give the leaf its share
    pool = bank.pool.subset(mask)
    res = pb.assemble(pool, bank.blueprint, layout, pb.AssemblyRequest(forms=3, max_item_use=1, time_limit=10))
    assert res.status == pb.Status.INFEASIBLE and res.explanation is not None
    first = res.explanation.groups[0]
    assert first[0].kind == "scope" and first[0].key == leaf
    for g in res.explanation.groups[1:]:  # no cap across forms is blamed for what one form cannot do
        assert not any(r.kind in ("item_use", "max_shared") and leaf in r.message_en for r in g)


def test_scope_bounds_against_sub_scope_bounds(bank: Bank, layout: pb.Layout) -> None:
    # sub-scopes of 2.3 % with tolerance 0.3 give exactly 2 score points each; their parent (6.9 %) needs 7
    parent = next(s for s in bank.blueprint.scopes if s.code.count(".") == 1 and
                  next(p.weight for p in bank.blueprint.scopes if p.code == s.parent) > 8)
    kids = [s.code for s in bank.blueprint.scopes if s.parent == parent.code]
    sibling_tree = {s.code for s in bank.blueprint.scopes if s.parent == parent.parent and s.code != parent.code}
    scopes = []
    for s in bank.blueprint.scopes:
        if s.code == parent.code:
            s = msgspec.structs.replace(s, weight=6.9)
        elif s.code in kids:
            s = msgspec.structs.replace(s, weight=2.3)
        elif s.code in sibling_tree or s.parent in sibling_tree:
            s = msgspec.structs.replace(s, weight=None)
        scopes.append(s)
    bp = pb.Blueprint(scopes=tuple(scopes), points=bank.blueprint.points)
    req = pb.AssemblyRequest(scope_tolerance=0.3, time_limit=10)
    res = pb.assemble(bank.pool, bp, layout, req)
    assert res.status == pb.Status.INFEASIBLE and res.explanation is not None
    group = next(g for g in res.explanation.groups if g[0].kind == "scope_children")
    head = group[0]
    assert head.key == parent.code and head.demand == 7 and head.supply == 6 and head.unit == "score_points"
    each = ", ".join(f"{k} ≤ 2" for k in kids)
    assert head.message_en == f"scope {parent.code} needs ≥ 7 score points; its sub-scopes can give at most 6 ({each})"
    assert head.message_zh.startswith(f"鉴定范围 {parent.code} 至少需要 7 分；其下级范围最多只能提供 6 分")
    assert {r.key for r in group[1:]} == set(kids)
    assert _feasible_without(bank.pool, bp, layout, req, _rows(res.explanation))
