"""Recordings through the service: streamed upload, analysis jobs, the session's video audit, links."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import httpx
import pytest
from click.testing import CliRunner

from qbank.server.cli import main
from tests.qbank.helpers import Api, make_bank, make_site, site_headers
from tests.videoaudit.clips import defects_clip

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 3, 9, 0, tzinfo=TZ)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("service-clips")
    clean = defects_clip(d / "clean.mp4", duration=60, black=None, frozen=None, blurred=None, covered=None,
                         still=(20.0, 40.0))
    black = defects_clip(d / "black.mp4", duration=60, black=(10.0, 20.0), frozen=None, blurred=None, covered=None,
                         still=None)
    truncated = d / "truncated.mp4"  # its index (at the start) survives: the claimed length is known
    data = clean.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    blurred = defects_clip(d / "blurred.mp4", duration=60, black=None, frozen=None, blurred=(10.0, 20.0),
                           covered=None, still=None)
    small = defects_clip(d / "small.mp4", duration=60, black=None, frozen=None, blurred=None, covered=None,
                         still=None, size="320x180")  # below the tests' minimum height (240)
    moov_last = d / "moov-last.mp4"  # the index at the end, then cut off: the length is unknown
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clean), "-c", "copy", str(moov_last)], check=True)
    no_index = d / "no-index.mp4"
    no_index.write_bytes(moov_last.read_bytes()[: moov_last.stat().st_size // 2])
    text = d / "notes.mp4"
    text.write_bytes("这不是视频\n".encode() * 100)
    return {"clean": clean, "black": black, "truncated": truncated, "text": text, "blurred": blurred,
            "small": small, "no_index": no_index}


async def wait_analysed(api: Api, recording_id: int, headers: dict[str, str], timeout: float = 90) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.client.get(f"/api/v1/recordings/{recording_id}", headers=headers)
        rec = r.json()
        if rec["status"] in ("analysed", "corrupt"):
            return rec  # type: ignore[no-any-return]
        assert loop.time() < deadline, rec
        await asyncio.sleep(0.2)


async def upload(api: Api, session_id: int, headers: dict[str, str], room: str, view: str, start: datetime,
                 path: Path, sha256: str | None = None) -> httpx.Response:
    extra = {"Content-Type": "video/mp4"} | ({"X-Content-SHA256": sha256} if sha256 else {})
    return await api.client.post(f"/api/v1/sessions/{session_id}/recordings",
                                 params={"room": room, "view": view, "start": start.isoformat()},
                                 content=path.read_bytes(), headers=headers | extra)


async def make_session(api: Api, site: str) -> int:
    bank = await make_bank(api)
    body = {"occupation_code": bank.occupation, "level": 3, "title": "录像审核", "date": "2026-12-03",
            "start": "09:00:00", "end": "09:02:00", "rooms": [
                {"site": site, "code": "T101", "kind": "theory", "desks": 2, "camera_views": ["front", "back"]},
                {"site": site, "code": "P201", "kind": "practical", "desks": 1, "camera_views": ["wide"]}]}
    r = await api.client.post("/api/v1/sessions", json=body, headers=await api.admin())
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_upload_analyse_and_audit_a_session(api: Api, clips: dict[str, Path]) -> None:
    site = await make_site(api)
    session_id = await make_session(api, site)
    mine = await site_headers(api, site)
    room = f"{site}/T101"
    r = await upload(api, session_id, mine, room, "front", START, clips["clean"])
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["job_id"] and first["status"] in ("uploaded", "analysing", "analysed")
    r2 = await upload(api, session_id, mine, room, "front", START + timedelta(seconds=60), clips["black"])
    r3 = await upload(api, session_id, mine, room, "back", START, clips["clean"])
    assert r2.status_code == 201 and r3.status_code == 201
    for rec in (first, r2.json(), r3.json()):
        done = await wait_analysed(api, rec["id"], mine)
        assert done["status"] == "analysed" and done["has_contact_sheet"], done
    black = await wait_analysed(api, r2.json()["id"], mine)
    assert [f["kind"] for f in black["findings"]] == ["black"]
    assert abs(black["findings"][0]["start"] - 10) <= 2 and abs(black["findings"][0]["end"] - 20) <= 2

    supervisor = await api.headers("supervisor", "督导员")
    r = await api.client.get(f"/api/v1/sessions/{session_id}/video-audit", headers=supervisor)
    assert r.status_code == 200, r.text
    audit = r.json()
    assert audit["passes"] is False and audit["pending"] == []
    views = {(room_["room"], v["view"]): v for room_ in audit["report"]["rooms"] for v in room_["views"]}
    front, back, wide = views[(room, "front")], views[(room, "back")], views[(f"{site}/P201", "wide")]
    assert front["gaps"] == [] and len(front["unusable"]) == 1
    unusable = front["unusable"][0]
    assert unusable["reason"] == "black"
    black_start = datetime.fromisoformat(unusable["start"]) - START
    assert abs(black_start.total_seconds() - 70) <= 2
    assert len(back["gaps"]) == 1
    gap = back["gaps"][0]
    assert abs((datetime.fromisoformat(gap["start"]) - START).total_seconds() - 60) <= 1
    assert datetime.fromisoformat(gap["end"]) == START + timedelta(seconds=120)
    assert wide["covered"] == [] and wide["passes"] is False
    assert any("no recording" in reason for reason in audit["reasons"])
    assert any(reason.startswith(f"{room} back: gap 09:01:00") for reason in audit["reasons"]), audit["reasons"]

    # the same bytes again are recognised, not stored twice
    again = await upload(api, session_id, mine, room, "front", START, clips["clean"])
    assert again.status_code == 200 and again.json()["already_stored"] is True and again.json()["id"] == first["id"]
    listing = await api.client.get(f"/api/v1/sessions/{session_id}/recordings", headers=supervisor)
    assert len(listing.json()) == 3

    # a supervisor plays it over a presigned link (range requests work), and the link is in the trail
    r = await api.client.get(f"/api/v1/recordings/{first['id']}/link", headers=supervisor)
    assert r.status_code == 200
    async with httpx.AsyncClient() as s3:
        part = await s3.get(r.json()["url"], headers={"Range": "bytes=0-1023"})
        assert part.status_code == 206 and len(part.content) == 1024
        sheet = await api.client.get(f"/api/v1/recordings/{first['id']}/contact-sheet", headers=supervisor)
        jpeg = await s3.get(sheet.json()["url"])
        assert jpeg.content[:3] == b"\xff\xd8\xff"
    trail = await api.client.get("/api/v1/audit", params={"entity_type": "recording", "entity_id": str(first["id"])},
                                 headers=await api.admin())
    assert [e["action"] for e in trail.json()["items"]] == ["recording.upload", "recording.link"]

    # the CLI prints the same verdict, with a timeline per room and view
    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_TOKEN_SECRET": "test-token-secret"}
    result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, ["video-audit", str(session_id),
                                                                              "--width", "40"], env=env))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "verdict: FAIL" in lines
    front_line = next(line for line in lines if f"{room}" in line and " front " in line)
    back_line = next(line for line in lines if f"{room}" in line and " back " in line)
    bar = front_line.split("|")[1]
    assert len(bar) == 40 and bar[0] == "█" and "▒" in bar[22:25]  # black at 70–80 s of 120 s
    assert back_line.split("|")[1][20:] == "·" * 20  # the gap is the second minute


async def test_bad_uploads_change_nothing(api: Api, clips: dict[str, Path]) -> None:
    site, other = await make_site(api), await make_site(api)
    session_id = await make_session(api, site)
    mine, theirs = await site_headers(api, site), await site_headers(api, other)
    room = f"{site}/T101"

    async def count() -> int:
        r = await api.client.get(f"/api/v1/sessions/{session_id}/recordings", headers=await api.admin())
        return len(r.json())

    cases = [
        (mine, f"{site}/X999", "front", START, clips["clean"], 400, "not in session"),
        (mine, room, "ceiling", START, clips["clean"], 400, "no camera view"),
        (mine, room, "front", START - timedelta(hours=5), clips["clean"], 400, "far outside the exam window"),
        (mine, room, "front", START, clips["text"], 415, "not a usable video"),
        (theirs, room, "front", START, clips["clean"], 403, ""),
    ]
    for headers, room_ref, view, start, path, status, words in cases:
        r = await upload(api, session_id, headers, room_ref, view, start, path)
        assert r.status_code == status, (room_ref, view, r.text)
        assert words in r.json()["detail"]
    assert await count() == 0

    # a truncated file is stored (never dropped), analysed for the part that decodes, and ends corrupt
    r = await upload(api, session_id, mine, room, "front", START, clips["truncated"])
    assert r.status_code == 201, r.text
    assert r.json()["corrupt_reason"].startswith("truncated:") and r.json()["job_id"]
    assert await count() == 1
    rec_id = r.json()["id"]
    assert (await wait_analysed(api, rec_id, mine))["status"] == "corrupt"
    assert (await api.client.get(f"/api/v1/recordings/{rec_id}", headers=theirs)).status_code == 403
    bank = await make_bank(api)
    author = await api.headers("author", "命题人", (bank.occupation,))
    assert (await api.client.get(f"/api/v1/recordings/{rec_id}", headers=author)).status_code == 403


async def test_streamed_through_with_a_declared_digest(api: Api, clips: dict[str, Path]) -> None:
    """With X-Content-SHA256 the body goes to the archive while it arrives; bad bytes still store nothing."""
    import hashlib

    site = await make_site(api)
    session_id = await make_session(api, site)
    mine = await site_headers(api, site)
    room = f"{site}/T101"
    archive = api.app.state.store.archive
    black = clips["black"].read_bytes()
    digest = hashlib.sha256(black).hexdigest()
    r = await upload(api, session_id, mine, room, "back", START, clips["black"], sha256=digest)
    assert r.status_code == 201, r.text
    rec = await wait_analysed(api, r.json()["id"], mine)
    assert rec["status"] == "analysed" and rec["sha256"] == digest and [f["kind"] for f in rec["findings"]] == ["black"]
    stored = await anyio.to_thread.run_sync(archive.stat, f"recordings/{digest[:2]}/{digest}")
    assert stored.sha256 == digest and stored.size == len(black) and stored.retain_until is not None
    # the same bytes for another room: the archive has them, the service checks the body against the claim itself
    r = await upload(api, session_id, mine, f"{site}/P201", "wide", START, clips["black"], sha256=digest)
    assert r.status_code == 201 and r.json()["sha256"] == digest, r.text
    r = await upload(api, session_id, mine, f"{site}/P201", "wide", START + timedelta(seconds=60), clips["clean"],
                     sha256=digest)
    assert r.status_code == 400 and "do not have the claimed SHA-256" in r.json()["detail"], r.text
    r = await upload(api, session_id, mine, room, "front", START, clips["clean"], sha256=digest)  # archive has it
    assert r.status_code == 400 and "do not have the claimed SHA-256" in r.json()["detail"], r.text

    clean = clips["clean"].read_bytes()
    wrong = hashlib.sha256(clean + b"!").hexdigest()
    r = await upload(api, session_id, mine, room, "front", START, clips["clean"], sha256=wrong)
    assert r.status_code == 400 and "do not have the claimed SHA-256" in r.json()["detail"], r.text
    text = clips["text"].read_bytes()
    r = await upload(api, session_id, mine, room, "front", START, clips["text"],
                     sha256=hashlib.sha256(text).hexdigest())
    assert r.status_code == 415, r.text
    for key in (wrong, hashlib.sha256(text).hexdigest()):  # nothing locked under either claimed key
        assert await anyio.to_thread.run_sync(archive.exists, "recordings", key) is None
    listing = await api.client.get(f"/api/v1/sessions/{session_id}/recordings", headers=mine)
    assert [x["view"] for x in listing.json()] == ["back", "wide"]
    r = await upload(api, session_id, mine, room, "front", START, clips["truncated"],
                     sha256=hashlib.sha256(clips["truncated"].read_bytes()).hexdigest())
    assert r.status_code == 201 and r.json()["corrupt_reason"].startswith("truncated:"), r.text  # kept


async def test_same_bytes_with_another_start_are_refused(api: Api, clips: dict[str, Path]) -> None:
    """A recording has one start: the same bytes claiming another start are a 409 naming the stored start."""
    import hashlib

    site = await make_site(api)
    session_id = await make_session(api, site)
    mine = await site_headers(api, site)
    room = f"{site}/T101"
    r = await upload(api, session_id, mine, room, "front", START, clips["clean"])
    assert r.status_code == 201, r.text
    first = r.json()
    digest = hashlib.sha256(clips["clean"].read_bytes()).hexdigest()
    for sha256 in (None, digest):  # spooled, and streamed through with a declared digest
        r = await upload(api, session_id, mine, room, "front", START + timedelta(seconds=30), clips["clean"], sha256)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert "2026-12-03T09:00:00+08:00" in problem["detail"] and "09:00:30" in problem["detail"], problem
        assert problem["extra"]["stored_start"] == "2026-12-03T09:00:00+08:00"
        same = await upload(api, session_id, mine, room, "front", START, clips["clean"], sha256)
        assert same.status_code == 200 and same.json()["already_stored"] is True, same.text
        assert same.json()["id"] == first["id"]
    listing = await api.client.get(f"/api/v1/sessions/{session_id}/recordings", headers=mine)
    assert [x["claimed_start"] for x in listing.json()] == [first["claimed_start"]]


async def test_no_server_paths_in_recording_errors(api: Api, clips: dict[str, Path]) -> None:
    """Refusals, corrupt reasons and the video audit never show where the server keeps its files."""
    import hashlib

    settings = api.app.state.settings
    hidden = [str(settings.data_dir), str(settings.data_dir / "spool"), "upload-"]
    site = await make_site(api)
    session_id = await make_session(api, site)
    mine = await site_headers(api, site)
    room = f"{site}/T101"
    answers = []
    for sha256 in (None, hashlib.sha256(clips["text"].read_bytes()).hexdigest()):
        r = await upload(api, session_id, mine, room, "front", START, clips["text"], sha256)
        assert r.status_code == 415, r.text
        answers.append(r.text)
    r = await upload(api, session_id, mine, room, "front", START, clips["truncated"])
    assert r.status_code == 201 and r.json()["corrupt_reason"].startswith("truncated: file is truncated"), r.text
    answers.append(r.text)
    supervisor = await api.headers("supervisor", "督导员")
    for url in (f"/api/v1/recordings/{r.json()['id']}", f"/api/v1/sessions/{session_id}/recordings",
                f"/api/v1/sessions/{session_id}/video-audit"):
        answers.append((await api.client.get(url, headers=supervisor)).text)
    for text in answers:
        for path in hidden:
            assert path not in text, (path, text)


async def test_every_file_in_the_audit_with_separate_findings(api: Api, clips: dict[str, Path]) -> None:
    """Issue 13: findings stay separate (kind, start, end each) through the API and the CLI; a truncated file is in
    the audit with the part that decodes and "corrupt from …"; a file of unknown length, recordings outside the
    window and format minimums are named in the reasons."""
    site = await make_site(api)
    session_id = await make_session(api, site)  # 09:00–09:02
    mine = await site_headers(api, site)
    t101, p201 = f"{site}/T101", f"{site}/P201"
    uploads = {
        "black": (t101, "front", START, clips["black"]),  # black 10–20 s
        "blurred": (t101, "front", START, clips["blurred"]),  # blurred 10–20 s: overlaps the black stretch
        "truncated": (t101, "back", START, clips["truncated"]),  # 60 s claimed, about half decodes
        "no_index": (p201, "wide", START, clips["no_index"]),  # corrupt, length unknown
        "outside": (p201, "wide", START - timedelta(minutes=30), clips["small"]),  # 08:30–08:31
        "partly": (p201, "wide", START + timedelta(seconds=90), clips["clean"]),  # 09:01:30–09:02:30
    }
    ids: dict[str, int] = {}
    for name, (room, view, start, path) in uploads.items():
        r = await upload(api, session_id, mine, room, view, start, path)
        assert r.status_code == 201, (name, r.text)
        ids[name] = r.json()["id"]
    done = {name: await wait_analysed(api, rec_id, mine) for name, rec_id in ids.items()}

    # the recording's analysis: picture findings with their own times, format minimums apart
    black = done["black"]["findings"]
    assert [f["kind"] for f in black] == ["black"] and abs(black[0]["start"] - 10) <= 2 and \
        abs(black[0]["end"] - 20) <= 2, black
    assert done["black"]["recording_findings"] == [] and done["black"]["decodable"] is None
    assert [f["kind"] for f in done["outside"]["recording_findings"]] == ["low_resolution"]
    assert done["outside"]["findings"] == []
    trunc = done["truncated"]
    assert trunc["status"] == "corrupt" and trunc["corrupt_reason"].startswith("truncated:")
    assert trunc["decodable"] is not None and 5 < trunc["decodable"] < 55, trunc
    assert abs(trunc["duration"] - 60) <= 1, trunc
    corrupt = [f for f in trunc["findings"] if f["kind"] == "corrupt"]
    assert len(corrupt) == 1 and abs(corrupt[0]["start"] - trunc["decodable"]) <= 1 and abs(corrupt[0]["end"] - 60) <= 1
    assert done["no_index"]["status"] == "corrupt" and done["no_index"]["duration"] is None

    supervisor = await api.headers("supervisor", "督导员")
    audit = (await api.client.get(f"/api/v1/sessions/{session_id}/video-audit", headers=supervisor)).json()
    assert audit["passes"] is False and audit["pending"] == []
    views = {(room_["room"], v["view"]): v for room_ in audit["report"]["rooms"] for v in room_["views"]}
    front, back, wide = views[(t101, "front")], views[(t101, "back")], views[(p201, "wide")]

    def secs(at: str) -> float:
        return (datetime.fromisoformat(at) - START).total_seconds()

    # two kinds over the same stretch: two findings, each its kind, times and recording; the union for the verdict
    found = sorted((f["kind"], f["recording"]) for f in front["findings"])
    assert found == [("black", str(ids["black"])), ("blurred", str(ids["blurred"]))], front["findings"]
    for f in front["findings"]:
        assert abs(secs(f["start"]) - 10) <= 2 and abs(secs(f["end"]) - 20) <= 2, f
    assert [u["reason"] for u in front["unusable"]] == ["black,blurred"]
    # the truncated file: placed over the span it claims; what decodes counts, "corrupt" from there
    assert [f["kind"] for f in back["findings"]] == ["corrupt"]
    assert abs(secs(back["findings"][0]["start"]) - trunc["decodable"]) <= 1
    assert abs(secs(back["findings"][0]["end"]) - 60) <= 1
    assert abs(secs(back["covered"][0]["end"]) - 60) <= 1 and back["usable"]
    assert {"recording": str(ids["truncated"]), "kind": "corrupt"}.items() <= back["recording_notes"][0].items()
    # the file of unknown length, outside and partly outside the window
    assert wide["unplaced"] == [str(ids["no_index"])]
    assert wide["outside"] == [str(ids["outside"])] and wide["extends_outside"] == [str(ids["partly"])]
    assert {(n["recording"], n["kind"]) for n in wide["recording_notes"]} >= {
        (str(ids["outside"]), "low_resolution"), (str(ids["no_index"]), "corrupt")}

    reasons = audit["reasons"]
    text = "\n".join(reasons)
    assert any(r.startswith(f"{t101} front: ") and "black 09:00:" in r and "blurred 09:00:" in r for r in reasons), \
        reasons
    assert any("corrupt from" in r and f"(recording {ids['truncated']}: truncated)" in r for r in reasons), reasons
    assert f"{p201}: recording {ids['outside']} (wide, 08:30:00–08:31:00) lies outside the session window " \
           "09:00:00–09:02:00" in reasons, reasons
    assert any(r.startswith(f"{p201}: recording {ids['partly']} (wide, 09:01:30–09:02:30) lies partly outside")
               and r.endswith("only 09:01:30–09:02:00 counts") for r in reasons), reasons
    assert any(f"recording {ids['no_index']} (wide) is corrupt and its length is unknown" in r for r in reasons)
    assert any(f"recording {ids['outside']} (wide): resolution too low" in r for r in reasons), reasons
    assert "low_resolution" not in text and "black,blurred" not in text

    # the CLI: one row per kind under each view's timeline, notes beside it
    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_TOKEN_SECRET": "test-token-secret"}
    result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, ["video-audit", str(session_id),
                                                                              "--width", "60"], env=env))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if t101 in line and " front " in line)
    rows = {line.split("|")[0].strip(): line.split("|")[1] for line in lines[start + 1:start + 3]}
    assert set(rows) == {"black", "blurred"}, lines
    assert all(row[4:6] == "▒▒" and row[:4].strip() == "" for row in rows.values()), rows  # 10–20 s of 120 s
    back_at = next(i for i, line in enumerate(lines) if t101 in line and " back " in line)
    corrupt_row = lines[back_at + 1]
    assert corrupt_row.split("|")[0].strip() == "corrupt file" and "×" in corrupt_row.split("|")[1][10:30]
    assert any(f"note: recording {ids['outside']} resolution too low" in line for line in lines), lines
    assert any(f"note: recording {ids['no_index']} is corrupt, its length unknown" in line for line in lines)
