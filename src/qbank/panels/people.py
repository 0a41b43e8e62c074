"""Evaluators, supervisors, conflicts, panels and draws (§17(三)(四), §20, §26, §30(八)).

Id numbers: AES-256-GCM under a key derived (HKDF-SHA256) from ``settings.token_secret``; a second derived key
gives an HMAC that finds a second record of the same person without decrypting anything. Changing the token
secret makes stored id numbers unreadable (masked copies stay), so keep it with the database backups.

The solver is :mod:`paperbuild.panels`; people are ``e<id>`` (evaluators), ``s<id>`` (internal supervisors, or
their evaluator's ``e<id>`` when they are the same person) and candidates ``c<id>``; the institution of a room
(for the ⌈n/3⌉ rotation) is its test site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import defaultdict

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.db import get_or_404, utcnow
from qbank.lib.actors import Actor
from qbank.lib.problems import bad_request, conflict
from qbank.panels.models import (
    Evaluator,
    EvaluatorCertificate,
    PanelConflict,
    Supervisor,
)
from qbank.panels.schemas import (
    CertificateIn,
    ConflictIn,
    ConflictOut,
    EvaluatorIn,
    EvaluatorOut,
    EvaluatorPatch,
    SupervisorIn,
    SupervisorOut,
    SupervisorPatch,
)
from qbank.sessions.models import Candidate
from qbank.settings import Settings


# ---------------------------------------------------------------------------------------------- id numbers
def _derived(settings: Settings, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qbank-evaluator-id", info=purpose).derive(
        settings.token_secret.encode())


_AAD = b"qbank evaluator id number v1"


def id_number_ok(value: str) -> bool:
    """ISO 7064 MOD 11-2 checksum of an 18-character resident identity number."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    if len(value) != 18 or not value[:17].isdigit():
        return False
    check = "10X98765432"[sum(int(d) * w for d, w in zip(value[:17], weights, strict=True)) % 11]
    return value[17].upper() == check


def encrypt_id(settings: Settings, value: str) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(_derived(settings, b"encrypt")).encrypt(nonce, value.encode(), _AAD)
    return "v1:" + base64.b64encode(nonce + ct).decode()


def decrypt_id(settings: Settings, stored: str) -> str:
    raw = base64.b64decode(stored.removeprefix("v1:"))
    return AESGCM(_derived(settings, b"encrypt")).decrypt(raw[:12], raw[12:], _AAD).decode()


def id_hmac(settings: Settings, value: str) -> str:
    return hmac.new(_derived(settings, b"lookup"), value.upper().encode(), hashlib.sha256).hexdigest()


def mask_id(value: str) -> str:
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


# ---------------------------------------------------------------------------------------------- evaluators
def _cert_out(c: EvaluatorCertificate) -> CertificateIn:
    return CertificateIn(occupation_code=c.occupation_code, level=c.level, valid_until=c.valid_until, number=c.number)


async def certificates_of(db: AsyncSession, evaluator_ids: list[int]) -> dict[int, list[EvaluatorCertificate]]:
    out: dict[int, list[EvaluatorCertificate]] = defaultdict(list)
    if evaluator_ids:
        rows = (await db.scalars(select(EvaluatorCertificate).where(
            EvaluatorCertificate.evaluator_id.in_(evaluator_ids)).order_by(EvaluatorCertificate.id))).all()
        for c in rows:
            out[c.evaluator_id].append(c)
    return out


async def evaluator_out(db: AsyncSession, row: Evaluator) -> EvaluatorOut:
    certs = (await certificates_of(db, [row.id]))[row.id]
    return EvaluatorOut(id=row.id, name=row.name, id_number=row.id_number_masked, employer=row.employer,
                        certificates=[_cert_out(c) for c in certs], integrity_notes=row.integrity_notes,
                        barred=row.barred, created_at=row.created_at, updated_at=row.updated_at)


def _check_certs(certs: list[CertificateIn], field: str = "certificates") -> None:
    seen: set[tuple[str, int]] = set()
    for i, c in enumerate(certs):
        if (c.occupation_code, c.level) in seen:
            raise bad_request(f"{field}[{i}]", f"occupation {c.occupation_code} level {c.level} is listed twice")
        seen.add((c.occupation_code, c.level))


