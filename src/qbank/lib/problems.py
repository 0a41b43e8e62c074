"""RFC 9457 problem details for every error the API answers."""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from qbank.lib.validation import in_words

log = structlog.get_logger("qbank.errors")

PROBLEM_JSON = "application/problem+json"


class FieldError(msgspec.Struct, kw_only=True):
    field: str
    reason: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A problem details body (RFC 9457); ``errors`` names each bad field, ``extra`` carries context."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []
    extra: dict[str, Any] = {}


class ProblemError(HTTPException):
    """An error the API reports as problem details: raise it from services with the field and reason."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Problem | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status, headers=headers)
        self.title = title
        self.errors = errors or []
        self.problem_extra = extra or {}
        self.body = body  # a documented Problem subclass answered as it is (its fields at the top level)


def bad_request(field: str, reason: str, status: int = 400) -> ProblemError:
    return ProblemError(status, f"{field}: {reason}", errors=[FieldError(field=field, reason=reason)])


def not_found(entity: str, key: object) -> ProblemError:
    return ProblemError(404, f"{entity} {key} does not exist")


def conflict(detail: str, **extra: Any) -> ProblemError:
    return ProblemError(409, detail, extra=extra)


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
           507: "Insufficient Storage"}

_MISSING = re.compile(r"Missing required (\w+) parameter '([^']+)'")


def _handler_type(request: Request[Any, Any, Any] | None, source: str | None, key: str) -> tuple[Any, str]:
    """The type a request part was decoded as (the handler's ``data`` for the body, the named parameter for a
    query/path/header value) and the path inside it, so that messages can name accepted values."""
    try:
        parameters = request.route_handler.parsed_fn_signature.parameters if request is not None else {}
    except (AttributeError, KeyError):
        return None, key
    if source == "body":
        data = parameters.get("data")
        return (data.annotation if data is not None else None), key
    for name, definition in parameters.items():
        alias = getattr(definition.kwarg_definition, "query", None) or getattr(
            definition.kwarg_definition, "header", None) or name
        if key in (name, alias):
            return definition.annotation, ""
    return None, key


def _validation_errors(exc: ValidationException, request: Request[Any, Any, Any] | None = None) -> list[FieldError]:
    out: list[FieldError] = []
    missing = _MISSING.match(str(exc.detail))
    if missing:
        return [FieldError(field=missing.group(2), reason=f"the {missing.group(1)} parameter is required")]
    extra = exc.extra if isinstance(exc.extra, list) else []
    for entry in extra:
        if not isinstance(entry, dict):
            continue
        message = str(entry.get("message", "invalid"))
        key = str(entry.get("key") or "")
        source = getattr(entry.get("source"), "value", entry.get("source"))  # Litestar's ParamType or a str
        if source == "body" and key == "data":  # Litestar's name for the body itself
            key = ""
        root, path = _handler_type(request, str(source) if source else None, key)
        field, reason = in_words(message, root, path)
        if source and source not in ("body",) and key:
            field = f"{source}.{key}"
        out.append(FieldError(field=field or str(source or "body"), reason=reason))
    return out


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(problem, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    if isinstance(exc, ProblemError):
        problem = problem_of(exc)
    elif isinstance(exc, ValidationException):
        errors = _validation_errors(exc, request)
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors) or exc.detail
        problem = Problem(title="Bad Request", status=400, detail=detail, errors=errors)
    else:
        detail = exc.detail
        if isinstance(exc, NotAuthorizedException) and detail == "Unauthorized":
            detail = "a valid bearer token is required"
        if isinstance(exc, PermissionDeniedException) and detail == "Forbidden":
            detail = "this token's role may not do this"
        problem = Problem(title=_TITLES.get(status, "Error"), status=status, detail=detail)
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(problem, headers)


# an absolute file path of two parts or more, not part of a word (so "video/mp4" and "1/25" stay)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+~-]+/)+[\w.@+~-]*")


def without_paths(text: str, *named: tuple[str | Path, str]) -> str:
    """``text`` (an error's words, often a tool's stderr) without the server's file paths: each ``(path, name)``
    becomes its name ("the file"), any other absolute path becomes "…". Responses and stored reasons never show
    where the server keeps its files."""
    for path, name in named:
        if str(path):
            text = text.replace(str(path), name)
    return _ABSOLUTE_PATH.sub("…", text)


def storage_refusal(exc: Exception) -> str | None:
    """Why the database refused a value the request carried, when it did (else None): a number out of its
    range (SQLite: 64 bits; PostgreSQL: 32 bits for ids) or text with NUL, which PostgreSQL does not store."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, OverflowError):
        return "a number in the request is out of the range the database stores"
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "")
    message = str(exc.orig)
    if not sqlstate.startswith("22"):  # class 22: data exception
        return None
    if sqlstate == "22021" or "0x00" in message or "\\u0000" in message:
        return "text in the request contains a NUL character (U+0000), which cannot be stored"
    if "range" in message:
        return "a number in the request is out of the range the database stores"
    return "a value in the request has a form the database cannot store"


