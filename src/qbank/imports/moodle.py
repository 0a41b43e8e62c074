"""Moodle XML question files: ``multichoice`` (single or multiple) and ``truefalse`` questions, in and out.

In: a question is named by its ``<name>`` (and its number, categories not counted). Its text, answers and
general feedback are read as a candidate sees them (:mod:`qbank.imports.text`); the images, sounds and videos
they show travel in ``<file encoding="base64">`` elements next to the text that shows them
(``@@PLUGINFILE@@/name``) or as ``data:`` URIs, and go with the item; a reference to anything else (a web
address, a file the question does not carry) refuses the question. Tags ``point:``, ``facility:``,
``difficulty:``, ``enemy:``, ``stimulus:``, ``maintainer:``, ``language:`` and ``type:`` set those fields; any
other tag is kept as a tag. The category path is what the point map matches; a last segment that is a point
code (``005`` or ``005 安全用电``) implies the point.

Out: one category per scope and point (``$course$/top/<occupation> L<level>/<scope>/…/<point>``), every medium
as a ``<file>`` of the text that shows it, qbank's fields as tags: importing the file gives the same items."""

from __future__ import annotations

import base64
import html
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any
from xml.etree import ElementTree as ET  # building only; parsing goes through defusedxml

from qbank.imports.safety import local, parse_xml
from qbank.imports.schemas import ExportItem, Origin, ParsedItem, ParseResult
from qbank.imports.text import (
    ATTACHED,
    Reading,
    Unresolved,
    data_uri,
    element_for,
    normalise_line,
    read_html,
    remote,
    segments,
    without_media,
)
from qbank.items.media import EXTENSIONS, PLACEHOLDER, media_key
from qbank.items.schemas import LABELS, TRUE_FALSE_OPTIONS
from qbank.lib.problems import bad_request

TAG_FIELDS = {"point": "point_code", "facility": "facility", "difficulty": "difficulty", "enemy": "enemy_groups",
              "stimulus": "stimulus_set", "maintainer": "maintainer", "language": "language", "type": "type"}
POINT_SEGMENT = re.compile(r"^(\d{3})(?:\s.*)?$")
PLUGINFILE = "@@PLUGINFILE@@"
FEEDBACK = ("correctfeedback", "partiallycorrectfeedback", "incorrectfeedback")


def _child(el: Any, name: str) -> Any | None:
    return next((c for c in el if local(c.tag) == name), None)


def _plain(el: Any | None) -> str:
    holder = _child(el, "text") if el is not None else None
    return "".join(holder.itertext()).strip() if holder is not None else ""


def _fraction(answer: Any) -> float:
    try:
        return float(answer.get("fraction", "0"))
    except ValueError:
        return 0.0


class _Question:
    """Reading one question's texts, with the media its ``<file>`` elements carry."""

    def __init__(self, result: ParseResult, position: str) -> None:
        self.result, self.position = result, position
        self.media: list[str] = []
        self.attached: list[str] = []

    def text(self, el: Any | None, field: str) -> str:
        if el is None:
            return ""
        files = {}
        for f in el:
            if local(f.tag) == "file" and f.get("encoding", "base64") == "base64":
                path = (f.get("path") or "/").strip("/")
                files[f"{path}/{f.get('name', '')}".strip("/")] = "".join(f.itertext())

        def resolve(ref: str, element: str) -> str:
            embedded = data_uri(ref)
            if embedded is not None:
                return self.result.carry(f"{field} {element}", embedded, self.position)
            if ref.startswith(PLUGINFILE):
                name = urllib.parse.unquote(ref[len(PLUGINFILE):].split("?", 1)[0]).strip("/")
                if name not in files:
                    raise Unresolved(f"{name!r} is shown but the question carries no <file name=…> of that name")
                try:
                    data = base64.b64decode(re.sub(r"\s+", "", files[name]), validate=True)
                except ValueError as exc:
                    raise Unresolved(f"the <file> {name!r} is not valid base64") from exc
                return self.result.carry(name, data, self.position)
            if remote(ref):
                raise Unresolved(f"{ref!r} is outside the file (a web address): add the file to the question "
                                 "(Moodle exports it as <file>) or remove the reference")
            raise Unresolved(f"{ref!r} is not a file the question carries")

        raw = _plain(el)
        kind = el.get("format", "html")
        if kind in ("plain_text", "markdown"):
            return "\n".join(line for line in (normalise_line(x) for x in raw.splitlines()) if line)
        if kind == "moodle_auto_format":
            raw = raw.replace("\n", "<br>")
        reading: Reading = read_html(raw, resolve)
        for reason in reading.refused:
            self.result.error(self.position, field, reason)
        self.result.leave_out(reading.left_out)
        self.media.extend(m for m in reading.media if m not in reading.attached)
        self.attached.extend(reading.attached)
        return reading.result()


