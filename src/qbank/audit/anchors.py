"""Anchors: the trail's head (seq, hash, time) signed with the centre's Ed25519 key and kept in the Object Lock
bucket, outside the database, so that rows removed or rewritten before the last anchor are detected even by
someone who can write the database (and even holds the trail key).

An anchor is a small JSON object (``ANCHOR_FORMAT``): ``seq``, ``hash``, ``at``, ``keyed_from`` (the first entry
hashed with the trail key; the entries before it are from before keyed hashes), ``key_id`` (the centre key's id)
and ``signature`` (Ed25519, base64, over the canonical JSON of every other field). It is stored through the
retention archive as kind ``audit-anchor-<key id>-<seq, 12 digits>`` with COMPLIANCE retention for the
retention period, so listing the kind prefix lists every anchor in seq order without reading one, and nothing
the service offers can delete it. Verifying an anchor needs only the centre's public key (``GET
/api/v1/centre-key``): ``qbank audit verify-anchors`` does it offline (:func:`check_offline`)."""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence import RetentionArchive
from paperbuild.sealing import key_id, raw_public
from qbank.lib.digest import canonical_json
from qbank.lib.keys import b64, centre_key
from qbank.settings import Settings

ANCHOR_FORMAT = "qbank-audit-anchor/1"
KIND_PREFIX = "audit-anchor-"


class Anchor(msgspec.Struct, kw_only=True, frozen=True):
    format: str = ANCHOR_FORMAT
    seq: int
    hash: str
    at: datetime
    keyed_from: int
    key_id: str
    signature: str = ""
    object_key: str = ""  # where it is stored (not signed; filled in when read)

    def body(self) -> bytes:
        """What the signature covers."""
        return canonical_json({"format": self.format, "seq": self.seq, "hash": self.hash,
                               "at": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                               "keyed_from": self.keyed_from, "key_id": self.key_id})


class AnchorInvalid(ValueError):
    """An anchor object that is not one the centre signed."""


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The centre's public key as ``GET /api/v1/centre-key`` gives it (raw 32 bytes, base64)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the public key is not base64 (give the raw 32-byte Ed25519 key, base64)") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def read_anchor(data: bytes, public_key: Ed25519PublicKey, object_key: str = "") -> Anchor:
    """The anchor in ``data`` if the centre signed it, else :class:`AnchorInvalid` saying why."""
    try:
        anchor = msgspec.json.decode(data, type=Anchor)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AnchorInvalid(f"{object_key or 'anchor'}: not an anchor ({exc})") from None
    if anchor.format != ANCHOR_FORMAT:
        raise AnchorInvalid(f"{object_key or 'anchor'}: unknown format {anchor.format!r}")
    if anchor.key_id != key_id(raw_public(public_key)):
        raise AnchorInvalid(f"{object_key or 'anchor'}: signed by key {anchor.key_id}, not this centre's key")
    try:
        public_key.verify(base64.b64decode(anchor.signature, validate=True), anchor.body())
    except (InvalidSignature, binascii.Error, ValueError):
        raise AnchorInvalid(f"{object_key or 'anchor'}: the signature does not hold") from None
    return msgspec.structs.replace(anchor, object_key=object_key)


def anchor_kind(centre_key_id: str, seq: int) -> str:
    return f"{KIND_PREFIX}{centre_key_id}-{seq:012d}"


def seq_of(object_key: str) -> int | None:
    """The seq an anchor's object key names (``audit-anchor-<key id>-<seq>/ab/<sha256>``)."""
    kind = object_key.split("/", 1)[0]
    tail = kind.rsplit("-", 1)[-1]
    return int(tail) if kind.startswith(KIND_PREFIX) and tail.isdigit() else None


