"""Security headers on every answer (API, docs, static files, the review page, errors and 404s alike): no MIME
sniffing, no framing (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``), a referrer policy, HSTS over
HTTPS, ``Secure`` on every cookie set over HTTPS (the scheme as :mod:`qbank.lib.proxies` established it), and on the
review page a strict Content-Security-Policy: scripts and styles from the service only (no inline script, no eval),
footage and contact sheets from the S3 server's public origin only."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar.types import Message, Scope

FRAMING = "frame-ancestors 'none'"
_SECURE = re.compile(rb";\s*secure\s*(;|$)", re.IGNORECASE)
API_POLICY = f"default-src 'none'; {FRAMING}; base-uri 'none'; form-action 'none'"


def review_policy(media_origins: list[str]) -> str:
    media = " ".join(["'self'", *media_origins])
    return ("default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src {media} data:; media-src {media}; connect-src 'self'; font-src 'self'; "
            f"form-action {media}; {FRAMING}; base-uri 'none'; object-src 'none'")


class SecurityHeaders:
    """A ``before_send`` hook. ``media_origins``: the origins presigned links point at (read when first needed: the
    local S3 server's address is known only once it runs)."""

    def __init__(self, media_origins: Callable[[], list[str]], review_prefix: str = "/review",
                 docs_prefix: str = "/schema") -> None:
        self._media_origins = media_origins
        self._review: str | None = None
        self.review_prefix = review_prefix
        self.docs_prefix = docs_prefix

    def policy(self, path: str) -> str:
        if path == self.review_prefix or path.startswith(self.review_prefix + "/"):
            if self._review is None:
                self._review = review_policy(self._media_origins())
            return self._review
        if path.startswith(self.docs_prefix):  # Swagger and Scalar pages load their scripts: framing only
            return FRAMING
        return API_POLICY

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers: list[Any] = list(message.get("headers", []))
        present = {bytes(k).lower() for k, _ in headers}
        https = scope.get("scheme") == "https"
        if https:
            headers = [(k, bytes(v) + b"; Secure") if bytes(k).lower() == b"set-cookie" and not _SECURE.search(v)
                       else (k, v) for k, v in headers]
        wanted = {b"x-content-type-options": b"nosniff", b"x-frame-options": b"DENY",
                  b"content-security-policy": self.policy(scope.get("path", "")).encode(),
                  b"referrer-policy": b"same-origin"}
        if https:
            wanted[b"strict-transport-security"] = b"max-age=31536000"
        headers.extend((k, v) for k, v in wanted.items() if k not in present)
        message["headers"] = headers
