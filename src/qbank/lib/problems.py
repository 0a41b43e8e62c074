"""RFC 9457 problem details for every error the API answers."""

from __future__ import annotations

import contextlib
import re
import sys
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
    ) -> None:
        super().__init__(detail=detail, status_code=status, headers=headers)
        self.title = title
        self.errors = errors or []
        self.problem_extra = extra or {}


def bad_request(field: str, reason: str, status: int = 400) -> ProblemError:
    return ProblemError(status, f"{field}: {reason}", errors=[FieldError(field=field, reason=reason)])


def not_found(entity: str, key: object) -> ProblemError:
    return ProblemError(404, f"{entity} {key} does not exist")


def conflict(detail: str, **extra: Any) -> ProblemError:
    return ProblemError(409, detail, extra=extra)


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
           429: "Too Many Requests", 500: "Internal Server Error"}

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
        problem = Problem(title=exc.title or _TITLES.get(status, "Error"), status=status, detail=exc.detail,
                          errors=exc.errors, extra=exc.problem_extra)
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
    try:
        refusal = storage_refusal(exc)
    except Exception:
        refusal = None
    if refusal is not None:  # bad input that only the database noticed: a 400, and the transaction rolls back
        return problem_response(Problem(title="Bad Request", status=400, detail=refusal))
    log_unhandled("unhandled error", request, exc)
    return problem_response(Problem(title="Internal Server Error", status=HTTP_500_INTERNAL_SERVER_ERROR,
                                    detail="the service failed; the error is in its log"))


# Documented on every operation so that responses match the OpenAPI schema.
def problem_responses(*codes: int) -> dict[int, Any]:
    from litestar.openapi.datastructures import ResponseSpec

    return {
        code: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, description=_TITLES.get(code, "Error"))
        for code in codes
    }


def declare_controller_problems(app: Any, everywhere: tuple[int, ...] = ()) -> None:
    """Litestar reads ``responses`` only from handlers; give each handler its controller's ``responses`` too
    (the handler's own entries win), so that the 401/403 a controller declares are in the OpenAPI schema.
    ``everywhere``: codes every operation that declares a 401 may answer too (429: the rate limit)."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            controller = getattr(getattr(handler, "fn", None), "__self__", None)  # a controller's bound method
            shared = getattr(controller, "responses", None)
            if isinstance(shared, dict) and shared:
                handler.responses = {**shared, **(handler.responses or {})}
            if everywhere and 401 in (handler.responses or {}):
                handler.responses = {**problem_responses(*everywhere), **handler.responses}
