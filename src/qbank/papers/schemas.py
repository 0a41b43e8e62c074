from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from qbank.lib.problems import Problem
from qbank.reviews.schemas import RecordOut

Mode = Literal["parallel", "per_candidate"]
CandidateNumber = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,40}$", examples=["2026120301001"])]
Score100 = Annotated[float, msgspec.Meta(ge=0, le=100, examples=[78.5])]


class SiteKeyIn(msgspec.Struct, kw_only=True):
    public_key: Annotated[str, msgspec.Meta(
        min_length=40, max_length=48, description="the site's raw X25519 public key (32 bytes), base64",
        examples=["Cz3Yq0y6Ff2p0WbM3Vx9Jm8Qp3s2WcQm1rPp8oTQbVQ="])]


class SiteKeyOut(msgspec.Struct, kw_only=True):
    site: str
    public_key: str
    key_id: str


class SigningKeyIn(msgspec.Struct, kw_only=True):
    signing_key: Annotated[str, msgspec.Meta(
        min_length=40, max_length=48, description="the site's raw Ed25519 public key (32 bytes), base64, as "
        "`qbank site keygen` prints it; the centre verifies the exam station's response bundles with it",
        examples=["r1Jm4mQ0W8jvUjzKZ6b6YxqkB8m3xv9uJpVbq1xw2yA="])]


class SigningKeyOut(msgspec.Struct, kw_only=True):
    site: str
    signing_key: str
    key_id: str


class CentreKeyOut(msgspec.Struct, kw_only=True):
    algorithm: str
    public_key: str  # raw Ed25519 public key, base64
    key_id: str


class AssemblyIn(msgspec.Struct, kw_only=True):
    layout_id: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1, examples=[1])]
    mode: Mode = "parallel"
    forms: Annotated[int, msgspec.Meta(ge=1, le=5000, description=(
        "parallel: the number of parallel forms (1–50, default 2); per_candidate: one form per candidate, so "
        "leave it out (a number other than the session's candidates is refused)"))] | None = None
    max_shared: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    max_item_use: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    time_limit_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 30.0


class ContinueIn(msgspec.Struct, kw_only=True):
    """Continue a partial paper: the same request and seed, this much time for the forms still missing."""

    time_limit_s: Annotated[float, msgspec.Meta(ge=1, le=3600, examples=[120.0])] = 60.0


RowUnit = Literal["score_points", "items", "item_pairs", "facility", "forms", ""]


ROWS_DOC = (
    "The engine's explanation rows: sets of blueprint, layout or request rules that cannot hold together, each row "
    "with what it needs (`demand`) against what the bank can give (`supply`) in `unit`, and its reason in Chinese "
    "(`message_zh`) and English (`message_en`). One unit for points: score points (`score_points`, 分, the "
    "points a paper gives out of 100; a half-point item gives 0.5); appraisal points are called 鉴定点 / "
    "\"appraisal points\", never just \"points\". Rows with the same `group` cannot hold together; groups about "
    "one form come first, then those across forms (item use, shared items); `scope_children` states a scope's "
    "lower bound against what its sub-scopes can give at most.")


class ExplanationRowOut(msgspec.Struct, kw_only=True):
    """One row of a set of blueprint, layout or request rules that cannot hold together, with what it needs
    (``demand``) against what the bank can give (``supply``), both in ``unit``.

    Units: ``score_points`` — 分, the points a paper gives (out of 100; a half-point item gives 0.5);
    ``items``; ``item_pairs`` (items shared, summed over pairs of forms); ``facility``; ``forms``.
    Appraisal points are called 鉴定点 / "appraisal points" in the messages, never just "points".
    ``group``: rows with the same group cannot hold together; groups about one form come before those across
    forms (item use, shared items). ``kind``: ``section``, ``scope``, ``scope_children`` (a scope's lower bound
    against what its sub-scopes can give at most), ``facility``, ``point_cap``, ``enemy``, ``stimulus``,
    ``include``, ``item_use``, ``max_shared``, or the service's ``blueprint``, ``input``, ``time``."""

    group: int
    kind: str
    key: str
    message_en: str
    message_zh: str
    message: str  # message_en, for callers that read one message
    demand: float | None = None
    supply: float | None = None
    unit: Annotated[RowUnit, msgspec.Meta(description=(
        "of demand and supply: score_points (分, out of 100), items, item_pairs (items shared, summed over pairs "
        "of forms), facility, forms"))] = ""


