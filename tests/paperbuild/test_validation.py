"""Every bad input raises InvalidInput naming the field, before anything is built."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

import paperbuild as pb
from paperbuild.model import ItemPool
from paperbuild.synthetic import Bank


def _expect(field: str, fn, *args) -> pb.InvalidInput:  # type: ignore[no-untyped-def]
    with pytest.raises(pb.InvalidInput) as ei:
        fn(*args)
    assert ei.value.field == field, ei.value
    assert ei.value.reason
    assert isinstance(ei.value, pb.PaperbuildError)
    return ei.value


def _pool(bank: Bank, **changes: object) -> ItemPool:
    return ItemPool(**{**bank.pool.__dict__, **changes})


def test_layout_not_100(bank: Bank, layout: pb.Layout) -> None:
    bad = pb.Layout(sections=(pb.Section("tf", 10, 1.0), pb.Section("single", 30, 2.0)))
    e = _expect("layout.sections", pb.assemble, bank.pool, bank.blueprint, bad, pb.AssemblyRequest())
    assert "70" in e.reason


def test_section_more_than_pool(bank: Bank) -> None:
    bad = pb.Layout(sections=(pb.Section("tf", 70, 1.0), pb.Section("single", 15, 2.0)))
    e = _expect("layout.sections[0].count", pb.assemble, bank.pool, bank.blueprint, bad, pb.AssemblyRequest())
    assert "60" in e.reason


def test_unknown_type_in_layout(bank: Bank) -> None:
    bad = pb.Layout(sections=(pb.Section("essay", 10, 10.0),))
    _expect("layout.sections[0].item_type", pb.assemble, bank.pool, bank.blueprint, bad, pb.AssemblyRequest())


def test_unknown_type_in_records() -> None:
    recs = [{"id": 1, "type": "tf", "point": "p", "scope": "s", "importance": "X", "facility": 0.5},
            {"id": 2, "type": "matching", "point": "p", "scope": "s", "importance": "X", "facility": 0.5}]
    _expect("records[1].type", pb.ItemPool.from_records, recs)


def test_unknown_type_code_in_pool(bank: Bank, layout: pb.Layout) -> None:
    t = bank.pool.item_type.copy()
    t[5] = 9
    _expect("pool.item_type[5]", pb.assemble, _pool(bank, item_type=t), bank.blueprint, layout, pb.AssemblyRequest())


@pytest.mark.parametrize("count", [0, -3])
def test_count_not_positive(bank: Bank, count: int) -> None:
    bad = pb.Layout(sections=(pb.Section("tf", 10, 1.0), pb.Section("single", count, 2.0)))
    _expect("layout.sections[1].count", pb.assemble, bank.pool, bank.blueprint, bad, pb.AssemblyRequest())


@pytest.mark.parametrize("value", [math.nan, 1.5, -0.1, math.inf])
def test_bad_facility(bank: Bank, layout: pb.Layout, value: float) -> None:
    f = bank.pool.facility.copy()
    f[7] = value
    e = _expect("pool.facility[7]", pb.assemble, _pool(bank, facility=f), bank.blueprint, layout,
                pb.AssemblyRequest())
    assert "item 8" in e.reason


def test_facility_not_a_number_in_records() -> None:
    recs = [{"id": 1, "type": "tf", "point": "p", "scope": "s", "importance": "X", "facility": "easy"}]
    _expect("records[0].facility", pb.ItemPool.from_records, recs)


def test_enemy_group_names_missing_item(bank: Bank, layout: pb.Layout) -> None:
    groups = (*bank.pool.enemy_groups, (1, 99999))
    e = _expect(f"pool.enemy_groups[{len(groups) - 1}]", pb.assemble, _pool(bank, enemy_groups=groups),
                bank.blueprint, layout, pb.AssemblyRequest())
    assert "99999" in e.reason


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"forms": 0}, "request.forms"),
    ({"forms": -2}, "request.forms"),
    ({"max_shared": -1}, "request.max_shared"),
    ({"max_item_use": -1}, "request.max_item_use"),
    ({"max_per_point": 0}, "request.max_per_point"),
    ({"time_limit": 0}, "request.time_limit"),
    ({"time_limit": -5.0}, "request.time_limit"),
    ({"time_limit": math.nan}, "request.time_limit"),
    ({"scope_tolerance": -1.0}, "request.scope_tolerance"),
    ({"facility_spread": -0.1}, "request.facility_spread"),
    ({"include": (123456,)}, "request.include[0]"),
    ({"exclude": (1, 654321)}, "request.exclude[1]"),
    ({"include": (1,), "exclude": (1,)}, "request.exclude[0]"),
])
def test_bad_request(bank: Bank, layout: pb.Layout, kwargs: dict[str, object], field: str) -> None:
    req = pb.AssemblyRequest(**kwargs)  # type: ignore[arg-type]
    _expect(field, pb.assemble, bank.pool, bank.blueprint, layout, req)
    _expect(field, pb.assemble_per_candidate, bank.pool, bank.blueprint, layout, req)


def test_blueprint_children_do_not_add_up(bank: Bank, layout: pb.Layout) -> None:
    scopes = list(bank.blueprint.scopes)
    j = next(k for k, s in enumerate(scopes) if s.parent is not None and s.code.count(".") == 1)
    scopes[j] = msgspec.structs.replace(scopes[j], weight=scopes[j].weight + 3)
    bp = pb.Blueprint(scopes=tuple(scopes), points=bank.blueprint.points)
    parent = next(k for k, s in enumerate(scopes) if s.code == scopes[j].parent)
    e = _expect(f"blueprint.scopes[{parent}].weight", pb.assemble, bank.pool, bp, layout, pb.AssemblyRequest())
    assert "sub-scopes" in e.reason


def test_blueprint_top_level_not_100(bank: Bank, layout: pb.Layout) -> None:
    scopes = list(bank.blueprint.scopes)
    j = next(k for k, s in enumerate(scopes) if s.parent is None)
    scopes[j] = msgspec.structs.replace(scopes[j], weight=scopes[j].weight + 3)
    bp = pb.Blueprint(scopes=tuple(scopes), points=bank.blueprint.points)
    e = _expect("blueprint.scopes", pb.assemble, bank.pool, bp, layout, pb.AssemblyRequest())
    # the scope's own sub-scopes no longer add up to it either: both are reported
    assert [f for f, _ in e.problems] == ["blueprint.scopes", f"blueprint.scopes[{j}].weight"]
    assert "103" in e.problems[0][1]


def test_blueprint_scope_without_items(bank: Bank, layout: pb.Layout) -> None:
    leaf = bank.blueprint.scopes[-1].code
    pool = bank.pool.subset(bank.pool.scope != leaf)
    j = len(bank.blueprint.scopes) - 1
    e = _expect(f"blueprint.scopes[{j}].weight", pb.assemble, pool, bank.blueprint, layout, pb.AssemblyRequest())
    assert leaf in e.reason


def test_pool_scope_not_matching_blueprint(bank: Bank, layout: pb.Layout) -> None:
    sc = bank.pool.scope.copy()
    sc[3] = "99.99"
    _expect("pool.scope[3]", pb.assemble, _pool(bank, scope=sc), bank.blueprint, layout, pb.AssemblyRequest())
    pt = bank.pool.point.copy().astype(object)
    pt[4] = "nowhere/001"
    _expect("pool.point[4]", pb.assemble, _pool(bank, point=np.array(pt, dtype=np.str_)), bank.blueprint, layout,
            pb.AssemblyRequest())


def test_importance_mismatch(bank: Bank, layout: pb.Layout) -> None:
    imp = bank.pool.importance.copy()
    imp[2] = "Z" if imp[2] != "Z" else "X"
    _expect("pool.importance[2]", pb.assemble, _pool(bank, importance=imp), bank.blueprint, layout,
            pb.AssemblyRequest())


def test_duplicate_ids(bank: Bank, layout: pb.Layout) -> None:
    ids = bank.pool.ids.copy()
    ids[10] = ids[11]
    _expect("pool.ids[11]", pb.assemble, _pool(bank, ids=ids), bank.blueprint, layout, pb.AssemblyRequest())


def test_missing_record_key() -> None:
    _expect("records[0].facility", pb.ItemPool.from_records,
            [{"id": 1, "type": "tf", "point": "p", "scope": "s", "importance": "X"}])


def test_other_entry_points_validate(bank: Bank, layout: pb.Layout) -> None:
    _expect("request.forms", pb.explain_infeasible, bank.pool, bank.blueprint, layout, pb.AssemblyRequest(forms=0))
    _expect("request.time_limit", pb.repair, bank.pool, bank.blueprint, layout, pb.AssemblyRequest(time_limit=0),
            [1], [1])
    _expect("count", pb.pick_practical, [1, 2], [], 0)
    _expect("avoid_last", pb.pick_practical, [1, 2], [], 1, -1)
