"""Sealing per site, the sealed package, and the centre's key share released only in the exam window."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import msgspec
import structlog
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive, VerifyingReader
from paperbuild import delivery, sealing
from qbank.audit.services import record, record_apart
from qbank.blueprints.models import Layout as LayoutRow
from qbank.db import Database, utcnow
from qbank.items.media import sniff_media
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict, not_found
from qbank.papers.keys import b64, centre_key, parse_signing_key, parse_site_key
from qbank.papers.models import (
    SealedPaper,
)
from qbank.papers.schemas import (
    ReleaseOut,
    SealedSiteOut,
    SealOut,
    SigningKeyOut,
    SiteKeyOut,
)
from qbank.papers.services import LoadedPaper, Seat, current_paper, load_paper, local, sealed_paper, session_seats
from qbank.sessions.models import ExamSession, Site
from qbank.sessions.services import get_site
from qbank.settings import Settings

log = structlog.get_logger("qbank.papers")

SEALED_KIND = "sealed-papers"
CONTENT_FORMAT = "qbank-paper-content/1"
RELEASE_LEAD = timedelta(minutes=15)


def session_doc(settings: Settings, session: ExamSession) -> dict[str, Any]:
    return {"id": session.id, "title": session.title, "occupation_code": session.occupation_code,
            "level": session.level, "starts_at": session.starts_at.isoformat(), "ends_at": session.ends_at.isoformat(),
            "local_start": local(settings, session.starts_at), "local_end": local(settings, session.ends_at)}


def site_content(settings: Settings, session: ExamSession, layout: LayoutRow, loaded: LoadedPaper, site: str,
                 seats: list[Seat]) -> dict[str, Any]:
    """What a site's terminals show: each candidate's questions in their order, options in their order; no keys."""
    candidates = []
    for seat in seats:
        form = loaded.assignment.get(seat.candidate.id)
        if form is None:
            continue
        items = loaded.forms[form]
        by_id = {it.version_id: it for it in items}
        questions = []
        for no, d in enumerate(delivery.deliver(items, loaded.seed, seat.candidate.number), start=1):
            it, c = by_id[d.version_id], loaded.contents[d.version_id]
            options = list(c.get("options") or [])
            questions.append({"no": no, "version_id": d.version_id, "type": it.type, "section": it.section,
                              "points": it.points, "stem": c["stem"], "options": [options[k] for k in d.option_order],
                              "media": list(c.get("media") or [])})
        candidates.append({"number": seat.candidate.number, "name": seat.candidate.name, "room": seat.room.code,
                           "desk": seat.candidate.desk, "form": form, "questions": questions})
    return {"format": CONTENT_FORMAT, "session": session_doc(settings, session), "site": site,
            "paper_id": loaded.paper.id, "layout": {"name": layout.name, "duration_minutes": layout.duration_minutes,
                                                    "sections": layout.sections},
            "candidates": candidates}


def site_roster(settings: Settings, session: ExamSession, seats: list[Seat]) -> dict[str, Any]:
    """Who sits where at a site, sealed to the site's key alone: seat cards and sign-in before the window."""
    return {"session": session_doc(settings, session),
            "candidates": [{"number": s.candidate.number, "name": s.candidate.name, "room": s.room.code,
                            "desk": s.candidate.desk, "id_tail": s.candidate.id_tail} for s in seats]}


