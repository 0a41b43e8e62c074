"""Request bodies of any size: spooled to disk and hashed as they arrive, so memory stays at one chunk."""

from __future__ import annotations

import errno
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from qbank.lib.problems import ProblemError, disk_full_problem

HEAD_BYTES = 16


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int
    head: bytes  # the first bytes, to tell the file's type


async def spool_upload(body: AsyncIterator[bytes], directory: Path, limit: int, what: str,
                       tee: Callable[[bytes], Awaitable[None]] | None = None, hashing: bool = True) -> Spooled:
    """Write ``body`` to a new file in ``directory``; 413 (and no file left) once it passes ``limit`` bytes.
    ``tee`` gets every chunk too (e.g. to upload it while it arrives); without ``hashing`` (when whoever gets the
    tee checks the digest) ``sha256`` is empty. A full disk: 507 naming the spool, and no file left."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"upload-{secrets.token_hex(8)}"
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        async with await anyio.open_file(path, "wb") as f:
            async for chunk in body:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise ProblemError(413, f"body: the {what} is larger than {limit} bytes")
                if len(head) < HEAD_BYTES:
                    head += chunk[:HEAD_BYTES]
                if hashing:
                    digest.update(chunk)
                await f.write(chunk)
                if tee is not None:
                    await tee(chunk)
    except OSError as exc:
        path.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_problem("spool") from exc
        raise
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path=path, sha256=digest.hexdigest() if hashing else "", size=size, head=head[:HEAD_BYTES])
