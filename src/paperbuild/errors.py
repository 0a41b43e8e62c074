"""Errors raised by the assembly engine.

Every bad input raises :class:`InvalidInput` (a :class:`PaperbuildError`) naming the offending field and the
reason, before anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence


class PaperbuildError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidInput(PaperbuildError, ValueError):
    """An input is malformed or inconsistent.

    ``field`` is a dotted path such as ``"layout.sections[1].count"`` or ``"pool.facility[17]"``;
    ``reason`` says what is wrong in plain words. Where an input has several problems found together (a
    blueprint's scopes), ``problems`` lists every one as ``(field, reason)``; ``field`` and ``reason`` are then
    the first field and all reasons joined. ``problems`` always holds at least ``(field, reason)``.
    """

    def __init__(self, field: str, reason: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        self.reason = reason
        self.problems: tuple[tuple[str, str], ...] = tuple(problems) or ((field, reason),)
        super().__init__(f"{field}: {reason}")

    @classmethod
    def every(cls, problems: Sequence[tuple[str, str]]) -> InvalidInput:
        """One error listing every ``(field, reason)`` of ``problems`` (at least one)."""
        if len(problems) == 1:
            return cls(*problems[0])
        reason = f"{len(problems)} problems: " + "; ".join(f"{f}: {r}" for f, r in problems)
        return cls(problems[0][0], reason, problems)


class SolverError(PaperbuildError, RuntimeError):
    """The solver failed in an unexpected way (model invalid, internal error)."""


class Infeasible(PaperbuildError):
    """The request cannot be met (used where no result object is returned, e.g. practical set picking)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
