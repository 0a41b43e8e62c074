"""How the archive talks to the S3 server: bounded timeouts, few retries, and failures of the server (no answer,
a refused connection, HTTP 5xx) reported as :class:`StoreUnavailable` rather than as the SDK's many errors.

The minio SDK's own default waits up to five minutes per read and retries five times, so a stopped server
answers after seconds and a frozen one (SIGSTOP: connections are accepted, nothing is answered) never does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import urllib3
from urllib3.util import Retry, Timeout

from evidence.errors import StoreUnavailable

__all__ = ["GuardedClient", "http_client", "unavailable_reason"]

# S3 error codes that say the server failed, not that the request was wrong
_SERVER_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted",
                           "XMinioServerNotInitialized"})


def http_client(connect_timeout: float, read_timeout: float, retries: int = 1) -> urllib3.PoolManager:
    """A connection pool whose every connect and every read waits at most the given seconds; a refused or timed
    out connection is retried ``retries`` times, a read never (a read timeout already waited its full time)."""
    return urllib3.PoolManager(
        timeout=Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        retries=Retry(total=retries, connect=retries, read=0, status=retries, other=0, backoff_factor=0.2,
                      status_forcelist=[502, 503, 504], raise_on_status=False),
    )


def unavailable_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the S3 server is unavailable (None when it is an answer about the request itself)."""
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, urllib3.exceptions.HTTPError):
        inner = getattr(exc, "reason", None) or exc  # MaxRetryError wraps what happened on the last try
        return f"{type(inner).__name__}: {inner}"
    if isinstance(exc, ServerError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, S3Error) and exc.code in _SERVER_CODES:
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, InvalidResponseError) and (getattr(exc, "_code", 0) or 0) >= 500:
        return str(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"{type(exc).__name__}: {exc}"
    return None


def guarded(operation: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable:
            raise
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                raise
            raise StoreUnavailable(operation, reason) from exc

    return call


class GuardedClient:
    """The minio client, with every call's server failures raised as :class:`StoreUnavailable`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def unguarded(self) -> Any:
        return self._client

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        return guarded(name, value) if callable(value) else value
