from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention as S3Retention

from evidence import (
    ArchiveError,
    Deposit,
    DigestMismatch,
    LocalS3Server,
    ObjectLocked,
    ObjectNotFound,
    Retention,
    RetentionArchive,
    RetentionTooShort,
    SourceChanged,
    retain_until_for,
)

EXAM = date(2025, 6, 14)


@pytest.fixture(scope="module")
def archive(s3server: LocalS3Server) -> Iterator[RetentionArchive]:
    a = RetentionArchive(
        s3server.endpoint, s3server.access_key, s3server.secret_key, bucket="evidence-test", part_size=5 << 20
    )
    a.ensure_bucket()
    yield a


def _unique(n: int = 64) -> bytes:
    return uuid.uuid4().bytes + os.urandom(n)


def test_retain_until_is_end_of_exam_day_five_years_on() -> None:
    assert retain_until_for(date(2025, 6, 14)) == datetime(2030, 6, 15, tzinfo=UTC)
    assert retain_until_for(date(2024, 2, 29)) == datetime(2029, 3, 2, tzinfo=UTC)


def test_policy_shorter_than_five_years_refused(s3server: LocalS3Server) -> None:
    with pytest.raises(RetentionTooShort):
        RetentionArchive(s3server.endpoint, s3server.access_key, s3server.secret_key, retention_years=4)


def test_bucket_has_lock_versioning_and_safe_lifecycle(archive: RetentionArchive) -> None:
    c = archive.client
    assert c.get_bucket_versioning(archive.bucket).status == "Enabled"
    c.get_object_lock_config(archive.bucket)  # raises when the bucket has no Object Lock
    rules = c.get_bucket_lifecycle(archive.bucket).rules
    retention_days = (retain_until_for(EXAM).date() - EXAM).days
    for r in rules:
        assert r.expiration is None or r.expiration.days is None, "current versions never expire"
        if r.noncurrent_version_expiration is not None:
            assert r.noncurrent_version_expiration.noncurrent_days > retention_days
    archive.ensure_bucket()  # idempotent


def test_bucket_without_lock_is_refused(s3server: LocalS3Server) -> None:
    c = Minio(s3server.endpoint, s3server.access_key, s3server.secret_key, secure=False)
    if not c.bucket_exists("plain-bucket"):
        c.make_bucket("plain-bucket")
    a = RetentionArchive(s3server.endpoint, s3server.access_key, s3server.secret_key, bucket="plain-bucket")
    with pytest.raises(ArchiveError, match="without Object Lock"):
        a.ensure_bucket()


def test_put_bytes_sets_compliance_retention_digest_and_metadata(archive: RetentionArchive) -> None:
    data = _unique()
    obj = archive.put_bytes(
        "media",
        data,
        exam_date=EXAM,
        content_type="image/png",
        metadata={"item": "T-001", "caption": "示意图"},
        filename="图1.png",
    )
    sha = hashlib.sha256(data).hexdigest()
    assert obj.key == f"media/{sha[:2]}/{sha}"
    assert obj.sha256 == sha and obj.size == len(data) and obj.kind == "media"
    assert obj.mode == "COMPLIANCE" and obj.retain_until == retain_until_for(EXAM)
    assert not obj.legal_hold and not obj.already_stored
    assert obj.metadata["caption"] == "示意图" and obj.metadata["filename"] == "图1.png"
    assert obj.metadata["exam-date"] == "2025-06-14"
    assert obj.content_type == "image/png"
    # the server agrees
    r = archive.client.get_object_retention(archive.bucket, obj.key)
    assert r.mode == COMPLIANCE and r.retain_until_date == retain_until_for(EXAM)
    assert archive.get(obj.key) == data


def test_retention_shorter_than_minimum_refused_and_nothing_stored(archive: RetentionArchive) -> None:
    data = _unique()
    with pytest.raises(RetentionTooShort) as info:
        archive.put_bytes("media", data, exam_date=EXAM, retain_until=datetime(2029, 1, 1, tzinfo=UTC))
    assert info.value.minimum_until == retain_until_for(EXAM)
    assert archive.exists("media", hashlib.sha256(data).hexdigest()) is None


