"""Typed dependencies every handler may ask for by name: settings, database, evidence store and archive, job runner,
the calling actor. Domains add their own (e.g. ``exam_session``) in their ``dependencies.py``."""

from __future__ import annotations

from typing import cast

from litestar.datastructures import State
from litestar.di import Provide

from evidence import RetentionArchive
from qbank.db import Database
from qbank.jobs.services import JobRunner
from qbank.lib.actors import provide_actor
from qbank.settings import Settings
from qbank.storage import EvidenceStore


def provide_settings(state: State) -> Settings:
    return cast(Settings, state.settings)


def provide_database(state: State) -> Database:
    return cast(Database, state.database)


def provide_store(state: State) -> EvidenceStore:
    return cast(EvidenceStore, state.store)


def provide_archive(state: State) -> RetentionArchive:
    """The archive; while the store is down (its local server restarting) the request answers 503 at once."""
    return cast(EvidenceStore, state.store).available()


def provide_job_runner(state: State) -> JobRunner:
    return cast(JobRunner, state.job_runner)


SERVICE_DEPENDENCIES: dict[str, Provide] = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "database": Provide(provide_database, sync_to_thread=False),
    "store": Provide(provide_store, sync_to_thread=False),
    "archive": Provide(provide_archive, sync_to_thread=False),
    "job_runner": Provide(provide_job_runner, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
}
