"""Where the input policy (:mod:`qbank.lib.text`) meets HTTP: the request class every handler gets (JSON bodies and
forms) and a middleware for query strings and paths. A body that is not UTF-8 JSON is a 400 naming ``body``."""

from __future__ import annotations

import urllib.parse
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

from qbank.lib.problems import bad_request
from qbank.lib.text import TextRefused, clean_text, clean_tree


def decode_json_body(body: bytes) -> Any:
    """Decoded and cleaned JSON, or a 400 naming the body (or the field whose text is refused)."""
    try:
        decoded = msgspec.json.decode(body or b"null")
    except UnicodeDecodeError as exc:
        raise bad_request("body", f"the body is not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise bad_request("body", "the JSON is nested too deeply") from None
    except (msgspec.DecodeError, ValueError) as exc:
        raise bad_request("body", f"the body is not valid JSON in UTF-8 ({exc})") from None
    try:
        return clean_tree(decoded)
    except TextRefused as exc:
        raise exc.problem() from None


def upload_filename(upload: UploadFile, field: str = "file") -> str | None:
    """An uploaded file's name under the input policy (multipart forms reach handlers without passing
    :meth:`PolicyRequest.form`)."""
    try:
        return clean_text(upload.filename, f"{field}.filename") if upload.filename else None
    except TextRefused as exc:
        raise exc.problem() from None


class PolicyRequest(Request[Any, Any, Any]):
    """Litestar's request, with every JSON body and form field put through the input policy when it is read."""

    async def json(self) -> Any:
        if self._json is Empty and self._connection_state.json is Empty:
            self._json = self._connection_state.json = decode_json_body(await self.body())
        return await super().json()

    async def form(self) -> FormMultiDict:
        form = await super().form()
        cleaned: list[tuple[str, Any]] = []
        try:
            for key, value in form.multi_items():
                if isinstance(value, str):
                    value = clean_text(value, key)
                elif isinstance(value, UploadFile) and value.filename:
                    value.filename = clean_text(value.filename, f"{key}.filename")
                cleaned.append((clean_text(key, "form"), value))
        except TextRefused as exc:
            raise exc.problem() from None
        return FormMultiDict(cleaned)


def _query_problem(raw: bytes) -> tuple[bytes, TextRefused | None]:
    """The query string with its values normalised (unchanged bytes when nothing changes), or why it is refused."""
    try:
        text = raw.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return raw, TextRefused("query", "the query string is not valid UTF-8")
    try:
        cleaned = [(clean_text(k, "query"), clean_text(v, f"query.{k}")) for k, v in pairs]
    except TextRefused as exc:
        return raw, exc
    if cleaned == pairs:
        return raw, None
    return urllib.parse.urlencode(cleaned).encode("ascii"), None


class InputPolicyMiddleware(ASGIMiddleware):
    """Query strings and paths under the input policy: refused characters are a 400 naming the parameter;
    values are normalised in place (NFC, line breaks) before Litestar parses them."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        try:
            clean_text(scope["path"], "path")
        except TextRefused as exc:
            raise exc.problem() from None
        raw = scope.get("query_string", b"")
        if raw:
            normalised, refused = _query_problem(raw)
            if refused is not None:
                raise refused.problem()
            scope["query_string"] = normalised
        await next_app(scope, receive, send)