class ShortfallOut(msgspec.Struct, kw_only=True):
    """Why a run ended before every form was made: ``reason`` ``time_limit``, ``infeasible`` (the next form
    cannot be made beside those made) or ``cancelled``; ``missing``: the indexes of the forms not made."""

    reason: str
    requested: int
    made: int
    missing: list[int]
    message_en: str
    message_zh: str


PaperStatus = Literal["assembled", "partial", "failed", "discarded"]
PAPER_STATUS_DOC = (
    "`assembled`: every form made — the only status sealing, release, responses and scoring accept; "
    "`partial`: the run ended short (`shortfall` says what is missing and why; the forms made are kept): continue "
    "it (`POST …/papers/{paper_id}/continue`) or discard it; `failed`: no form could be made (`explanation`); "
    "`discarded`: set aside by an admin.")


class FormItemOut(msgspec.Struct, kw_only=True):
    """A question of a form: the item and its version number (read it at
    ``GET /api/v1/items/{item_id}/versions/{version}``), the stored version id, section and score points."""

    item_id: int
    version: int
    version_id: int
    section: int
    points: float


class FormOut(msgspec.Struct, kw_only=True):
    index: int
    items: list[FormItemOut]
    version_ids: list[int]
    candidates: int
    total_points: float
    mean_facility: float | None
    counts: dict[str, int]


class AssignmentOut(msgspec.Struct, kw_only=True):
    candidate: str
    site: str
    room: str
    desk: int
    form: int


class PaperOut(msgspec.Struct, kw_only=True):
    id: int
    session_id: int
    layout_id: int
    blueprint_id: int | None
    mode: Mode
    status: Annotated[PaperStatus, msgspec.Meta(description=PAPER_STATUS_DOC)]
    request: dict[str, Any]
    report: dict[str, Any]
    forms: list[FormOut]
    assignments: list[AssignmentOut]
    shortfall: ShortfallOut | None = None
    explanation: Annotated[list[ExplanationRowOut], msgspec.Meta(description=ROWS_DOC)] = []
    detail: str = ""
    sealed_at: datetime | None
    created_by: str
    created_at: datetime


class SealedSiteOut(msgspec.Struct, kw_only=True):
    site: str
    package_id: str
    sha256: str
    size: int
    candidates: int
    key: str
    retain_until: datetime | None


class SealOut(msgspec.Struct, kw_only=True):
    session_id: int
    paper_id: int
    sealed_at: datetime
    packages: list[SealedSiteOut]
    release_opens_at: str  # local time
    release_closes_at: str


class ReleaseOut(msgspec.Struct, kw_only=True):
    session_id: int
    site: str
    package_id: str
    package_sha256: str
    centre_share: str  # base64, 32 bytes
    closes_at: str


class CandidateAnswers(msgspec.Struct, kw_only=True):
    candidate: CandidateNumber
    answers: Annotated[dict[str, Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=7)]], msgspec.Meta(
        max_length=8)]], msgspec.Meta(
        description="item version id → the places chosen as shown to the candidate (0 = first option shown)",
        examples=[{"101": [0], "102": [1, 3]}])]


class ResponsesIn(msgspec.Struct, kw_only=True):
    responses: Annotated[list[CandidateAnswers], msgspec.Meta(min_length=1, max_length=5000)]


class ScoredOut(msgspec.Struct, kw_only=True):
    candidate: str
    form: int
    answered: int
    score: float


class ResponsesOut(msgspec.Struct, kw_only=True):
    session_id: int
    accepted: int
    scores: list[ScoredOut]


class EvaluatorScore(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["王考评员"])]
    score: Score100


class PracticalIn(msgspec.Struct, kw_only=True):
    candidate: CandidateNumber
    evaluators: Annotated[list[EvaluatorScore], msgspec.Meta(min_length=3, max_length=15)]
    leader: Annotated[str, msgspec.Meta(min_length=1, max_length=120, description="the panel leader (one of them)",
                                        examples=["王考评员"])]
    final_score: Score100


class PracticalScoresIn(msgspec.Struct, kw_only=True):
    scores: Annotated[list[PracticalIn], msgspec.Meta(min_length=1, max_length=5000)]


class PracticalScoresOut(msgspec.Struct, kw_only=True):
    session_id: int
    accepted: int


class ResultOut(msgspec.Struct, kw_only=True):
    candidate: str
    name: str
    site: str
    theory: float | None
    practical: float | None
    passes: bool | None  # None: a score is missing or the results are void
    void: bool


