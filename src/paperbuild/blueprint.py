"""A blueprint's rules: its scope tree, its appraisal points, and how scope weights resolve.

Weights (``Scope.weight``: percent of the whole paper, not of the parent), as published tables give them:

1. A number is the scope's own weight, in [0, 100].
2. ``0``: the scope is not examined in a theory paper. No item of it, or of any scope under it, goes into a paper
   (its bounds are [0, 0] whatever ``scope_tolerance`` is).
3. ``None``: the scope has no weight of its own. Its parent's weight minus the own weights of the parent's
   sub-scopes (the *rest*) is shared among the sub-scopes without a weight, in proportion to the appraisal points
   (鉴定点) each holds: its own and those of every scope under it, counted in the blueprint, not in the bank (the
   targets do not move when items are added or retired). Top-level scopes share 100 % the same way. A scope
   without a weight whose share is 0 is not examined (rule 2).
   Example: scope 03 weighs 10 %; its sub-scopes are 03.01 = 4.6 %, 03.02 without a weight holding 3 appraisal
   points and 03.03 without a weight holding 1: the rest, 5.4 %, gives 03.02 4.05 % and 03.03 1.35 %.
4. Weights at one level add up (within 1e-6 %): the sub-scopes' own weights equal their parent's (resolved)
   weight when every sub-scope has one, and are at most that when some have none; the same for the top-level
   scopes against 100 %. A rest above 0 needs a sub-scope without a weight that holds an appraisal point.
   So the sub-scopes of a scope weighted 0 are weighted 0 or have no weight.

A scope's target is its resolved weight's share of the paper's 100 score points; a form gives it that many
score points ± ``scope_tolerance`` (rule 2 aside). :func:`check_blueprint` checks every scope and point and
raises one :class:`~paperbuild.errors.InvalidInput` listing every problem, not the first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from paperbuild.errors import InvalidInput
from paperbuild.model import IMPORTANCE, Blueprint

#: Weights at one level may differ from their parent's by this much (percent).
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ScopeTree:
    """A checked blueprint's tree: level (1 = top), sub-scopes and resolved weight (percent) of every scope."""

    level: dict[str, int]
    children: dict[str, list[str]]
    weight: dict[str, float]


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _structure(bp: Blueprint, problems: list[tuple[str, str]]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Codes, weights' types, parents and cycles; returns (code → index, code → sub-scopes)."""
    index: dict[str, int] = {}
    for j, s in enumerate(bp.scopes):
        if s.code in index:
            problems.append((f"blueprint.scopes[{j}].code", f"duplicate scope {s.code!r}"))
            continue
        index[s.code] = j
        if s.weight is not None and (not _number(s.weight) or not 0 <= s.weight <= 100):
            problems.append((f"blueprint.scopes[{j}].weight",
                             f"scope {s.code}: weight {s.weight!r} is not a number in [0, 100] nor None"))
    children: dict[str, list[str]] = defaultdict(list)
    for j, s in enumerate(bp.scopes):
        if s.parent is None or index.get(s.code) != j:
            continue
        if s.parent not in index:
            problems.append((f"blueprint.scopes[{j}].parent", f"scope {s.code}: unknown parent {s.parent!r}"))
        else:
            children[s.parent].append(s.code)
    for code, j in index.items():
        seen = {code}
        cur = bp.scopes[j].parent
        while cur is not None and cur in index:
            if cur in seen:
                problems.append((f"blueprint.scopes[{j}].parent", f"scope {code}: its parents form a cycle"))
                break
            seen.add(cur)
            cur = bp.scopes[index[cur]].parent
    return index, dict(children)


def _points(bp: Blueprint, index: dict[str, int], children: dict[str, list[str]],
            problems: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for k, p in enumerate(bp.points):
        if p.code in seen:
            problems.append((f"blueprint.points[{k}].code", f"duplicate appraisal point {p.code!r}"))
        seen.add(p.code)
        if p.scope not in index:
            problems.append((f"blueprint.points[{k}].scope", f"appraisal point {p.code}: unknown scope {p.scope!r}"))
        elif children.get(p.scope):
            problems.append((f"blueprint.points[{k}].scope",
                             f"appraisal point {p.code}: scope {p.scope} has sub-scopes, so it is not a leaf"))
        if p.importance not in IMPORTANCE:
            problems.append((f"blueprint.points[{k}].importance",
                             f"appraisal point {p.code}: importance {p.importance!r} is not X, Y or Z"))


def _share(bp: Blueprint, index: dict[str, int], parent: str | None, whole: float, kids: list[str],
           held: dict[str, int], weight: dict[str, float], problems: list[tuple[str, str]]) -> None:
    """Resolve the weights of ``kids`` (the sub-scopes of ``parent``, or the top level) from ``whole``."""
    own = [bp.scopes[index[c]].weight for c in kids]
    given = sum(w for w in own if w is not None)
    free = [c for c, w in zip(kids, own, strict=True) if w is None]
    if parent is None:
        where, what = "blueprint.scopes", "the top-level scopes"
        of = "100 %"
    else:
        where, what = f"blueprint.scopes[{index[parent]}].weight", f"the sub-scopes of scope {parent}"
        of = f"scope {parent}'s {whole:g} %"
    rest = whole - given
    if not free and abs(rest) > WEIGHT_TOLERANCE:
        problems.append((where, f"{what} ({', '.join(kids)}) weigh {given:g} % together, not {of}"))
    elif free and rest < -WEIGHT_TOLERANCE:
        problems.append((where, f"{what} with a weight of their own weigh {given:g} % together, more than {of}"))
    for c, w in zip(kids, own, strict=True):
        if w is not None:
            weight[c] = float(w)
    if not free:
        return
    total = sum(held[c] for c in free)
    rest = max(0.0, rest)
    if total == 0 and rest > WEIGHT_TOLERANCE:
        problems.append((where, f"{rest:g} % of {of} is left for {', '.join(free)} (without a weight of their "
                                "own), which hold no appraisal points"))
    for c in free:
        weight[c] = rest * held[c] / total if total else 0.0


def check_blueprint(bp: Blueprint) -> ScopeTree:
    """Check every scope and appraisal point and resolve the weights (module docstring). Raises
    :class:`InvalidInput` listing every problem found."""
    problems: list[tuple[str, str]] = []
    if not bp.scopes:
        raise InvalidInput("blueprint.scopes", "no scopes")
    index, children = _structure(bp, problems)
    _points(bp, index, children, problems)
    if problems:  # the tree is broken: weights cannot be resolved on it
        raise InvalidInput.every(problems)
    level: dict[str, int] = {}
    order: list[str] = [s.code for s in bp.scopes if s.parent is None]
    for code in order:  # breadth first: parents before their sub-scopes
        par = bp.scopes[index[code]].parent
        level[code] = 1 if par is None else level[par] + 1
        order.extend(children.get(code, []))
    held: dict[str, int] = defaultdict(int)
    for p in bp.points:
        cur: str | None = p.scope
        while cur is not None:
            held[cur] += 1
            cur = bp.scopes[index[cur]].parent
    weight: dict[str, float] = {}
    _share(bp, index, None, 100.0, [s.code for s in bp.scopes if s.parent is None], held, weight, problems)
    for code in order:
        if children.get(code):
            _share(bp, index, code, weight[code], children[code], held, weight, problems)
    if problems:
        raise InvalidInput.every(problems)
    return ScopeTree(level=level, children=children, weight=weight)


def resolved_weights(bp: Blueprint) -> dict[str, float]:
    """Every scope's weight in percent after rule 3 (raises :class:`InvalidInput` on a bad blueprint)."""
    return check_blueprint(bp).weight