def test_longer_retention_and_legal_hold(archive: RetentionArchive) -> None:
    until = datetime(2099, 1, 1, tzinfo=UTC)
    obj = archive.put_bytes("scans", _unique(), exam_date=EXAM, retain_until=until, legal_hold=True)
    assert obj.retain_until == until and obj.legal_hold
    assert archive.client.is_object_legal_hold_enabled(archive.bucket, obj.key)


def test_same_bytes_stored_twice_recognised_and_retention_only_extended(archive: RetentionArchive) -> None:
    data = _unique()
    first = archive.put_bytes("papers", data, exam_date=EXAM)
    second = archive.put_bytes("papers", data, exam_date=EXAM - timedelta(days=30))  # earlier exam: keep later
    assert second.already_stored and second.key == first.key
    assert second.retain_until == first.retain_until
    third = archive.put_bytes("papers", data, exam_date=EXAM + timedelta(days=400), legal_hold=True)
    assert third.already_stored and third.retain_until == retain_until_for(EXAM + timedelta(days=400))
    assert third.legal_hold
    versions = [
        v
        for v in archive.client.list_objects(archive.bucket, prefix=first.key, include_version=True)
        if v.object_name == first.key
    ]
    assert len(versions) == 1


def test_multipart_file_put_and_download_verified(archive: RetentionArchive, tmp_path: Path) -> None:
    src = tmp_path / "rec.mp4"
    src.write_bytes(os.urandom(12 << 20) + _unique())  # > part size: multipart
    obj = archive.put("recordings", src, exam_date=EXAM, content_type="video/mp4")
    assert obj.size == src.stat().st_size
    assert obj.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert obj.metadata["filename"] == "rec.mp4"
    out = archive.download(obj.key, tmp_path / "back.mp4")
    assert out.read_bytes() == src.read_bytes()
    assert obj.retain_until == retain_until_for(EXAM)


def test_non_seekable_stream_of_unknown_size(archive: RetentionArchive) -> None:
    data = os.urandom(6 << 20) + _unique()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child writes the pipe
        os.close(r)
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb", buffering=0) as stream:
        obj = archive.put("recordings", stream, exam_date=EXAM)
    os.waitpid(pid, 0)
    assert obj.sha256 == hashlib.sha256(data).hexdigest() and obj.size == len(data)


class _Chunks(io.RawIOBase):
    """A non-seekable stream handing out small chunks, like a request body."""

    def __init__(self, data: bytes, chunk: int = 65536) -> None:
        self._data, self._pos, self._chunk = data, 0, chunk

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        size = self._chunk if n is None or n < 0 else min(n, self._chunk)
        out = self._data[self._pos:self._pos + size]
        self._pos += len(out)
        return out


def test_stream_with_known_digest_goes_straight_through_and_is_checked(archive: RetentionArchive) -> None:
    data = os.urandom(20 << 20) + _unique()  # several parts
    right = hashlib.sha256(data).hexdigest()
    seen: list[int] = []
    obj = archive.put("recordings", _Chunks(data), exam_date=EXAM, sha256=right,
                      before_commit=lambda: seen.append(1))
    assert obj.sha256 == right and obj.size == len(data) and seen == [1]
    assert archive.get(obj.key) == data

    other = os.urandom(20 << 20) + _unique()
    with pytest.raises(SourceChanged):  # the claimed digest is not the bytes': nothing locked
        archive.put("recordings", _Chunks(other), exam_date=EXAM, sha256=hashlib.sha256(data + b"x").hexdigest())

    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused("not a video")

    with pytest.raises(Refused):  # a check at the end aborts the upload before it completes
        archive.put("recordings", _Chunks(other), exam_date=EXAM, sha256=hashlib.sha256(other).hexdigest(),
                    before_commit=refuse)
    assert archive.exists("recordings", hashlib.sha256(other).hexdigest()) is None
    uploads = archive.client._list_multipart_uploads(archive.bucket, prefix="recordings/")
    assert not list(uploads.uploads)


