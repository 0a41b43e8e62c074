"""Recordings straight to storage: presigned multipart parts to the content-addressed key (a staging key when a
stored object is there), joined and checked by the service before anything is locked; refusals remove the parts and
the joined bytes; a kill between joining and locking leaves nothing the next start does not remove."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import httpx
import msgspec
import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from minio.datatypes import Part

from qbank.server.cli import main
from tests.conftest import running_service
from tests.qbank.helpers import Api, make_bank, make_site, site_headers
from tests.qbank.stations import live_api
from tests.videoaudit.clips import defects_clip

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 3, 9, 0, tzinfo=TZ)
SECRET = "site-upload-secret"


@pytest.fixture(scope="session")
def direct_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("direct-clips")
    clean = defects_clip(d / "clean.mp4", duration=30, black=None, frozen=None, blurred=None, covered=None,
                         still=None)
    text = d / "notes.mp4"
    text.write_bytes("这不是视频\n".encode() * 1000)
    return {"clean": clean, "text": text}


async def make_session(api: Api, *sites: str) -> int:
    bank = await make_bank(api)
    body = {"occupation_code": bank.occupation, "level": 3, "title": "直传录像", "date": "2026-12-03",
            "start": "09:00:00", "end": "09:02:00", "rooms": [
                {"site": site, "code": "T101", "kind": "theory", "desks": 2, "camera_views": ["front", "back"]}
                for site in sites]}
    r = await api.client.post("/api/v1/sessions", json=body, headers=await api.admin())
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def begin(api: Api, sid: int, headers: dict[str, str], room: str, data: bytes, *, size: int | None = None,
                sha256: str | None = None, start: datetime = START) -> dict[str, Any]:
    r = await api.client.post(f"/api/v1/sessions/{sid}/recordings/uploads", headers=headers, json={
        "room": room, "view": "front", "start": start.isoformat(), "size": len(data) if size is None else size,
        "sha256": sha256 or hashlib.sha256(data).hexdigest()})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def put_parts(upload: dict[str, Any], data: bytes, only: set[int] | None = None) -> None:
    size = upload["part_size"]
    async with httpx.AsyncClient() as s3:
        for part in upload["parts"]:
            n = part["number"]
            if only is None or n in only:
                r = await s3.put(part["url"], content=data[(n - 1) * size: n * size])
                assert r.status_code == 200, r.text


async def complete(api: Api, sid: int, headers: dict[str, str], upload_id: str) -> httpx.Response:
    return await api.client.post(f"/api/v1/sessions/{sid}/recordings/uploads/{upload_id}/complete", headers=headers)


def s3(api: Api) -> Any:
    from minio import Minio

    s = api.app.state.settings
    return Minio(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, secure=False)


def own_bytes(clip: Path) -> bytes:
    """The clip with a top-level MP4 ``free`` box of random bytes appended: the same video, bytes of its own."""
    return clip.read_bytes() + (16).to_bytes(4, "big") + b"free" + os.urandom(8)


def content_key(sha256: str) -> str:
    return f"recordings/{sha256[:2]}/{sha256}"


def part_key(upload: dict[str, Any]) -> str:
    """The key the upload's part URLs name (content key or staging key)."""
    return httpx.URL(upload["parts"][0]["url"]).path.split("/", 2)[2]


def storage_keys(api: Api, prefix: str) -> list[tuple[str, Any]]:
    """Every object version under ``prefix`` and its retention mode, straight from S3."""
    s = api.app.state.settings
    client = s3(api)
    out = []
    for o in client.list_objects(s.s3_bucket, prefix=prefix, recursive=True, include_version=True):
        mode = None if o.is_delete_marker else client.stat_object(
            s.s3_bucket, o.object_name, version_id=o.version_id).metadata.get("x-amz-object-lock-mode")
        out.append((o.object_name, mode))
    return out


