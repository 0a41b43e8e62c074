"""Canonical JSON and SHA-256 digests used by the audit trail and item versions."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> bytes:
    return _encoder.encode(value)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()
