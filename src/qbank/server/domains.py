"""Every domain's routes, job kinds and dependency providers: what the application and the workers are made of."""

from __future__ import annotations

from typing import Any

from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from qbank.audit.controllers import AuditController
from qbank.audit.jobs import AUDIT_VERIFY
from qbank.auth.controllers import TokenController
from qbank.banks.controllers import BankController
from qbank.blueprints.controllers import BlueprintController, LayoutController, OccupationController
from qbank.imports.controllers import ImportController
from qbank.imports.jobs import ITEM_IMPORT
from qbank.items.controllers import ItemController, MediaController
from qbank.jobs.controllers import JobController
from qbank.jobs.kinds import JobKind, JobKinds
from qbank.jobs.lease import StartupCheck
from qbank.panels.controllers import (
    ConflictController,
    DrawController,
    EvaluatorController,
    PanelController,
    SupervisorController,
)
from qbank.panels.jobs import PANEL_ASSIGNMENT
from qbank.papers.controllers import PaperController
from qbank.papers.jobs import PAPER_ASSEMBLY, PAPER_CONTINUE
from qbank.recordings.controllers import RecordingController
from qbank.recordings.direct import remove_unchecked_versions
from qbank.recordings.jobs import RECORDING_ANALYSIS, requeue_lost_analyses
from qbank.review_page.controllers import review_route_handlers
from qbank.reviews.controllers import ReviewController, delete_recording
from qbank.server.dependencies import SERVICE_DEPENDENCIES
from qbank.sessions.controllers import SessionController, SiteController
from qbank.sessions.dependencies import SESSION_DEPENDENCIES
from qbank.settings import Settings

JOB_KINDS: tuple[JobKind[Any], ...] = (AUDIT_VERIFY, PAPER_ASSEMBLY, PAPER_CONTINUE, PANEL_ASSIGNMENT,
                                       RECORDING_ANALYSIS, ITEM_IMPORT)
# what the service and each worker reconcile at start, beyond jobs whose runner is gone (qbank.jobs.lease)
STARTUP_CHECKS: tuple[StartupCheck, ...] = (requeue_lost_analyses, remove_unchecked_versions)


def job_kinds() -> JobKinds:
    return JobKinds(JOB_KINDS)


def route_handlers(settings: Settings) -> list[ControllerRouterHandler]:
    """The API's controllers, then the review page. DELETE /api/v1/recordings/{id} comes after RecordingController,
    which owns the path's other methods."""
    return [TokenController, AuditController, OccupationController, BlueprintController, LayoutController,
            ItemController, MediaController, SiteController, SessionController, JobController, RecordingController,
            BankController, ImportController, ReviewController, delete_recording, *review_route_handlers(settings),
            PaperController, EvaluatorController, SupervisorController, ConflictController, PanelController,
            DrawController]


def dependencies() -> dict[str, Provide]:
    return {**SERVICE_DEPENDENCIES, **SESSION_DEPENDENCIES}
