"""What one put stores (:class:`Deposit`) and how its bytes are got ready for the upload (:func:`prepare`).

The key is the content's SHA-256, so the digest is needed before the upload starts:

* a path or a seekable stream is hashed in a first pass (cheap: ≈ 1.9 GB/s here), then uploaded and hashed
  again, so bytes that changed in between abort the upload before its last part; a path whose digest the
  caller already knows skips the first pass;
* a non-seekable stream with a claimed digest goes straight through (no spooling; its size may be unknown),
  checked against the claim before the upload completes;
* any other non-seekable stream is spooled to a temporary file while hashing (bounded memory).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, TypedDict

import msgspec

from evidence.digests import CHUNK, check_sha256, hash_stream
from evidence.errors import SourceChanged
from evidence.retention import Retention

__all__ = ["BytesOptions", "Deposit", "Prepared", "PutOptions", "Source", "deposit_of", "prepare"]

Source = str | os.PathLike[str] | IO[bytes]
KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_META_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_RESERVED_META = frozenset({"sha256", "kind", "exam-date", "filename"})


def check_kind(kind: str) -> None:
    if not KIND_RE.match(kind):
        raise ValueError(f"kind must match {KIND_RE.pattern}, got {kind!r}")


class Deposit(msgspec.Struct, frozen=True, kw_only=True):
    """What to store and how to retain it: everything about one put except the bytes themselves.

    :param kind: key prefix, one per kind of evidence (``recordings``, ``media``, ``keynode`` …).
    :param retention: how long to keep it (:class:`Retention`).
    :param content_type: / :param filename: / :param metadata: stored with the object; metadata keys are
        lowercase ``[a-z0-9-]``, values any text (stored percent-encoded, returned decoded).
    :param size: the size the caller declares; checked against the bytes delivered.
    :param sha256: the digest the caller claims. A path with a claimed digest skips the hashing pre-pass; a
        non-seekable stream with one is streamed straight through. Either way the upload hashes what it sends
        and aborts if it differs, so nothing mislabelled is locked. A seekable stream is hashed whatever is
        claimed, and stored under the digest of its bytes.
    :param before_commit: for a stream sent straight through: run once its last byte is read and its digest
        matched; may raise to abort the upload before anything is stored (e.g. a probe of the bytes).
    :param part_size: for a stream sent straight through: its multipart part size (a size below the S3 minimum
        of 5 MiB is raised to it); smaller parts hold less in memory.

    A bad kind, metadata key or digest raises ``ValueError`` here, before anything is read or stored.
    """

    kind: str
    retention: Retention = Retention()
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] | None = None
    filename: str | None = None
    size: int | None = None
    sha256: str | None = None
    before_commit: Callable[[], None] | None = None
    part_size: int | None = None

    def __post_init__(self) -> None:
        self.checked_metadata()
        check_kind(self.kind)
        if self.sha256 is not None:
            check_sha256(self.sha256)

    def checked_metadata(self) -> dict[str, str]:
        """The caller's metadata, checked: keys not reserved and in the allowed form, values text."""
        out: dict[str, str] = {}
        for k, v in (self.metadata or {}).items():
            if not _META_KEY_RE.match(k) or k in _RESERVED_META:
                raise ValueError(f"metadata key {k!r} must match {_META_KEY_RE.pattern} and not be reserved")
            if not isinstance(v, str):
                raise ValueError(f"metadata value of {k!r} must be str")
            out[k] = v
        return out


class BytesOptions(TypedDict, total=False):
    """The keywords of ``put_bytes``: :class:`Retention`'s fields and :class:`Deposit`'s labels, flat."""

    exam_date: date | None
    retain_until: datetime | None
    legal_hold: bool
    content_type: str
    metadata: Mapping[str, str] | None
    filename: str | None


class PutOptions(BytesOptions, total=False):
    """The keywords of ``put``: those of ``put_bytes`` and what :class:`Deposit` says about the source."""

    size: int | None
    sha256: str | None
    before_commit: Callable[[], None] | None
    part_size: int | None


_RETENTION_KEYS = ("exam_date", "retain_until", "legal_hold")


def deposit_of(kind: str, options: PutOptions) -> Deposit:
    """The :class:`Deposit` that ``put``'s keywords describe (defaults are the structs' own)."""
    rest: dict[str, Any] = dict(options)
    how = {k: rest.pop(k) for k in _RETENTION_KEYS if k in rest}
    return Deposit(kind=kind, retention=Retention(**how), **rest)


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


@dataclass(frozen=True)
class Prepared:
    """The bytes of a put, ready to upload: ``stream`` positioned at their start, their ``size`` (None: a stream
    of unknown size sent straight through) and SHA-256. ``before_commit`` and ``part_size`` are set only for a
    stream sent straight through, the one case they apply to."""

    stream: IO[bytes]
    size: int | None
    digest: str
    filename: str | None
    before_commit: Callable[[], None] | None = None
    part_size: int | None = None

    def object_metadata(self, deposit: Deposit) -> dict[str, str]:
        """The object's ``x-amz-meta-*`` headers: the caller's metadata plus digest, kind, exam date, filename."""
        meta = {k: _quote(v) for k, v in deposit.checked_metadata().items()}
        meta["sha256"] = self.digest
        meta["kind"] = deposit.kind
        if deposit.retention.exam_date is not None:
            meta["exam-date"] = deposit.retention.exam_date.isoformat()
        if self.filename:
            meta["filename"] = _quote(self.filename)
        return meta


def _seekable(stream: IO[bytes]) -> bool:
    with contextlib.suppress(Exception):
        return bool(stream.seekable())
    return False


@contextlib.contextmanager
def prepare(source: Source, deposit: Deposit, spool_dir: Path | None) -> Iterator[Prepared]:
    """``source`` (a path or a binary stream) as :class:`Prepared` bytes, by the cheapest of the ways in the module
    docstring; a declared size that is not the source's raises :class:`SourceChanged` before any upload."""
    size = deposit.size
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        with path.open("rb") as f:
            actual_size = os.fstat(f.fileno()).st_size
            if size is not None and size != actual_size:
                raise SourceChanged(f"{path}: size {actual_size} != declared {size}")
            digest = deposit.sha256 or hash_stream(f, actual_size)
            f.seek(0)
            yield Prepared(f, actual_size, digest, deposit.filename or path.name)
        return
    stream = source
    if _seekable(stream):
        start = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(start)
        actual_size = end - start
        if size is not None and size != actual_size:
            raise SourceChanged(f"stream holds {actual_size} bytes, declared {size}")
        digest = hash_stream(stream, actual_size)
        stream.seek(start)
        yield Prepared(stream, actual_size, digest, deposit.filename)
        return
    if deposit.sha256 is not None:  # the key is known up front: stream straight through, verified at the end
        yield Prepared(stream, size, deposit.sha256, deposit.filename, deposit.before_commit, deposit.part_size)
        return
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        h = hashlib.sha256()
        total = 0
        while chunk := stream.read(CHUNK):
            h.update(chunk)
            spool.write(chunk)
            total += len(chunk)
        if size is not None and size != total:
            raise SourceChanged(f"stream delivered {total} bytes, declared {size}")
        spool.seek(0)
        yield Prepared(spool, total, h.hexdigest(), deposit.filename)
