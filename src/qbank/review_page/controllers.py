"""The supervisor review page: sign in with a supervisor token, see the sessions waiting for review, each session's
timelines per room and view, play any moment, mark incidents and sign off. Server-rendered (Jinja2) with htmx.

Sign-in keeps a server-side session (a Litestar store on disk, keyed by a random id in an HTTP-only, SameSite=Strict
cookie): sign-out deletes it on the server, the token itself never reaches the browser's storage, and the token is
looked up on every request so that a revoked token ends the session at once. Every form carries Litestar's CSRF
token (double submit, HMAC-signed with a key derived from the token secret); the CSRF middleware sits on this router
only, so the JSON API (bearer tokens, no cookies) is untouched."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import structlog
from litestar import Controller, Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie, ResponseHeader
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.template.config import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.audit.services import record_beside
from qbank.auth.services import find_actor
from qbank.db import Database, utcnow
from qbank.lib.actors import Actor, Role
from qbank.lib.limits import FailureLimiter
from qbank.lib.problems import ProblemError, bad_request, log_unhandled, not_found, storage_refusal
from qbank.lib.proxies import client_address
from qbank.recordings.audit import session_video_audit
from qbank.review_page import services as page
from qbank.review_page.labels import LABELS, STATUS_HEADLINES, Lang, lang_of, reason_words
from qbank.reviews import services as reviews
from qbank.reviews.categories import CATEGORIES
from qbank.reviews.schemas import IncidentIn, SignOffIn
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

log = structlog.get_logger("qbank.review_page")

HERE = Path(__file__).parent
REVIEW_PATHS = ["^/review(/|$)"]  # not behind the bearer-token middleware: the page signs in with a cookie
SESSION_COOKIE = "qbank_review_session"
CSRF_COOKIE = "qbank_review_csrf"
STORE_NAME = "qbank_review_sessions"
LINK_TTL = timedelta(minutes=30)


# ------------------------------------------------------------------------------------------- wiring (app.py)
def review_template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def review_stores(settings: Settings) -> dict[str, Store]:
    return {STORE_NAME: FileStore(settings.data_dir / "review-sessions", create_directories=True)}


def review_route_handlers(settings: Settings) -> list[Router]:
    csrf = CSRFConfig(
        secret=hmac.new(settings.token_secret.encode(), b"qbank review page csrf", hashlib.sha256).hexdigest(),
        cookie_name=CSRF_COOKIE, cookie_path="/review", cookie_httponly=True, cookie_samesite="strict",
        header_name="x-csrftoken")
    pages = Router(
        path="/review", route_handlers=[ReviewPageController], include_in_schema=False,
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers={HTTPException: page_error, page.SignInRefused: sign_in_refused, Exception: page_crash},
        response_headers=[ResponseHeader(name="Cache-Control", value="no-store"),
                          ResponseHeader(name="Referrer-Policy", value="same-origin")])
    static = create_static_files_router(path="/review/static", directories=[HERE / "static"], name="review_static",
                                        include_in_schema=False)
    return [pages, static]


# ------------------------------------------------------------------------------------------- helpers
def lang_q(lang: Lang) -> str:
    return "?lang=en" if lang == "en" else ""


def request_lang(request: Request[Any, Any, Any]) -> Lang:
    return lang_of(request.query_params.get("lang"))


def context(request: Request[Any, Any, Any], actor: Actor | None, **extra: Any) -> dict[str, Any]:
    lang = request_lang(request)
    other: Lang = "zh" if lang == "en" else "en"
    return {"t": LABELS[lang], "lang": lang, "q": lang_q(lang), "actor": actor, "path": request.url.path,
            "other_lang_url": request.url.path + lang_q(other), **extra}


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def store_of(request: Request[Any, Any, Any]) -> Store:
    return request.app.stores.get(STORE_NAME)


async def supervisor(request: Request[Any, Any, Any], db: AsyncSession) -> Actor:
    return await page.session_actor(store_of(request), db, request.cookies.get(SESSION_COOKIE))


async def session_or_404(db: AsyncSession, raw_id: str) -> ExamSession:
    if not raw_id.isdigit() or len(raw_id) > 12:
        raise bad_request("session_id", f"a session number is digits only (got {raw_id!r})", status=404)
    row = await db.get(ExamSession, int(raw_id))
    if row is None:
        raise not_found("session", raw_id)
    return row


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value=value, path="/review", httponly=True, samesite="strict",
                  secure=request.url.scheme == "https", max_age=max_age)


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# ------------------------------------------------------------------------------------------- error pages
CSRF_WORDS = {"zh": "表单缺少有效的安全令牌 (CSRF)。请重新打开页面后再提交。",
              "en": "The form was sent without its security token (CSRF). Reload the page and send it again."}
PASS_REASON_WORDS = {"zh": "录像审核结论为不通过：如仍判定合格，请填写理由；否则请选择“不合格”。",
                     "en": "The video audit fails: to sign off as pass, give your reason; otherwise choose fail."}
CONCLUSION_WORDS = {"zh": "请选择督导结论（合格或不合格）。",
                    "en": "Choose the conclusion (pass or fail)."}
SIGN_IN_WORDS = {
    "zh": {"not_signed_in": "请先用督导员令牌登录。", "expired": "登录已过期，请重新登录。",
           "revoked": "您的令牌已被撤销，请联系评价中心。", "role": "只有督导员可以使用审核页面。"},
    "en": {"not_signed_in": "Sign in with a supervisor token first.", "expired": "Your sign-in expired; sign in again.",
           "revoked": "Your token was revoked; ask the evaluation centre.", "role": "Only supervisors use this page."},
}


def message_response(request: Request[Any, Any, Any], status: int, message: str, detail: str = "") -> Response[Any]:
    """A clear message: a fragment in the page's message area for htmx requests, else a whole page."""
    lang = request_lang(request)
    headline = STATUS_HEADLINES[lang].get(status, LABELS[lang]["error"])
    ctx = context(request, None, status=status, headline=headline, message=message, detail=detail)
    if is_htmx(request):
        return Template(template_name="_message.html", context=ctx, status_code=status,
                        headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return Template(template_name="error.html", context=ctx, status_code=status)


def page_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    lang = request_lang(request)
    status = exc.status_code
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return message_response(request, 403, CSRF_WORDS[lang])
    detail = exc.detail
    if isinstance(exc, ProblemError) and exc.errors:
        detail = "; ".join(f"{e.field}: {e.reason}" for e in exc.errors)
    for field, words in (("pass_reason", PASS_REASON_WORDS), ("conclusion", CONCLUSION_WORDS)):
        if status == 400 and detail.startswith(f"{field}:"):  # the sign-off form's own fields: in the page's words
            return message_response(request, 400, words[lang])
    message = {
        404: "该场次不存在。" if "session" in detail else "找不到该页面。",
        409: "该操作与已有记录冲突。",
    }.get(status, "请检查输入。") if lang == "zh" else ""
    if lang == "zh" and status == 400 and "outside the session window" in detail:
        message = "问题发生时间不在考试时段内。"
    if lang == "zh" and status == 409 and "signed off" in detail:
        message = "该场次已经签署过督导意见，不能重复签署或再记录问题。"
    if lang == "zh" and status == 409 and "sign it off after it has ended" in detail:
        message = "考试尚未结束，结束后才能签署。"
    return message_response(request, status, message or detail, detail if message else "")


def sign_in_refused(request: Request[Any, Any, Any], exc: page.SignInRefused) -> Response[Any]:
    lang = request_lang(request)
    target = f"/review/login?{'lang=en&' if lang == 'en' else ''}reason={exc.reason}"
    cookie = session_cookie(request, "", 0)
    if is_htmx(request):
        return Response(content="", status_code=401, headers={"HX-Redirect": target}, cookies=[cookie])
    if request.method == "GET":
        return Redirect(path=target, status_code=303, cookies=[cookie])
    response = message_response(request, 401, SIGN_IN_WORDS[lang][exc.reason])
    response.cookies.append(cookie)
    return response


def page_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    refusal = storage_refusal(exc)
    if refusal is not None:
        return message_response(request, 400, refusal)
    log_unhandled("review page failed", request, exc)
    lang = request_lang(request)
    return message_response(request, 500, "服务出错，错误已写入日志。" if lang == "zh" else
                            "The service failed; the error is in its log.")


# ------------------------------------------------------------------------------------------- the pages
class ReviewPageController(Controller):
    path = "/"

    @get("/", name="review_index")
    async def index(self, request: Request[Any, Any, Any], db_session: AsyncSession, settings: Settings) -> Template:
        actor = await supervisor(request, db_session)
        lang = request_lang(request)
        rows = []
        for p in await reviews.pending_reviews(db_session, limit=200):
            session = await db_session.get(ExamSession, p.session_id)
            assert session is not None
            audit = await session_video_audit(db_session, settings, session, lang)
            rows.append({"p": p, "passes": audit.passes, "reasons": audit.reasons, "recordings": audit.recordings,
                         "window": f"{p.starts_at.astimezone(settings.tz):%Y-%m-%d %H:%M}–"
                                   f"{p.ends_at.astimezone(settings.tz):%H:%M}"})
        return Template(template_name="index.html", context=context(request, actor, rows=rows))

    @get("/login", name="review_login")
    async def login_form(self, request: Request[Any, Any, Any], reason: str | None = None) -> Template:
        lang = request_lang(request)
        message = SIGN_IN_WORDS[lang].get(reason or "", "") if reason != "signed_out" else ""
        if reason == "signed_out":
            message = "已退出登录。" if lang == "zh" else "You are signed out."
        return Template(template_name="login.html", context=context(request, None, message=message))

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any], db_session: AsyncSession, settings: Settings,
                    database: Database) -> Response[Any]:
        """Sign in; every attempt is in the trail (never the token), failed ones are limited per client address."""
        lang = request_lang(request)
        limiter: FailureLimiter = request.app.state.limiters.sign_in
        address = client_address(request)
        wait = await limiter.retry_after(address)
        if wait is not None:
            words = {"zh": f"登录失败次数过多，请 {wait} 秒后再试。",
                     "en": f"Too many failed sign-ins from this address; try again in {wait} s."}
            return Template(template_name="login.html", status_code=429, headers={"Retry-After": str(wait)},
                            context=context(request, None, message=words[lang], error=True))
        token = (await form_of(request)).get("token", "").strip()
        actor = await find_actor(db_session, settings.token_secret, token) if token else None
        if actor is None:
            await limiter.failed(address)
            await record_beside(database, "unknown", "none", "review.sign_in_failed", "review_page", "login",
                                {"address": address, "reason": "unknown or revoked token" if token else "no token"})
            words = {"zh": "令牌无效或已被撤销，无法登录。", "en": "This token is unknown or revoked; not signed in."}
            return Template(template_name="login.html", status_code=401,
                            context=context(request, None, message=words[lang], error=True))
        if actor.role != Role.supervisor:
            await limiter.failed(address)
            await record_beside(database, actor.label, actor.role.value, "review.sign_in_failed", "token",
                                actor.token_id, {"address": address, "reason": f"a {actor.role.value} token"})
            words = {"zh": f"只有督导员 (supervisor) 令牌可以登录审核页面；此令牌的角色是 {actor.role.value}。",
                     "en": f"Only a supervisor token signs in here; this token's role is {actor.role.value}."}
            return Template(template_name="login.html", status_code=403,
                            context=context(request, None, message=words[lang], error=True))
        store = store_of(request)
        await page.end_session(store, request.cookies.get(SESSION_COOKIE))
        sid = await page.start_session(store, actor.token_id, utcnow())
        await record_beside(database, actor.label, actor.role.value, "review.sign_in", "token", actor.token_id,
                            {"address": address})
        cookie = session_cookie(request, sid, int(page.SESSION_TTL.total_seconds()))
        return Redirect(path="/review" + lang_q(lang), status_code=303, cookies=[cookie])

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any], db_session: AsyncSession,
                     database: Database) -> Response[Any]:
        try:
            actor: Actor | None = await supervisor(request, db_session)
        except page.SignInRefused:
            actor = None  # already signed out, expired or revoked: nothing to record
        await page.end_session(store_of(request), request.cookies.get(SESSION_COOKIE))
        if actor is not None:
            await record_beside(database, actor.label, actor.role.value, "review.sign_out", "token", actor.token_id,
                                {"address": client_address(request)})
        lang = request_lang(request)
        return Redirect(path=f"/review/login?{'lang=en&' if lang == 'en' else ''}reason=signed_out",
                        status_code=303, cookies=[session_cookie(request, "", 0)])

    @get("/sessions/{session_id:str}", name="review_session")
    async def session_page(self, request: Request[Any, Any, Any], session_id: str, db_session: AsyncSession,
                           settings: Settings) -> Template:
        actor = await supervisor(request, db_session)
        session = await session_or_404(db_session, session_id)
        return Template(template_name="session.html",
                        context=await session_context(request, db_session, settings, actor, session))

    @post("/sessions/{session_id:str}/play", status_code=200)
    async def play(self, request: Request[Any, Any, Any], session_id: str, db_session: AsyncSession,
                   settings: Settings, archive: RetentionArchive) -> Template:
        """The recording that covers the clicked moment, with a presigned link (in the trail) and its contact sheet."""
        actor = await supervisor(request, db_session)
        session = await session_or_404(db_session, session_id)
        lang = request_lang(request)
        form = await form_of(request)
        room_ref, view = form.get("room", ""), form.get("view", "")
        try:
            offset = float(form.get("offset", ""))
        except ValueError:
            raise bad_request("offset", "the moment is a number of seconds from the window start") from None
        window = (session.ends_at - session.starts_at).total_seconds()
        if not 0 <= offset <= window:
            raise bad_request("offset", f"{offset} s is outside the exam window (0–{window:.0f} s)")
        moment = session.starts_at + timedelta(seconds=offset)
        room, covering = await page.recording_at(db_session, session, room_ref, view, moment)
        if room is None:
            raise bad_request("room", f"room {room_ref} is not in session {session.id}")
        ctx = context(request, actor, session=session, room_ref=room_ref, view=view,
                      moment_local=page.local_hms(moment, settings.tz), categories=category_options(lang),
                      signed=await reviews.get_sign_off_row(db_session, session.id))
        playable = [r for r in covering if r.status != "corrupt"]
        if not playable:
            reason = covering[0].corrupt_reason if covering else ""
            return Template(template_name="_player.html",
                            context={**ctx, "rec": None, "corrupt": bool(covering), "corrupt_reason": reason})
        rec = playable[0]
        url, sheet = await page.play_links(db_session, actor, archive, rec, LINK_TTL)
        seek = (moment - rec.claimed_start).total_seconds()
        return Template(template_name="_player.html", context={
            **ctx, "rec": rec, "url": url, "sheet": sheet, "seek": round(seek, 3),
            "start_ms": int(rec.claimed_start.timestamp() * 1000), "tz": settings.timezone,
            "rec_start_local": page.local_hms(rec.claimed_start, settings.tz)})

    @post("/sessions/{session_id:str}/incidents", status_code=201)
    async def incident(self, request: Request[Any, Any, Any], session_id: str, db_session: AsyncSession,
                       settings: Settings) -> Response[Any]:
        actor = await supervisor(request, db_session)
        session = await session_or_404(db_session, session_id)
        form = await form_of(request)
        moment = page.parse_moment(form.get("at", ""), session, settings.tz)
        if moment is None:
            raise bad_request("at", f"give the time as HH:MM:SS (got {form.get('at', '')!r})")
        try:
            data = msgspec.convert({"at": moment, "room": form.get("room", ""), "view": form.get("view", ""),
                                    "category": form.get("category", ""), "note": form.get("note", "")},
                                   IncidentIn)
        except msgspec.ValidationError as exc:
            raise bad_request("incident", str(exc)) from exc
        out = await reviews.create_incident(db_session, actor, settings, session, data)
        if not is_htmx(request):
            return Redirect(path=f"/review/sessions/{session.id}{lang_q(request_lang(request))}", status_code=303)
        ctx = await session_context(request, db_session, settings, actor, session)
        lang = request_lang(request)
        ctx["flash"] = f"{LABELS[lang]['incident_saved']} #{out.id}: {out.local_at[11:19]} {out.category} " + \
            (out.category_zh if lang == "zh" else out.category_en)
        return Template(template_name="_incident_saved.html", context=ctx, status_code=201)

    @post("/sessions/{session_id:str}/sign-off", status_code=201)
    async def sign_off(self, request: Request[Any, Any, Any], session_id: str, db_session: AsyncSession,
                       settings: Settings, archive: RetentionArchive) -> Template:
        actor = await supervisor(request, db_session)
        session = await session_or_404(db_session, session_id)
        form = await form_of(request)
        if form.get("conclusion", "") not in ("合格", "不合格"):  # nothing is preselected: the supervisor chooses
            raise bad_request("conclusion", "choose the conclusion: pass or fail")
        try:
            data = msgspec.convert({"summary": form.get("summary", "").strip(),
                                    "conclusion": form.get("conclusion", ""),
                                    "pass_reason": form.get("pass_reason", "")}, SignOffIn)
        except msgspec.ValidationError as exc:
            raise bad_request("sign-off", str(exc)) from exc
        await reviews.sign_off(db_session, actor, settings, archive, session, data)
        signed = await reviews.sign_off_with_link(db_session, actor, archive, session.id)
        ctx = await session_context(request, db_session, settings, actor, session)
        ctx.update(form_url=signed.form_url,
                   form_url_expires=page.local_hms(utcnow() + reviews.FORM_LINK_TTL, settings.tz), just_signed=True)
        return Template(template_name="session.html", context=ctx, status_code=201)

    @post("/sessions/{session_id:str}/form", status_code=303)
    async def open_form(self, request: Request[Any, Any, Any], session_id: str, db_session: AsyncSession,
                        archive: RetentionArchive) -> Redirect:
        """A fresh short-lived link to the signed supervision form (the link is in the trail)."""
        actor = await supervisor(request, db_session)
        session = await session_or_404(db_session, session_id)
        out = await reviews.sign_off_with_link(db_session, actor, archive, session.id)
        assert out.form_url is not None
        return Redirect(path=out.form_url, status_code=303)


