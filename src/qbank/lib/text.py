"""One input policy for every text the service takes in (JSON bodies, forms, query strings, imported files, the
CLI), the same on SQLite and PostgreSQL: characters that XML 1.0 cannot hold are refused with a 400 naming the
field — NUL and the other C0 controls except tab and newline, lone surrogates, U+FFFE and U+FFFF — line breaks
become ``\\n`` (``\\r\\n`` and a lone ``\\r``, as browsers send form fields and XML parsers read them) and text
is normalised to NFC. So whatever is stored can be exported (xlsx, QTI) and read back unchanged."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from qbank.lib.problems import FieldError, ProblemError

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF] (\r is normalised first)
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_DEPTH = 64  # nesting of JSON bodies; nothing the API takes is deeper than a handful of levels


class TextRefused(ValueError):
    """A text field holds a character the policy refuses; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def problem(self) -> ProblemError:
        return ProblemError(400, str(self), errors=[FieldError(field=self.field, reason=self.reason)])


def _describe(ch: str) -> str:
    code = ord(ch)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X})"
    if code in (0xFFFE, 0xFFFF):
        return f"a non-character (U+{code:04X})"
    return f"a control character (U+{code:04X})"


def clean_text(value: str, field: str) -> str:
    """The text as the service keeps it (line breaks as ``\\n``, NFC), or :class:`TextRefused`."""
    bad = _REFUSED.search(value)
    if bad is not None:
        raise TextRefused(field, f"the text contains {_describe(bad.group())} at position {bad.start()}; "
                                 "only tab and newline are allowed among the control characters")
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def clean_tree(value: Any, path: str = "", depth: int = 0) -> Any:
    """Every string in decoded JSON (object keys too), cleaned; the field path is named as msgspec names it
    (``options[2]``, ``practical.tasks[0]``; the body itself is ``body``)."""
    if isinstance(value, str):
        return clean_text(value, path or "body")
    if depth > MAX_DEPTH:
        raise TextRefused(path or "body", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            name = clean_text(key, _join(path, "<key>")) if isinstance(key, str) else key
            out[name] = clean_tree(item, _join(path, str(name)), depth + 1)
        return out
    if isinstance(value, list):
        return [clean_tree(item, _join(path, i), depth + 1) for i, item in enumerate(value)]
    return value


def refused_fields(value: Any, path: str = "") -> list[str]:
    """The fields of stored data that hold a character the policy refuses (data stored before the policy)."""
    if isinstance(value, str):
        return [path or "value"] if _REFUSED.search(value) else []
    if isinstance(value, dict):
        return [f for key, item in value.items() for f in refused_fields(item, _join(path, str(key)))]
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in refused_fields(item, _join(path, i))]
    return []