@dataclass
class AnchorBook:
    """The anchors of this centre key in the evidence archive: list, read (signature checked) and write."""

    archive: RetentionArchive
    settings: Settings
    _names: list[tuple[int, str]] | None = field(default=None, repr=False)

    @property
    def key_id(self) -> str:
        return key_id(raw_public(centre_key(self.settings).public_key()))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return centre_key(self.settings).public_key()

    def _list(self) -> list[tuple[int, str]]:
        prefix = f"{KIND_PREFIX}{self.key_id}-"
        found = []
        for obj in self.archive.client.list_objects(self.archive.bucket, prefix=prefix, recursive=True):
            name = obj.object_name
            seq = seq_of(name) if name and not obj.is_dir else None
            if seq is not None:
                found.append((seq, name))
        return sorted(found)

    async def names(self) -> list[tuple[int, str]]:
        """(seq, object key) of every anchor, in seq order (names only: no object is read)."""
        return await anyio.to_thread.run_sync(self._list)

    async def read(self, object_key: str) -> Anchor:
        data = await anyio.to_thread.run_sync(self.archive.get, object_key)
        return read_anchor(data, self.public_key, object_key)

    def sign(self, seq: int, hash_: str, keyed_from: int, at: datetime | None = None) -> Anchor:
        anchor = Anchor(seq=seq, hash=hash_, at=at or datetime.now(UTC), keyed_from=keyed_from, key_id=self.key_id)
        signature = b64(centre_key(self.settings).sign(anchor.body()))
        return msgspec.structs.replace(anchor, signature=signature)

    async def write(self, seq: int, hash_: str, keyed_from: int) -> Anchor:
        """Sign and store the head (COMPLIANCE retention for the retention period)."""
        anchor = self.sign(seq, hash_, keyed_from)
        data = msgspec.json.encode(msgspec.structs.replace(anchor, object_key=""))

        def put() -> str:
            stored = self.archive.put_bytes(anchor_kind(anchor.key_id, seq), data, content_type="application/json",
                                            metadata={"seq": str(seq)})
            return stored.key

        return msgspec.structs.replace(anchor, object_key=await anyio.to_thread.run_sync(put))


# ------------------------------------------------------------------------------------------- offline check
class OfflineReport(msgspec.Struct, kw_only=True):
    ok: bool
    anchors: int
    last_anchor_seq: int | None
    entries: int | None
    problems: list[str]


def check_offline(anchors: Iterable[tuple[str, bytes]], public_key: Ed25519PublicKey,
                  entries: list[dict[str, Any]] | None) -> OfflineReport:
    """Check anchor objects ``(name, bytes)`` with the centre's public key alone, and, when an exported trail is
    given (``GET /api/v1/audit`` entries: seq, hash, prev_hash), that the trail has every entry from 1 on, each
    linked to the one before, and the anchored hashes at the anchored seqs. (Whether each entry's content matches
    its hash needs the trail key: ``qbank audit verify`` on the centre.)"""
    problems: list[str] = []
    good: list[Anchor] = []
    for name, data in anchors:
        try:
            good.append(read_anchor(data, public_key, name))
        except AnchorInvalid as exc:
            problems.append(str(exc))
    good.sort(key=lambda a: (a.seq, a.at))
    for before, after in itertools.pairwise(good):
        if after.seq == before.seq and after.hash != before.hash:
            problems.append(f"two anchors of entry {after.seq} name different hashes: the trail was rewritten "
                            f"between {before.at.isoformat()} and {after.at.isoformat()}")
        if after.keyed_from != before.keyed_from:
            problems.append(f"anchors disagree on where keyed hashes start ({before.keyed_from} and "
                            f"{after.keyed_from})")
        if after.seq > before.seq and after.at < before.at:
            problems.append(f"the anchor of entry {after.seq} is older than the anchor of entry {before.seq}: "
                            "the trail was cut and grown again")
    count = None
    if entries is not None:
        by_seq: dict[int, dict[str, Any]] = {}
        for n, entry in enumerate(sorted(entries, key=lambda e: int(e["seq"])), start=1):
            if int(entry["seq"]) != n:
                problems.append(f"entry {n} is missing from the trail (next is {entry['seq']})")
                break
            if n > 1 and entry.get("prev_hash") != by_seq[n - 1]["hash"]:
                problems.append(f"entry {n} does not link to entry {n - 1}")
                break
            by_seq[n] = entry
        count = len(entries)
        for anchor in good:
            row = by_seq.get(anchor.seq)
            if row is None:
                problems.append(f"entry {anchor.seq}, anchored at {anchor.at.isoformat()}, is not in the trail: "
                                "rows were removed")
            elif row["hash"] != anchor.hash:
                problems.append(f"entry {anchor.seq} differs from its anchor of {anchor.at.isoformat()}: the trail "
                                f"was rewritten at or before entry {anchor.seq}")
    return OfflineReport(ok=not problems, anchors=len(good), last_anchor_seq=good[-1].seq if good else None,
                         entries=count, problems=problems)
