"""Paper assembly engine: plain data in, papers out. Never imports qbank, litestar or sqlalchemy.

Entry points (all blocking, pure; call them from a worker thread):

* :func:`assemble` — parallel forms (papers A, B, C…) for a batch.
* :func:`assemble_per_candidate` — one form per candidate, any two sharing at most ``max_shared`` items.
* :func:`explain_infeasible` — the smallest sets of blueprint/layout rows that cannot hold together.
* :func:`repair` — replace items that must leave a form, changing as few items as possible.
* :func:`pick_practical` — pick practical operation papers for a batch, avoiding recent ones.
* :func:`check_forms` / :func:`check_form` — the independent checker.
* :func:`assign_panels` — evaluator panels for practical rooms and an internal supervisor per session (CP-SAT,
  :class:`PanelRequest` -> :class:`PanelResult`, or :class:`PanelsInfeasible` with :class:`Reason` s in words);
  :func:`precheck_panels` / :func:`explain_panels` — why a request cannot be met; :func:`greedy_panels` — the
  first-fit baseline; :func:`check_assignment` — the independent checker (:class:`PanelViolation` s);
  :func:`panel_load_stats` — workload figures.
* :func:`draw_supervisors` — the reproducible random draw of external supervisors (:class:`DrawRequest`).
* :func:`check_blueprint` / :func:`resolved_weights` — a blueprint's rules and its scopes' weights as resolved
  (weight ``None``: shares the parent's rest by appraisal points; ``0``: not examined; see
  :mod:`paperbuild.blueprint`).

Only a complete paper is a paper: :attr:`AssemblyResult.complete` is true and ``forms`` holds every form only when
every requested form was made; a run that ends short keeps its forms in ``partial_forms`` with a
:class:`Shortfall`, and can be continued by passing them back as ``made``.

Inputs: :class:`ItemPool` (numpy arrays; :meth:`ItemPool.from_records` builds one from dicts or Structs),
:class:`Blueprint` (:class:`Scope`, :class:`AppraisalPoint`), :class:`Layout` (:class:`Section`),
:class:`AssemblyRequest`; for panels :class:`PanelRequest` (:class:`Session`, :class:`PracticalRoom`,
:class:`Evaluator`, :class:`Certificate`, :class:`Supervisor`, :class:`PreviousPanel`, :class:`Busy`). Bad input
raises :class:`InvalidInput` (``field``, ``reason``). The panel names that would be ambiguous here carry the word
"panel" (``precheck_panels``, ``explain_panels``, ``panel_load_stats``, ``PanelViolation``); under
:mod:`paperbuild.panels` they keep their short names.
"""

from paperbuild.assembly import assemble, assemble_per_candidate
from paperbuild.blueprint import check_blueprint, resolved_weights
from paperbuild.checker import Violation, check_form, check_forms
from paperbuild.errors import Infeasible, InvalidInput, PaperbuildError, SolverError
from paperbuild.explain import explain_infeasible
from paperbuild.model import (
    ITEM_TYPES,
    AppraisalPoint,
    AssemblyRequest,
    AssemblyResult,
    Blueprint,
    ConstraintSlack,
    Explanation,
    ExplanationRow,
    Form,
    FormReport,
    ItemPool,
    Layout,
    PracticalSet,
    RowKind,
    RowUnit,
    Scope,
    ScopeReport,
    Section,
    Shortfall,
    ShortfallReason,
    SolveStats,
    Status,
)
from paperbuild.panels import (
    DRAW_ALGORITHM,
    MIN_PANEL,
    Assignment,
    Busy,
    Certificate,
    DrawnSession,
    DrawRequest,
    DrawResult,
    DrawSession,
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
    assign_panels,
    check_assignment,
    draw_supervisors,
    greedy_panels,
)
from paperbuild.panels import Violation as PanelViolation
from paperbuild.panels import explain as explain_panels
from paperbuild.panels import load_stats as panel_load_stats
from paperbuild.panels import precheck as precheck_panels
from paperbuild.practical import pick_practical
from paperbuild.repair import RepairResult, repair

__all__ = [
    "DRAW_ALGORITHM",
    "ITEM_TYPES",
    "MIN_PANEL",
    "AppraisalPoint",
    "AssemblyRequest",
    "AssemblyResult",
    "Assignment",
    "Blueprint",
    "Busy",
    "Certificate",
    "ConstraintSlack",
    "DrawRequest",
    "DrawResult",
    "DrawSession",
    "DrawnSession",
    "Evaluator",
    "Explanation",
    "ExplanationRow",
    "Form",
    "FormReport",
    "Infeasible",
    "InvalidInput",
    "ItemPool",
    "Layout",
    "LoadStats",
    "Panel",
    "PanelRequest",
    "PanelResult",
    "PanelViolation",
    "PanelsInfeasible",
    "PaperbuildError",
    "PracticalRoom",
    "PracticalSet",
    "PreviousPanel",
    "Reason",
    "RepairResult",
    "RowKind",
    "RowUnit",
    "Scope",
    "ScopeReport",
    "Section",
    "Session",
    "Shortfall",
    "ShortfallReason",
    "SolveStats",
    "SolverError",
    "Status",
    "Supervisor",
    "SupervisorSlot",
    "Violation",
    "assemble",
    "assemble_per_candidate",
    "assign_panels",
    "check_assignment",
    "check_blueprint",
    "check_form",
    "check_forms",
    "draw_supervisors",
    "explain_infeasible",
    "explain_panels",
    "greedy_panels",
    "panel_load_stats",
    "pick_practical",
    "precheck_panels",
    "repair",
    "resolved_weights",
]
