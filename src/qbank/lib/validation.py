"""msgspec's validation messages said in words, with the field they are about.

msgspec reports ``Invalid enum value 'Z' - at `$.answer[0]``` or ``Expected `str` matching regex '^\\d{3}$'``;
a person filling in a form or a spreadsheet needs ``answer[0]: 'Z' is not one of A, B, C, D, E, F, G, H``.
The accepted values, the field's description and an example come from the type the value was checked against
(walked with ``msgspec.inspect``), so every enum names its valid values without a list kept by hand."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi

_AT = re.compile(r"\s*-\s*at `\$\.?([^`]*)`\s*$")
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+|'[^']*'|\"[^\"]*\")\]")
NOUNS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false", "array": "a list",
         "object": "an object", "null": "null", "bytes": "base64 text", "datetime": "a date and time",
         "date": "a date", "time": "a time", "uuid": "a UUID", "decimal": "a number"}
BOUNDS = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}


def _noun(names: str) -> str:
    parts = [NOUNS.get(p.strip(), p.strip()) for p in names.split("|")]
    return " or ".join(parts)


def _steps(path: str) -> list[str | int]:
    out: list[str | int] = []
    for name, index in _STEP.findall(path):
        out.append(name if name else int(index) if index.isdigit() else index.strip("'\""))
    return out


def _unwrap(info: Any) -> tuple[Any, dict[str, Any]]:
    """The type under any ``Annotated`` metadata, and the JSON-schema extras (description, examples) it had."""
    extra: dict[str, Any] = {}
    while isinstance(info, mi.Metadata):
        extra = {**(info.extra_json_schema or {}), **extra}
        info = info.type
    return info, extra


def _step(info: Any, step: str | int) -> Any | None:
    info, _ = _unwrap(info)
    if isinstance(info, mi.UnionType):
        for option in info.types:
            found = _step(option, step)
            if found is not None:
                return found
        return None
    if isinstance(info, mi.StructType | mi.DataclassType | mi.TypedDictType) and isinstance(step, str):
        return next((f.type for f in info.fields if f.encode_name == step or f.name == step), None)
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType) and isinstance(step, int):
        return info.item_type
    if isinstance(info, mi.TupleType) and isinstance(step, int) and step < len(info.item_types):
        return info.item_types[step]
    if isinstance(info, mi.DictType):
        return info.value_type
    return None


def type_at(root: Any, path: str) -> Any | None:
    """The msgspec type info of the value at ``path`` (``answer[0]``, ``practical.marking[1].points``) inside
    ``root`` (a Python type), or None when the path leads nowhere known."""
    if root is None:
        return None
    try:
        info: Any = mi.type_info(root)
    except (TypeError, ValueError):
        return None
    for step in _steps(path):
        info = _step(info, step)
        if info is None:
            return None
    return info


def accepted_values(info: Any) -> list[Any]:
    """The values a Literal or Enum type accepts (through unions and metadata), else []."""
    info, _ = _unwrap(info)
    if isinstance(info, mi.LiteralType):
        return list(info.values)
    if isinstance(info, mi.EnumType):
        return [member.value for member in info.cls]
    if isinstance(info, mi.UnionType):
        return [v for option in info.types for v in accepted_values(option)]
    return []


def field_names(info: Any) -> list[str]:
    info, _ = _unwrap(info)
    if isinstance(info, mi.UnionType):
        return [n for option in info.types for n in field_names(option)]
    if isinstance(info, mi.StructType | mi.DataclassType | mi.TypedDictType):
        return [f.encode_name for f in info.fields]
    return []


def _form(info: Any) -> str:
    """What a value of a pattern-checked text field looks like, from its description and examples."""
    found, extra = _unwrap(info) if info is not None else (None, {})
    if isinstance(found, mi.UnionType):
        for option in found.types:
            option_found, option_extra = _unwrap(option)
            if isinstance(option_found, mi.StrType) and option_found.pattern:
                extra = {**option_extra, **extra}
    words = []
    if extra.get("description"):
        words.append(str(extra["description"]))
    if extra.get("examples"):
        words.append(f"e.g. {extra['examples'][0]!r}")
    return ", ".join(words) if words else "see the API documentation for the form"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def in_words(message: str, root: Any | None = None, path: str | None = None) -> tuple[str, str]:
    """(field, reason) for one msgspec validation message; ``path`` when the caller got it apart from the
    message (Litestar's ``key``), ``root`` the type that was being decoded (for accepted values)."""
    match = _AT.search(message)
    if path is None:
        path = match.group(1) if match else ""
    text = _AT.sub("", message).strip()
    info = type_at(root, path) if root is not None else None
    if m := re.fullmatch(r"Invalid enum value (.+)", text):
        values = accepted_values(info)
        shown = ", ".join(str(v) for v in values)
        return path, f"{m.group(1)} is not one of {shown}" if values else f"{m.group(1)} is not an accepted value"
    if m := re.fullmatch(r"Object missing required field `([^`]+)`", text):
        return _join(path, m.group(1)), "is required and missing"
    if m := re.fullmatch(r"Object contains unknown field `([^`]+)`", text):
        names = field_names(info)
        known = f"; the fields are {', '.join(names)}" if names else ""
        return _join(path, m.group(1)), f"is not a field here{known}"
    if m := re.fullmatch(r"Expected `str` matching regex .+", text):
        return path, f"does not have the required form ({_form(info)})"
    if m := re.fullmatch(r"Expected `(str|array|object)` of length (>=|<=) (\d+)", text):
        if m.group(1) == "str":
            return path, f"is too {'short' if m.group(2) == '>=' else 'long'}: {BOUNDS[m.group(2)]} {m.group(3)} " \
                         "characters"
        return path, f"has too {'few' if m.group(2) == '>=' else 'many'} entries: {BOUNDS[m.group(2)]} {m.group(3)}"
    if m := re.fullmatch(r"Expected `(int|float)` (>=|<=|>|<) (\S+)", text):
        return path, f"must be {BOUNDS[m.group(2)]} {m.group(3)}"
    if m := re.fullmatch(r"Expected `([^`]+)`, got `([^`]+)`", text):
        return path, f"expected {_noun(m.group(1))}, got {_noun(m.group(2))}"
    if m := re.fullmatch(r"Expected `([^`]+)`", text):
        return path, f"expected {_noun(m.group(1))}"
    if text.startswith(("JSON is malformed", "Input data was truncated")):
        return path or "body", "is not well-formed JSON"
    return path, text[:1].lower() + text[1:]


def convert_or_errors(data: Any, root: type[Any]) -> tuple[Any | None, tuple[str, str] | None]:
    """``msgspec.convert(data, root)``, or (None, (field, reason)) in words."""
    try:
        return msgspec.convert(data, root), None
    except msgspec.ValidationError as exc:
        return None, in_words(str(exc), root)