async def analysed(api: Api, recording_id: int, headers: dict[str, str]) -> dict[str, Any]:
    """The recording once its analysis ended (no test leaves a job running behind it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while (got := (await api.client.get(f"/api/v1/recordings/{recording_id}", headers=headers)).json())[
            "status"] not in ("analysed", "corrupt"):
        assert loop.time() < deadline, got
        await asyncio.sleep(0.2)
    return got  # type: ignore[no-any-return]


async def assert_refused_and_gone(api: Api, sid: int, headers: dict[str, str], upload: dict[str, Any],
                                  actual_sha: str, refusal: str) -> None:
    """Nothing stored or locked: the parts and the joined bytes are gone, and nothing is under either digest's
    content-addressed key or the staging key; the upload reads as refused with the reason it was given (and in the
    trail), and completing it again is refused with that reason."""
    path = f"/api/v1/sessions/{sid}/recordings/uploads/{upload['id']}"
    r = await api.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refused" and r.json()["refusal"] == refusal and r.json()["parts"] == [], r.text
    r = await api.client.post(f"{path}/complete", headers=headers)
    assert r.status_code == 409 and refusal in r.json()["detail"] and "start a new upload" in r.json()["detail"]
    trail = await api.client.get("/api/v1/audit", params={"entity_type": "recording_upload",
                                                         "entity_id": upload["id"]}, headers=await api.admin())
    assert [e["detail"]["reason"] for e in trail.json()["items"] if e["action"] == "recording.upload_refused"] == [
        refusal]
    assert storage_keys(api, f"staging/recordings/{upload['id']}") == []
    for sha in {upload["sha256"], actual_sha}:
        assert storage_keys(api, content_key(sha)) == []


async def test_direct_upload_is_checked_then_locked_and_analysed(api: Api, direct_clips: dict[str, Path]) -> None:
    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    data = own_bytes(direct_clips["clean"])  # (each backend's run shares the S3 server)
    sha = hashlib.sha256(data).hexdigest()
    up = await begin(api, sid, mine, f"{site}/T101", data)
    assert up["status"] == "open" and up["received"] == [] and len(up["parts"]) == up["parts_total"] == 1
    # the parts go to the content-addressed key itself; until the complete step there is no object there
    assert part_key(up) == content_key(sha)
    await put_parts(up, data)
    r = await api.client.get(f"/api/v1/sessions/{sid}/recordings/uploads/{up['id']}", headers=mine)
    assert r.status_code == 200 and r.json()["received"] == [1] and r.json()["parts"] == []
    assert storage_keys(api, content_key(sha)) == []
    r = await complete(api, sid, mine, up["id"])
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["sha256"] == sha and rec["size"] == len(data) and rec["job_id"] and rec["retain_until"]
    # one version, locked where the parts were joined (no copy), with the object's metadata
    assert storage_keys(api, content_key(sha)) == [(content_key(sha), "COMPLIANCE")]
    assert storage_keys(api, "staging/") == []
    stored = s3(api).stat_object(api.app.state.settings.s3_bucket, content_key(sha))
    assert stored.size == len(data) and stored.metadata["x-amz-meta-sha256"] == sha, stored.metadata
    assert stored.metadata["x-amz-meta-room"] == f"{site}/T101" and stored.metadata["x-amz-meta-exam-date"]
    got = await analysed(api, rec["id"], mine)
    assert got["status"] == "analysed", got
    # a player is told what it plays, though the server answers a version locked after writing as octet-stream
    link = await api.client.get(f"/api/v1/recordings/{rec['id']}/link", headers=mine)
    async with httpx.AsyncClient() as plain:
        played = await plain.get(link.json()["url"], headers={"Range": "bytes=0-1023"})
    assert played.status_code == 206 and played.headers["content-type"] == "video/mp4", played.headers

    # completing again (a lost answer) gives the same recording; the same bytes in a new upload are recognised
    again = await complete(api, sid, mine, up["id"])
    assert again.status_code == 200 and again.json()["id"] == rec["id"] and again.json()["already_stored"]
    second = await begin(api, sid, mine, f"{site}/T101", data)
    assert part_key(second) == f"staging/recordings/{second['id']}"  # never a new version over a stored object
    await put_parts(second, data)
    r = await complete(api, sid, mine, second["id"])
    assert r.status_code == 200 and r.json()["id"] == rec["id"] and r.json()["already_stored"] is True
    assert storage_keys(api, f"staging/recordings/{second['id']}") == []
    assert storage_keys(api, content_key(sha)) == [(content_key(sha), "COMPLIANCE")]
    # ... and with another claimed start they are refused (409), nothing changed
    third = await begin(api, sid, mine, f"{site}/T101", data, start=START.replace(minute=1))
    await put_parts(third, data)
    r = await complete(api, sid, mine, third["id"])
    assert r.status_code == 409 and r.json()["extra"]["recording_id"] == rec["id"], r.text
    assert storage_keys(api, f"staging/recordings/{third['id']}") == []
    trail = await api.client.get("/api/v1/audit", params={"entity_type": "recording", "entity_id": str(rec["id"])},
                                 headers=await api.admin())
    assert [e["action"] for e in trail.json()["items"]] == ["recording.upload", "recording.link"]


async def test_wrong_digest_is_refused_and_nothing_locked(api: Api) -> None:
    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    data = os.urandom(300_000)  # the digest is checked before the probe
    claimed = hashlib.sha256(b"other bytes").hexdigest()
    up = await begin(api, sid, mine, f"{site}/T101", data, sha256=claimed)
    await put_parts(up, data)
    r = await complete(api, sid, mine, up["id"])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "sha256", r.text
    assert claimed in r.json()["detail"] and "parts are removed" in r.json()["detail"]
    await assert_refused_and_gone(api, sid, mine, up, hashlib.sha256(data).hexdigest(), r.json()["detail"])


async def test_bytes_that_are_not_video_are_refused(api: Api, direct_clips: dict[str, Path]) -> None:
    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    data = direct_clips["text"].read_bytes()
    up = await begin(api, sid, mine, f"{site}/T101", data)
    await put_parts(up, data)
    r = await complete(api, sid, mine, up["id"])
    assert r.status_code == 415 and "not a usable video" in r.json()["detail"], r.text
    await assert_refused_and_gone(api, sid, mine, up, up["sha256"], r.json()["detail"])


async def test_missing_parts_are_named(api: Api) -> None:
    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    part_size = api.app.state.settings.recording_part_size
    data = os.urandom(part_size + 1000)  # two parts; only the second (short) one is sent
    up = await begin(api, sid, mine, f"{site}/T101", data)
    assert up["parts_total"] == 2
    await put_parts(up, data, only={2})
    r = await complete(api, sid, mine, up["id"])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "parts", r.text
    assert "lacks part(s) 1 of 2" in r.json()["detail"]
    await assert_refused_and_gone(api, sid, mine, up, up["sha256"], r.json()["detail"])


async def test_expired_part_url_is_refused_by_storage(api: Api, direct_clips: dict[str, Path]) -> None:
    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    data = direct_clips["clean"].read_bytes()
    settings = api.app.state.settings
    saved = settings.recording_part_url_s
    settings.recording_part_url_s = 1
    try:
        up = await begin(api, sid, mine, f"{site}/T101", data)
    finally:
        settings.recording_part_url_s = saved
    await asyncio.sleep(2.5)
    async with httpx.AsyncClient() as s3:
        r = await s3.put(up["parts"][0]["url"], content=data)
    assert r.status_code == 403 and b"expired" in r.content.lower(), r.text
    # fresh URLs for the parts storage lacks (resume), and then it completes
    r = await api.client.get(f"/api/v1/sessions/{sid}/recordings/uploads/{up['id']}", headers=mine)
    assert r.status_code == 200 and r.json()["received"] == [], r.text
    await put_parts(r.json(), data)
    r = await complete(api, sid, mine, up["id"])
    assert r.status_code == 201, r.text
    await analysed(api, r.json()["id"], mine)


async def test_another_sites_upload_is_not_found(api: Api, direct_clips: dict[str, Path]) -> None:
    site, other = await make_site(api), await make_site(api)
    sid = await make_session(api, site, other)  # the other site has a room in the session too
    mine, theirs = await site_headers(api, site), await site_headers(api, other)
    data = direct_clips["clean"].read_bytes()
    up = await begin(api, sid, mine, f"{site}/T101", data)
    await put_parts(up, data)
    for r in (await complete(api, sid, theirs, up["id"]),
              await api.client.get(f"/api/v1/sessions/{sid}/recordings/uploads/{up['id']}", headers=theirs),
              await complete(api, sid, mine, "0" * 32)):
        assert r.status_code == 404, r.text
    r = await api.client.post(f"/api/v1/sessions/{sid}/recordings/uploads", headers=theirs, json={
        "room": f"{site}/T101", "view": "front", "start": START.isoformat(), "size": 10, "sha256": "a" * 64})
    assert r.status_code == 403, r.text
    r = await complete(api, sid, mine, up["id"])
    assert r.status_code == 201, r.text  # untouched by the other site's attempts
    await analysed(api, r.json()["id"], mine)


async def test_the_same_bytes_stored_meanwhile_are_never_shadowed(api: Api, direct_clips: dict[str, Path]) -> None:
    """Two uploads of the same file begun while nothing is stored both send their parts to the content key; the one
    completed second may not join its (unchecked) parts on top of the first one's locked version: 409, its parts
    removed, the stored version untouched."""
    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    data = own_bytes(direct_clips["clean"])  # nothing stored under them yet
    sha = hashlib.sha256(data).hexdigest()
    first = await begin(api, sid, mine, f"{site}/T101", data)
    second = await begin(api, sid, mine, f"{site}/T101", data)
    assert part_key(first) == part_key(second) == content_key(sha)
    await put_parts(first, data)
    await put_parts(second, data)
    r = await complete(api, sid, mine, first["id"])
    assert r.status_code == 201, r.text
    rec = r.json()
    stored = s3(api).stat_object(api.app.state.settings.s3_bucket, content_key(sha))
    late = await complete(api, sid, mine, second["id"])
    assert late.status_code == 409 and "start a new upload" in late.json()["detail"], late.text
    assert storage_keys(api, content_key(sha)) == [(content_key(sha), "COMPLIANCE")]
    now = s3(api).stat_object(api.app.state.settings.s3_bucket, content_key(sha))
    assert now.version_id == stored.version_id
    r = await api.client.get(f"/api/v1/sessions/{sid}/recordings/uploads/{second['id']}", headers=mine)
    assert r.status_code == 200 and r.json()["status"] == "refused", r.text
    assert r.json()["refusal"] == late.json()["detail"] and r.json()["parts"] == []
    third = await begin(api, sid, mine, f"{site}/T101", data)  # as the 409 says: a new upload is recognised
    await put_parts(third, data)
    again = await complete(api, sid, mine, third["id"])
    assert again.status_code == 200 and again.json()["already_stored"] and again.json()["id"] == rec["id"], again.text
    await analysed(api, rec["id"], mine)


async def test_bytes_a_killed_service_joined_are_never_trusted_and_removed_at_start(
        api: Api, direct_clips: dict[str, Path], tmp_path: Path) -> None:
    """The service was killed between joining the parts under their content key and locking them: an unchecked,
    unlocked version sits there. It never counts as stored (a new upload of the same bytes is checked and locked
    on its own), and the next start removes it once older than the leftover age."""
    from qbank.server.app import create_app

    site = await make_site(api)
    sid = await make_session(api, site)
    mine = await site_headers(api, site)
    data = own_bytes(direct_clips["clean"])
    sha = hashlib.sha256(data).hexdigest()
    up = await begin(api, sid, mine, f"{site}/T101", data)
    await put_parts(up, data)
    settings = api.app.state.settings
    client = s3(api)
    upload_id = httpx.URL(up["parts"][0]["url"]).params["uploadId"]
    parts = [Part(p.part_number, p.etag) for p in client._list_parts(settings.s3_bucket, content_key(sha),
                                                                         upload_id).parts]
    client._complete_multipart_upload(settings.s3_bucket, content_key(sha), upload_id, parts)  # then the kill
    assert storage_keys(api, content_key(sha)) == [(content_key(sha), None)]
    r = await complete(api, sid, mine, up["id"])  # the site asks again: the parts are gone
    assert r.status_code == 409 and "no longer open" in r.json()["detail"], r.text

    again = await begin(api, sid, mine, f"{site}/T101", data)
    assert part_key(again) == f"staging/recordings/{again['id']}"  # not on top of the unchecked version
    await put_parts(again, data)
    r = await complete(api, sid, mine, again["id"])
    assert r.status_code == 201 and not r.json()["already_stored"], r.text  # checked, not taken as stored
    assert sorted(str(mode) for _, mode in storage_keys(api, content_key(sha))) == ["COMPLIANCE", "None"]
    await analysed(api, r.json()["id"], mine)

    await asyncio.sleep(2.5)
    restarted = msgspec.structs.replace(settings, data_dir=tmp_path, leftover_age_s=1)
    async with AsyncTestClient(app=create_app(restarted)):
        pass
    assert storage_keys(api, content_key(sha)) == [(content_key(sha), "COMPLIANCE")]
    link = await api.client.get(f"/api/v1/recordings/{r.json()['id']}/link", headers=mine)
    assert link.status_code == 200, link.text
    async with httpx.AsyncClient() as plain:
        played = await plain.get(link.json()["url"])
    assert played.status_code == 200 and hashlib.sha256(played.content).hexdigest() == sha


@pytest.fixture(scope="module")
def server(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`qbank serve` over real HTTP, with the smallest part size S3 allows (so that a small file has parts)."""
    with running_service(tmp_path_factory.mktemp("site-upload"), s3_server, QBANK_TOKEN_SECRET=SECRET,
                         QBANK_RECORDING_PART_SIZE=str(5 << 20)) as started:
        yield started


