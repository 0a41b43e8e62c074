"""Plain data the engine takes and returns.

Inputs: :class:`ItemPool` (numpy arrays), :class:`Blueprint`, :class:`Layout`, :class:`AssemblyRequest`.
Outputs: :class:`AssemblyResult` holding :class:`Form` objects, each with a :class:`FormReport`.

Nothing here talks to a database; the service builds an :class:`ItemPool` with :meth:`ItemPool.from_records`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from paperbuild.errors import InvalidInput

#: Item types the engine knows, in code order (``ItemPool.item_type`` stores the index into this tuple).
ITEM_TYPES: tuple[str, ...] = ("tf", "single", "multiple")
#: Human-readable names used in explanations.
TYPE_NAMES: dict[str, str] = {"tf": "true/false", "single": "single choice", "multiple": "multiple choice"}
#: Importance grades of appraisal points, most important first.
IMPORTANCE: tuple[str, ...] = ("X", "Y", "Z")

ItemId = int | str
#: What an explanation row is about (:class:`ExplanationRow`).
RowKind = Literal["section", "scope", "scope_children", "facility", "point_cap", "enemy", "stimulus", "include",
                  "item_use", "max_shared", "other"]
#: The unit of an explanation row's ``demand`` and ``supply``.
RowUnit = Literal["score_points", "items", "item_pairs", "facility", "forms", ""]
#: Why a run ended before every form was made (:class:`Shortfall`).
ShortfallReason = Literal["time_limit", "infeasible", "cancelled"]


def type_code(name: str, field_name: str) -> int:
    """Return the code of item type ``name`` or raise :class:`InvalidInput` naming ``field_name``."""
    try:
        return ITEM_TYPES.index(name)
    except ValueError:
        raise InvalidInput(field_name, f"unknown item type {name!r}; known types: {', '.join(ITEM_TYPES)}") from None


@dataclass(frozen=True, eq=False)
class ItemPool:
    """The approved items that may go into a paper, one entry per item in every array.

    * ``ids``: unique item ids (int64 or str array).
    * ``item_type``: int8 codes into :data:`ITEM_TYPES` (0 true/false, 1 single, 2 multiple choice).
    * ``score``: nominal points of the item (informational; the layout's section decides the points on a paper).
    * ``point``: appraisal point (鉴定点) code; must be a point of the blueprint.
    * ``scope``: code of the leaf scope the item's point belongs to.
    * ``importance``: ``"X"``, ``"Y"`` or ``"Z"``; must agree with the blueprint's point.
    * ``facility``: share of candidates answering correctly, in (0, 1].
    * ``stimulus``: shared-stimulus set number, -1 for none; a set goes into a form all or none.
    * ``times_used``: how many papers the item has been in so far (exposure).
    * ``n_options``: number of options of a choice item (0 for true/false).
    * ``enemy_groups``: groups of item ids of which a form may hold at most one.
    """

    ids: npt.NDArray[Any]
    item_type: npt.NDArray[np.int8]
    score: npt.NDArray[np.float64]
    point: npt.NDArray[np.str_]
    scope: npt.NDArray[np.str_]
    importance: npt.NDArray[np.str_]
    facility: npt.NDArray[np.float64]
    stimulus: npt.NDArray[np.int64]
    times_used: npt.NDArray[np.int64]
    n_options: npt.NDArray[np.int64]
    enemy_groups: tuple[tuple[ItemId, ...], ...] = ()

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any] | object],
        enemy_groups: Iterable[Iterable[ItemId]] = (),
    ) -> ItemPool:
        """Build a pool from dicts, msgspec Structs, dataclasses or any objects with these attributes (one pass
        over the records, one check per key: long, but each key is read and checked in one place).

        Required keys: ``id``, ``type`` (``"tf"``, ``"single"``, ``"multiple"``), ``point``, ``scope``,
        ``importance``, ``facility``. Optional: ``score`` (NaN), ``stimulus`` (-1 / None), ``times_used`` (0),
        ``n_options`` (4 for choice items, 0 for true/false), ``enemy_group`` (a key or a list of keys: items
        sharing a key form an enemy group). ``enemy_groups`` adds explicit groups of item ids.
        Raises :class:`InvalidInput` naming ``records[i].key`` for a missing or malformed value.
        """
        rows = list(records)
        ids: list[ItemId] = []
        types: list[int] = []
        scores: list[float] = []
        points: list[str] = []
        scopes: list[str] = []
        imps: list[str] = []
        facs: list[float] = []
        stims: list[int] = []
        used: list[int] = []
        nopts: list[int] = []
        groups: dict[Any, list[ItemId]] = {}

        def get(row: Mapping[str, Any] | object, key: str, i: int, default: Any = ...) -> Any:
            if isinstance(row, Mapping):
                if key in row:
                    return row[key]
            elif hasattr(row, key):
                return getattr(row, key)
            if default is ...:
                raise InvalidInput(f"records[{i}].{key}", "missing")
            return default

        for i, row in enumerate(rows):
            item_id = get(row, "id", i)
            if not isinstance(item_id, int | str) or isinstance(item_id, bool):
                raise InvalidInput(f"records[{i}].id", f"must be int or str, got {type(item_id).__name__}")
            ids.append(item_id)
            types.append(type_code(str(get(row, "type", i)), f"records[{i}].type"))
            sc = get(row, "score", i, None)
            try:
                scores.append(float("nan") if sc is None else float(sc))
            except (TypeError, ValueError):
                raise InvalidInput(f"records[{i}].score", "not a number") from None
            try:
                facs.append(float(get(row, "facility", i)))
            except (TypeError, ValueError):
                raise InvalidInput(f"records[{i}].facility", "not a number") from None
            points.append(str(get(row, "point", i)))
            scopes.append(str(get(row, "scope", i)))
            imps.append(str(get(row, "importance", i)))
            stim = get(row, "stimulus", i, None)
            stims.append(-1 if stim is None else int(stim))
            used.append(int(get(row, "times_used", i, 0) or 0))
            nopt = get(row, "n_options", i, None)
            nopts.append((0 if types[-1] == 0 else 4) if nopt is None else int(nopt))
            eg = get(row, "enemy_group", i, None)
            if eg is not None:
                keys = list(eg) if isinstance(eg, list | tuple) else [eg]
                for key in keys:
                    groups.setdefault(key, []).append(item_id)
        all_groups = [tuple(g) for g in groups.values() if len(g) > 1]
        all_groups += [tuple(g) for g in enemy_groups]
        id_arr = np.array(ids, dtype=np.int64) if all(isinstance(x, int) for x in ids) else np.array(
            [str(x) for x in ids], dtype=np.str_)
        if len(ids) == 0:
            id_arr = np.zeros(0, dtype=np.int64)
        return cls(
            ids=id_arr,
            item_type=np.array(types, dtype=np.int8),
            score=np.array(scores, dtype=np.float64),
            point=np.array(points, dtype=np.str_),
            scope=np.array(scopes, dtype=np.str_),
            importance=np.array(imps, dtype=np.str_),
            facility=np.array(facs, dtype=np.float64),
            stimulus=np.array(stims, dtype=np.int64),
            times_used=np.array(used, dtype=np.int64),
            n_options=np.array(nopts, dtype=np.int64),
            enemy_groups=tuple(all_groups),
        )

    def subset(self, mask: npt.NDArray[np.bool_]) -> ItemPool:
        """A pool of the items where ``mask`` is true; enemy groups keep only surviving members."""
        keep = set(self.ids[mask].tolist())
        groups = tuple(g2 for g in self.enemy_groups if len(g2 := tuple(x for x in g if x in keep)) > 1)
        return ItemPool(
            ids=self.ids[mask], item_type=self.item_type[mask], score=self.score[mask], point=self.point[mask],
            scope=self.scope[mask], importance=self.importance[mask], facility=self.facility[mask],
            stimulus=self.stimulus[mask], times_used=self.times_used[mask], n_options=self.n_options[mask],
            enemy_groups=groups,
        )


class Scope(msgspec.Struct, frozen=True):
    """A node of the blueprint's scope tree (鉴定范围).

    ``weight`` is the share of the whole paper in percent (not of the parent), as published tables give it:
    a number in [0, 100], ``0`` for a scope not examined in theory, or ``None`` for a scope without a weight of
    its own, which shares its parent's remaining weight with its siblings in proportion to the appraisal points
    each holds. The exact rule is in :mod:`paperbuild.blueprint`.
    """

    code: str
    weight: float | None
    parent: str | None = None
    name: str = ""


class AppraisalPoint(msgspec.Struct, frozen=True):
    """A leaf of the blueprint (鉴定点): its code, its (leaf) scope and importance X, Y or Z."""

    code: str
    scope: str
    importance: str


class Blueprint(msgspec.Struct, frozen=True):
    """A blueprint (鉴定要素细目表): the scope tree and its appraisal points."""

    scopes: tuple[Scope, ...]
    points: tuple[AppraisalPoint, ...]


class Section(msgspec.Struct, frozen=True):
    """A section of the paper layout: ``count`` items of ``item_type`` worth ``points_per_item`` each."""

    item_type: str
    count: int
    points_per_item: float


class Layout(msgspec.Struct, frozen=True):
    """The paper layout: sections in delivery order, summing to 100 points, and the target range of the paper's
    mean facility (points-weighted: expected score / 100)."""

    sections: tuple[Section, ...]
    facility_min: float = 0.60
    facility_max: float = 0.65


class AssemblyRequest(msgspec.Struct, frozen=True):
    """What to assemble.

    * ``forms``: number of forms (papers A, B, C…, or candidates).
    * ``max_shared``: most items any two forms may share (None: no cap).
    * ``max_item_use``: most forms of this batch an item may appear in (None: no cap).
    * ``include`` / ``exclude``: item ids every form must hold / no form may hold.
    * ``seed``: makes the result reproducible; ``time_limit``: seconds for the whole call.
    * ``scope_tolerance``: points each scope may deviate from its weight's share (default ±1 point).
    * ``max_per_point``: most items of one appraisal point per form (k).
    * ``facility_spread``: most the mean facilities of parallel forms may differ (δ).
    """

    forms: int = 1
    max_shared: int | None = None
    max_item_use: int | None = None
    include: tuple[ItemId, ...] = ()
    exclude: tuple[ItemId, ...] = ()
    seed: int = 0
    time_limit: float = 10.0
    scope_tolerance: float = 1.0
    max_per_point: int = 2
    facility_spread: float = 0.01


class Status(enum.StrEnum):
    """Outcome of an assembly call. Only ``optimal`` and ``feasible`` are a paper (``AssemblyResult.complete``)."""

    OPTIMAL = "optimal"  # every form made, each proven best for the objective
    FEASIBLE = "feasible"  # every form made and meeting every rule; optimality not proven
    INFEASIBLE = "infeasible"  # proven impossible before any form was made; see ``explanation``
    PARTIAL = "partial"  # the run ended short: ``partial_forms`` holds the valid forms made; see ``shortfall``
    UNKNOWN = "unknown"  # time ran out before any form was found
    CANCELLED = "cancelled"  # the caller stopped the run; ``partial_forms`` holds what was made


class ConstraintSlack(msgspec.Struct, frozen=True):
    """One constraint of a form: its value, bounds and slack (distance to the nearer bound, ≥ 0 when met)."""

    name: str
    value: float
    lower: float | None
    upper: float | None
    slack: float


class ScopeReport(msgspec.Struct, frozen=True):
    """Points a form gives a scope against its target (weight share of the total)."""

    code: str
    level: int
    target: float
    points: float
    lower: float
    upper: float


class FormReport(msgspec.Struct, frozen=True):
    """What a form covers and how tight each constraint is."""

    total_points: float
    counts: dict[str, int]
    scopes: tuple[ScopeReport, ...]
    covered: dict[str, int]  # distinct points covered per importance
    available: dict[str, int]  # points of each importance in the blueprint
    mean_facility: float
    exposure_mean: float  # mean ``times_used`` of its items before this call
    exposure_max: int
    slacks: tuple[ConstraintSlack, ...]


class Form(msgspec.Struct, frozen=True):
    """One assembled paper: items in delivery order and, per choice item, the permutation of its options
    (``permutations[item_id][k]`` is the original option shown in position k)."""

    index: int
    items: tuple[ItemId, ...]
    permutations: dict[str, tuple[int, ...]]
    report: FormReport
    objective: float
    bound: float


class ExplanationRow(msgspec.Struct, frozen=True, kw_only=True):
    """One blueprint/layout/request row in a set that cannot hold together, with supply against demand.

    ``kind``: ``"section"``, ``"scope"``, ``"scope_children"`` (a scope's bounds against its sub-scopes'),
    ``"facility"``, ``"point_cap"``, ``"enemy"``, ``"stimulus"``, ``"include"``, ``"item_use"``,
    ``"max_shared"``. ``key``: what the row is about (a scope code, an item type, a request field).
    ``demand`` and ``supply`` are in ``unit``: ``"score_points"`` (分: the points a paper gives, out of 100),
    ``"items"``, ``"item_pairs"`` (shared items summed over pairs of forms), ``"facility"`` or ``""``.
    Messages never say "points" alone: score points are 分 / "score points", appraisal points 鉴定点 /
    "appraisal points". ``message`` is ``message_en`` (kept for callers that read one message).
    """

    kind: RowKind
    key: str
    message_en: str
    message_zh: str
    demand: float | None = None
    supply: float | None = None
    unit: RowUnit = ""
    row: str = ""  # the model row group this stands for ("scope:03.02", "section:1", "enemy", ...)

    @property
    def message(self) -> str:
        return self.message_en


class Explanation(msgspec.Struct, frozen=True):
    """Why no paper can be made: groups of rows; each group cannot hold together, and relaxing every row of
    every group makes the request feasible (as far as the solver could show in time). Groups that concern one
    form come before those across forms (item use, shared items)."""

    groups: tuple[tuple[ExplanationRow, ...], ...]
    summary: str
    proven_minimal: bool
    summary_zh: str = ""


class Shortfall(msgspec.Struct, frozen=True):
    """Why a run ended before every form was made, and what is missing.

    ``reason``: ``"time_limit"``, ``"infeasible"`` (the next form cannot be made beside the ones made; see the
    result's ``explanation``) or ``"cancelled"``. ``missing`` lists the indexes of the forms not made. Pass the
    result's ``partial_forms`` as ``made`` to :func:`paperbuild.assemble` (or ``assemble_per_candidate``) with
    the same request and more time to make only the missing forms.
    """

    reason: ShortfallReason
    requested: int
    made: int
    missing: tuple[int, ...]
    message_en: str
    message_zh: str


class SolveStats(msgspec.Struct, frozen=True):
    """How the solve went. Times are seconds from the start of the call."""

    status: Status
    objective: float
    bound: float
    wall_time: float
    time_to_first: float | None  # to the first complete set of forms (before any improvement)
    method: str
    solves: int = 0
    trajectory: tuple[tuple[float, float], ...] = ()  # (seconds, summed objective) at each improvement
    time_to_first_form: float | None = None  # to the first form made in this call
    time_to_last_form: float | None = None  # to the last form made in this call


class AssemblyResult(msgspec.Struct, frozen=True):
    """The outcome of :func:`paperbuild.assemble` and friends.

    Only a complete paper is a paper: ``forms`` holds every requested form when ``complete`` (status
    ``optimal`` or ``feasible``), and is empty otherwise. A run that ends short keeps the valid forms it made in
    ``partial_forms`` and says why in ``shortfall``; they can be continued (see :class:`Shortfall`).
    """

    status: Status
    forms: tuple[Form, ...]
    stats: SolveStats
    explanation: Explanation | None = None
    max_pairwise_shared: int = 0
    max_item_use: int = 0
    messages: tuple[str, ...] = ()
    requested: int = 0  # forms asked for
    complete: bool = False  # every requested form is in ``forms``
    partial_forms: tuple[Form, ...] = ()  # valid forms of a run that ended short
    shortfall: Shortfall | None = None
    continued_from: int = 0  # forms taken over unchanged from an earlier run (``made``)


@dataclass(frozen=True)
class PracticalSet:
    """A practical operation paper (实操试卷) of the bank; ``id`` identifies it."""

    id: ItemId
    name: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def as_tuple(ids: Sequence[ItemId] | npt.NDArray[Any]) -> tuple[ItemId, ...]:
    """Plain Python ids (numpy scalars converted)."""
    return tuple(x.item() if isinstance(x, np.generic) else x for x in ids)
