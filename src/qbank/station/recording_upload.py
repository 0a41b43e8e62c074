"""A test site sends a recording straight to the centre's S3 server (`qbank site upload`): the centre hands out
presigned part URLs, the parts go up in parallel (each retried; expired URLs renewed), and the centre completes
and checks the upload. An upload broken off is resumed: the parts storage already holds are skipped."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from qbank.station.package import Centre, CentreError

BLOCK = 8 << 20
PARALLEL = 4  # parts in flight (each held in memory while it goes up)
ATTEMPTS = 5  # tries per part


def file_sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


class PartFailed(Exception):
    pass


async def send_recording(centre: Centre, session_id: int, path: Path, *, room: str, view: str, start: datetime,
                         sha256: str, state: Path | None = None, upload_id: str | None = None,
                         progress: Callable[[int, int, int], None] | None = None) -> dict[str, Any]:
    """Upload ``path`` (its SHA-256 already computed) and return the recording the centre stored.

    ``state``: a file remembering the upload id, so that a broken-off upload is resumed the next time (removed
    once the recording is stored); ``upload_id`` resumes one explicitly. ``progress(done, total, skipped)`` in
    bytes, ``skipped`` being what storage already held."""
    size = path.stat().st_size
    base = f"/api/v1/sessions/{session_id}/recordings/uploads"
    upload = None
    remembered = upload_id or _remembered(state, session_id, sha256, size)
    if remembered:
        try:
            _, upload = await centre.request("GET", f"{base}/{remembered}")
        except CentreError as exc:
            if exc.status not in (404, 409) or upload_id:  # an upload gone (or refused, by an older centre)
                raise
        if upload is not None and upload["status"] == "refused":
            if upload_id:
                raise CentreError(409, f"upload {upload_id} was refused ({upload.get('refusal')}): start a new one "
                                       "(leave out --upload-id)")
            upload = None  # the last attempt was refused: its parts are gone, start again
    if upload is None:
        _, upload = await centre.request("POST", base, json={
            "room": room, "view": view, "start": start.isoformat(), "size": size, "sha256": sha256})
        if state is not None:
            state.write_text(json.dumps({"id": upload["id"], "session": session_id, "sha256": sha256, "size": size}))
    if upload["status"] == "open":
        await _send_parts(centre, f"{base}/{upload['id']}", path, upload, progress)
    _, recording = await centre.request("POST", f"{base}/{upload['id']}/complete")
    if state is not None:
        state.unlink(missing_ok=True)
    return recording  # type: ignore[no-any-return]


def _remembered(state: Path | None, session_id: int, sha256: str, size: int) -> str | None:
    try:
        saved = json.loads(state.read_text()) if state is not None else None
    except (OSError, ValueError):
        return None
    if isinstance(saved, dict) and saved.get("session") == session_id and saved.get("sha256") == sha256 and \
            saved.get("size") == size:
        return str(saved.get("id"))
    return None


async def _send_parts(centre: Centre, upload_path: str, path: Path, upload: dict[str, Any],
                      progress: Callable[[int, int, int], None] | None) -> None:
    part_size, size = int(upload["part_size"]), int(upload["size"])
    urls = {p["number"]: p["url"] for p in upload["parts"]}
    skipped = sum(min(part_size, size - (n - 1) * part_size) for n in upload["received"])
    done = skipped
    if progress:
        progress(done, size, skipped)
    renewing: asyncio.Lock = asyncio.Lock()
    queue = sorted(urls)
    fd = os.open(path, os.O_RDONLY)

    async def renew(n: int, stale: str) -> None:
        """Fresh URLs for the parts storage lacks (once for all parts whose URLs expired together)."""
        async with renewing:
            if urls[n] != stale:  # another part renewed them meanwhile
                return
            _, fresh = await centre.request("GET", upload_path)
            urls.update({p["number"]: p["url"] for p in fresh["parts"]})

    def put(s3: httpx.Client, n: int, url: str, length: int) -> int:
        """Read part ``n`` and PUT it (a blocking client in a thread: the bytes never pass the event loop)."""
        data = os.pread(fd, length, (n - 1) * part_size)
        return s3.put(url, content=data).status_code

    async def send(s3: httpx.Client, n: int) -> None:
        nonlocal done
        length = min(part_size, size - (n - 1) * part_size)
        for attempt in range(1, ATTEMPTS + 1):
            url = urls[n]
            try:
                status = await asyncio.to_thread(put, s3, n, url, length)
                if status == 200:
                    break
                if status == 403:  # the URL expired (or was not accepted): ask for fresh ones
                    await renew(n, url)
                reason = f"HTTP {status}"
            except httpx.HTTPError as exc:
                reason = f"{exc.__class__.__name__} {exc}"
            if attempt == ATTEMPTS:
                raise PartFailed(f"part {n} failed {ATTEMPTS} times (last: {reason}); run the same command "
                                 "again to resume")
            await asyncio.sleep(min(2 ** attempt * 0.25, 8))
        done += length
        if progress:
            progress(done, size, skipped)

    async def worker(s3: httpx.Client) -> None:
        while queue:
            await send(s3, queue.pop(0))

    try:
        limits = httpx.Limits(max_connections=PARALLEL)
        with httpx.Client(timeout=httpx.Timeout(120, connect=10), limits=limits) as s3:
            await asyncio.gather(*(worker(s3) for _ in range(PARALLEL)))
    finally:
        os.close(fd)