async def create_evaluator(db: AsyncSession, settings: Settings, actor: Actor, data: EvaluatorIn) -> Evaluator:
    number = data.id_number.upper()
    if not id_number_ok(number):
        raise bad_request("id_number", "the check character does not match (GB 11643, ISO 7064 MOD 11-2)")
    _check_certs(data.certificates)
    digest = id_hmac(settings, number)
    existing = await db.scalar(select(Evaluator.id).where(Evaluator.id_number_hmac == digest))
    if existing is not None:
        raise conflict(f"an evaluator with this id number already exists (evaluator {existing})", evaluator=existing)
    row = Evaluator(name=data.name.strip(), id_number_enc=encrypt_id(settings, number), id_number_hmac=digest,
                    id_number_masked=mask_id(number), employer=data.employer, integrity_notes=data.integrity_notes,
                    barred=data.barred, created_by=actor.label)
    db.add(row)
    await db.flush()
    db.add_all(EvaluatorCertificate(evaluator_id=row.id, occupation_code=c.occupation_code, level=c.level,
                                    valid_until=c.valid_until, number=c.number) for c in data.certificates)
    await db.flush()
    return row


async def get_evaluator(db: AsyncSession, evaluator_id: int) -> Evaluator:
    row = await get_or_404(db, Evaluator, evaluator_id, "evaluator")
    return row


async def patch_evaluator(db: AsyncSession, row: Evaluator, data: EvaluatorPatch) -> None:
    if data.name is not None:
        row.name = data.name.strip()
    if data.employer is not None:
        row.employer = data.employer
    if data.integrity_notes is not None:
        row.integrity_notes = data.integrity_notes
    if data.barred is not None:
        row.barred = data.barred
    if data.certificates is not None:
        _check_certs(data.certificates)
        await db.execute(delete(EvaluatorCertificate).where(EvaluatorCertificate.evaluator_id == row.id))
        db.add_all(EvaluatorCertificate(evaluator_id=row.id, occupation_code=c.occupation_code, level=c.level,
                                        valid_until=c.valid_until, number=c.number) for c in data.certificates)
    row.updated_at = utcnow()
    await db.flush()


# --------------------------------------------------------------------------------------------- supervisors
def supervisor_out(row: Supervisor) -> SupervisorOut:
    return SupervisorOut(id=row.id, kind=row.kind, name=row.name, organisation=row.organisation,  # type: ignore[arg-type]
                         evaluator_id=row.evaluator_id, active=row.active, created_at=row.created_at)


async def create_supervisor(db: AsyncSession, actor: Actor, data: SupervisorIn) -> Supervisor:
    if data.evaluator_id is not None:
        if data.kind != "internal":
            raise bad_request("evaluator_id", "only an internal supervisor (staff) may also be an evaluator here")
        await get_evaluator(db, data.evaluator_id)
    row = Supervisor(kind=data.kind, name=data.name.strip(), organisation=data.organisation,
                     evaluator_id=data.evaluator_id, active=data.active, created_by=actor.label)
    db.add(row)
    await db.flush()
    return row


async def get_supervisor(db: AsyncSession, supervisor_id: int) -> Supervisor:
    row = await get_or_404(db, Supervisor, supervisor_id, "supervisor")
    return row


def patch_supervisor(row: Supervisor, data: SupervisorPatch) -> None:
    if data.name is not None:
        row.name = data.name.strip()
    if data.organisation is not None:
        row.organisation = data.organisation
    if data.active is not None:
        row.active = data.active


# ----------------------------------------------------------------------------------------------- conflicts
async def create_conflict(db: AsyncSession, actor: Actor, data: ConflictIn) -> tuple[PanelConflict, Candidate]:
    if (data.evaluator_id is None) == (data.supervisor_id is None):
        raise bad_request("evaluator_id", "name exactly one of evaluator_id and supervisor_id")
    if data.evaluator_id is not None:
        await get_evaluator(db, data.evaluator_id)
    if data.supervisor_id is not None:
        await get_supervisor(db, data.supervisor_id)
    cand = await db.scalar(select(Candidate).where(Candidate.session_id == data.session_id,
                                                   Candidate.number == data.candidate))
    if cand is None:
        raise bad_request("candidate", f"candidate {data.candidate} is not in session {data.session_id}", 404)
    dup = await db.scalar(select(PanelConflict.id).where(
        PanelConflict.candidate_id == cand.id, PanelConflict.evaluator_id == data.evaluator_id
        if data.evaluator_id is not None else PanelConflict.evaluator_id.is_(None),
        PanelConflict.supervisor_id == data.supervisor_id
        if data.supervisor_id is not None else PanelConflict.supervisor_id.is_(None)))
    if dup is not None:
        raise conflict(f"this conflict is already recorded (conflict {dup})", conflict_id=dup)
    row = PanelConflict(evaluator_id=data.evaluator_id, supervisor_id=data.supervisor_id, candidate_id=cand.id,
                        kind=data.kind, note=data.note, created_by=actor.label)
    db.add(row)
    await db.flush()
    return row, cand


