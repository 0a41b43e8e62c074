"""Moodle XML question files: ``multichoice`` (single or multiple) and ``truefalse`` questions.

The appraisal point comes from a tag ``point:001``; failing that, from the last segment of the current
``category`` when it is three digits. Other ``key:value`` tags set facility, difficulty, enemy groups and
the stimulus set; any other tag is kept as a tag."""

from __future__ import annotations

import html
import re
from typing import Any

from qbank.imports.safety import local, parse_xml
from qbank.imports.schemas import TRUE_FALSE_OPTIONS, ParsedItem, ParseResult
from qbank.items.schemas import LABELS
from qbank.lib.problems import FieldError, bad_request

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\b[^>]*>", re.IGNORECASE)
TAG_FIELDS = {"point": "point_code", "facility": "facility", "difficulty": "difficulty", "enemy": "enemy_groups",
              "stimulus": "stimulus_set", "maintainer": "maintainer"}


def _child(el: Any, name: str) -> Any | None:
    return next((c for c in el if local(c.tag) == name), None)


def _text(el: Any | None) -> str:
    """The ``<text>`` of a Moodle element, HTML reduced to plain text when its format is html."""
    if el is None:
        return ""
    holder = _child(el, "text")
    raw = "".join(holder.itertext()) if holder is not None else ""
    if el.get("format", "html") in ("html", "moodle_auto_format", "markdown"):
        raw = html.unescape(_TAG.sub("", _BREAK.sub("\n", raw)))
    return raw.strip()


def _fraction(answer: Any) -> float:
    try:
        return float(answer.get("fraction", "0"))
    except ValueError:
        return 0.0


def parse_moodle(data: bytes) -> ParseResult:
    root = parse_xml(data, "Moodle XML")
    if local(root.tag) != "quiz":
        raise bad_request("file", f"a Moodle XML file has a <quiz> root, this one has <{local(root.tag)}>")
    result = ParseResult(items=[], errors=[])
    category_point: str | None = None
    index = 0
    for question in root:
        if local(question.tag) != "question":
            continue
        kind = question.get("type", "")
        if kind == "category":
            path = _text(_child(question, "category")).rstrip("/")
            last = path.rsplit("/", 1)[-1].strip()
            category_point = last if re.fullmatch(r"\d{3}", last) else None
            continue
        index += 1
        position = f"question {index}"

        def err(field: str, reason: str, position: str = position) -> None:
            result.errors.append(FieldError(field=f"{position}: {field}", reason=reason))

        if kind not in ("multichoice", "truefalse"):
            err("type", f"Moodle question type {kind!r} is not imported (multichoice, truefalse)")
            continue
        fields: dict[str, Any] = {"stem": _text(_child(question, "questiontext")), "tags": [], "enemy_groups": []}
        explanation = _text(_child(question, "generalfeedback"))
        if explanation:
            fields["explanation"] = explanation
        tags_el = _child(question, "tags")
        for tag in (tags_el if tags_el is not None else []):
            value = _text(tag) if _child(tag, "text") is not None else "".join(tag.itertext()).strip()
            key, sep, rest = value.partition(":")
            field = TAG_FIELDS.get(key.strip().lower()) if sep else None
            if field == "enemy_groups":
                fields["enemy_groups"].append(rest.strip())
            elif field == "facility":
                try:
                    fields["facility"] = float(rest)
                except ValueError:
                    err("facility", f"tag {value!r}: not a number between 0 and 1")
            elif field:
                fields[field] = rest.strip()
            elif value:
                fields["tags"].append(value)
        if "point_code" not in fields:
            if category_point is None:
                err("point_code", "no appraisal point: add a tag point:001 or put the question in a category "
                                  "whose last segment is the point code")
            fields["point_code"] = category_point or ""
        answers = [a for a in question if local(a.tag) == "answer"]
        if kind == "truefalse":
            truth = next((_text(a).lower() for a in answers if _fraction(a) > 0), None)
            if truth not in ("true", "false"):
                err("answer", "a truefalse question needs the answer 'true' or 'false' with fraction 100")
            fields["options"] = list(TRUE_FALSE_OPTIONS)
            fields["answer"] = ["A"] if truth == "true" else ["B"] if truth == "false" else []
            result.items.append(ParsedItem(position=position, type="true_false", fields=fields))
            continue
        single_el = _child(question, "single")
        single = ("".join(single_el.itertext()).strip() if single_el is not None else "true").lower() in ("true", "1")
        if len(answers) > len(LABELS):
            err("options", f"an item has 2 to 8 options, got {len(answers)}")
            continue
        fields["options"] = [_text(a) for a in answers]
        fields["answer"] = [LABELS[i] for i, a in enumerate(answers) if _fraction(a) > 0]
        result.items.append(ParsedItem(position=position, type="single_choice" if single else "multiple_choice",
                                       fields=fields))
    if index == 0:
        raise bad_request("file", "the Moodle XML file holds no questions")
    return result
