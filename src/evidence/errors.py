"""Errors of the evidence archive. Each says what was refused and why; nothing is stored or removed when one is
raised."""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "ArchiveError",
    "DigestMismatch",
    "ObjectExists",
    "ObjectLocked",
    "ObjectNotFound",
    "RetentionTooShort",
    "SourceChanged",
    "StoreUnavailable",
]


class ArchiveError(Exception):
    """Base of the archive's errors."""


class RetentionTooShort(ArchiveError, ValueError):
    """A retention policy or retain-until date shorter than the legal minimum (5 years from the exam)."""

    def __init__(self, message: str, minimum_until: datetime | None = None) -> None:
        super().__init__(message)
        self.minimum_until = minimum_until


class ObjectLocked(ArchiveError):
    """Delete or shortened retention of an object under retention or legal hold.

    ``locked_until`` is the retain-until date (``None`` with a legal hold and no date), ``legal_hold``
    whether a legal hold is on (then the object is kept whatever the date).
    """

    def __init__(self, key: str, locked_until: datetime | None, legal_hold: bool = False, detail: str = "") -> None:
        until = locked_until.isoformat() if locked_until else "no date"
        hold = " and under legal hold (kept permanently)" if legal_hold else ""
        super().__init__(f"{key} is locked until {until}{hold}" + (f": {detail}" if detail else ""))
        self.key = key
        self.locked_until = locked_until
        self.legal_hold = legal_hold


class DigestMismatch(ArchiveError):
    """The bytes read (or uploaded) do not have the SHA-256 recorded for them."""

    def __init__(self, key: str, expected: str, actual: str) -> None:
        super().__init__(f"{key}: SHA-256 mismatch, expected {expected}, got {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class SourceChanged(ArchiveError):
    """The source changed (or delivered a different size) during the upload; the upload was aborted."""


class ObjectNotFound(ArchiveError):
    """No (current) object under that key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object {key!r} in the archive")
        self.key = key


class ObjectExists(ArchiveError):
    """Parts a client sent for a key where nothing was stored were not joined: something was stored under that key
    while they went up (:mod:`evidence.staged`)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key}: something was stored under this key while the parts went up; nothing was joined")
        self.key = key


class StoreUnavailable(ArchiveError):
    """The S3 server did not answer in time, refused the connection or failed on its side (HTTP 5xx): nothing
    was decided about the object, and the same call may succeed later. ``reason`` says what happened."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"the S3 server is unavailable ({operation}: {reason})")
        self.operation = operation
        self.reason = reason