def package_media(archive: RetentionArchive, content: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The images the site's questions show, from the archive (digest checked), so the site needs no network.
    Blocking: call it in a worker thread."""
    keys = sorted({k for cand in content["candidates"] for q in cand["questions"] for k in q["media"]})
    out: dict[str, dict[str, str]] = {}
    for key in keys:
        data = archive.get(key)
        out[key] = {"content_type": sniff_media(data) or "application/octet-stream", "data": b64(data)}
    return out


def release_window(session: ExamSession) -> tuple[datetime, datetime]:
    return session.starts_at - RELEASE_LEAD, session.ends_at


async def seal_session(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                       session: ExamSession) -> SealOut:
    paper = await current_paper(db, session.id)
    if paper.sealed_at is not None:
        raise conflict(f"the papers of session {session.id} were sealed at {local(settings, paper.sealed_at)}",
                       paper_id=paper.id)
    seats = await session_seats(db, session.id)
    by_site: dict[str, list[Seat]] = defaultdict(list)
    for s in seats:
        by_site[s.room.site_code].append(s)
    sites = {s.code: s for s in (await db.scalars(select(Site).where(Site.code.in_(list(by_site))))).all()}
    missing = sorted(code for code in by_site if not sites[code].public_key)
    if missing:
        raise ProblemError(409, f"site(s) {', '.join(missing)} have registered no public key "
                                "(PUT /api/v1/sites/{code}/public-key); nothing was sealed",
                           errors=[FieldError(field=f"sites.{c}.public_key", reason="not registered") for c in missing])
    layout = await db.get(LayoutRow, paper.layout_id)
    assert layout is not None
    loaded = await load_paper(db, paper)
    key = centre_key(settings)
    exam_day = session.starts_at.astimezone(settings.tz).date()
    now = utcnow()
    out: list[SealedSiteOut] = []
    for code in sorted(by_site):
        public = parse_site_key(sites[code].public_key or "", f"sites.{code}.public_key")
        package_id = secrets.token_hex(16)
        header = {"package_id": package_id, "session": session.id, "site": code, "paper": paper.id,
                  "created_at": now.isoformat(), "starts_at": session.starts_at.isoformat(),
                  "ends_at": session.ends_at.isoformat()}
        site_seats = by_site[code]

        def build(site: str = code, hdr: dict[str, Any] = header, ss: list[Seat] = site_seats,
                  pk: Any = public) -> Any:
            content = site_content(settings, session, layout, loaded, site, ss)
            content["media"] = package_media(archive, content)
            sealed = sealing.seal(content, hdr, pk, key, roster=site_roster(settings, session, ss))
            stored = archive.put_bytes(SEALED_KIND, sealed.package, exam_date=exam_day,
                                       content_type="application/json",
                                       metadata={"session": str(session.id), "site": site, "paper": str(paper.id)},
                                       filename=f"papers-session-{session.id}-{site}.json")
            return sealed, stored

        sealed, stored = await anyio.to_thread.run_sync(build)
        row = SealedPaper(paper_id=paper.id, session_id=session.id, site_code=code, package_id=package_id,
                          archive_key=stored.key, sha256=sealed.sha256, size=len(sealed.package),
                          centre_share=sealed.centre_share.hex(),
                          site_key_id=sealing.key_id(sealing.raw_public(public)),
                          candidates=len(site_seats), retain_until=stored.retain_until, created_by=actor.label)
        db.add(row)
        await db.flush()
        site_out = SealedSiteOut(site=code, package_id=package_id, sha256=row.sha256, size=row.size,
                                 candidates=row.candidates, key=row.archive_key, retain_until=row.retain_until)
        await record(db, actor, "paper.seal_site", "sealed_paper", row.id, after=site_out,
                     detail={"session": session.id, "site": code, "key": stored.key})
        out.append(site_out)
    paper.sealed_at = now
    await db.flush()
    opens, closes = release_window(session)
    result = SealOut(session_id=session.id, paper_id=paper.id, sealed_at=now, packages=out,
                     release_opens_at=local(settings, opens), release_closes_at=local(settings, closes))
    await record(db, actor, "paper.seal", "paper", paper.id, after=result, detail={"session": session.id})
    return result


def site_for(actor: Actor, site: str | None) -> str:
    """Whose package: a site token only its own; an admin names the site."""
    if actor.role == Role.site:
        if site is not None and site != actor.site:
            raise PermissionDeniedException(f"site {actor.site} may not fetch site {site}'s papers or key share")
        assert actor.site is not None
        return actor.site
    if site is None:
        raise bad_request("site", "name the site whose package to fetch")
    return site


async def site_package(db: AsyncSession, session: ExamSession, site: str) -> SealedPaper:
    paper = await sealed_paper(db, session.id)
    row = await db.scalar(select(SealedPaper).where(SealedPaper.paper_id == paper.id, SealedPaper.site_code == site))
    if row is None:
        raise not_found("sealed package of site", f"{site} in session {session.id}")
    return row


async def release_share(db: AsyncSession, settings: Settings, session: ExamSession, site: str) -> ReleaseOut:
    row = await site_package(db, session, site)
    opens, closes = release_window(session)
    now = utcnow()
    if now < opens:
        raise ProblemError(403, f"the key share of session {session.id} is released from {local(settings, opens)} "
                                f"(15 minutes before the exam starts) until {local(settings, closes)}; "
                                f"it is now {local(settings, now)}",
                           extra={"opens_at": local(settings, opens), "closes_at": local(settings, closes)})
    if now > closes:
        raise ProblemError(403, f"the release window of session {session.id} closed at {local(settings, closes)}",
                           extra={"opens_at": local(settings, opens), "closes_at": local(settings, closes)})
    return ReleaseOut(session_id=session.id, site=site, package_id=row.package_id, package_sha256=row.sha256,
                      centre_share=b64(bytes.fromhex(row.centre_share)), closes_at=local(settings, closes))


async def package_chunks(reader: VerifyingReader, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    """The opened package, digest checked as it streams, read in a worker thread."""
    try:
        while True:
            data = await anyio.to_thread.run_sync(reader.read, chunk)
            if not data:
                break
            yield data
    finally:
        await anyio.to_thread.run_sync(reader.close)


class PackageFetch(msgspec.Struct, frozen=True, kw_only=True):
    """What a package download streams: its archive key, size, digest and file name."""

    key: str
    size: int
    sha256: str
    filename: str


async def fetch_package(db: AsyncSession, database: Database, actor: Actor, archive: RetentionArchive,
                        session: ExamSession, site: str | None) -> tuple[PackageFetch, VerifyingReader]:
    """The sealed package a caller may fetch (a site its own, an admin names one), opened in the archive; each
    fetch is in the trail. The object is opened before the fetch is recorded and before any byte of the answer
    is sent, so a store that cannot serve it gives an error status (503), never a 200 that breaks off."""
    fetch, row_id, session_id, code = await _package_of(db, actor, session, site)
    reader = await anyio.to_thread.run_sync(archive.open, fetch.key)
    try:
        await record_apart(database, actor, "paper.package_fetch", "sealed_paper", row_id,
                           {"session": session_id, "site": code, "sha256": fetch.sha256})
    except BaseException:
        await anyio.to_thread.run_sync(reader.close)
        raise
    return fetch, reader


PACKAGE_LINK_TTL = timedelta(minutes=5)  # a package link is used at once: by the redirect it comes with


async def package_link(db: AsyncSession, database: Database, actor: Actor, archive: RetentionArchive,
                       session: ExamSession, site: str | None) -> tuple[PackageFetch, str]:
    """What :func:`fetch_package` gives, as a short-lived presigned GET of the archived package (the S3 server
    sends the bytes, not the service); the fetch is in the trail as one. The link is handed out only once the
    server has said it holds the object, so a store that cannot serve it gives 503, not a dead link. Its bytes
    are what the site verifies (the centre's signature, the digest in ``X-Package-SHA256``)."""
    fetch, row_id, session_id, code = await _package_of(db, actor, session, site)
    url = await anyio.to_thread.run_sync(lambda: archive.presigned_get(
        fetch.key, PACKAGE_LINK_TTL, download_name=fetch.filename, confirm=True))
    await record_apart(database, actor, "paper.package_fetch", "sealed_paper", row_id,
                       {"session": session_id, "site": code, "sha256": fetch.sha256, "by": "presigned link"})
    return fetch, url


async def _package_of(db: AsyncSession, actor: Actor, session: ExamSession,
                      site: str | None) -> tuple[PackageFetch, int, int, str]:
    """The package the caller may fetch, and its row id, session id and site; the read transaction is over."""
    code, session_id = site_for(actor, site), session.id  # rows read here expire at the rollback below
    row = await site_package(db, session, code)
    fetch = PackageFetch(key=row.archive_key, size=row.size, sha256=row.sha256,
                         filename=f"papers-{session_id}-{code}.json")
    row_id = row.id
    await db.rollback()  # read only: give the connection back before the trail write and the bytes
    return fetch, row_id, session_id, code


async def release_to_site(db: AsyncSession, database: Database, actor: Actor, settings: Settings,
                          session: ExamSession, site: str | None) -> ReleaseOut:
    """The centre's key share, only in the release window; each release and each refusal is in the trail."""
    code, session_id = site_for(actor, site), session.id  # rows read here expire at the rollbacks below
    try:
        out = await release_share(db, settings, session, code)
    except ProblemError as exc:
        if exc.status_code == 403:
            await db.rollback()
            await record_apart(database, actor, "paper.release_refused", "session", session_id,
                               {"site": code, "reason": exc.detail})
        raise
    await db.rollback()  # read only: give the connection back before the trail write
    await record_apart(database, actor, "paper.release", "session", session_id,
                       {"site": code, "package": out.package_id})
    return out


async def register_site_key(db: AsyncSession, actor: Actor, code: str, public_key: str) -> SiteKeyOut:
    """The site's X25519 public key, to which sealed papers are wrapped (a site sets its own)."""
    if actor.role == Role.site and actor.site != code:
        raise PermissionDeniedException(f"site {actor.site} may not set site {code}'s key")
    site = await get_site(db, code)
    raw = sealing.raw_public(parse_site_key(public_key))
    before = {"public_key": site.public_key}
    site.public_key = public_key.strip()
    await db.flush()
    out = SiteKeyOut(site=site.code, public_key=site.public_key, key_id=sealing.key_id(raw))
    await record(db, actor, "site.public_key", "site", site.code, before=before, after=out)
    return out


async def register_signing_key(db: AsyncSession, actor: Actor, code: str, signing_key: str) -> SigningKeyOut:
    """The site's Ed25519 public key, with which the centre verifies the response bundles of its exam station."""
    if actor.role == Role.site and actor.site != code:
        raise PermissionDeniedException(f"site {actor.site} may not set site {code}'s signing key")
    site = await get_site(db, code)
    raw = sealing.raw_public(parse_signing_key(signing_key))
    out = SigningKeyOut(site=site.code, signing_key=signing_key.strip(), key_id=sealing.key_id(raw))
    if site.signing_key == out.signing_key:
        return out  # the same key again (a station registers it at each start): nothing changes
    before = {"signing_key": site.signing_key}
    site.signing_key = out.signing_key
    await db.flush()
    await record(db, actor, "site.signing_key", "site", site.code, before=before, after=out)
    return out