def _tags(question: Any, fields: dict[str, Any], q: _Question) -> None:
    tags_el = _child(question, "tags")
    for tag in (tags_el if tags_el is not None else []):
        value = _plain(tag) if _child(tag, "text") is not None else "".join(tag.itertext()).strip()
        key, sep, rest = value.partition(":")
        field = TAG_FIELDS.get(key.strip().lower()) if sep else None
        if field == "enemy_groups":
            fields["enemy_groups"].append(rest.strip())
        elif field == "facility":
            try:
                fields["facility"] = float(rest)
            except ValueError:
                q.result.error(q.position, "facility", f"tag {value!r}: not a number between 0 and 1")
        elif field:
            fields[field] = rest.strip()
        elif value:
            fields["tags"].append(value)


def _question(question: Any, kind: str, position: str, category: str | None, result: ParseResult) -> None:
    q = _Question(result, position)
    fields: dict[str, Any] = {"stem": q.text(_child(question, "questiontext"), "stem"), "tags": [],
                              "enemy_groups": []}
    answers = [a for a in question if local(a.tag) == "answer"]
    if kind == "multichoice" and len(answers) > len(LABELS):
        result.error(position, "options", f"an item has 2 to 8 options, got {len(answers)}")
        return
    if kind == "multichoice":
        fields["options"] = [q.text(a, f"options[{i}]") for i, a in enumerate(answers)]
    explanation = q.text(_child(question, "generalfeedback"), "explanation")
    if explanation:
        fields["explanation"] = explanation
    left = sum(1 for a in answers if _plain(_child(a, "feedback"))) + sum(
        1 for name in (*FEEDBACK, "hint") for el in question if local(el.tag) == name and _plain(el))
    if left:
        result.leave_out({"answer feedback and hints": left})
    _tags(question, fields, q)
    fields["media"] = list(dict.fromkeys(media_key(s) for s in [*q.media, *q.attached]))
    idnumber_el = _child(question, "idnumber")
    idnumber = "".join(idnumber_el.itertext()) if idnumber_el is not None else ""
    last = category.rstrip("/").rsplit("/", 1)[-1].strip() if category else ""
    implied = POINT_SEGMENT.match(last)
    origin = Origin(category=category, identifiers=[idnumber.strip()] if idnumber.strip() else [],
                    implied_point=implied.group(1) if implied else None,
                    implied_by=f"category segment {last!r}" if implied else "")
    item_type = fields.pop("type", None)
    if kind == "truefalse":
        truth = next((_plain(a).lower() for a in answers if _fraction(a) > 0), None)
        if truth not in ("true", "false"):
            result.error(position, "answer",
                         "a truefalse question needs the answer 'true' or 'false' with fraction 100")
        fields["options"] = list(TRUE_FALSE_OPTIONS)
        fields["answer"] = ["A"] if truth == "true" else ["B"] if truth == "false" else []
        item_type = "true_false"
    else:
        fields["answer"] = [LABELS[i] for i, a in enumerate(answers) if _fraction(a) > 0]
        single_el = _child(question, "single")
        single = ("".join(single_el.itertext()).strip() if single_el is not None else "true").lower() in ("true", "1")
        if item_type not in ("true_false", "single_choice", "multiple_choice"):
            item_type = "single_choice" if single else "multiple_choice"
    result.items.append(ParsedItem(position=position, type=item_type, fields=fields, origin=origin))


def parse_moodle(data: bytes) -> ParseResult:
    root = parse_xml(data, "Moodle XML")
    if local(root.tag) != "quiz":
        raise bad_request("file", f"a Moodle XML file has a <quiz> root, this one has <{local(root.tag)}>")
    result = ParseResult(format="moodle")
    category: str | None = None
    for question in root:
        if local(question.tag) != "question":
            continue
        kind = question.get("type", "")
        if kind == "category":
            category = _plain(_child(question, "category")).rstrip("/") or None
            continue
        if kind == "description":  # information shown between questions, not a question
            result.leave_out({"descriptions (not questions)": 1})
            continue
        name = normalise_line(_plain(_child(question, "name")))
        number = len(result.positions) + 1
        position = f"question {name!r} (no. {number})" if name else f"question no. {number}"
        result.positions.append(position)
        if kind not in ("multichoice", "truefalse"):
            result.error(position, "type", f"Moodle question type {kind!r} is not imported (multichoice, truefalse)")
            continue
        _question(question, kind, position, category, result)
    if not result.positions:
        raise bad_request("file", "the Moodle XML file holds no questions")
    return result


