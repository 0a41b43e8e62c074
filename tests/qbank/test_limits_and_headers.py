"""Rate limits, proxies, headers and short links (issue 15, findings 6 and 7) against `qbank serve` as a real HTTP
server on SQLite and PostgreSQL. The test's requests come from 127.0.0.1, which is not a trusted proxy, and through a
"proxy" at 127.0.0.2 (a loopback address the client binds to), which is: only the latter's X-Forwarded-For and
X-Forwarded-Proto count."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import running_service

LIMIT, WINDOW, SIGN_IN_LIMIT = 5, 3, 3


@dataclass
class Served:
    url: str
    direct: httpx.Client  # from 127.0.0.1: not a trusted proxy
    proxy: httpx.Client  # from 127.0.0.2: the trusted proxy
    admin: dict[str, str]

    def via(self, address: str, proto: str = "http") -> dict[str, str]:
        return {"X-Forwarded-For": f"{address}, 127.0.0.2", "X-Forwarded-Proto": proto}

    def token(self, role: str, **extra: Any) -> str:
        r = self.direct.post("/api/v1/tokens", json={"name": f"{role}-{time.time_ns()}", "role": role, **extra},
                             headers=self.admin)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@pytest.fixture
def served(database_url: str, s3_server: Any, tmp_path: Path) -> Iterator[Served]:
    url = database_url if database_url.startswith("postgresql") else f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    with running_service(tmp_path, s3_server, QBANK_DATABASE_URL=url, QBANK_TRUSTED_PROXIES="127.0.0.2",
                         QBANK_AUTH_FAILURE_LIMIT=str(LIMIT), QBANK_AUTH_FAILURE_WINDOW_S=str(WINDOW),
                         QBANK_SIGN_IN_FAILURE_LIMIT=str(SIGN_IN_LIMIT), QBANK_SIGN_IN_FAILURE_WINDOW_S=str(WINDOW),
                         QBANK_AUDIT_ANCHORING="off") as (base, env):
        qbank = str(Path(sys.executable).with_name("qbank"))
        made = subprocess.run([qbank, "token", "create", "--role", "admin", "--name", "centre", "--json"], env=env,
                              capture_output=True, text=True, check=True)
        admin = {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}
        proxy = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=base, timeout=30) as direct, \
                httpx.Client(base_url=base, timeout=30, transport=proxy) as via_proxy:
            yield Served(url=base, direct=direct, proxy=via_proxy, admin=admin)


def test_failed_authentications_are_limited_per_client_address(served: Served) -> None:
    site_token = served.token("supervisor")
    good = {"Authorization": f"Bearer {site_token}"}
    # a site's steady successful traffic is never throttled
    for _ in range(3 * LIMIT):
        assert served.proxy.get("/api/v1/sites", headers={**good, **served.via("10.0.0.2")}).status_code == 200
    # an attacker at 10.0.0.1: LIMIT failures, then 429 with Retry-After — for any token it has not used before
    for n in range(LIMIT):
        r = served.proxy.get("/api/v1/sites", headers={"Authorization": f"Bearer qb_guess{n}",
                                                       **served.via("10.0.0.1")})
        assert r.status_code == 401, r.text
    r = served.proxy.get("/api/v1/sites", headers={"Authorization": "Bearer qb_guess", **served.via("10.0.0.1")})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= WINDOW, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and "try again" in r.json()["detail"]
    r = served.proxy.get("/api/v1/sites", headers={**good, **served.via("10.0.0.1")})
    assert r.status_code == 429  # a valid token guessed during the block gets nowhere
    # the site's address with one station sending a stale token: the stations that work keep working
    for n in range(LIMIT + 2):
        served.proxy.get("/api/v1/sites", headers={"Authorization": f"Bearer qb_stale{n}", **served.via("10.0.0.2")})
    assert served.proxy.get("/api/v1/sites", headers={**good, **served.via("10.0.0.2")}).status_code == 200
    assert served.proxy.get("/api/v1/sites", headers=served.via("10.0.0.2")).status_code == 429
    # other addresses are not affected; X-Forwarded-For from a peer that is not a trusted proxy is ignored
    r = served.proxy.get("/api/v1/sites", headers={"Authorization": "Bearer qb_x", **served.via("10.0.0.3")})
    assert r.status_code == 401
    for n in range(LIMIT):
        r = served.direct.get("/api/v1/sites", headers={"Authorization": f"Bearer qb_d{n}",
                                                        "X-Forwarded-For": f"10.1.0.{n}"})
        assert r.status_code == 401
    assert served.direct.get("/api/v1/sites", headers={"X-Forwarded-For": "10.1.0.99"}).status_code == 429
    time.sleep(WINDOW + 0.5)  # the window has passed: the attacker's address may try again
    r = served.proxy.get("/api/v1/sites", headers={"Authorization": "Bearer qb_guess", **served.via("10.0.0.1")})
    assert r.status_code == 401


def _csrf(client: httpx.Client, headers: dict[str, str]) -> str:
    page = client.get("/review/login", headers=headers)
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_sign_ins_are_limited_and_in_the_trail(served: Served) -> None:
    supervisor = served.token("supervisor")
    author_like = served.token("admin")
    at = served.via("10.0.0.7")
    tries: list[int] = []
    for token in ["qb_wrong-1", "", author_like]:
        csrf = _csrf(served.proxy, at)
        r = served.proxy.post("/review/login", data={"token": token, "_csrf_token": csrf}, headers=at)
        tries.append(r.status_code)
    assert tries == [401, 401, 403]
    csrf = _csrf(served.proxy, at)
    r = served.proxy.post("/review/login", data={"token": supervisor, "_csrf_token": csrf}, headers=at)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "秒后再试" in r.text, r.text
    # from another address the supervisor signs in, then out; all of it is in the trail, never a token
    there = served.via("10.0.0.8")
    csrf = _csrf(served.proxy, there)
    r = served.proxy.post("/review/login", data={"token": supervisor, "_csrf_token": csrf}, headers=there)
    assert r.status_code == 303 and r.headers["location"] == "/review", r.text
    csrf = _csrf(served.proxy, there)
    r = served.proxy.post("/review/logout", data={"_csrf_token": csrf}, headers=there)
    assert r.status_code == 303, r.text
    # the newest entries, this test's addresses: the database may be shared with other tests
    total = served.direct.get("/api/v1/audit", params={"limit": 1}, headers=served.admin).json()["total"]
    trail = served.direct.get("/api/v1/audit", params={"limit": 1000, "offset": max(0, total - 1000)},
                              headers=served.admin).json()["items"]
    events = [(e["action"], e["detail"].get("address"), e["detail"].get("reason")) for e in trail
              if e["action"].startswith("review.") and e["detail"].get("address") in ("10.0.0.7", "10.0.0.8")]
    assert events == [("review.sign_in_failed", "10.0.0.7", "unknown or revoked token"),
                      ("review.sign_in_failed", "10.0.0.7", "no token"),
                      ("review.sign_in_failed", "10.0.0.7", "a admin token"),
                      ("review.sign_in", "10.0.0.8", None), ("review.sign_out", "10.0.0.8", None)], events
    assert supervisor not in json.dumps(trail) and "qb_wrong-1" not in json.dumps(trail)
    assert served.direct.get("/api/v1/audit/verify", headers=served.admin).json()["ok"]


def test_headers_everywhere_secure_cookies_behind_https_and_short_links(served: Served) -> None:
    for path in ("/health", "/schema", "/schema/swagger", "/schema/openapi.json", "/review/login",
                 "/review/static/review.js", "/api/v1/items", "/no/such/path"):
        r = served.direct.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
    policy = served.direct.get("/review/login").headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    # Secure cookies (and HSTS) behind HTTPS — as the trusted proxy says, not as any client claims
    https = served.proxy.get("/review/login", headers=served.via("10.0.0.9", "https"))
    cookies = https.headers.get_list("set-cookie")
    assert cookies and all("; Secure" in c for c in cookies), cookies
    assert https.headers["strict-transport-security"].startswith("max-age=")
    claimed = httpx.get(f"{served.url}/review/login", headers={"X-Forwarded-Proto": "https"})  # no cookies yet
    assert claimed.headers.get_list("set-cookie") and not any("Secure" in c for c in claimed.headers.get_list(
        "set-cookie")) and "strict-transport-security" not in claimed.headers
    # presigned links last at most an hour
    nowhere = 2**31 - 1  # no recording has this id, whatever other tests stored in a shared database
    r = served.direct.get(f"/api/v1/recordings/{nowhere}/link", params={"minutes": 61}, headers=served.admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"].endswith("minutes"), r.text
    assert served.direct.get(f"/api/v1/recordings/{nowhere}/link", params={"minutes": 60},
                             headers=served.admin).status_code == 404
    schema = served.direct.get("/schema/openapi.json").json()
    link = schema["paths"]["/api/v1/recordings/{recording_id}/link"]["get"]
    minutes = next(p for p in link["parameters"] if p["name"] == "minutes")
    assert minutes["schema"]["maximum"] == 60 and "429" in link["responses"]
