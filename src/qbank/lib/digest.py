"""Canonical JSON, SHA-256 digests and hash chains (the audit trail, item versions, the exam station's log)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")
GENESIS = "0" * 64


def canonical_json(value: Any) -> bytes:
    return _encoder.encode(value)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def chain_hash(prev_hash: str, body: Any) -> str:
    """The hash of one link: SHA-256 of the previous link's hash and the canonical JSON of this one's body."""
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


def chain_break(entries: Iterable[Mapping[str, Any]]) -> str | None:
    """Why a chain of ``{seq, prev, hash, …}`` entries (oldest first, from the genesis) does not hold, or None.

    Each entry's ``hash`` covers every other field; ``prev`` is the hash before it; ``seq`` counts from 1."""
    prev = GENESIS
    for n, entry in enumerate(entries, start=1):
        if entry.get("seq") != n:
            return f"entry {n} is missing or out of order (found seq {entry.get('seq')})"
        if entry.get("prev") != prev:
            return f"entry {n} does not follow entry {n - 1} (an entry was removed or inserted)"
        body = {k: v for k, v in entry.items() if k != "hash"}
        if chain_hash(prev, body) != entry.get("hash"):
            return f"entry {n}'s content does not match its hash (edited after writing)"
        prev = str(entry["hash"])
    return None
