"""Every ORM model, for Alembic and the schema check."""


def load_all() -> None:
    import qbank.audit.models
    import qbank.auth.models
    import qbank.blueprints.models
    import qbank.items.models
    import qbank.jobs.models
    import qbank.panels.models
    import qbank.papers.models
    import qbank.recordings.models
    import qbank.reviews.models
    import qbank.sessions.models  # noqa: F401
