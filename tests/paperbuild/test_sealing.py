from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from paperbuild.sealing import SealError, open_site_share, seal, unseal, verify

CONTENT = {"forms": [{"candidate": "001", "items": [{"stem": "电流的单位是？", "options": ["伏特", "安培"]}]}]}
HEADER = {"package": "p1", "session": 7, "site": "CD-01", "created_at": "2026-12-01T00:00:00Z"}


@pytest.fixture()
def keys() -> tuple[Ed25519PrivateKey, X25519PrivateKey, X25519PrivateKey]:
    return Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), X25519PrivateKey.generate()


def test_seal_verify_unseal(keys: tuple[Ed25519PrivateKey, X25519PrivateKey, X25519PrivateKey]) -> None:
    centre, site, _ = keys
    sealed = seal(CONTENT, HEADER, site.public_key(), centre)
    assert "电流".encode() not in sealed.package and b"\xe7\x94\xb5" not in sealed.package
    pkg = verify(sealed.package, centre.public_key())
    assert pkg.header == HEADER
    share = open_site_share(pkg, site)
    assert unseal(pkg, share, sealed.centre_share) == CONTENT
    with pytest.raises(SealError, match="wrong release share"):
        unseal(pkg, share, bytes(32))
    with pytest.raises(SealError, match="wrong release share"):
        unseal(pkg, bytes(32), sealed.centre_share)  # neither share alone reads anything


def test_tampered_and_foreign_packages_are_refused(
        keys: tuple[Ed25519PrivateKey, X25519PrivateKey, X25519PrivateKey]) -> None:
    centre, site, other_site = keys
    sealed = seal(CONTENT, HEADER, site.public_key(), centre)
    body = json.loads(sealed.package)
    ct = bytearray(base64.b64decode(body["ciphertext"]))
    ct[5] ^= 1
    body["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    with pytest.raises(SealError, match="tampered"):
        verify(json.dumps(body).encode(), centre.public_key())
    moved = json.loads(sealed.package)
    moved["header"]["site"] = "CD-02"
    with pytest.raises(SealError, match="tampered"):
        verify(json.dumps(moved).encode(), centre.public_key())
    with pytest.raises(SealError, match="another key than the evaluation centre"):
        verify(sealed.package, Ed25519PrivateKey.generate().public_key())
    pkg = verify(sealed.package, centre.public_key())
    with pytest.raises(SealError, match="another site's key"):
        open_site_share(pkg, other_site)
    with pytest.raises(SealError, match="not a sealed paper package"):
        verify(b"{not json", centre.public_key())


def test_every_package_has_its_own_key(keys: tuple[Ed25519PrivateKey, X25519PrivateKey, X25519PrivateKey]) -> None:
    centre, site, _ = keys
    a, b = seal(CONTENT, HEADER, site.public_key(), centre), seal(CONTENT, HEADER, site.public_key(), centre)
    assert a.centre_share != b.centre_share and a.package != b.package