def conflict_out(row: PanelConflict, cand: Candidate) -> ConflictOut:
    return ConflictOut(id=row.id, evaluator_id=row.evaluator_id, supervisor_id=row.supervisor_id,
                       session_id=cand.session_id, candidate=cand.number, kind=row.kind, note=row.note,
                       created_at=row.created_at)


# ----------------------------------------------------------------------------------------------- use cases
async def register_evaluator(db: AsyncSession, settings: Settings, actor: Actor, data: EvaluatorIn) -> EvaluatorOut:
    row = await create_evaluator(db, settings, actor, data)
    out = await evaluator_out(db, row)
    await record(db, actor, "evaluator.create", "evaluator", row.id, after=out)
    return out


async def list_evaluators(db: AsyncSession, occupation: str | None, barred: bool | None,
                          limit: int = 2000) -> list[EvaluatorOut]:
    query = select(Evaluator).order_by(Evaluator.id)
    if occupation is not None:
        query = query.where(Evaluator.id.in_(select(EvaluatorCertificate.evaluator_id).where(
            EvaluatorCertificate.occupation_code == occupation)))
    if barred is not None:
        query = query.where(Evaluator.barred.is_(barred))
    rows = (await db.scalars(query.limit(limit))).all()
    return [await evaluator_out(db, r) for r in rows]


async def change_evaluator(db: AsyncSession, actor: Actor, evaluator_id: int, data: EvaluatorPatch) -> EvaluatorOut:
    row = await get_evaluator(db, evaluator_id)
    before = await evaluator_out(db, row)
    await patch_evaluator(db, row, data)
    out = await evaluator_out(db, row)
    await record(db, actor, "evaluator.update", "evaluator", row.id, before=before, after=out)
    return out


async def register_supervisor(db: AsyncSession, actor: Actor, data: SupervisorIn) -> SupervisorOut:
    row = await create_supervisor(db, actor, data)
    out = supervisor_out(row)
    await record(db, actor, "supervisor.create", "supervisor", row.id, after=out)
    return out


async def list_supervisors(db: AsyncSession, kind: str | None, limit: int = 2000) -> list[SupervisorOut]:
    query = select(Supervisor).order_by(Supervisor.id)
    if kind is not None:
        query = query.where(Supervisor.kind == kind)
    return [supervisor_out(r) for r in (await db.scalars(query.limit(limit))).all()]


async def change_supervisor(db: AsyncSession, actor: Actor, supervisor_id: int,
                            data: SupervisorPatch) -> SupervisorOut:
    row = await get_supervisor(db, supervisor_id)
    before = supervisor_out(row)
    patch_supervisor(row, data)
    await db.flush()
    out = supervisor_out(row)
    await record(db, actor, "supervisor.update", "supervisor", row.id, before=before, after=out)
    return out


async def register_conflict(db: AsyncSession, actor: Actor, data: ConflictIn) -> ConflictOut:
    row, cand = await create_conflict(db, actor, data)
    out = conflict_out(row, cand)
    await record(db, actor, "conflict.create", "panel_conflict", row.id, after=out)
    return out


async def list_conflicts(db: AsyncSession, evaluator_id: int | None, supervisor_id: int | None,
                         session_id: int | None, limit: int = 5000) -> list[ConflictOut]:
    query = select(PanelConflict, Candidate).join(Candidate, Candidate.id == PanelConflict.candidate_id)
    if evaluator_id is not None:
        query = query.where(PanelConflict.evaluator_id == evaluator_id)
    if supervisor_id is not None:
        query = query.where(PanelConflict.supervisor_id == supervisor_id)
    if session_id is not None:
        query = query.where(Candidate.session_id == session_id)
    rows = (await db.execute(query.order_by(PanelConflict.id).limit(limit))).all()
    return [conflict_out(k, c) for k, c in rows]


async def remove_conflict(db: AsyncSession, actor: Actor, conflict_id: int) -> None:
    """Remove a conflict recorded by mistake; the trail keeps what it was."""
    row = await get_or_404(db, PanelConflict, conflict_id, "conflict")
    cand = await db.get(Candidate, row.candidate_id)
    assert cand is not None
    before = conflict_out(row, cand)
    await db.delete(row)
    await db.flush()
    await record(db, actor, "conflict.delete", "panel_conflict", conflict_id, before=before)
