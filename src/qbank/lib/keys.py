"""The centre's keys, for every domain that signs or keys something: the Ed25519 signing key (generated once into
the data dir, or QBANK_CENTRE_KEY_FILE: it signs sealed papers and the audit trail's anchors) and the trail key
(HMAC-SHA256 of the entries' hashes, derived from QBANK_TOKEN_SECRET, so the database alone cannot rewrite them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from paperbuild.sealing import key_id, raw_public
from qbank.settings import Settings

_lock = threading.Lock()
_cache: dict[str, Ed25519PrivateKey] = {}

TRAIL_KEY_INFO = "qbank.trail_key"  # where a database session carries the trail key (Session.info)
_TRAIL_KEY_LABEL = b"qbank audit trail hmac key v2"


def centre_key_path(settings: Settings) -> Path:
    return Path(settings.centre_key_file) if settings.centre_key_file else settings.data_dir / "centre_ed25519.pem"


def centre_key(settings: Settings) -> Ed25519PrivateKey:
    """The signing key; made on first use (file mode 0600, never overwritten)."""
    path = centre_key_path(settings)
    with _lock:
        cached = _cache.get(str(path))
        if cached is not None:
            return cached
        if not path.exists():
            if settings.centre_key_file:
                raise FileNotFoundError(f"QBANK_CENTRE_KEY_FILE {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        _cache[str(path)] = key
        return key


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def centre_public_b64(settings: Settings) -> tuple[str, str]:
    """(raw public key, base64; its key id)."""
    raw = raw_public(centre_key(settings).public_key())
    return b64(raw), key_id(raw)


def trail_key(settings: Settings) -> bytes:
    """The key of the audit trail's HMAC chain. Derived from the token secret (the data dir's ``token_secret`` file
    or QBANK_TOKEN_SECRET), which the database never holds; every process that writes the trail has it already."""
    return hmac.new(settings.token_secret.encode(), _TRAIL_KEY_LABEL, hashlib.sha256).digest()


_process_trail_key: list[bytes] = []  # the key of the last settings this process opened sessions with


def trail_session_info(settings: Settings) -> dict[str, Any]:
    """``Session.info`` for every database session a process opens, so that trail writers find the key. The key is
    also remembered as this process's (:func:`process_trail_key`), for sessions opened without this info."""
    key = trail_key(settings)
    _process_trail_key[:] = [key]
    return {TRAIL_KEY_INFO: key}


def process_trail_key() -> bytes | None:
    return _process_trail_key[0] if _process_trail_key else None
