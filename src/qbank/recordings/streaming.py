"""A recording streamed to the archive while it arrives: one SHA-256 pass, the upload completed only when the
bytes match the claim and the probe accepts the spooled copy."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any, cast

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

import evidence
import videoaudit
from evidence import ArchivedObject, RetentionArchive
from qbank.lib.problems import bad_request
from qbank.lib.uploads import Spooled, spool_upload
from qbank.settings import Settings

BLOCK = 1 << 20  # what the receiving side hands the upload thread at a time
STREAMED_PART = 8 << 20  # smaller parts for uploads that stream through: less held in memory

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class _BodyReader(io.RawIOBase):
    """The request body as a blocking stream for the archive's upload thread."""

    def __init__(self, receive: MemoryObjectReceiveStream[bytes]) -> None:
        super().__init__()
        self._receive = receive
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            try:
                self._buf = anyio.from_thread.run(self._receive.receive)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return b""
        n = len(self._buf) if n is None or n < 0 else n
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


Probed = tuple[videoaudit.VideoInfo | None, str | None]  # the probe's facts, or why the file is kept as corrupt


async def stream_through(body: AsyncIterator[bytes], settings: Settings, archive: RetentionArchive, kind: str,
                         claimed_sha256: str, probe: Callable[[Path], Probed], put_args: dict[str, Any],
                         ) -> tuple[Spooled, ArchivedObject, videoaudit.VideoInfo | None, str | None]:
    """Receive the body and upload it to the archive at the same time (its key is the claimed SHA-256); the
    upload completes only once the bytes match the claim and ``probe`` (blocking) accepts the spooled copy."""
    send, receive = anyio.create_memory_object_stream[bytes](4)
    outcome: dict[str, Any] = {}

    def before_commit() -> None:  # in the upload thread, after the last byte matched the claimed digest
        outcome["probe"] = probe(outcome["spooled"].path)

    async def upload() -> None:
        try:
            outcome["stored"] = await anyio.to_thread.run_sync(lambda: archive.put(
                kind, cast(IO[bytes], _BodyReader(receive)), sha256=claimed_sha256, before_commit=before_commit,
                part_size=STREAMED_PART, **put_args))
        except Exception as exc:  # reported once the body is in, so the client always gets its answer
            outcome["error"] = exc
        finally:
            receive.close()

    pending = bytearray()

    async def forward(block: bytes) -> None:
        with contextlib.suppress(anyio.BrokenResourceError):  # the upload already ended: keep spooling
            await send.send(block)

    async def tee(chunk: bytes) -> None:
        # hand the upload thread blocks of 1 MiB, not the server's small chunks: one thread hop per block
        pending.extend(chunk)
        if len(pending) >= BLOCK:
            block = bytes(pending)
            pending.clear()
            await forward(block)

    async with anyio.create_task_group() as tg:
        tg.start_soon(upload)
        try:
            # one SHA-256 pass, the archive's: it checks the bytes against the claim before completing
            outcome["spooled"] = await spool_upload(body, settings.data_dir / "spool", settings.max_recording_bytes,
                                                    "recording (QBANK_MAX_RECORDING_BYTES)", tee=tee, hashing=False)
            if pending:
                await forward(bytes(pending))
        except Exception as exc:  # raised below, not from inside the task group (which would wrap it)
            outcome["body_error"] = exc
        finally:
            send.close()  # the end of the body (or a failure): the upload thread checks the digest and stops
    if "body_error" in outcome:
        raise outcome["body_error"]
    spooled: Spooled = outcome["spooled"]
    error = outcome.get("error")
    stored = outcome.get("stored")
    if error is None and stored is not None and stored.already_stored:
        # the archive had the claimed bytes and read nothing: check what was received against the claim here
        actual = await anyio.to_thread.run_sync(file_sha256, spooled.path)
        if actual != claimed_sha256:
            error = evidence.SourceChanged(f"SHA-256 {actual} != {claimed_sha256}")
    if error is not None:
        spooled.path.unlink(missing_ok=True)
        if isinstance(error, evidence.SourceChanged):
            raise bad_request("X-Content-SHA256", f"the body's bytes do not have the claimed SHA-256 "
                                                  f"{claimed_sha256}; nothing was stored")
        raise error
    spooled = dataclasses.replace(spooled, sha256=claimed_sha256)  # verified by the archive (or just above)
    probed: Probed | None = outcome.get("probe")
    if probed is None:  # the archive had these bytes already, so the upload did not probe them
        probed = await anyio.to_thread.run_sync(probe, spooled.path)
    return spooled, outcome["stored"], probed[0], probed[1]