RETRY_AFTER_S = 5
LOW_DISK_BYTES = 64 << 20  # below this the embedded S3 server cannot add a volume (its volume size)
_DEPENDENCIES = {"object store": "the object store (S3)", "database": "the database",
                 "job queue": "the job queue (Redis)"}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what caused it, and what an exception group holds, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)


def _raised_in(exc: BaseException) -> set[str]:
    """The top-level packages whose code the exception passed through."""
    return {str(frame.f_globals.get("__name__", "")).split(".", 1)[0]
            for frame, _ in traceback.walk_tb(exc.__traceback__)}


def unavailable_dependency(exc: BaseException) -> str | None:
    """Which dependency did not answer (``object store``, ``database``, ``job queue``), when that is why ``exc``
    was raised; None otherwise."""
    import sqlalchemy.exc as sa_exc
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from evidence import StoreUnavailable

    for e in _causes(exc):
        if isinstance(e, StoreUnavailable):
            return "object store"
        if isinstance(e, RedisConnectionError | RedisTimeoutError):
            return "job queue"
        if isinstance(e, sa_exc.DisconnectionError | sa_exc.TimeoutError | sa_exc.OperationalError
                      | sa_exc.InterfaceError):
            return "database"
        if isinstance(e, ConnectionError | TimeoutError | OSError) and not isinstance(e, FileNotFoundError):
            where = _raised_in(e)
            if where & {"urllib3", "minio"}:
                return "object store"
            if where & {"redis", "saq"}:
                return "job queue"
            if where & {"asyncpg", "sqlalchemy", "aiosqlite"}:
                return "database"
        if type(e).__module__.startswith("asyncpg") and "Connection" in type(e).__name__:
            return "database"
    return None


