"""What the archive reports about one stored object (:class:`ArchivedObject`)."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["ArchivedObject"]


class ArchivedObject(msgspec.Struct, frozen=True, kw_only=True):
    """One stored object (one version of its key), as put returns it and stat/list report it."""

    key: str
    size: int
    sha256: str
    kind: str
    retain_until: datetime | None
    mode: str | None  # "COMPLIANCE" / "GOVERNANCE" / None (never locked: bytes a client sent, not yet checked)
    legal_hold: bool
    content_type: str
    version_id: str | None = None
    last_modified: datetime | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    already_stored: bool = False  # put: the same bytes were already in the archive

    @property
    def locked_once(self) -> bool:
        """Whether retention or a legal hold was ever set on this version: the archive only sets them on bytes
        whose digest it checked, so a version without either is not (yet) trusted as stored."""
        return self.mode is not None or self.legal_hold
