"""A blueprint shaped like a published level-3 table assembles (examples/blueprint-level3.json, 2,200 items)."""

from __future__ import annotations

import json
import runpy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import paperbuild as pb
from paperbuild.synthetic import bank_for_blueprint, blueprint_from_tree

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "blueprint-level3.json"


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def blueprint(table: dict[str, Any]) -> pb.Blueprint:
    return blueprint_from_tree(table)


@pytest.fixture(scope="module")
def pool(blueprint: pb.Blueprint) -> pb.ItemPool:
    return bank_for_blueprint(blueprint, seed=0)


def test_the_example_is_what_its_script_makes(table: dict[str, Any]) -> None:
    make = runpy.run_path(str(EXAMPLE.with_name("make_blueprint_level3.py")))
    assert make["level3_table"]() == table


def test_it_has_the_published_shape(blueprint: pb.Blueprint, big_layout: pb.Layout) -> None:
    levels = Counter(s.code.count(".") + 1 for s in blueprint.scopes)
    parents = {s.parent for s in blueprint.scopes}
    leaves = [s for s in blueprint.scopes if s.code not in parents]
    assert max(levels) == 6 and 260 <= len(leaves) <= 280 and len(blueprint.points) == 490
    assert all(len(p.code) == 3 and p.code.isdigit() for p in blueprint.points)
    weights = [s.weight for s in blueprint.scopes]
    assert any(w is None for w in weights) and any(w == 0 for w in weights)
    assert any(w is not None and w != int(w) for w in weights)  # non-round, e.g. 4.6
    assert all("\u4e00" <= s.name[0] <= "\u9fff" for s in blueprint.scopes)  # Chinese names
    resolved = pb.resolved_weights(blueprint)
    assert sum(resolved[s.code] for s in blueprint.scopes if s.parent is None) == pytest.approx(100)


def test_a_real_shaped_blueprint_assembles(blueprint: pb.Blueprint, pool: pb.ItemPool, big_layout: pb.Layout) -> None:
    assert len(pool) == 2200
    req = pb.AssemblyRequest(forms=3, max_shared=47, time_limit=30, seed=2)
    res = pb.assemble_per_candidate(pool, blueprint, big_layout, req)
    assert res.complete, (res.status, res.messages)
    assert pb.check_forms(pool, blueprint, big_layout, req, res.forms) == []
    resolved = pb.resolved_weights(blueprint)
    for f in res.forms:
        assert f.report.total_points == 100 and f.report.counts == {"tf": 40, "single": 140, "multiple": 10}
        for s in f.report.scopes:
            if resolved[s.code] == 0:  # not examined
                assert s.points == 0
            else:
                assert s.target == pytest.approx(resolved[s.code]) and s.lower <= s.points <= s.upper