class ResultsOut(msgspec.Struct, kw_only=True):
    session_id: int
    void: bool
    void_reason: str | None
    results: list[ResultOut]


class ScoreSheetOut(msgspec.Struct, kw_only=True):
    session_id: int
    record: RecordOut
    already_stored: bool
    results: list[ResultOut]


class LeakedItemIn(msgspec.Struct, kw_only=True):
    stem: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000, examples=["电流的单位是（ ）。"])]
    options: Annotated[list[Annotated[str, msgspec.Meta(max_length=5000)]], msgspec.Meta(
        max_length=8, description="the options in the order seen (may be empty)",
        examples=[["欧姆", "安培", "瓦特", "伏特"]])] = []


class LeakIn(msgspec.Struct, kw_only=True):
    source: Annotated[str, msgspec.Meta(max_length=2000, examples=["网络论坛截图"])] = ""
    items: Annotated[list[LeakedItemIn], msgspec.Meta(min_length=1, max_length=500)]


class ResolvedItem(msgspec.Struct, kw_only=True):
    index: int
    version_id: int | None
    item_id: int | None
    option_order: list[int]
    reason: str = ""


class LeakMatchOut(msgspec.Struct, kw_only=True):
    rank: int
    session_id: int
    candidate: str
    site: str
    form: int
    score: float
    items_present: int
    option_orders_matching: int
    evidence: list[str]


class LeakOut(msgspec.Struct, kw_only=True):
    id: int
    source: str
    status: Literal["reported", "confirmed"]
    resolved: list[ResolvedItem]
    matches: list[LeakMatchOut]
    reported_by: str
    reported_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    retired_items: list[int] = []
    voided_sessions: list[int] = []


# ------------------------------------------------------------------------------------- exam station response bundle
BUNDLE_FORMAT = "qbank-response-bundle/1"
BundleId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$", examples=["5f0c3b9e0d7a4e21b8a4c1f2e3d4c5b6"])]


class AnswerChange(msgspec.Struct, kw_only=True):
    """One change of an answer at the station: when (station clock), which item version, the places now chosen."""

    at: datetime
    item: int
    places: list[Annotated[int, msgspec.Meta(ge=0, le=7)]]


class BundleCandidate(msgspec.Struct, kw_only=True):
    number: CandidateNumber
    form: Annotated[int, msgspec.Meta(ge=0)]
    desk: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    status: Literal["submitted", "absent"]
    how: Annotated[str, msgspec.Meta(max_length=40, examples=["candidate", "time_out", "proctor", "marked"])] = ""
    submitted_at: datetime | None = None
    extra_seconds: Annotated[int, msgspec.Meta(ge=0)] = 0
    answers: dict[str, list[Annotated[int, msgspec.Meta(ge=0, le=7)]]] = {}
    log: list[AnswerChange] = []


class BundleIncident(msgspec.Struct, kw_only=True):
    at: datetime
    category: Annotated[str, msgspec.Meta(max_length=8, examples=["29.2"])]
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    by: Annotated[str, msgspec.Meta(max_length=120)] = ""


class ResponseBundleDoc(msgspec.Struct, kw_only=True):
    """What an exam station signs and sends when a room ends (canonical JSON, Ed25519 over all but ``signature``).

    ``log`` is the room's hash-chained station log ({seq, at, actor, action, detail, prev, hash}, oldest first)."""

    format: str
    bundle_id: BundleId
    session: int
    site: str
    package_id: str
    room: str
    started_at: datetime
    ended_at: datetime
    duration_minutes: int
    created_at: datetime
    candidates: list[BundleCandidate]
    incidents: list[BundleIncident] = []
    log: list[dict[str, Any]] = []
    signer_key_id: str = ""
    signature: str = ""


class BundleOut(msgspec.Struct, kw_only=True):
    bundle_id: str
    session_id: int
    site: str
    room: str
    sha256: str
    accepted: int
    absent: list[str]
    scores: list[ScoredOut]
    incidents_added: int
    incidents_note: str
    record_id: int
    record_key: str
    received_at: datetime
    already_received: bool = False


class AssemblyProblem(Problem, kw_only=True):
    """Why the session has no complete paper to use: the paper's status, the engine's explanation rows (what
    cannot hold together, in Chinese and English, in score points) and, for a partial paper, what is missing."""

    paper_id: int
    paper_status: PaperStatus
    job_id: str | None = None
    forms_made: int = 0
    explanation: Annotated[list[ExplanationRowOut], msgspec.Meta(description=ROWS_DOC)] = []
    shortfall: ShortfallOut | None = None
