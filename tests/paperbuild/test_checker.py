"""The independent checker finds each kind of violation."""

from __future__ import annotations

import msgspec

import paperbuild as pb
from paperbuild.synthetic import Bank


def _rules(v: list[pb.Violation]) -> set[str]:
    return {x.rule for x in v}


def test_checker_catches_violations(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=2, max_item_use=1, max_shared=0, time_limit=10)
    res = pb.assemble(bank.pool, bank.blueprint, layout, req)
    a, b = res.forms
    assert pb.check_forms(bank.pool, bank.blueprint, layout, req, [a, b]) == []
    # same form twice: overlap and item use
    assert {"pairwise_shared", "item_use"} <= _rules(pb.check_forms(bank.pool, bank.blueprint, layout, req, [a, a]))
    items = list(a.items)
    # drop an item: count, total points, maybe scope
    r = _rules(pb.check_form(bank.pool, bank.blueprint, layout, req, items[:-1]))
    assert {"section_count", "total_points"} <= r
    # duplicate and unknown
    r = _rules(pb.check_form(bank.pool, bank.blueprint, layout, req, [*items[:-1], items[0]]))
    assert "unique" in r
    assert "in_pool" in _rules(pb.check_form(bank.pool, bank.blueprint, layout, req, [*items[:-1], 99999]))
    # reversed delivery order
    assert "delivery_order" in _rules(pb.check_form(bank.pool, bank.blueprint, layout, req, items[::-1]))
    # enemy pair together
    g = bank.pool.enemy_groups[0]
    e = _rules(pb.check_form(bank.pool, bank.blueprint, layout, req, [*items, *g]))
    assert "enemy" in e
    # excluded item
    absent = next(int(x) for x in bank.pool.ids if int(x) not in set(items))
    req2 = msgspec.structs.replace(req, exclude=(items[0],), include=(absent,))
    assert {"exclude", "include"} <= _rules(pb.check_form(bank.pool, bank.blueprint, layout, req2, a))
    # a broken permutation
    perms = dict(a.permutations)
    k = next(iter(perms))
    perms[k] = (0, 0, 1, 2)
    bad = msgspec.structs.replace(a, permutations=perms)
    assert "permutation" in _rules(pb.check_form(bank.pool, bank.blueprint, layout, req, bad))
    # facility window and per-point cap
    tight = pb.Layout(sections=layout.sections, facility_min=0.9, facility_max=0.95)
    assert "facility" in _rules(pb.check_form(bank.pool, bank.blueprint, tight, req, a))
    req3 = msgspec.structs.replace(req, max_per_point=1)
    pts = [str(bank.pool.point[int(x) - 1]) for x in items]
    if len(set(pts)) < len(pts):
        assert "point_cap" in _rules(pb.check_form(bank.pool, bank.blueprint, layout, req3, a))
    # scopes: zero tolerance breaks some scope
    req4 = msgspec.structs.replace(req, scope_tolerance=0.0)
    v = pb.check_form(bank.pool, bank.blueprint, layout, req4, a)
    assert all(x.rule == "scope_points" for x in v)


def test_checker_facility_spread(bank: Bank, layout: pb.Layout) -> None:
    req = pb.AssemblyRequest(forms=2, facility_spread=0.0, time_limit=10)
    a = pb.assemble(bank.pool, bank.blueprint, layout, pb.AssemblyRequest(seed=1)).forms[0]
    b = pb.assemble(bank.pool, bank.blueprint, layout, pb.AssemblyRequest(seed=2)).forms[0]
    if a.report.mean_facility != b.report.mean_facility:
        assert "facility_spread" in _rules(pb.check_forms(bank.pool, bank.blueprint, layout, req, [a, b]))