def full_disk(exc: BaseException, data_dir: Path | None, embedded_s3: bool) -> bool:
    """Whether ``exc`` says a disk of the data dir is full: no space left (ENOSPC, EDQUOT), SQLite's "database or
    disk is full", or the embedded S3 server failing while the data dir has no room for another volume."""
    from evidence import StoreUnavailable

    for e in _causes(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(e):
            return True
        if isinstance(e, StoreUnavailable) and embedded_s3 and data_dir is not None:
            try:
                return shutil.disk_usage(data_dir).free < LOW_DISK_BYTES
            except OSError:
                return False
    return False


def disk_full_problem(kind: str) -> ProblemError:
    """507 naming which of the service's places is full (``spool``: uploads being received; ``data``: the
    database and stored files); whatever was being stored was not."""
    return ProblemError(507, f"there is no space left on the service's {kind} disk; nothing was stored. "
                             "Try again once space has been freed", extra={"path": kind})


def unavailable_problem(dependency: str) -> ProblemError:
    return ProblemError(503, f"{_DEPENDENCIES.get(dependency, dependency)} is not answering right now; nothing was "
                             f"changed. Try again in a few seconds", extra={"dependency": dependency},
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def outage_problem(exc: BaseException, settings: Any) -> ProblemError | None:
    """507 for a full disk, 503 for a dependency that did not answer; None for anything else. ``settings``: the
    service's (its data dir and whether the S3 server is its own), or None."""
    data_dir = getattr(settings, "data_dir", None)
    if full_disk(exc, data_dir, embedded_s3=settings is not None and not settings.s3_endpoint):
        return disk_full_problem("data")
    dependency = unavailable_dependency(exc)
    return unavailable_problem(dependency) if dependency is not None else None


def problem_of(exc: ProblemError) -> Problem:
    if exc.body is not None:
        return exc.body
    return Problem(title=exc.title or _TITLES.get(exc.status_code, "Error"), status=exc.status_code,
                   detail=exc.detail, errors=exc.errors, extra=exc.problem_extra)


def undecodable_request(exc: Exception) -> str | None:
    """Why a request Litestar could not read is bad input (bytes that are not UTF-8 where a form field or parameter
    is text), when that is what ``exc`` is: raised while the request was parsed, before any of the service's code."""
    if isinstance(exc, UnicodeDecodeError) and _raised_in(exc) <= {"litestar", "multipart", "msgspec", "urllib"}:
        return "the request holds bytes that are not UTF-8 text where text is expected (a form field without a " \
               "file name is text)"
    return None


def log_unhandled(message: str, request: Request[Any, Any, Any], exc: Exception) -> None:
    """Log an unhandled error with its traceback; never raises (a log that cannot be written, or an exception that
    cannot be rendered, must not turn the 500 into a crash of the error handler itself)."""
    try:
        log.error(message, path=request.url.path, method=request.method, exc_info=exc)
    except Exception:  # the last line of defence
        with contextlib.suppress(Exception):
            print(f"qbank: {message}: {type(exc).__name__} on {request.method} {request.url.path} "
                  "(the traceback could not be logged)", file=sys.stderr)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The last handler: bad input only the database or the parser noticed → 400, a full disk → 507, a dependency
    that did not answer → 503, anything else → 500 with the error in the log. It never raises itself."""
    try:
        refusal = storage_refusal(exc) or undecodable_request(exc)
        outage = None if refusal is not None else outage_problem(exc, getattr(request.app.state, "settings", None))
    except Exception:
        refusal, outage = None, None
    if refusal is not None:  # bad input that only the database noticed: a 400, and the transaction rolls back
        return problem_response(Problem(title="Bad Request", status=400, detail=refusal))
    if outage is not None:
        with contextlib.suppress(Exception):
            log.warning("a dependency failed", path=request.url.path, method=request.method,
                        status=outage.status_code, error=f"{type(exc).__name__}: {exc}"[:500])
        return http_exception_handler(request, outage)
    log_unhandled("unhandled error", request, exc)
    return problem_response(Problem(title="Internal Server Error", status=HTTP_500_INTERNAL_SERVER_ERROR,
                                    detail="the service failed; the error is in its log"))


# Documented on every operation so that responses match the OpenAPI schema.
def problem_responses(*codes: int, schema: type[Problem] = Problem, description: str = "") -> dict[int, Any]:
    """The problem responses an operation documents; ``schema``: a Problem subclass some of them answer with."""
    from litestar.openapi.datastructures import ResponseSpec

    return {
        code: ResponseSpec(data_container=schema, media_type=PROBLEM_JSON,
                           description=description or _TITLES.get(code, "Error"))
        for code in codes
    }


def declare_controller_problems(app: Any, everywhere: tuple[int, ...] = ()) -> None:
    """Litestar reads ``responses`` only from handlers; give each handler its controller's ``responses`` too
    (the handler's own entries win), so that the 401/403 a controller declares are in the OpenAPI schema. Every
    operation may answer 503 (a dependency did not answer), every write 507 (a full disk); ``everywhere``: codes
    every operation that declares a 401 may answer too (429: the rate limit)."""
    outages = problem_responses(503, 507)
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            controller = getattr(getattr(handler, "fn", None), "__self__", None)  # a controller's bound method
            shared = getattr(controller, "responses", None)
            own = {**(shared if isinstance(shared, dict) else {}), **(handler.responses or {})}
            own.setdefault(503, outages[503])
            if set(getattr(handler, "http_methods", ())) - {"GET", "HEAD", "OPTIONS"}:
                own.setdefault(507, outages[507])
            if everywhere and 401 in own:
                own = {**problem_responses(*everywhere), **own}
            handler.responses = own
