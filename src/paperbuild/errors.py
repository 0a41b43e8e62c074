"""Errors raised by the assembly engine.

Every bad input raises :class:`InvalidInput` (a :class:`PaperbuildError`) naming the offending field and the
reason, before anything is built.
"""

from __future__ import annotations


class PaperbuildError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidInput(PaperbuildError, ValueError):
    """An input is malformed or inconsistent.

    ``field`` is a dotted path such as ``"layout.sections[1].count"`` or ``"pool.facility[17]"``;
    ``reason`` says what is wrong in plain words.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class SolverError(PaperbuildError, RuntimeError):
    """The solver failed in an unexpected way (model invalid, internal error)."""


class Infeasible(PaperbuildError):
    """The request cannot be met (used where no result object is returned, e.g. practical set picking)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
