"""End to end: a test site against the service as a real HTTP server (`qbank serve`, SQLite, the test S3): make a
site key, register it, fetch the sealed package, and `qbank site unseal` it in the window; refusals for a
tampered package, a foreign package and a session whose window has not opened."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import async_sessionmaker

from qbank.server.cli import main
from tests.conftest import running_service
from tests.qbank.helpers import Api, assemble, make_exam, make_paper_bank, site_headers, time_travel

SECRET = "site-unseal-secret"


@pytest.fixture(scope="module")
def server(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with running_service(tmp_path_factory.mktemp("site-unseal"), s3_server, QBANK_TOKEN_SECRET=SECRET) as started:
        yield started

@pytest.fixture
async def live(server: tuple[str, dict[str, str]]) -> AsyncIterator[Api]:
    """The test helpers' Api, over real HTTP to the server, with the server's own database for set-up."""
    from qbank.db import create_engine

    url, env = server
    engine = create_engine(env["QBANK_DATABASE_URL"])
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        state = SimpleNamespace(settings=SimpleNamespace(token_secret=SECRET))
        yield Api(client=client, app=SimpleNamespace(state=state), backend="sqlite",  # type: ignore[arg-type]
                  db=async_sessionmaker(engine, expire_on_commit=False))
    await engine.dispose()


async def cli(*args: str) -> Result:
    return await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, list(args)))


async def test_a_site_unseals_its_papers_in_the_window(live: Api, server: tuple[str, dict[str, str]],
                                                       tmp_path: Path) -> None:
    url, _ = server
    bank, layout_id = await make_paper_bank(live)
    now_exam = await make_exam(live, bank, per_site=3, n_sites=2, register_keys=False)
    later = await make_exam(live, bank, per_site=2, n_sites=1, register_keys=False)
    a, b = now_exam.sites
    keys: dict[str, Path] = {}
    for site in [a, b, later.sites[0]]:
        keys[site] = tmp_path / f"{site}.key"
        made = await cli("site", "keygen", "-o", str(keys[site]))
        assert made.exit_code == 0, made.output
        assert oct(keys[site].stat().st_mode & 0o777) == "0o600"
        public = Path(f"{keys[site]}.pub").read_text().strip()
        r = await live.client.put(f"/api/v1/sites/{site}/public-key", json={"public_key": public},
                                  headers=await site_headers(live, site))
        assert r.status_code == 200, r.text
    admin = await live.admin()
    for exam in (now_exam, later):
        job = await assemble(live, exam, layout_id)
        assert job["status"] == "succeeded", job
        r = await live.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=admin)
        assert r.status_code == 200, r.text
    await time_travel(live, now_exam.session_id, timedelta(minutes=5))
    await time_travel(live, later.session_id, timedelta(days=30))

    async def download(session_id: int, site: str) -> Path:
        """`qbank site fetch`: the centre's 307 to its S3 server followed, digest and signature checked."""
        path = tmp_path / f"package-{session_id}-{site}.json"
        token = (await site_headers(live, site))["Authorization"].split()[1]
        done = await cli("site", "fetch", "--url", url, "--token", token, "--session", str(session_id),
                         "--key", str(keys[site]), "-o", str(path))
        assert done.exit_code == 0 and "signature verified" in done.output, done.output
        return path

    token_a = (await site_headers(live, a))["Authorization"].split()[1]
    package_a = await download(now_exam.session_id, a)
    out = tmp_path / "out-a"
    done = await cli("site", "unseal", str(package_a), "--key", str(keys[a]), "--url", url, "--token", token_a,
                     "-o", str(out))
    assert done.exit_code == 0, done.output
    papers = json.loads((out / "papers.json").read_text())
    assert papers["site"] == a and len(papers["candidates"]) == 3
    assert len(list((out / "candidates").glob("*.json"))) == 3
    first = papers["candidates"][0]["questions"][0]
    assert first["stem"] and "answer" not in first

    # a tampered package: refused, nothing written
    data = bytearray(package_a.read_bytes())
    at = data.index(b'"ciphertext":"') + 20
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(data))
    refused = await cli("site", "unseal", str(tampered), "--key", str(keys[a]), "--url", url, "--token", token_a,
                        "-o", str(tmp_path / "out-t"))
    assert refused.exit_code != 0 and "tampered" in refused.output, refused.output
    assert not (tmp_path / "out-t").exists()

    # another site's package with our key: refused as foreign
    package_b = await download(now_exam.session_id, b)
    refused = await cli("site", "unseal", str(package_b), "--key", str(keys[a]), "--url", url, "--token", token_a,
                        "-o", str(tmp_path / "out-f"))
    assert refused.exit_code != 0 and "another site" in refused.output, refused.output

    # a session far in the future: the package verifies, the share is not released yet (403, saying when)
    site_c = later.sites[0]
    token_c = (await site_headers(live, site_c))["Authorization"].split()[1]
    package_c = await download(later.session_id, site_c)
    refused = await cli("site", "unseal", str(package_c), "--key", str(keys[site_c]), "--url", url,
                        "--token", token_c, "--session", str(later.session_id), "-o", str(tmp_path / "out-c"))
    assert refused.exit_code != 0 and "403" in refused.output and "released from" in refused.output, refused.output

    # a package asked for as another session's: refused in one line, nothing written
    refused = await cli("site", "unseal", str(package_a), "--key", str(keys[a]), "--url", url, "--token", token_a,
                        "--session", str(later.session_id), "-o", str(tmp_path / "out-s"))
    assert refused.exit_code != 0 and "REFUSED" in refused.output and "not session" in refused.output, refused.output
    assert not (tmp_path / "out-s").exists()

    total = (await live.client.get("/api/v1/audit", params={"limit": 1}, headers=admin)).json()["total"]
    trail = await live.client.get("/api/v1/audit", params={"limit": 1000, "offset": max(0, total - 1000)},
                                  headers=admin)
    actions = [e["action"] for e in trail.json()["items"]]
    assert actions.count("paper.package_fetch") >= 3 and "paper.release" in actions
    assert "paper.release_refused" in actions
