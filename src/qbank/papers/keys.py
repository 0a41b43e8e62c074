"""Site keys (X25519); the centre's Ed25519 signing key lives in the kernel (:mod:`qbank.lib.keys`)."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from paperbuild.sealing import raw_public
from qbank.lib.keys import b64, centre_key, centre_key_path, centre_public_b64
from qbank.lib.problems import bad_request

__all__ = ["b64", "centre_key", "centre_key_path", "centre_public_b64", "load_site_key", "new_site_key",
           "parse_site_key"]


def parse_site_key(text: str, field: str = "public_key") -> X25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(field, "not valid base64 (send the raw 32-byte X25519 public key, base64)") from None
    if len(raw) != 32:
        raise bad_request(field, f"an X25519 public key is 32 bytes, this is {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


# ----------------------------------------------------------------------------------------- site key files
def new_site_key() -> tuple[bytes, str]:
    """(private key PEM, public key base64) for `qbank site keygen`."""
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, b64(raw_public(key.public_key()))


def load_site_key(data: bytes) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key: {exc}") from exc
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("the key file does not hold an X25519 private key (make one with `qbank site keygen`)")
    return key