# ------------------------------------------------------------------------------------------------ export
def _html(text: str, media: dict[str, tuple[bytes, str]], holder: ET.Element, attached: Sequence[str] = ()) -> str:
    """A stored text as Moodle HTML, each medium a ``<file>`` of ``holder`` referred to as @@PLUGINFILE@@."""
    used: list[str] = []

    def tag(sha: str, css: str = "") -> str:
        content_type = media[sha][1]
        name = f"{sha}.{EXTENSIONS.get(content_type, 'bin')}"
        used.append(sha)
        src = f"{PLUGINFILE}/{name}"
        cls = f' class="{css}"' if css else ""
        element = element_for(content_type)
        if element == "img":
            return f'<img src="{src}" alt=""{cls}>'
        if element == "object":
            return f'<object data="{src}"{cls}></object>'
        return f'<{element} controls="true"{cls}><source src="{src}"></{element}>'

    lines = []
    for pieces in segments(text):
        parts = [html.escape(p) if isinstance(p, str) else tag(p[0]) for p in pieces]
        lines.append(f"<p>{''.join(parts)}</p>")
    lines += [f"<p>{tag(sha, ATTACHED)}</p>" for sha in attached]
    for sha in dict.fromkeys(used):
        data, content_type = media[sha]
        f = ET.SubElement(holder, "file", {"name": f"{sha}.{EXTENSIONS.get(content_type, 'bin')}", "path": "/",
                                           "encoding": "base64"})
        f.text = base64.b64encode(data).decode()
    return "".join(lines)


def _text_el(parent: ET.Element, tag: str, text: str, media: dict[str, tuple[bytes, str]],
             attached: Sequence[str] = ()) -> ET.Element:
    el = ET.SubElement(parent, tag, {"format": "html"})
    body = ET.SubElement(el, "text")
    body.text = _html(text, media, el, attached)
    el.remove(body)
    el.insert(0, body)
    return el


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def _fraction_text(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".") if value else "0"


def _export_question(quiz: ET.Element, item: ExportItem, media: dict[str, tuple[bytes, str]]) -> None:
    content = item.content
    options = list(content.get("options") or [])
    answer = set(content.get("answer") or [])
    plain_tf = item.type == "true_false" and options == TRUE_FALSE_OPTIONS
    question = ET.SubElement(quiz, "question", {"type": "truefalse" if plain_tf else "multichoice"})
    _sub(ET.SubElement(question, "name"), "text", f"item-{item.id} {without_media(content['stem'])[:60]}".strip())
    texts = [content["stem"], content.get("explanation") or "", *options]
    referenced = {sha for t in texts for sha in PLACEHOLDER.findall(t)}
    attached = [key.rsplit("/", 1)[-1] for key in content.get("media") or []
                if key.rsplit("/", 1)[-1] not in referenced]
    _text_el(question, "questiontext", content["stem"], media, attached)
    _text_el(question, "generalfeedback", content.get("explanation") or "", media)
    _sub(question, "defaultgrade", "1")
    _sub(question, "penalty", "0")
    _sub(question, "hidden", "0")
    _sub(question, "idnumber", f"item-{item.id}")
    if plain_tf:
        for word, label in (("true", "A"), ("false", "B")):
            el = ET.SubElement(question, "answer", {"fraction": "100" if label in answer else "0",
                                                    "format": "moodle_auto_format"})
            _sub(el, "text", word)
    else:
        _sub(question, "single", "false" if item.type == "multiple_choice" else "true")
        _sub(question, "shuffleanswers", "true")
        _sub(question, "answernumbering", "ABCD")
        right, wrong = len(answer), len(options) - len(answer)
        for label, option in zip(LABELS, options, strict=False):
            share = 100 / right if label in answer else (-100 / wrong if item.type == "multiple_choice" else 0)
            el = _text_el(question, "answer", option, media)
            el.set("fraction", _fraction_text(round(share, 5)))
    tags = ET.SubElement(question, "tags")
    values = [f"point:{content['point_code']}", f"facility:{float(content.get('facility', 0.6))!r}",
              f"difficulty:{content.get('difficulty', '中等')}", f"maintainer:{item.maintainer}",
              *(f"enemy:{g}" for g in content.get("enemy_groups") or []), *(content.get("tags") or [])]
    if content.get("stimulus_set") is not None:
        values.append(f"stimulus:{content['stimulus_set']}")
    if content.get("language"):
        values.append(f"language:{content['language']}")
    if item.type == "true_false" and not plain_tf:
        values.append("type:true_false")
    for value in values:
        _sub(ET.SubElement(tags, "tag"), "text", value)


def write_moodle(items: Iterable[ExportItem], media: dict[str, tuple[bytes, str]],
                 categories: dict[str, str]) -> bytes:
    """A Moodle XML quiz of choice items, one category per point (``categories``: point code → path), every
    medium (``media``: SHA-256 → bytes and type) as a ``<file>`` of the text that shows it."""
    quiz = ET.Element("quiz")
    current: str | None = None
    for item in sorted(items, key=lambda i: (categories.get(i.content["point_code"], ""), i.id)):
        path = categories.get(item.content["point_code"], "$course$/top")
        if path != current:
            _sub(ET.SubElement(ET.SubElement(quiz, "question", {"type": "category"}), "category"), "text", path)
            current = path
        _export_question(quiz, item, media)
    ET.indent(quiz)
    return bytes(ET.tostring(quiz, encoding="utf-8", xml_declaration=True))
