"""Uploads a client sends straight to storage: parts to the content key (or a staging key when something is stored
there), joined only where nothing is stored, locked in place once checked; unchecked versions are never trusted and
are removed when refused or left behind."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from evidence import STAGING_PREFIX, ArchivedObject, LocalS3Server, ObjectExists, ObjectNotFound, RetentionArchive

EXAM = date(2025, 6, 14)
KIND = "recordings"


@pytest.fixture(scope="module")
def archive(s3server: LocalS3Server) -> Iterator[RetentionArchive]:
    a = RetentionArchive(s3server.endpoint, s3server.access_key, s3server.secret_key, bucket="evidence-staged")
    a.ensure_bucket()
    yield a


def labels(**extra: Any) -> dict[str, Any]:
    return {"exam_date": EXAM, "content_type": "video/mp4", "metadata": {"room": "S1/T101"}, **extra}


def send(archive: RetentionArchive, data: bytes, **extra: Any) -> tuple[str, str, str]:
    """Begin an upload of ``data`` and PUT it as one part through its presigned URL, as a site does; returns the
    key, the upload id and the digest."""
    sha = hashlib.sha256(data).hexdigest()
    key, upload_id = archive.begin_staged(KIND, sha, f"{STAGING_PREFIX}{KIND}/{uuid.uuid4().hex}", **labels(**extra))
    url = archive.presigned_part(key, upload_id, 1, timedelta(minutes=5))
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="PUT")) as r:
        assert r.status == 200
    return key, upload_id, sha


def join(archive: RetentionArchive, key: str, upload_id: str) -> ArchivedObject:
    return archive.complete_staged(key, upload_id, archive.staged_parts(key, upload_id))


def versions(archive: RetentionArchive, key: str) -> list[tuple[str | None, str | None]]:
    return [(v.version_id, archive.stat(key, v.version_id).mode) for v in archive.client.list_objects(
        archive.bucket, prefix=key, include_version=True) if v.object_name == key]


def test_parts_go_to_the_content_key_and_are_locked_in_place(archive: RetentionArchive, tmp_path: Any) -> None:
    data = os.urandom(200_000)
    key, upload_id, sha = send(archive, data, legal_hold=True)
    assert key == archive.key_for(KIND, sha)
    assert archive.exists(KIND, sha) is None  # parts are no object
    joined = join(archive, key, upload_id)
    assert joined.mode is None and not joined.locked_once and joined.size == len(data)
    assert joined.sha256 == sha and joined.metadata == {"room": "S1/T101", "exam-date": "2025-06-14"}
    assert archive.exists(KIND, sha) is None  # joined but not checked: not stored
    assert archive.fetch_staged(joined, tmp_path / "back") == (sha, len(data))
    locked = archive.lock_staged(KIND, joined, sha, **labels(legal_hold=True))
    assert locked.version_id == joined.version_id  # no copy: that very version
    assert locked.mode == "COMPLIANCE" and locked.legal_hold and locked.retain_until is not None
    assert locked.metadata == joined.metadata and not locked.already_stored
    assert archive.exists(KIND, sha) == archive.stat(key)
    assert archive.get(key) == data


def test_a_stored_key_gets_a_staging_key_and_is_never_shadowed(archive: RetentionArchive) -> None:
    data = os.urandom(50_000)
    stored = archive.put_bytes(KIND, data, **labels())
    key, upload_id, sha = send(archive, data)
    assert key.startswith(STAGING_PREFIX)
    joined = join(archive, key, upload_id)
    assert archive.stat(stored.key).version_id == stored.version_id
    locked = archive.lock_staged(KIND, joined, sha, **labels())
    assert locked.already_stored and locked.version_id == stored.version_id
    assert versions(archive, stored.key) == [(stored.version_id, "COMPLIANCE")]
    assert versions(archive, key) == []


def test_nothing_is_joined_over_what_was_stored_meanwhile(archive: RetentionArchive) -> None:
    data = os.urandom(50_000)
    key, upload_id, _ = send(archive, data)
    stored = archive.put_bytes(KIND, data, **labels())  # another upload of the same bytes finished first
    assert stored.key == key
    with pytest.raises(ObjectExists):
        join(archive, key, upload_id)
    archive.discard_staged(key, upload_id)
    with pytest.raises(ObjectNotFound):
        archive.staged_parts(key, upload_id)
    assert versions(archive, key) == [(stored.version_id, "COMPLIANCE")]


def test_a_refused_version_is_removed_and_a_locked_one_never(archive: RetentionArchive) -> None:
    key, upload_id, _ = send(archive, os.urandom(30_000))
    joined = join(archive, key, upload_id)
    archive.discard_staged(key, upload_id, joined.version_id)
    assert versions(archive, key) == []
    data = os.urandom(30_000)
    stored = archive.put_bytes(KIND, data, **labels())
    archive.discard_staged(stored.key, None, stored.version_id)  # locked: kept (and never asked to go)
    assert versions(archive, stored.key) == [(stored.version_id, "COMPLIANCE")]


def test_unchecked_bytes_are_never_taken_for_the_claimed_ones(archive: RetentionArchive) -> None:
    """Junk sent under another file's digest, joined and left unlocked (a killed service): a put of the real bytes
    stores them anew on top, and the leftover is removed once old enough."""
    real = os.urandom(40_000)
    sha = hashlib.sha256(real).hexdigest()
    key, upload_id = archive.begin_staged(KIND, sha, f"{STAGING_PREFIX}{KIND}/{uuid.uuid4().hex}", **labels())
    url = archive.presigned_part(key, upload_id, 1, timedelta(minutes=5))
    with urllib.request.urlopen(urllib.request.Request(url, data=b"junk" * 100, method="PUT")):
        pass
    junk = join(archive, key, upload_id)
    assert junk.sha256 == sha and archive.exists(KIND, sha) is None
    stored = archive.put_bytes(KIND, real, **labels())
    assert not stored.already_stored and stored.mode == "COMPLIANCE" and archive.get(key) == real
    assert archive.remove_unlocked_versions(key, timedelta(hours=1)) == (0, 0)  # may be being checked right now
    assert archive.remove_unlocked_versions(key, timedelta(0)) == (1, 400)
    assert versions(archive, key) == [(stored.version_id, "COMPLIANCE")]
    with pytest.raises(ValueError, match="neither the content key"):
        archive.lock_staged(KIND, junk, hashlib.sha256(b"junk" * 100).hexdigest(), **labels())
