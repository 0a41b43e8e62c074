"""Checking a long trail is long work: the same verification as a job with progress."""

from __future__ import annotations

from typing import Any

import msgspec

from qbank.audit.services import count_entries, verify
from qbank.jobs.services import JobContext, job_kind


@job_kind("audit_verify")
async def verify_trail(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    async with ctx.env.session_maker() as db:
        total = max(await count_entries(db), 1)

        async def progress(done: int) -> None:
            await ctx.progress(done / total, f"{done} of {total} entries checked")

        outcome = await verify(db, progress=progress)
    return msgspec.to_builtins(outcome)  # type: ignore[no-any-return]
