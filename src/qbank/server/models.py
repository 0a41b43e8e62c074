"""Every domain's tables, for Alembic and the schema check (imports only models, so migrations stay light)."""

from __future__ import annotations

from sqlalchemy import MetaData


def load_all() -> MetaData:
    """Import every domain's models; returns the metadata they fill."""
    import qbank.audit.models
    import qbank.auth.models
    import qbank.blueprints.models
    import qbank.imports.models
    import qbank.items.models
    import qbank.jobs.models
    import qbank.panels.models
    import qbank.papers.models
    import qbank.recordings.models
    import qbank.reviews.models
    import qbank.sessions.models  # noqa: F401
    from qbank.db import Base

    return Base.metadata
