"""How the service and its workers log: one handler on the root logger that every log path goes through
(structlog, and the standard library's loggers: uvicorn, litestar, sqlalchemy, saq), with plain tracebacks
(never local variables: a frame's locals hold request headers, tokens and keys) and a redaction processor
that runs last before rendering, so that nothing secret leaves the process through a log line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"

# Keys whose values are secret whatever they hold (event dict fields, headers in nested dicts).
_SECRET_KEYS = re.compile(r"(?i)^(authorization|proxy-authorization|cookie|set-cookie|x-csrftoken|csrf.*|token|"
                          r"token_secret|.*_token|password|passwd|secret|.*_secret|(private|secret|api|access|signing|"
                          r"session|trail)_key|id_number|signature)$")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # bearer credentials and qbank tokens (qb_ + urlsafe base64), wherever they appear
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9._~+/=\-]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"\bqb_[A-Za-z0-9_\-]{8,}"), f"qb_{REDACTED}"),
    # cookie and header values inside reprs: (b'cookie', b'a=b; c=d'), 'authorization': '...'
    (re.compile(r"(?i)(['\"]?(?:authorization|cookie|set-cookie|x-csrftoken)['\"]?\s*[:,=]\s*b?['\"])[^'\"]*"),
     rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(qbank_review_[a-z]+=)[^;\s'\"&]+"), rf"\1{REDACTED}"),
    # presigned links are bearer capabilities until they expire
    (re.compile(r"(?i)\b(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s'\"]+"), rf"\1{REDACTED}"),
    # key material
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)"),
     f"[private key {REDACTED}]"),
)
# resident id numbers (GB 11643): 17 digits and a check character; redacted when the check character fits
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_number(match: re.Match[str]) -> str:
    text = match.group(0)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS, strict=True)) % 11]
    return f"[id number {REDACTED}]" if text[17].upper() == check else text


class Redactor:
    """Removes secrets from log events: values under secret-looking keys, tokens, bearer credentials, cookies,
    presigned-link signatures, private keys, id numbers, and the literal secrets the service was configured with
    (token secret, S3 secret key)."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        self.literals = sorted({s for s in literals if len(s) >= 8}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for literal in self.literals:
            value = value.replace(literal, REDACTED)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return _ID_NUMBER.sub(_id_number, value)

    def value(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        if depth > 6:
            return value
        if isinstance(value, Mapping):
            return {k: REDACTED if isinstance(k, str) and _SECRET_KEYS.match(k) else self.value(v, depth + 1)
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, depth + 1) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.text(str(value))

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        for key in list(event):
            if key.startswith("_"):  # the formatter's own fields (_record, _from_structlog)
                continue
            event[key] = REDACTED if _SECRET_KEYS.match(key) else self.value(event[key])
        return event


def logging_processors(redactor: Redactor) -> list[Any]:
    """What every event goes through before it is rendered: tracebacks become plain text (no locals),
    then everything is redacted."""
    return [structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
            structlog.processors.StackInfoRenderer(), redactor,
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Route structlog and the standard library's loggers through one redacting handler on stderr.
    ``secrets``: literal values to blank out wherever they appear (the token secret, the S3 secret key)."""
    redactor = Redactor(secrets)
    shared: list[Any] = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                         structlog.processors.TimeStamper(fmt="iso")]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=logging_processors(redactor)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar", "saq"):
        named = logging.getLogger(name)  # their own handlers would bypass the redaction: propagate to root
        for old in list(named.handlers):
            named.removeHandler(old)
        named.propagate = True
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
