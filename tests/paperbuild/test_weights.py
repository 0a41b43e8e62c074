"""Blueprints as published: weight 0 (not examined), scopes without a weight of their own, every bad scope listed."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

import paperbuild as pb
from paperbuild.synthetic import Bank

S, P = pb.Scope, pb.AppraisalPoint


def _bp(scopes: list[pb.Scope], points: dict[str, int]) -> pb.Blueprint:
    """A blueprint with ``points[scope]`` X appraisal points on each leaf scope."""
    pts = [P(f"{leaf}/{k:03d}", leaf, "X") for leaf, n in points.items() for k in range(1, n + 1)]
    return pb.Blueprint(scopes=tuple(scopes), points=tuple(pts))


def test_scopes_without_weight_share_the_rest_by_appraisal_points() -> None:
    bp = _bp([S("01", 10), S("01.01", 4.6, "01"), S("01.02", None, "01"), S("01.03", None, "01"),
              S("02", None), S("02.01", None, "02"), S("02.02", 0, "02"), S("03", None)],
             {"01.01": 2, "01.02": 3, "01.03": 1, "02.01": 5, "02.02": 4, "03": 3})
    w = pb.resolved_weights(bp)
    assert w["01.02"] == pytest.approx(5.4 * 3 / 4) and w["01.03"] == pytest.approx(5.4 / 4)
    # the top level shares 100 - 10 by the appraisal points under each scope: 02 holds 9, 03 holds 3
    assert w["02"] == pytest.approx(90 * 9 / 12) and w["03"] == pytest.approx(90 * 3 / 12)
    # 02.02 is weighted 0, so 02.01 (without a weight) gets all of 02
    assert w["02.01"] == pytest.approx(w["02"]) and w["02.02"] == 0


def test_every_bad_scope_is_listed() -> None:
    bp = _bp([S("01", 60), S("01.01", 30, "01"), S("01.02", 20, "01"),  # 50 != 60
              S("02", 30), S("02.01", 10, "02"), S("02.02", 25, "02"),  # 35 != 30
              S("03", -2), S("04", None, "nowhere")],
             {"01.01": 1, "01.02": 1, "02.01": 1, "02.02": 1, "03": 1, "04": 1})
    with pytest.raises(pb.InvalidInput) as ei:
        pb.check_blueprint(bp)
    fields = [f for f, _ in ei.value.problems]  # structure first: weights cannot be resolved on a broken tree
    assert fields == ["blueprint.scopes[6].weight", "blueprint.scopes[7].parent"]
    fixed = pb.Blueprint(scopes=(*bp.scopes[:6], S("03", 5)), points=bp.points[:-1])  # top: 95 != 100
    with pytest.raises(pb.InvalidInput) as ei:
        pb.check_blueprint(fixed)
    assert [f for f, _ in ei.value.problems] == ["blueprint.scopes", "blueprint.scopes[0].weight",
                                                 "blueprint.scopes[3].weight"]
    reasons = " | ".join(r for _, r in ei.value.problems)
    assert "01.01, 01.02" in reasons and "50 %" in reasons and "35 %" in reasons and "100 %" in reasons
    assert ei.value.field == "blueprint.scopes" and "3 problems" in ei.value.reason


def test_rest_without_appraisal_points_is_refused() -> None:
    bp = _bp([S("01", 100), S("01.01", 70, "01"), S("01.02", None, "01")], {"01.01": 2})
    bp = msgspec.structs.replace(bp, scopes=(*bp.scopes, S("01.02.01", None, "01.02")))
    with pytest.raises(pb.InvalidInput) as ei:
        pb.check_blueprint(bp)
    assert ei.value.field == "blueprint.scopes[0].weight"
    assert "30 %" in ei.value.reason and "no appraisal points" in ei.value.reason


def _reweigh(bank: Bank, zero: str) -> pb.Blueprint:
    """The bank's blueprint with leaf ``zero`` weighted 0 and its siblings without a weight of their own."""
    parent = next(s.parent for s in bank.blueprint.scopes if s.code == zero)
    scopes = tuple(S(s.code, 0 if s.code == zero else (None if s.parent == parent else s.weight), s.parent, s.name)
                   for s in bank.blueprint.scopes)
    return pb.Blueprint(scopes=scopes, points=bank.blueprint.points)


def test_scope_weighted_0_is_not_examined(bank: Bank, layout: pb.Layout) -> None:
    zero = bank.blueprint.scopes[-1].code
    bp = _reweigh(bank, zero)
    req = pb.AssemblyRequest(forms=2, max_shared=25, time_limit=20)
    res = pb.assemble(bank.pool, bp, layout, req)
    assert res.complete
    inside = {int(x) for x in bank.pool.ids[bank.pool.scope == zero]}
    assert inside and not any(inside & set(f.items) for f in res.forms)
    assert pb.check_forms(bank.pool, bp, layout, req, res.forms) == []
    rep = {s.code: s for s in res.forms[0].report.scopes}
    assert rep[zero].target == rep[zero].upper == rep[zero].points == 0
    # the checker holds a weighted-0 scope to 0 score points, not to 0 ± tolerance
    other = pb.assemble(bank.pool, bank.blueprint, layout, pb.AssemblyRequest(seed=4)).forms[0]
    if inside & set(other.items):
        assert "weighted 0" in " ".join(v.message for v in pb.check_form(bank.pool, bp, layout, req, other))
    with pytest.raises(pb.InvalidInput) as ei:
        pb.assemble(bank.pool, bp, layout, pb.AssemblyRequest(include=(min(inside),)))
    assert ei.value.field == "request.include[0]" and "not examined" in ei.value.reason


def test_scope_without_weight_and_without_items_is_refused(bank: Bank, layout: pb.Layout) -> None:
    leaves = [s.code for s in bank.blueprint.scopes if s.code.count(".") == 2]
    zero = leaves[0]
    bp = _reweigh(bank, zero)
    siblings = [s.code for s in bp.scopes if s.weight is None]
    pool = bank.pool.subset(~np.isin(bank.pool.scope, siblings))
    with pytest.raises(pb.InvalidInput) as ei:
        pb.assemble(pool, bp, layout, pb.AssemblyRequest())
    assert len(ei.value.problems) == len(siblings)  # every one, not the first
    assert all("its share of its parent" in r and "no items" in r for _, r in ei.value.problems)
