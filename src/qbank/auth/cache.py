"""A short-lived cache of authenticated tokens, so that a burst of requests with one token costs one lookup.

An entry lives ``ttl_s`` (``QBANK_TOKEN_CACHE_S``, default 0.5 s, at most 1 s): a token revoked through any
instance stops working within that time everywhere, without instances telling each other. Only tokens that
authenticated are kept (an unknown or revoked token is looked up every time); entries are keyed by the token's
HMAC, never by the token itself."""

from __future__ import annotations

import time

from qbank.lib.actors import Actor

MAX_TTL_S = 1.0  # revocation takes effect within a second


class TokenCache:
    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = min(max(ttl_s, 0.0), MAX_TTL_S)
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Actor]] = {}

    def get(self, token_hash: str) -> Actor | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            self._entries.pop(token_hash, None)
            return None
        return entry[1]

    def put(self, token_hash: str, actor: Actor) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:  # a flood of distinct tokens: start again rather than grow
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self.ttl_s, actor)

    def forget(self, token_id: int) -> None:
        """Drop a token this process has just revoked; other processes drop it when its entry expires."""
        for key in [k for k, (_, actor) in self._entries.items() if actor.token_id == token_id]:
            self._entries.pop(key, None)
