"""What a panel request says and what the panel solvers answer: plain msgspec Structs, no behaviour."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from paperbuild.errors import PaperbuildError

__all__ = [
    "MIN_PANEL",
    "Assignment",
    "Busy",
    "Certificate",
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
]

MIN_PANEL = 3


# ------------------------------------------------------------------------------------------------------ inputs
class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    occupation: Annotated[str, msgspec.Meta(examples=["6-18-01-01"])]
    level: Annotated[int, msgspec.Meta(ge=1, le=5, description="1 is the highest level")]
    valid_until: date


class Evaluator(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    certificates: list[Certificate]
    barred: bool = False
    conflicts: list[str] = []  # candidate ids


class Supervisor(msgspec.Struct, frozen=True, kw_only=True):
    """An internal quality supervisor; the same id as an evaluator means the same person."""

    id: str
    conflicts: list[str] = []


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    start: datetime  # local time: the exam day is ``start.date()``
    end: datetime
    candidates: list[str] = []  # every candidate of the session (for the supervisor's conflicts)
    needs_supervisor: bool = True


class PracticalRoom(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    session: str
    occupation: str
    level: Annotated[int, msgspec.Meta(ge=1, le=5)]
    institution: str
    candidates: list[str] = []
    panel_size: Annotated[int, msgspec.Meta(ge=MIN_PANEL, le=15)] = MIN_PANEL


class PreviousPanel(msgspec.Struct, frozen=True, kw_only=True):
    """The last panel of an occupation at an institution before this request (for the ⌈n/3⌉ rotation)."""

    occupation: str
    institution: str
    members: list[str]


class Busy(msgspec.Struct, frozen=True, kw_only=True):
    """A person already somewhere (a panel or a supervision outside this request) from ``start`` to ``end``."""

    person: str
    start: datetime
    end: datetime
    what: str = ""


class PanelRequest(msgspec.Struct, kw_only=True):
    sessions: list[Session]
    rooms: list[PracticalRoom]
    evaluators: list[Evaluator]
    supervisors: list[Supervisor] = []
    previous: list[PreviousPanel] = []
    busy: list[Busy] = []
    time_limit_s: float = 10.0
    seed: int = 0
    workers: int = 2
    deterministic: bool = False  # True: one worker bounded by deterministic time: same seed, same answer


# ----------------------------------------------------------------------------------------------------- outputs
class Panel(msgspec.Struct, kw_only=True):
    room: str
    members: list[str]
    leader: str


class SupervisorSlot(msgspec.Struct, kw_only=True):
    session: str
    supervisor: str


class Assignment(msgspec.Struct, kw_only=True):
    panels: list[Panel] = []
    supervisors: list[SupervisorSlot] = []


class LoadStats(msgspec.Struct, kw_only=True):
    """Rooms per evaluator over the evaluators who could sit on at least one panel (the pool)."""

    pool: int
    used: int
    max_load: int
    min_load: int
    mean: float
    stdev: float
    lower_bound: int  # no assignment can have a smaller max load (⌈seats / pool⌉)
    supervisor_max_load: int


class PanelResult(msgspec.Struct, kw_only=True):
    status: Literal["optimal", "feasible"]
    assignment: Assignment
    stats: LoadStats
    time_to_feasible_s: float
    time_to_best_s: float  # when the solver found the assignment it returns
    wall_time_s: float
    seed: int
    objective: float = 0.0  # weight·(largest evaluator load + largest supervisor load) + Σ load²
    bound: float = 0.0  # the solver's proven lower bound on the objective


class Reason(msgspec.Struct, kw_only=True):
    """One rule (or set of rules) that cannot hold, with the people counted."""

    rule: str
    message: str
    rooms: list[str] = []
    sessions: list[str] = []
    needed: int = 0
    available: int = 0


class Violation(msgspec.Struct, kw_only=True):
    rule: str
    message: str
    room: str | None = None
    session: str | None = None
    person: str | None = None
    rooms: list[str] = []  # every room involved (an overlap names two)


class PanelsInfeasible(PaperbuildError):
    def __init__(self, reasons: list[Reason]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(r.message for r in reasons))