def test_declared_size_mismatch_stores_nothing(archive: RetentionArchive) -> None:
    data = _unique()
    with pytest.raises(SourceChanged):
        archive.put("media", io.BytesIO(data), size=len(data) + 1, exam_date=EXAM)
    assert archive.exists("media", hashlib.sha256(data).hexdigest()) is None


def test_source_changed_during_upload_aborts(archive: RetentionArchive, tmp_path: Path) -> None:
    class Mutating(io.BytesIO):
        """Returns other bytes on the second pass (the upload) than on the first (the digest)."""

        passes = 0

        def seek(self, pos: int, whence: int = 0) -> int:
            if pos == 0 and whence == 0:
                self.passes += 1
                if self.passes == 2:  # after the digest pass
                    buf = self.getbuffer()
                    buf[-1] ^= 0xFF
                    del buf
            return super().seek(pos, whence)

    data = os.urandom(7 << 20) + _unique()
    with pytest.raises(SourceChanged):
        archive.put("recordings", Mutating(data), exam_date=EXAM)
    assert archive.exists("recordings", hashlib.sha256(data).hexdigest()) is None
    uploads = archive.client._list_multipart_uploads(archive.bucket, prefix="recordings/")
    assert not list(uploads.uploads)


def test_caller_digest_skips_the_pre_pass_and_is_still_checked(archive: RetentionArchive, tmp_path: Path) -> None:
    data = _unique(4096)
    path = tmp_path / "known.bin"
    path.write_bytes(data)
    right = hashlib.sha256(data).hexdigest()
    stored = archive.put("media", path, exam_date=EXAM, sha256=right)
    assert stored.sha256 == right and archive.get(stored.key) == data
    other = _unique(4096)
    path.write_bytes(other)
    with pytest.raises(SourceChanged):  # a wrong claimed digest never locks mislabelled bytes
        archive.put("media", path, exam_date=EXAM, sha256=right.replace(right[0], "0" if right[0] != "0" else "1"))
    assert archive.exists("media", hashlib.sha256(other).hexdigest()) is None
    with pytest.raises(ValueError, match="64 lowercase hex"):
        archive.put("media", path, exam_date=EXAM, sha256="xyz")


def test_corruption_detected_on_read(archive: RetentionArchive, s3server: LocalS3Server) -> None:
    # an object whose bytes don't match its recorded digest (as if altered on the storage side)
    data = _unique()
    sha = hashlib.sha256(data).hexdigest()
    key = f"media/{sha[:2]}/{sha}"
    c = Minio(s3server.endpoint, s3server.access_key, s3server.secret_key, secure=False)
    c.put_object(archive.bucket, key, io.BytesIO(data[:-1] + b"!"), len(data), metadata={"sha256": sha})
    with pytest.raises(DigestMismatch) as info:
        archive.get(key)
    assert info.value.expected == sha
    with pytest.raises(DigestMismatch), archive.open(key) as r:
        while r.read(7):
            pass


def test_delete_and_shorten_of_locked_object_refused(archive: RetentionArchive) -> None:
    obj = archive.put_bytes("recordings", _unique(), exam_date=EXAM)
    with pytest.raises(ObjectLocked) as info:
        archive.delete(obj.key)
    assert info.value.locked_until == retain_until_for(EXAM)
    assert "2030-06-15" in str(info.value)
    with pytest.raises(ObjectLocked):
        archive.set_retention(obj.key, datetime(2030, 1, 1, tzinfo=UTC))
    longer = archive.set_retention(obj.key, datetime(2031, 1, 1, tzinfo=UTC))
    assert longer.retain_until == datetime(2031, 1, 1, tzinfo=UTC)
    assert archive.get(obj.key)  # still there, no delete marker


def test_seaweedfs_itself_refuses_shorten_and_version_delete(archive: RetentionArchive) -> None:
    """What the server answers when the archive's own checks are bypassed."""
    obj = archive.put_bytes("recordings", _unique(), exam_date=EXAM)
    c = archive.client
    with pytest.raises(S3Error) as e1:
        c.set_object_retention(archive.bucket, obj.key, S3Retention(COMPLIANCE, datetime(2029, 1, 1, tzinfo=UTC)))
    assert e1.value.code == "AccessDenied"
    with pytest.raises(S3Error) as e2:
        c.remove_object(archive.bucket, obj.key, version_id=obj.version_id)
    assert e2.value.code == "AccessDenied"