def category_options(lang: Lang) -> list[dict[str, str]]:
    return [{"code": c.code, "label": f"{c.code} {c.label_zh if lang == 'zh' else c.label_en}",
             "article": c.article} for c in CATEGORIES]


async def session_context(request: Request[Any, Any, Any], db: AsyncSession, settings: Settings, actor: Actor,
                          session: ExamSession) -> dict[str, Any]:
    lang = request_lang(request)
    tz = settings.tz
    audit = await session_video_audit(db, settings, session, lang)
    incidents = await reviews.list_incidents(db, settings, session.id)
    signed = await reviews.get_sign_off_row(db, session.id)
    reasons = audit.reasons
    incident_rows = [{"id": i.id, "local": i.local_at[11:19], "room": i.room, "view": i.view, "code": i.category,
                      "label": i.category_zh if lang == "zh" else i.category_en, "article": i.article,
                      "note": i.note, "by": i.marked_by} for i in incidents]
    return context(
        request, actor, session=session, audit=audit, reasons=reasons,
        lanes=page.lanes(audit.report, incidents, tz, lang), ticks=page.ticks(audit.report, tz),
        incidents=incident_rows, signed=signed,
        signed_local=signed.signed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if signed else "",
        window_local=f"{session.starts_at.astimezone(tz):%Y-%m-%d %H:%M:%S} – "
                     f"{session.ends_at.astimezone(tz):%H:%M:%S}",
        window_seconds=(session.ends_at - session.starts_at).total_seconds(),
        window_start_ms=int(session.starts_at.timestamp() * 1000), tz=settings.timezone,
        categories=category_options(lang), reason_words=lambda r: reason_words(r, lang))
