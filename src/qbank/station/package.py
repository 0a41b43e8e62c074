"""Opening a site's sealed package, shared by `qbank site unseal` and the exam station: the centre as a site sees it
(its public key, the release share), verifying the package, the roster, and unsealing with both shares."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from paperbuild.sealing import SealedPackage, SealError, open_roster, open_site_share, read_package, unseal, verify
from qbank.papers.keys import load_site_key


class PackageRefused(Exception):
    """The package cannot be used here: ``reason`` says why in words a site operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CentreError(Exception):
    """The centre answered with an error (``status``, its problem ``body``), or could not be reached (``status``
    None)."""

    def __init__(self, status: int | None, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.body = status, detail, body or {}


class Centre:
    """The evaluation centre's API as a test site reaches it, with the site's bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.base, timeout=timeout,
                                        headers={"Authorization": f"Bearer {token}"})

    async def __aenter__(self) -> Centre:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """(status, body) for 2xx; :class:`CentreError` with the problem's detail otherwise."""
        try:
            r = await self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise CentreError(None, f"cannot reach {self.base}: {exc.__class__.__name__} {exc}") from exc
        is_json = r.headers.get("content-type", "").startswith(("application/json", "application/problem+json"))
        try:
            body = r.json() if is_json else {}
        except ValueError:
            body = {}
        if not 200 <= r.status_code < 300:
            problem = body if isinstance(body, dict) else {}
            raise CentreError(r.status_code, f"{path}: {r.status_code} {problem.get('detail') or r.text[:300]}",
                              problem)
        return r.status_code, body

    async def package(self, session_id: int) -> bytes:
        """The site's sealed package: the centre answers with a redirect to a short-lived link on its S3 server,
        which is followed (without the bearer token: another origin); the bytes must have the digest the centre
        named (:class:`PackageRefused` otherwise). Its signature is checked when it is opened."""
        path = f"/api/v1/sessions/{session_id}/package"
        try:
            r = await self.client.get(path, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise CentreError(None, f"cannot fetch the package: {exc.__class__.__name__} {exc}") from exc
        if not 200 <= r.status_code < 300:
            try:
                problem = r.json() if r.headers.get("content-type", "").endswith("json") else {}
            except ValueError:
                problem = {}
            detail = problem.get("detail") if isinstance(problem, dict) else None
            raise CentreError(r.status_code, f"{path}: {r.status_code} {detail or r.text[:300]}")
        named = next((h.headers.get("x-package-sha256") for h in [*r.history, r] if "x-package-sha256" in h.headers),
                     None)
        if named is not None and hashlib.sha256(r.content).hexdigest() != named:
            raise PackageRefused("the package's bytes do not have the digest the centre named")
        return r.content

    async def centre_key(self) -> Ed25519PublicKey:
        _, body = await self.request("GET", "/api/v1/centre-key")
        return parse_centre_key(str(body.get("public_key", "")))

    async def release(self, session_id: int) -> dict[str, Any]:
        _, body = await self.request("GET", f"/api/v1/sessions/{session_id}/release")
        return dict(body)


def parse_centre_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise PackageRefused(f"the centre's public key is not 32 bytes of base64: {exc}") from exc


def read_site_key(path: str | Path) -> X25519PrivateKey:
    try:
        return load_site_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise PackageRefused(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class OpenedPackage:
    """A package verified against the centre's key and opened with the site's key (the content still sealed)."""

    data: bytes
    pkg: SealedPackage
    site_share: bytes
    site_key: X25519PrivateKey

    @property
    def header(self) -> dict[str, Any]:
        return self.pkg.header

    @property
    def session_id(self) -> int:
        return int(self.header["session"])

    @property
    def package_id(self) -> str:
        return str(self.header["package_id"])

    @property
    def site(self) -> str:
        return str(self.header["site"])

    def roster(self) -> dict[str, Any]:
        """The session and who sits where ({session, candidates}), readable with the site's key alone."""
        try:
            return dict(open_roster(self.pkg, self.site_key))
        except SealError as exc:
            raise PackageRefused(exc.reason) from exc

    def open(self, release: dict[str, Any]) -> Any:
        """The content, with the centre's release share (``GET …/release``)."""
        if release.get("package_id") != self.package_id:
            raise PackageRefused(f"the release share is for package {release.get('package_id')}, not "
                                 f"{self.package_id} (the centre sealed a newer package: download it again)")
        try:
            return unseal(self.pkg, self.site_share, base64.b64decode(str(release.get("centre_share", ""))))
        except (SealError, binascii.Error, ValueError) as exc:
            raise PackageRefused(getattr(exc, "reason", str(exc))) from exc


def open_package(data: bytes, site_key: X25519PrivateKey, centre: Ed25519PublicKey) -> OpenedPackage:
    """Verify the centre's signature and open the site's share; a tampered package or one sealed to another
    site's key is refused."""
    try:
        read_package(data)
        pkg = verify(data, centre)
        share = open_site_share(pkg, site_key)
    except SealError as exc:
        raise PackageRefused(exc.reason) from exc
    return OpenedPackage(data=data, pkg=pkg, site_share=share, site_key=site_key)
