"""The composition root: the only place that names every domain.

- :mod:`qbank.server.domains` — every domain's routes, job kinds and dependency providers;
- :mod:`qbank.server.models` — every domain's tables (for Alembic and the schema check);
- :mod:`qbank.server.app` — the Litestar application built from them;
- :mod:`qbank.server.cli` — the ``qbank`` command with every domain's command group."""
