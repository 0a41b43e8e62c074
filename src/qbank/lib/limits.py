"""Rate limits on failures: failed authentications (bearer tokens) and failed sign-ins (the review page), per client
address. Only failures count, so successful traffic is never throttled; an address at its limit is refused with
429 and ``Retry-After`` until the window since its first failure has passed. While an address is refused, a token
that already succeeded from that address keeps working (a test site's stations behind one NAT address go on when a
single station keeps sending a stale token), but no new token is tried — so guessing gets nowhere faster.

Why not Litestar's ``RateLimitMiddleware``: it counts every request (successful ones too) and per process. The
counts live in a Litestar store: in memory (per process) by default, or in Redis, shared by every instance, when
``QBANK_JOB_QUEUE_URL`` names one (several ``qbank serve`` behind a proxy then share one limit). A count is read and
written back (not incremented atomically), so concurrent failures may be undercounted by a few."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from qbank.lib.problems import ProblemError
from qbank.settings import Settings

KNOWN_GOOD_SECONDS = 24 * 3600


def limits_store(settings: Settings) -> Store:
    """Where the counts live: Redis when the service has one (shared by every instance), else this process."""
    if settings.job_queue_url.startswith(("redis://", "rediss://", "unix://")):
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=settings.job_queue_url, namespace="qbank-limits")
    return MemoryStore()


def credential_digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()[:32]


@dataclass
class FailureLimiter:
    """``limit`` failures per ``window_s`` seconds per address, for one kind of attempt (``name``)."""

    store: Store
    name: str
    limit: int
    window_s: int
    _remembered: dict[str, float] = field(default_factory=dict, repr=False)  # recently written "good" marks

    def _key(self, address: str) -> str:
        return f"{self.name}:failed:{address}"

    async def _state(self, address: str) -> tuple[int, float]:
        raw = await self.store.get(self._key(address))
        if raw is None:
            return 0, 0.0
        count, since = raw.decode().split()
        return int(count), float(since)

    async def retry_after(self, address: str) -> int | None:
        """Seconds until this address may try again, or None when it may now."""
        count, since = await self._state(address)
        left = since + self.window_s - time.time()
        if count >= self.limit and left > 0:
            return max(1, math.ceil(left))
        return None

    async def failed(self, address: str) -> None:
        count, since = await self._state(address)
        now = time.time()
        if count == 0 or now - since >= self.window_s:
            count, since = 0, now
        left = max(1, math.ceil(since + self.window_s - now))
        await self.store.set(self._key(address), f"{count + 1} {since}".encode(), expires_in=left)

    async def succeeded(self, address: str, credential: str) -> None:
        """Remember that this credential worked from this address (a day); written at most hourly per pair."""
        key = f"{self.name}:good:{address}:{credential_digest(credential)}"
        now = time.monotonic()
        if now - self._remembered.get(key, -1e9) < 3600:
            return
        if len(self._remembered) > 10_000:
            self._remembered.clear()
        self._remembered[key] = now
        await self.store.set(key, b"1", expires_in=KNOWN_GOOD_SECONDS)

    async def known_good(self, address: str, credential: str) -> bool:
        return await self.store.exists(f"{self.name}:good:{address}:{credential_digest(credential)}")

    def refusal(self, seconds: int, what: str) -> ProblemError:
        return ProblemError(429, f"too many {what} from this address ({self.limit} in {self.window_s} s); try again "
                                 f"in {seconds} s", headers={"Retry-After": str(seconds)},
                            extra={"retry_after": seconds})


@dataclass
class Limiters:
    """The service's limiters (``app.state.limiters``)."""

    authentication: FailureLimiter
    sign_in: FailureLimiter

    @classmethod
    def of(cls, settings: Settings) -> Limiters:
        store = limits_store(settings)
        return cls(
            authentication=FailureLimiter(store, "auth", settings.auth_failure_limit, settings.auth_failure_window_s),
            sign_in=FailureLimiter(store, "sign-in", settings.sign_in_failure_limit, settings.sign_in_failure_window_s))