def test_delete_missing_and_stat_missing(archive: RetentionArchive) -> None:
    with pytest.raises(ObjectNotFound):
        archive.stat("media/00/" + "0" * 64)
    with pytest.raises(ObjectNotFound):
        archive.delete("media/00/" + "0" * 64)


def test_list_for_admin_report(archive: RetentionArchive) -> None:
    obj = archive.put_bytes("reports", _unique(), exam_date=EXAM, legal_hold=True)
    listed = {o.key: o for o in archive.list("reports/")}
    assert obj.key in listed
    assert listed[obj.key].legal_hold and listed[obj.key].retain_until == retain_until_for(EXAM)
    assert listed[obj.key].size == obj.size


def test_presigned_link_short_expiry_public_host(archive: RetentionArchive, s3server: LocalS3Server) -> None:
    data = _unique(1000)
    obj = archive.put_bytes("recordings", data, exam_date=EXAM, content_type="video/mp4")
    url = archive.presigned_get(obj.key)
    assert "X-Amz-Expires=900" in url
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == data
    req = urllib.request.Request(url, headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 206 and resp.read() == data[:10]
    with pytest.raises(ValueError):
        archive.presigned_get(obj.key, timedelta(days=2))
    public = RetentionArchive(
        s3server.endpoint,
        s3server.access_key,
        s3server.secret_key,
        bucket=archive.bucket,
        public_endpoint="video.example.org",
        public_secure=True,
    )
    link = public.presigned_get(obj.key, timedelta(minutes=5), download_name="考场1.mp4")
    assert link.startswith("https://video.example.org/evidence-test/") and "X-Amz-Expires=300" in link


def test_bad_kind_and_metadata_refused(archive: RetentionArchive) -> None:
    with pytest.raises(ValueError):
        archive.put_bytes("Bad/Kind", b"x", exam_date=EXAM)
    with pytest.raises(ValueError):
        archive.put_bytes("media", b"x", exam_date=EXAM, metadata={"sha256": "forged"})


def test_store_takes_a_deposit(archive: RetentionArchive) -> None:
    data = _unique()
    until = datetime(2099, 1, 1, tzinfo=UTC)
    deposit = Deposit(kind="scans", retention=Retention(exam_date=EXAM, retain_until=until, legal_hold=True),
                      content_type="application/pdf", metadata={"category": "签到表"}, filename="sign-in.pdf")
    obj = archive.store(io.BytesIO(data), deposit)
    assert obj.sha256 == hashlib.sha256(data).hexdigest() and obj.kind == "scans"
    assert obj.retain_until == until and obj.legal_hold and obj.content_type == "application/pdf"
    assert obj.metadata["category"] == "签到表" and obj.metadata["filename"] == "sign-in.pdf"
    assert archive.get(obj.key) == data
    with pytest.raises(RetentionTooShort):  # the retention is checked against this archive's policy
        archive.store(io.BytesIO(_unique()), Deposit(kind="scans", retention=Retention(
            exam_date=EXAM, retain_until=datetime(2029, 1, 1, tzinfo=UTC))))


def test_deposit_refuses_bad_fields_before_anything_is_read() -> None:
    with pytest.raises(ValueError, match="kind"):
        Deposit(kind="Bad/Kind")
    with pytest.raises(ValueError, match="reserved"):
        Deposit(kind="media", metadata={"kind": "forged"})
    with pytest.raises(ValueError, match="64 lowercase hex"):
        Deposit(kind="media", sha256="ABC")


def test_malformed_digest_refused_for_a_seekable_stream_too(archive: RetentionArchive) -> None:
    data = _unique()
    with pytest.raises(ValueError, match="64 lowercase hex"):
        archive.put("media", io.BytesIO(data), exam_date=EXAM, sha256="xyz")
    assert archive.exists("media", hashlib.sha256(data).hexdigest()) is None
