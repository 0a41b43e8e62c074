"""Evaluator panels and internal supervisors for practical exams (§17(三)(四), §20, §30(八)): a pure solver.

Plain data in (:class:`PanelRequest`), plain data out (:class:`PanelResult`); no web or database imports.

Rules (the same in :func:`assign_panels` (CP-SAT), :func:`greedy_panels` (first-fit baseline) and
:func:`check_assignment` (the independent checker)):

* every practical room gets a panel of ``panel_size`` (≥ 3) distinct evaluators, one of them the leader;
* each member holds a certificate for the room's occupation at the room's level or higher (level 1 is the
  highest, so a level-2 certificate may mark level 3) that is valid on the day of the exam, and is not barred;
* nobody on a panel has a conflict (employer, training tie, declared relation) with a candidate in that room;
* nobody is in two overlapping places (two rooms, or a room and a session they supervise);
* between consecutive batches (sessions in start order) of the same occupation at the same institution, each
  new panel of n members has at least ⌈n/3⌉ members who were not on any panel of the batch before (nor on the
  previous panel given for that occupation and institution, for the first batch);
* every session gets one internal supervisor, without a conflict with its candidates, not on its panels.

Workload: the objective is lexicographic: first the **largest load** (rooms plus supervised sessions per person)
as small as possible, then the **sum of squared loads** (equivalently the variance, the total being fixed), for
evaluators and for supervisors.

Infeasible requests raise :class:`PanelsInfeasible` with reasons in words: first exact counts per room, per set
of rooms at the same time and per session (fast), else a core of rules from CP-SAT assumptions (``num_workers=1``),
shrunk by deletion, each rule with its people counted.

External supervisors are drawn at random (§26) by :func:`draw_supervisors`, reproducibly from the published
request.

Modules: ``data`` (the request and result Structs), ``rules`` (who may sit where, shared by the solvers),
``counts`` (:func:`precheck`), ``cpmodel`` (the CP-SAT model), ``solve`` (:func:`assign_panels`,
:func:`load_stats`), ``infeasible`` (:func:`explain`), ``greedy`` (:func:`greedy_panels`), ``checker``
(:func:`check_assignment`), ``draw`` (:func:`draw_supervisors`).
"""

from paperbuild.panels.checker import check_assignment
from paperbuild.panels.counts import precheck
from paperbuild.panels.data import (
    MIN_PANEL,
    Assignment,
    Busy,
    Certificate,
    Evaluator,
    LoadStats,
    Panel,
    PanelRequest,
    PanelResult,
    PanelsInfeasible,
    PracticalRoom,
    PreviousPanel,
    Reason,
    Session,
    Supervisor,
    SupervisorSlot,
    Violation,
)
from paperbuild.panels.draw import (
    DRAW_ALGORITHM,
    DrawnSession,
    DrawRequest,
    DrawResult,
    DrawSession,
    draw_supervisors,
)
from paperbuild.panels.greedy import greedy_panels
from paperbuild.panels.infeasible import explain
from paperbuild.panels.rules import certified, overlaps, rotation_limit, validate
from paperbuild.panels.solve import assign_panels, load_stats

__all__ = [
    "DRAW_ALGORITHM",
    "MIN_PANEL",
    "Assignment",
    "Busy",
    "Certificate",
    "DrawRequest",
    "DrawResult",
    "DrawSession",
    "DrawnSession",
    "Evaluator",
    "LoadStats",
    "Panel",
    "PanelRequest",
    "PanelResult",
    "PanelsInfeasible",
    "PracticalRoom",
    "PreviousPanel",
    "Reason",
    "Session",
    "Supervisor",
    "SupervisorSlot",
    "Violation",
    "assign_panels",
    "certified",
    "check_assignment",
    "draw_supervisors",
    "explain",
    "greedy_panels",
    "load_stats",
    "overlaps",
    "precheck",
    "rotation_limit",
    "validate",
]