async def test_site_upload_cli_resumes_and_stores(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = server
    live, engine = await live_api(url, env, SECRET)
    try:
        site = await make_site(live)
        sid = await make_session(live, site)
        mine = await site_headers(live, site)
        token = mine["Authorization"].split()[1]
        video = tmp_path / "front.mp4"  # ≈ 12 MB: three parts of 5 MiB
        await anyio.to_thread.run_sync(lambda: subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "24",
             "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M", "-pix_fmt", "yuv420p", str(video)], check=True))
        data = video.read_bytes()
        assert len(data) > 2 * (5 << 20), len(data)
        # a connection broke after part 2: storage holds it, the site resumes that upload
        up = await begin(live, sid, mine, f"{site}/T101", data)
        assert up["parts_total"] >= 3
        await put_parts(up, data, only={2})
        args = ["site", "upload", str(video), "--centre", url, "--token", token, "--session", str(sid),
                "--room", f"{site}/T101", "--view", "front", "--start", START.isoformat()]
        done = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, [*args, "--upload-id", up["id"]]))
        assert done.exit_code == 0, done.output
        assert f"resumed: {5 << 20} bytes were already in storage" in done.output
        assert "stored and verified" in done.output and hashlib.sha256(data).hexdigest() in done.output
        recordings = (await live.client.get(f"/api/v1/sessions/{sid}/recordings", headers=mine)).json()
        assert [(r["size"], r["view"]) for r in recordings] == [(len(data), "front")]
        # the same file again: a new upload, recognised as already stored; no state file left behind
        again = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, args))
        assert again.exit_code == 0 and "already stored" in again.output, again.output
        assert not video.with_name("front.mp4.qbank-upload").exists()
        # bytes that are not video: refused with the centre's reason
        text = tmp_path / "notes.mp4"
        text.write_bytes(b"not a video\n" * 1000)
        refused = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(
            main, [*args[:2], str(text), *args[3:]]))
        assert refused.exit_code == 1 and "not a usable video" in refused.output, refused.output
        # run again: the remembered upload reads as refused, so the site starts a new one (refused afresh)
        assert text.with_name("notes.mp4.qbank-upload").exists()
        again = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, [*args[:2], str(text), *args[3:]]))
        assert again.exit_code == 1 and "not a usable video" in again.output, again.output
        assert "was refused" not in again.output and "start a new upload" not in again.output, again.output
        await analysed(live, recordings[0]["id"], mine)
    finally:
        await live.client.aclose()
        await engine.dispose()
