"""Site keys (X25519) and the site's derived signing key; the centre's Ed25519 signing key lives in the kernel
(:mod:`qbank.lib.keys`).

A site has one key file: its X25519 private key, to which sealed papers are wrapped. Its Ed25519 signing key (for
response bundles) is derived from it with HKDF-SHA256, so the site keeps one secret and old key files keep working;
the site registers both public halves with the centre."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from paperbuild.sealing import raw_public
from qbank.lib.keys import b64, centre_key, centre_key_path, centre_public_b64
from qbank.lib.problems import bad_request

__all__ = ["b64", "centre_key", "centre_key_path", "centre_public_b64", "load_site_key", "new_site_key",
           "parse_signing_key", "parse_site_key", "signing_public_b64", "site_signing_key"]


def _raw_key(text: str, field: str, algorithm: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(field, f"not valid base64 (send the raw 32-byte {algorithm} public key, base64)") from None
    if len(raw) != 32:
        raise bad_request(field, f"an {algorithm} public key is 32 bytes, this is {len(raw)}")
    return raw


def parse_site_key(text: str, field: str = "public_key") -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(_raw_key(text, field, "X25519"))


def parse_signing_key(text: str, field: str = "signing_key") -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(_raw_key(text, field, "Ed25519"))
    except ValueError:
        raise bad_request(field, "not an Ed25519 public key") from None


# ----------------------------------------------------------------------------------------- site key files
def new_site_key() -> tuple[bytes, str, str]:
    """(private key PEM, X25519 public key base64, Ed25519 signing public key base64) for `qbank site keygen`."""
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, b64(raw_public(key.public_key())), signing_public_b64(site_signing_key(key))


def site_signing_key(key: X25519PrivateKey) -> Ed25519PrivateKey:
    """The site's Ed25519 signing key, derived from its X25519 key (HKDF-SHA256, its own info string)."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"qbank-site-signing-key/1").derive(raw)
    return Ed25519PrivateKey.from_private_bytes(seed)


def signing_public_b64(key: Ed25519PrivateKey) -> str:
    return b64(raw_public(key.public_key()))


def load_site_key(data: bytes) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key: {exc}") from exc
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("the key file does not hold an X25519 private key (make one with `qbank site keygen`)")
    return key
