"""Seeded generator of realistic item banks, blueprints and layouts (for tests and benchmarks).

The default bank mirrors a level-3 bank: 1,200 approved items (260 true/false, 880 single, 60 multiple choice)
over 300 appraisal points (X 80 %, Y 15 %, Z 5 %), a 3-level scope tree whose leaves get points in proportion
to their weights, facility ~ Beta(6, 4), 60 enemy pairs. :func:`blueprint_from_tree` reads a published-shape
blueprint document (``examples/blueprint-level3.json``) and :func:`bank_for_blueprint` generates a bank on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from paperbuild.model import AppraisalPoint, Blueprint, ItemPool, Layout, Scope, Section


@dataclass(frozen=True)
class Bank:
    """A generated bank: its pool and blueprint, and (when starved) the starved scope's code."""

    pool: ItemPool
    blueprint: Blueprint
    starved_scope: str | None = None


def _largest_remainder(weights: np.ndarray, total: int, minimum: int) -> np.ndarray:
    n = len(weights)
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - minimum * n
    if rest < 0:
        raise ValueError("total too small for the minimum")
    share = weights / weights.sum() * rest
    fl = np.floor(share).astype(np.int64)
    left = rest - int(fl.sum())
    order = np.argsort(-(share - fl), kind="stable")
    fl[order[:left]] += 1
    out: np.ndarray = base + fl
    return out


def level3_layout() -> Layout:
    """40 true/false × 0.5 + 140 single × 0.5 + 10 multiple × 1 = 100 points, mean facility 0.60–0.65."""
    return Layout(
        sections=(Section("tf", 40, 0.5), Section("single", 140, 0.5), Section("multiple", 10, 1.0)),
        facility_min=0.60, facility_max=0.65,
    )


def small_layout() -> Layout:
    """A small layout for tests: 10 × 1 + 30 × 2 + 6 × 5 = 100 points (46 items)."""
    return Layout(
        sections=(Section("tf", 10, 1.0), Section("single", 30, 2.0), Section("multiple", 6, 5.0)),
        facility_min=0.55, facility_max=0.70,
    )


