"""SHA-256 on the way in and on the way out: nothing mislabelled is locked, nothing altered is handed back.

Uploads read through :class:`HashingReader`, which checks the digest before the SDK gets the last bytes, so a
changed source aborts the upload before it completes. Reads go through :class:`VerifyingReader`, which raises
:class:`DigestMismatch` at the end of an object whose bytes differ from the digest recorded for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from collections.abc import Callable
from typing import IO, Any, BinaryIO

from evidence.errors import DigestMismatch, SourceChanged

__all__ = ["CHUNK", "HashingReader", "VerifyingReader", "check_sha256", "hash_stream", "is_sha256"]

CHUNK = 1 << 20
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def is_sha256(text: str) -> bool:
    """True for 64 lowercase hex digits."""
    return _SHA_RE.fullmatch(text) is not None


def check_sha256(sha256: str) -> None:
    if not is_sha256(sha256):
        raise ValueError("sha256 must be 64 lowercase hex digits")


def hash_stream(f: IO[bytes] | BinaryIO, size: int) -> str:
    """SHA-256 of the next ``size`` bytes of ``f``; :class:`SourceChanged` if it ends before."""
    h = hashlib.sha256()
    left = size
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    readinto = getattr(f, "readinto", None)
    while left > 0:
        if readinto is not None:
            n = readinto(view[: min(CHUNK, left)])
            if not n:
                break
            h.update(view[:n])
        else:
            data = f.read(min(CHUNK, left))
            if not data:
                break
            n = len(data)
            h.update(data)
        left -= n
    if left:
        raise SourceChanged(f"source ended {left} bytes early")
    return h.hexdigest()


class HashingReader:
    """Reads ``size`` bytes of ``raw`` (all of it when ``size`` is None), hashing them; at the end verifies them
    against ``expected`` and runs ``before_commit`` *before* handing the last bytes to the SDK, so a changed source
    or a refusal aborts the upload before it completes."""

    def __init__(self, raw: IO[bytes], size: int | None, expected: str | None,
                 before_commit: Callable[[], None] | None = None) -> None:
        self._raw = raw
        self._left = size
        self._expected = expected
        self._before_commit = before_commit
        self._hash = hashlib.sha256()
        self._done = False

    def _finish(self) -> None:
        self._done = True
        if self._expected is not None:
            actual = self._hash.hexdigest()
            if actual != self._expected:
                raise SourceChanged(f"source changed during upload: SHA-256 {actual} != {self._expected}")
        if self._before_commit is not None:
            self._before_commit()

    def read(self, n: int = -1) -> bytes:
        if self._done or (self._left is not None and self._left <= 0):
            return b""
        want = n if n is not None and n >= 0 else -1
        if self._left is not None:
            want = self._left if want < 0 else min(want, self._left)
        data = self._raw.read(want)
        if not data:
            if self._left is not None:
                raise SourceChanged(f"source ended {self._left} bytes early")
            self._finish()
            return b""
        self._hash.update(data)
        if self._left is not None:
            self._left -= len(data)
            if self._left == 0:
                self._finish()
        return data

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class VerifyingReader(io.RawIOBase):
    """A readable stream of an archived object that hashes what it returns and raises :class:`DigestMismatch`
    when it reaches the end with another SHA-256 than recorded. Use as a context manager."""

    def __init__(self, key: str, response: Any, expected: str, size: int) -> None:
        super().__init__()
        self.key = key
        self._resp = response
        self._expected = expected
        self._size = size
        self._hash = hashlib.sha256()
        self._read = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._resp.read(len(view)) if len(view) else b""  # a failing server: StoreUnavailable
        n = len(data)
        if n:
            view[:n] = data
            self._hash.update(data)
            self._read += n
        elif len(view):
            self._check()
        return n

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._hash.hexdigest()
        if actual != self._expected or self._read != self._size:
            raise DigestMismatch(self.key, self._expected, actual)

    @property
    def verified(self) -> bool:
        """True once the whole object was read and its digest matched."""
        return self._checked

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._resp.close()
                self._resp.release_conn()
        super().close()
