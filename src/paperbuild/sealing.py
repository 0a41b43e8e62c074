"""Sealed paper packages: AES-256-GCM under a fresh key K, K split into two XOR shares — one sealed to the
site's X25519 key with HPKE (RFC 9180: X25519, HKDF-SHA256, AES-256-GCM), one kept by the centre until the
exam starts — and the whole package signed with the centre's Ed25519 key.

The site can verify and hold its package at any time, but can read it only with both shares; the centre
hands out its share only inside the site's window. A package may also carry the site's roster (who sits where),
sealed to the site's key alone, so that seat cards can be printed and candidates can sign in before the window.

Signed documents (a site's response bundle) are canonical JSON with an Ed25519 signature over the rest.
Pure functions over bytes; no I/O."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "qbank-sealed-paper/1"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_ROSTER_INFO = b"qbank-roster/1|"
_encoder = msgspec.json.Encoder(order="sorted")


class SealError(Exception):
    """A package that cannot be opened: ``reason`` says why in words a site operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SealedPackage(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    header: dict[str, Any]  # package id, session, site, created_at: authenticated, readable before opening
    nonce: str  # base64
    ciphertext: str  # base64, AES-256-GCM(K, canonical JSON of the content, aad = canonical header)
    site_share: str  # base64, HPKE-sealed to the site's public key (info = canonical header)
    site_key_id: str  # sha256 of the site's raw public key, hex (first 16)
    signer_key_id: str  # sha256 of the centre's raw public key, hex (first 16)
    signature: str = ""  # base64 Ed25519 over the canonical package without this field


class Sealed(msgspec.Struct, frozen=True, kw_only=True):
    package: bytes  # canonical JSON of the SealedPackage, what the site downloads
    centre_share: bytes  # 32 bytes the centre keeps and releases in the window
    sha256: str


def canonical(value: Any) -> bytes:
    return _encoder.encode(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise SealError(f"the package's {what} is not valid base64: it was altered") from exc


def key_id(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def raw_public(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_x25519_public(raw: bytes) -> X25519PublicKey:
    if len(raw) != 32:
        raise SealError(f"an X25519 public key is 32 bytes, got {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def _signed_bytes(pkg: SealedPackage) -> bytes:
    body = msgspec.to_builtins(pkg)
    body.pop("signature", None)
    return canonical(body)


def seal(content: Any, header: dict[str, Any], site_public_key: X25519PublicKey,
         centre_key: Ed25519PrivateKey, roster: Any = None) -> Sealed:
    """Encrypt ``content`` (anything msgspec encodes) for one site; returns the package and the centre's share.

    ``roster``, when given, goes into the header sealed to the site's key alone (``header["roster"]``): the site
    reads it at any time with :func:`open_roster`; it is signed with the rest of the header."""
    if roster is not None:
        info = _ROSTER_INFO + str(header.get("package_id", "")).encode()
        header = {**header, "roster": _b64(_SUITE.encrypt(canonical(roster), site_public_key, info=info))}
    key = AESGCM.generate_key(bit_length=256)
    site_share = os.urandom(32)
    centre_share = bytes(a ^ b for a, b in zip(key, site_share, strict=True))
    aad = canonical(header)
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, canonical(content), aad)
    sealed_share = _SUITE.encrypt(site_share, site_public_key, info=aad)
    unsigned = SealedPackage(
        format=FORMAT, header=header, nonce=_b64(nonce), ciphertext=_b64(ciphertext), site_share=_b64(sealed_share),
        site_key_id=key_id(raw_public(site_public_key)), signer_key_id=key_id(raw_public(centre_key.public_key())))
    signature = centre_key.sign(_signed_bytes(unsigned))
    pkg = msgspec.structs.replace(unsigned, signature=_b64(signature))
    data = canonical(pkg)
    return Sealed(package=data, centre_share=centre_share, sha256=hashlib.sha256(data).hexdigest())


def read_package(data: bytes) -> SealedPackage:
    try:
        pkg = msgspec.json.decode(data, type=SealedPackage)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SealError(f"not a sealed paper package: {exc}") from exc
    if pkg.format != FORMAT:
        raise SealError(f"unknown package format {pkg.format!r} (expected {FORMAT})")
    return pkg


def verify(data: bytes, centre_public_key: Ed25519PublicKey) -> SealedPackage:
    """The package, if the centre signed exactly these bytes' content; else :class:`SealError`."""
    pkg = read_package(data)
    if pkg.signer_key_id != key_id(raw_public(centre_public_key)):
        raise SealError("the package was signed with another key than the evaluation centre's")
    try:
        centre_public_key.verify(_unb64(pkg.signature, "signature"), _signed_bytes(pkg))
    except InvalidSignature as exc:
        raise SealError("the package's signature does not match its content: it was altered (tampered)") from exc
    return pkg


def open_site_share(pkg: SealedPackage, site_private_key: X25519PrivateKey) -> bytes:
    """The site's share, unsealed with the site's private key (a foreign package fails here)."""
    if pkg.site_key_id != key_id(raw_public(site_private_key.public_key())):
        raise SealError(f"this package is sealed to another site's key (site {pkg.header.get('site')!r}); "
                        "check that you use your own site key and your own package")
    try:
        return _SUITE.decrypt(_unb64(pkg.site_share, "site share"), site_private_key, info=canonical(pkg.header))
    except (InvalidTag, ValueError) as exc:
        raise SealError("the site share cannot be opened with this key") from exc


def unseal(pkg: SealedPackage, site_share: bytes, centre_share: bytes) -> Any:
    """The content, from both shares; a wrong share or altered bytes give :class:`SealError`."""
    if len(site_share) != 32 or len(centre_share) != 32:
        raise SealError("a key share is 32 bytes")
    key = bytes(a ^ b for a, b in zip(site_share, centre_share, strict=True))
    try:
        plain = AESGCM(key).decrypt(_unb64(pkg.nonce, "nonce"), _unb64(pkg.ciphertext, "ciphertext"),
                                    canonical(pkg.header))
    except InvalidTag as exc:
        raise SealError("the package cannot be decrypted with these shares: wrong release share or altered "
                        "ciphertext") from exc
    return msgspec.json.decode(plain)


def open_roster(pkg: SealedPackage, site_private_key: X25519PrivateKey) -> Any:
    """The roster sealed to the site (verify the package first); readable before the window opens."""
    sealed = pkg.header.get("roster")
    if not isinstance(sealed, str):
        raise SealError("this package carries no roster (it was sealed before rosters were added: seal it again)")
    if pkg.site_key_id != key_id(raw_public(site_private_key.public_key())):
        raise SealError(f"this package is sealed to another site's key (site {pkg.header.get('site')!r})")
    info = _ROSTER_INFO + str(pkg.header.get("package_id", "")).encode()
    try:
        return msgspec.json.decode(_SUITE.decrypt(_unb64(sealed, "roster"), site_private_key, info=info))
    except (InvalidTag, ValueError, msgspec.DecodeError) as exc:
        raise SealError("the roster cannot be opened with this key") from exc


# ----------------------------------------------------------------------------------------- signed documents
def sign_document(document: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Canonical JSON of ``document`` with ``signer_key_id`` and an Ed25519 ``signature`` over the rest."""
    body = {k: v for k, v in document.items() if k != "signature"}
    body["signer_key_id"] = key_id(raw_public(key.public_key()))
    return canonical({**body, "signature": _b64(key.sign(canonical(body)))})


def read_document(data: bytes) -> dict[str, Any]:
    """The document as sent, unverified (to learn who claims to have signed it)."""
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise SealError(f"not a JSON document: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("signature"), str):
        raise SealError("not a signed document: a JSON object with a signature is expected")
    return document


def verify_document(data: bytes, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The document, if ``public_key`` signed exactly its content; else :class:`SealError` saying why."""
    document = read_document(data)
    if document.get("signer_key_id") != key_id(raw_public(public_key)):
        raise SealError("the document was signed with another key than the one registered for its signer")
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        public_key.verify(_unb64(document["signature"], "signature"), canonical(body))
    except InvalidSignature as exc:
        raise SealError("the document's signature does not match its content: it was altered (tampered)") from exc
    return document