def generate_bank(
    seed: int = 0,
    n_points: int = 300,
    type_counts: tuple[int, int, int] = (260, 880, 60),
    importance_shares: tuple[float, float, float] = (0.80, 0.15, 0.05),
    tree: tuple[int, int, int] = (3, 3, 3),
    n_enemy_pairs: int = 60,
    n_stimulus_sets: int = 0,
    starve: bool = False,
    times_used_max: int = 0,
) -> Bank:
    """Generate a bank. ``tree`` is the number of children per level (top, second, third). One seeded recipe in
    order (splitting it would make the order of random draws, and so every generated bank, harder to follow).

    With ``starve`` one leaf scope keeps only 7 single-choice items, 4 of them in one enemy group, so no paper
    can give it its weight's share of points.
    """
    rng = np.random.default_rng(seed)
    scopes: list[Scope] = []
    leaves: list[str] = []
    for a in range(tree[0]):
        for b in range(tree[1]):
            for c in range(tree[2]):
                leaves.append(f"{a + 1:02d}.{b + 1:02d}.{c + 1:02d}")
    raw = rng.gamma(4.0, 1.0, size=len(leaves))
    leaf_w = _largest_remainder(raw, 100, 1)
    lw = dict(zip(leaves, leaf_w.tolist(), strict=True))
    for a in range(tree[0]):
        ca = f"{a + 1:02d}"
        wa = sum(w for k, w in lw.items() if k.startswith(ca + "."))
        scopes.append(Scope(ca, float(wa), None, f"scope {ca}"))
        for b in range(tree[1]):
            cb = f"{ca}.{b + 1:02d}"
            wb = sum(w for k, w in lw.items() if k.startswith(cb + "."))
            scopes.append(Scope(cb, float(wb), ca, f"scope {cb}"))
            for c in range(tree[2]):
                cc = f"{cb}.{c + 1:02d}"
                scopes.append(Scope(cc, float(lw[cc]), cb, f"scope {cc}"))
    pts_per_leaf = _largest_remainder(leaf_w.astype(np.float64), n_points, 1)
    point_scope: list[str] = []
    for leaf, k in zip(leaves, pts_per_leaf.tolist(), strict=True):
        point_scope += [leaf] * k
    n_x = round(importance_shares[0] * n_points)
    n_y = round(importance_shares[1] * n_points)
    imps = np.array(["X"] * n_x + ["Y"] * n_y + ["Z"] * (n_points - n_x - n_y))
    rng.shuffle(imps)
    points = [AppraisalPoint(f"{point_scope[k]}/{k + 1:03d}", point_scope[k], str(imps[k]))
              for k in range(n_points)]
    n_items = sum(type_counts)
    per_point = _largest_remainder(np.ones(n_points), n_items, 1)
    item_point = np.repeat(np.arange(n_points), per_point)
    types = np.repeat(np.arange(3, dtype=np.int8), np.array(type_counts))
    rng.shuffle(types)
    facility = np.round(rng.beta(6.0, 4.0, size=n_items), 4)
    facility = np.clip(facility, 0.05, 0.99)
    ids = np.arange(1, n_items + 1, dtype=np.int64)
    stimulus = np.full(n_items, -1, dtype=np.int64)
    for s in range(n_stimulus_sets):  # pairs of single-choice items under one stem, same scope
        singles = np.flatnonzero((types == 1) & (stimulus < 0))
        a = int(rng.choice(singles))
        same = singles[(np.array([point_scope[p] for p in item_point[singles]]) == point_scope[item_point[a]])
                       & (singles != a)]
        if same.size:
            stimulus[a] = s
            stimulus[int(rng.choice(same))] = s
    enemy: list[tuple[int, ...]] = []
    used: set[int] = set()
    tries = 0
    while len(enemy) < n_enemy_pairs and tries < 100 * max(1, n_enemy_pairs):
        tries += 1
        p = int(rng.integers(n_points))
        cand = [int(i) for i in np.flatnonzero(item_point == p) if int(i) not in used and stimulus[i] < 0]
        if len(cand) < 2:
            continue
        a, b = rng.choice(cand, size=2, replace=False).tolist()
        used.update((a, b))
        enemy.append((int(ids[a]), int(ids[b])))
    times_used = rng.integers(0, times_used_max + 1, size=n_items) if times_used_max else np.zeros(n_items)
    pool = ItemPool(
        ids=ids,
        item_type=types,
        score=np.full(n_items, np.nan),
        point=np.array([points[p].code for p in item_point], dtype=np.str_),
        scope=np.array([point_scope[p] for p in item_point], dtype=np.str_),
        importance=np.array([points[p].importance for p in item_point], dtype=np.str_),
        facility=facility.astype(np.float64),
        stimulus=stimulus,
        times_used=times_used.astype(np.int64),
        n_options=np.where(types == 0, 0, 4).astype(np.int64),
        enemy_groups=tuple(enemy),
    )
    bp = Blueprint(scopes=tuple(scopes), points=tuple(points))
    starved: str | None = None
    if starve:
        order = np.argsort(-leaf_w, kind="stable")
        starved = leaves[int(order[len(order) // 3])]
        in_leaf = pool.scope == starved
        singles = np.flatnonzero(in_leaf & (pool.item_type == 1))[:7]
        keep = ~in_leaf
        keep[singles] = True
        pool = pool.subset(keep)
        ids_left = [int(pool.ids[i]) for i in np.flatnonzero(pool.scope == starved)]
        groups = (*tuple(g for g in pool.enemy_groups if not set(g) & set(ids_left)), tuple(ids_left[:4]))
        pool = ItemPool(**{**pool.__dict__, "enemy_groups": groups})
    return Bank(pool=pool, blueprint=bp, starved_scope=starved)


def small_bank(seed: int = 0, **kw: object) -> Bank:
    """A small bank for tests: 300 items (60 true/false, 210 single, 30 multiple) over 75 points, 2×2×3 tree."""
    args: dict[str, object] = {"n_points": 75, "type_counts": (60, 210, 30), "tree": (2, 2, 3),
                               "n_enemy_pairs": 12}
    args.update(kw)
    return generate_bank(seed, **args)  # type: ignore[arg-type]


def blueprint_from_tree(doc: Mapping[str, Any]) -> Blueprint:
    """The engine's blueprint of a nested blueprint document (``{"scopes": [{code, name, weight, children,
    points: [{code, name, importance}]}]}``, the shape of ``examples/blueprint-level3.json`` and of the service's
    blueprints): scopes flattened parents first, each point on its scope."""
    scopes: list[Scope] = []
    points: list[AppraisalPoint] = []
    stack: list[tuple[Mapping[str, Any], str | None]] = [(s, None) for s in reversed(doc["scopes"])]
    while stack:
        s, parent = stack.pop()
        w = s.get("weight")
        scopes.append(Scope(str(s["code"]), None if w is None else float(w), parent, str(s.get("name", ""))))
        points += [AppraisalPoint(str(p["code"]), str(s["code"]), str(p["importance"])) for p in s.get("points", [])]
        stack += [(c, str(s["code"])) for c in reversed(s.get("children", []))]
    return Blueprint(scopes=tuple(scopes), points=tuple(points))


def bank_for_blueprint(blueprint: Blueprint, seed: int = 0, n_items: int = 2200,
                       type_shares: tuple[float, float, float] = (0.217, 0.733, 0.05),
                       n_enemy_pairs: int = 100) -> ItemPool:
    """A seeded bank on a given blueprint: ``n_items`` items spread evenly over its appraisal points (at least one
    each), types in ``type_shares`` (true/false, single, multiple: the level-3 layout's 40/140/10), facility ~
    Beta(6, 4), ``n_enemy_pairs`` pairs of items on one appraisal point that may not share a form."""
    rng = np.random.default_rng(seed)
    n_points = len(blueprint.points)
    per_point = _largest_remainder(np.ones(n_points), n_items, 1)
    item_point = np.repeat(np.arange(n_points), per_point)
    counts = _largest_remainder(np.array(type_shares), n_items, 0)
    types = np.repeat(np.arange(3, dtype=np.int8), counts)
    rng.shuffle(types)
    ids = np.arange(1, n_items + 1, dtype=np.int64)
    enemy: list[tuple[int, ...]] = []
    for p in rng.permutation(n_points).tolist():
        if len(enemy) >= n_enemy_pairs:
            break
        on = np.flatnonzero(item_point == p)
        if on.size >= 2:
            a, b = rng.choice(on, size=2, replace=False).tolist()
            enemy.append((int(ids[a]), int(ids[b])))
    facility = np.clip(np.round(rng.beta(6.0, 4.0, size=n_items), 4), 0.05, 0.99)
    pts = blueprint.points
    return ItemPool(
        ids=ids, item_type=types, score=np.full(n_items, np.nan),
        point=np.array([pts[p].code for p in item_point], dtype=np.str_),
        scope=np.array([pts[p].scope for p in item_point], dtype=np.str_),
        importance=np.array([pts[p].importance for p in item_point], dtype=np.str_),
        facility=facility.astype(np.float64), stimulus=np.full(n_items, -1, dtype=np.int64),
        times_used=np.zeros(n_items, dtype=np.int64), n_options=np.where(types == 0, 0, 4).astype(np.int64),
        enemy_groups=tuple(enemy))
