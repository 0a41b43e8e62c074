"""The station's Litestar application: the candidates' screen (/ and /exam/{number}), the proctor console
(/proctor), their JSON API under /api, the package's images under /media. Browsers are identified by HTTP-only,
SameSite=Strict cookies whose tokens the station keeps hashed; a page's scripts come only from the station itself
(Content-Security-Policy)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, get, post, put
from litestar.datastructures import Cookie, ResponseHeader, State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from qbank.station import candidates as cand
from qbank.station import proctor
from qbank.station.bundles import sender
from qbank.station.errors import Refusal
from qbank.station.labels import TEXT, lang_of
from qbank.station.runtime import Station, fetch_release

log = structlog.get_logger("qbank.station")
HERE = Path(__file__).parent
CANDIDATE_COOKIE = "qbank_station"
PROCTOR_COOKIE = "qbank_proctor"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
Places = Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=7)]], msgspec.Meta(max_length=8)]
Short = Annotated[str, msgspec.Meta(max_length=60)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class SignInIn(msgspec.Struct, kw_only=True):
    number: Short = ""
    id_digits: Annotated[str, msgspec.Meta(max_length=6)] = ""
    desk_code: Annotated[str, msgspec.Meta(max_length=20)] = ""


class AnswerIn(msgspec.Struct, kw_only=True):
    places: Places
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**53)]


class FlagIn(msgspec.Struct, kw_only=True):
    flagged: bool


class SubmitIn(msgspec.Struct, kw_only=True):
    confirm: bool


class CodeIn(msgspec.Struct, kw_only=True):
    code: Annotated[str, msgspec.Meta(max_length=20)]


class AbsentIn(msgspec.Struct, kw_only=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class ExtraTimeIn(msgspec.Struct, kw_only=True):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=120)]
    reason: Reason


class MoveIn(msgspec.Struct, kw_only=True):
    to: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    reason: Reason


class IncidentIn(msgspec.Struct, kw_only=True):
    category: Annotated[str, msgspec.Meta(max_length=8)]
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


def machine_of(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _cookie(name: str, value: str) -> Cookie:
    return Cookie(key=name, value=value, httponly=True, samesite="strict", path="/", max_age=12 * 3600)


def _page(name: str, request: Request[Any, Any, Any], st: Station, status_code: int = 200,
          **context: Any) -> Template:
    lang = lang_of(request.query_params.get("lang"))
    return Template(template_name=name, status_code=status_code,
                    context={"t": TEXT[lang], "text_json": msgspec.json.encode(TEXT[lang]).decode(), "lang": lang,
                             "st": st, "id_digits": st.id_digits, **context})


# ------------------------------------------------------------------------------------------- pages
@get("/", include_in_schema=False)
async def sign_in_page(request: Request[Any, Any, Any], st: Station) -> Template:
    return _page("signin.html", request, st, title=st.session.get("title", ""))


@get("/exam/{number:str}", include_in_schema=False)
async def exam_page(number: str, request: Request[Any, Any, Any], st: Station) -> Template | Redirect:
    lang = "?lang=en" if request.query_params.get("lang") == "en" else ""
    try:
        seat = cand.own_seat(st, request.cookies.get(CANDIDATE_COOKIE), number)
    except Refusal as exc:
        if exc.status == 401:
            return Redirect(f"/{lang}")
        return _page("error.html", request, st, exc.status, message_zh=exc.zh, message_en=exc.en,
                     status=exc.status)
    return _page("exam.html", request, st, number=seat.number)


@get("/proctor", include_in_schema=False)
async def proctor_page(request: Request[Any, Any, Any], st: Station) -> Template:
    token = request.cookies.get(PROCTOR_COOKIE)
    room = st.proctors.get(cand.token_hash(token)) if token else None
    return _page("proctor.html", request, st, room=room or "")


@get("/media/{media_id:str}", include_in_schema=False)
async def media(media_id: str, request: Request[Any, Any, Any], st: Station) -> Response[bytes]:
    cand.browser_seat(st, request.cookies.get(CANDIDATE_COOKIE))  # images only for signed-in candidates
    found = st.media.get(media_id)
    if found is None:
        raise Refusal(404, "no such image in the package", "试卷中没有此图片")
    return Response(found[1], media_type=found[0], headers={"Cache-Control": "private, max-age=3600"})


@get("/health", include_in_schema=False)
async def health(st: Station) -> dict[str, Any]:
    return {"status": "ok", "package_id": st.opened.package_id, "session": st.opened.session_id,
            "site": st.opened.site, "release": st.content is not None, "release_note": st.release_note,
            "rooms": {r.code: {"started": r.started_at is not None, "ended": r.ended_at is not None,
                               "bundle_id": r.bundle_id} for r in st.rooms.values()},
            "bundles": {o.bundle_id: {"room": o.room, "acknowledged": o.acknowledged_at is not None,
                                      "attempts": o.attempts, "last_error": o.last_error}
                        for o in st.outbox.values()}}


# ------------------------------------------------------------------------------------------- candidates
@post("/api/sign-in", status_code=200)
async def sign_in(data: SignInIn, request: Request[Any, Any, Any], st: Station,
                  limits: tuple[cand.Attempts, cand.Attempts]) -> Response[dict[str, Any]]:
    if not data.desk_code and not (data.number and data.id_digits):
        raise Refusal(400, "enter your admission number and id digits, or your desk code",
                      "请输入准考证号和身份证号后几位，或座位卡登录码")
    token, seat = await cand.sign_in(st, limits, machine_of(request), number=data.number, id_digits=data.id_digits,
                                     desk_code=data.desk_code)
    return Response({"number": seat.number, "name": seat.name, "go": f"/exam/{seat.number}"},
                    cookies=[_cookie(CANDIDATE_COOKIE, token)])


@get("/api/candidates/{number:str}/state")
async def candidate_state(number: str, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return cand.state_out(st, cand.own_seat(st, request.cookies.get(CANDIDATE_COOKIE), number))


@get("/api/candidates/{number:str}/paper")
async def candidate_paper(number: str, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return cand.paper_out(st, cand.own_seat(st, request.cookies.get(CANDIDATE_COOKIE), number))


@put("/api/candidates/{number:str}/answers/{no:int}")
async def save_answer(number: str, no: int, data: AnswerIn, request: Request[Any, Any, Any],
                      st: Station) -> dict[str, Any]:
    seat = cand.own_seat(st, request.cookies.get(CANDIDATE_COOKIE), number)
    return await cand.save_answer(st, seat, no, data.places, data.seq)


@put("/api/candidates/{number:str}/flags/{no:int}")
async def set_flag(number: str, no: int, data: FlagIn, request: Request[Any, Any, Any],
                   st: Station) -> dict[str, Any]:
    seat = cand.own_seat(st, request.cookies.get(CANDIDATE_COOKIE), number)
    return await cand.set_flag(st, seat, no, data.flagged)


@post("/api/candidates/{number:str}/submit", status_code=200)
async def submit(number: str, data: SubmitIn, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    seat = cand.own_seat(st, request.cookies.get(CANDIDATE_COOKIE), number)
    if not data.confirm:
        raise Refusal(400, "confirm the submission first", "请先确认交卷")
    return await cand.submit(st, seat, "candidate", f"candidate {seat.number}")


# ------------------------------------------------------------------------------------------- proctor
@post("/api/proctor/sign-in", status_code=200)
async def proctor_sign_in(data: CodeIn, request: Request[Any, Any, Any], st: Station,
                          proctor_attempts: cand.Attempts) -> Response[dict[str, Any]]:
    token, room = await proctor.proctor_sign_in(st, proctor_attempts, machine_of(request), data.code)
    return Response({"room": room}, cookies=[_cookie(PROCTOR_COOKIE, token)])


def _room(request: Request[Any, Any, Any], st: Station, room: str) -> Any:
    return proctor.proctor_room(st, request.cookies.get(PROCTOR_COOKIE), room)


def _actor(room: str) -> str:
    return f"proctor {room}"


@get("/api/proctor/rooms/{room:str}")
async def room_state(room: str, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return proctor.room_out(st, _room(request, st, room))


@post("/api/proctor/rooms/{room:str}/start", status_code=200)
async def start_room(room: str, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return await proctor.start_room(st, _room(request, st, room), _actor(room))


@post("/api/proctor/rooms/{room:str}/end", status_code=200)
async def end_room(room: str, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return await proctor.end_room(st, _room(request, st, room), _actor(room))


@post("/api/proctor/rooms/{room:str}/candidates/{number:str}/absent", status_code=200)
async def mark_absent(room: str, number: str, data: AbsentIn, request: Request[Any, Any, Any],
                      st: Station) -> dict[str, Any]:
    return await proctor.mark_absent(st, _room(request, st, room), number, data.reason, _actor(room))


@post("/api/proctor/rooms/{room:str}/candidates/{number:str}/extra-time", status_code=200)
async def extra_time(room: str, number: str, data: ExtraTimeIn, request: Request[Any, Any, Any],
                     st: Station) -> dict[str, Any]:
    return await proctor.add_time(st, _room(request, st, room), number, data.minutes, data.reason, _actor(room))


@post("/api/proctor/rooms/{room:str}/candidates/{number:str}/move", status_code=200)
async def move(room: str, number: str, data: MoveIn, request: Request[Any, Any, Any],
               st: Station) -> dict[str, Any]:
    return await proctor.move(st, _room(request, st, room), number, data.to, data.reason, _actor(room))


@post("/api/proctor/rooms/{room:str}/incidents", status_code=201)
async def incident(room: str, data: IncidentIn, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return await proctor.record_incident(st, _room(request, st, room), data.category, data.note, _actor(room))


@get("/api/proctor/rooms/{room:str}/log")
async def room_log(room: str, request: Request[Any, Any, Any], st: Station) -> dict[str, Any]:
    return await proctor.room_log(st, _room(request, st, room))


# ------------------------------------------------------------------------------------------- errors
def refusal_handler(request: Request[Any, Any, Any], exc: Refusal) -> Response[dict[str, Any]]:
    headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
    body = {"status": exc.status, "title": "Refused", "detail": exc.en, "detail_zh": exc.zh, **exc.extra}
    return Response(body, status_code=exc.status, media_type="application/problem+json", headers=headers)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        detail = "; ".join(str(e.get("message", "")) for e in exc.extra if isinstance(e, dict)) or detail
    body = {"status": exc.status_code, "title": "Bad Request" if exc.status_code == 400 else "Error",
            "detail": detail, "detail_zh": f"请求有误：{detail}"}
    return Response(body, status_code=exc.status_code, media_type="application/problem+json")


# ------------------------------------------------------------------------------------------- the app
def create_station_app(st: Station, tick_every: float = 0.5) -> Litestar:
    limits = (cand.Attempts(cand.MAX_FAILS_PER_NUMBER), cand.Attempts(cand.MAX_FAILS_PER_MACHINE))
    proctor_attempts = cand.Attempts(cand.MAX_FAILS_PER_MACHINE)

    async def ticker() -> None:
        while True:
            try:
                await proctor.tick(st)
            except Exception:  # a failed tick is tried again next time; the station keeps serving
                log.exception("station tick failed")
            await asyncio.sleep(tick_every)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        st.store.start(asyncio.get_running_loop())
        st.tasks = [asyncio.create_task(ticker(), name="station-ticker"),
                    asyncio.create_task(sender(st), name="station-sender")]
        if st.content is None:
            st.tasks.append(asyncio.create_task(fetch_release(st), name="station-release"))
        try:
            yield
        finally:
            for task in st.tasks:
                task.cancel()
            await asyncio.gather(*st.tasks, return_exceptions=True)
            if st.centre is not None:
                await st.centre.client.aclose()
            st.store.close()

    return Litestar(
        route_handlers=[sign_in_page, exam_page, proctor_page, media, health, sign_in, candidate_state,
                        candidate_paper, save_answer, set_flag, submit, proctor_sign_in, room_state, start_room,
                        end_room, mark_absent, extra_time, move, incident, room_log,
                        create_static_files_router(path="/static", directories=[HERE / "static"],
                                                   name="station_static", include_in_schema=False)],
        dependencies={"st": Provide(lambda: st, sync_to_thread=False),
                      "limits": Provide(lambda: limits, sync_to_thread=False),
                      "proctor_attempts": Provide(lambda: proctor_attempts, sync_to_thread=False)},
        exception_handlers={Refusal: refusal_handler, HTTPException: http_error},
        lifespan=[lifespan],
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        response_headers=[ResponseHeader(name="Content-Security-Policy", value=CSP),
                          ResponseHeader(name="X-Frame-Options", value="DENY"),
                          ResponseHeader(name="Cache-Control", value="no-store"),
                          ResponseHeader(name="Referrer-Policy", value="same-origin"),
                          ResponseHeader(name="X-Content-Type-Options", value="nosniff")],
        state=State({"station": st}),
        openapi_config=None,
        debug=False,
    )
