"""The client's address and scheme behind reverse proxies: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
believed only from the proxies named in ``QBANK_TRUSTED_PROXIES`` (addresses or networks); from anyone else they are
ignored, so a client cannot pick the address its failures are counted against, nor claim HTTPS."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from qbank.settings import Network


def _trusted(host: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]
    return ",".join(values) if values else None


class TrustedProxyMiddleware(ASGIMiddleware):
    """The client address is the right-most address in ``X-Forwarded-For`` that is not a trusted proxy; the scheme
    is the proxy's ``X-Forwarded-Proto`` (the last value) — both only when the peer itself is a trusted proxy."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = list(networks)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        client = scope.get("client")
        if self.networks and client and _trusted(client[0], self.networks):
            forwarded = _header(scope, b"x-forwarded-for")
            if forwarded:
                hops = [h.strip() for h in forwarded.split(",") if h.strip()]
                for hop in reversed(hops):
                    if not _trusted(hop, self.networks):
                        scope["client"] = (hop, 0)
                        break
                else:
                    scope["client"] = (hops[0], 0) if hops else client
            proto = _header(scope, b"x-forwarded-proto")
            if proto and proto.rsplit(",", 1)[-1].strip().lower() in ("http", "https"):
                scope["scheme"] = proto.rsplit(",", 1)[-1].strip().lower()
        await next_app(scope, receive, send)


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's address (after :class:`TrustedProxyMiddleware`), for rate limits and the trail."""
    client = connection.scope.get("client")
    return str(client[0]) if client else "unknown"
