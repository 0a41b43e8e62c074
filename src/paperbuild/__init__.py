"""Paper assembly engine: plain data in, papers out. Never imports qbank, litestar or sqlalchemy.

Entry points (all blocking, pure; call them from a worker thread):

* :func:`assemble` — parallel forms (papers A, B, C…) for a batch.
* :func:`assemble_per_candidate` — one form per candidate, any two sharing at most ``max_shared`` items.
* :func:`explain_infeasible` — the smallest sets of blueprint/layout rows that cannot hold together.
* :func:`repair` — replace items that must leave a form, changing as few items as possible.
* :func:`pick_practical` — pick practical operation papers for a batch, avoiding recent ones.
* :func:`check_forms` / :func:`check_form` — the independent checker.

Inputs: :class:`ItemPool` (numpy arrays; :meth:`ItemPool.from_records` builds one from dicts or Structs),
:class:`Blueprint` (:class:`Scope`, :class:`AppraisalPoint`), :class:`Layout` (:class:`Section`),
:class:`AssemblyRequest`. Bad input raises :class:`InvalidInput` (``field``, ``reason``).
"""

from paperbuild.assembly import assemble, assemble_per_candidate
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
    Scope,
    ScopeReport,
    Section,
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
    "Scope",
    "ScopeReport",
    "Section",
    "SolveStats",
    "SolverError",
    "Status",
    "Violation",
    "assemble",
    "assemble_per_candidate",
    "check_form",
    "check_forms",
    "explain_infeasible",
    "pick_practical",
    "repair",
]
