"""Paper assembly engine: plain data in, papers out. Never imports qbank, litestar or sqlalchemy.

Entry points (all blocking, pure; call them from a worker thread):

* :func:`assemble` — parallel forms (papers A, B, C…) for a batch.
* :func:`assemble_per_candidate` — one form per candidate, any two sharing at most ``max_shared`` items.
* :func:`explain_infeasible` — the smallest sets of blueprint/layout rows that cannot hold together.
* :func:`repair` — replace items that must leave a form, changing as few items as possible.
* :func:`pick_practical` — pick practical operation papers for a batch, avoiding recent ones.
* :func:`check_forms` / :func:`check_form` — the independent checker.
* :func:`check_blueprint` / :func:`resolved_weights` — a blueprint's rules and its scopes' weights as resolved
  (weight ``None``: shares the parent's rest by appraisal points; ``0``: not examined; see
  :mod:`paperbuild.blueprint`).

Only a complete paper is a paper: :attr:`AssemblyResult.complete` is true and ``forms`` holds every form only when
every requested form was made; a run that ends short keeps its forms in ``partial_forms`` with a
:class:`Shortfall`, and can be continued by passing them back as ``made``.

Inputs: :class:`ItemPool` (numpy arrays; :meth:`ItemPool.from_records` builds one from dicts or Structs),
:class:`Blueprint` (:class:`Scope`, :class:`AppraisalPoint`), :class:`Layout` (:class:`Section`),
:class:`AssemblyRequest`. Bad input raises :class:`InvalidInput` (``field``, ``reason``).
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
from paperbuild.practical import pick_practical
from paperbuild.repair import RepairResult, repair

__all__ = [
    "ITEM_TYPES",
    "AppraisalPoint",
    "AssemblyRequest",
    "AssemblyResult",
    "Blueprint",
    "ConstraintSlack",
    "Explanation",
    "ExplanationRow",
    "Form",
    "FormReport",
    "Infeasible",
    "InvalidInput",
    "ItemPool",
    "Layout",
    "PaperbuildError",
    "PracticalSet",
    "RepairResult",
    "RowKind",
    "RowUnit",
    "Scope",
    "ScopeReport",
    "Section",
    "Shortfall",
    "ShortfallReason",
    "SolveStats",
    "SolverError",
    "Status",
    "Violation",
    "assemble",
    "assemble_per_candidate",
    "check_blueprint",
    "check_form",
    "check_forms",
    "explain_infeasible",
    "pick_practical",
    "repair",
    "resolved_weights",
]
