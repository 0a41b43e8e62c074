"""What a candidate reads, from the markup of a question (QTI XHTML, Moodle HTML), and back.

Reading keeps the text a candidate sees and only that: feedback, tooltips, hidden and scorer-only parts are
left out (and counted, so the import can say what it left out); block elements become line breaks; runs of
spaces and line breaks inside a line become one space (none between two CJK characters, where the break was
only the file breaking a line); bold, italics and other inline formatting are reduced to their text, superscripts
and subscripts to Unicode (``m²``, ``H₂O``) or ``^(…)`` / ``_(…)`` when a character has no such form. Media
(``img``, ``object``, ``audio``, ``video``, ``embed``, links to a sound or picture in the file) become
``{{media:SHA256}}`` placeholders through the format's resolver, which refuses what cannot be carried.

Writing turns a stored text back into markup: a paragraph per line and each placeholder as the element its
medium's type calls for."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from xml.etree import ElementTree as ET

from qbank.items.media import PLACEHOLDER, placeholder

# A resolver: (reference, element name) -> SHA-256 of the medium (registered with the file's media), or raises
# Unresolved naming why the medium cannot be carried.
Resolver = Callable[[str, str], str]
ATTACHED = "qbank-attached"  # class of media an item carries without a place in its text (written by exports)


class Unresolved(Exception):
    """A medium the text refers to that cannot be carried (remote, missing, unreadable)."""


class Reading:
    """The state of one text being read: lines, media referred to, and what was left out by kind."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.lines: list[list[str]] = [[]]
        self.media: list[str] = []  # SHA-256 in order of appearance
        self.attached: list[str] = []
        self.left_out: dict[str, int] = {}
        self.refused: list[str] = []

    def text(self, value: str | None) -> None:
        if value:
            self.lines[-1].append(value)

    def stop(self) -> None:
        if self.lines[-1]:
            self.lines.append([])

    def medium(self, ref: str, element: str, attached: bool = False) -> None:
        try:
            sha = self.resolve(ref, element)
        except Unresolved as exc:
            self.refused.append(str(exc))
            return
        if attached:
            self.attached.append(sha)
        else:
            self.text(placeholder(sha))
        self.media.append(sha)

    def result(self) -> str:
        return "\n".join(line for line in (normalise_line("".join(parts)) for parts in self.lines) if line)


_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")
_CJK = "\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(f"(?<=[{_CJK}])[ \t\r\f\v\u00a0\u200b]*\n[ \t\r\n\f\v\u00a0\u200b]*(?=[{_CJK}])")


def normalise_line(text: str) -> str:
    """One space for every run of spaces and breaks; none where the file only broke a line between two CJK
    characters (its indentation, not a space anyone typed: 电流的（ ）单位 keeps its blank); none at the ends."""
    return _SPACES.sub(" ", _CJK_BREAK.sub("", text)).strip()


BLOCKS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "thead", "tbody",
          "tfoot", "blockquote", "pre", "section", "article", "header", "footer", "figure", "figcaption", "dl", "dt",
          "dd", "hr", "prompt", "itembody", "contentbody", "simplechoice", "caption", "address", "aside", "nav",
          "main", "details", "summary"}
CELLS = {"td", "th"}
# Never read by a candidate while answering: left out with their content.
LEFT_OUT = {"feedbackinline": "inline feedback", "feedbackblock": "feedback blocks", "modalfeedback": "feedback",
            "rubricblock": "rubrics for scorers", "cataloginfo": "glossary entries", "catalog": "glossary entries",
            "script": "scripts", "style": "styles", "head": "document heads", "template": "templates",
            "templateinline": "template text", "templateblock": "template text", "printedvariable": "variables",
            "infocontrol": "hints"}
MEDIA = {"img": "src", "object": "data", "audio": "src", "video": "src", "embed": "src"}
MEDIA_LINK = re.compile(r"\.(png|jpe?g|gif|webp|svg|mp3|wav|ogg|oga|opus|flac|m4a|mp4|m4v|webm)$", re.IGNORECASE)
SUPERSCRIPT = dict(zip("0123456789+-=()ni", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", strict=True))
SUBSCRIPT = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))


def _name(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    name = tag.rsplit("}", 1)[-1]
    return (name[4:] if name.startswith("qti-") else name).replace("-", "").lower()


def _attr(el: Any, name: str) -> str:
    for key, value in el.attrib.items():
        if key.rsplit("}", 1)[-1].lower() == name:
            return str(value)
    return ""


def _hidden(el: Any) -> str | None:
    """Why an element is not shown to the candidate (a kind for the left-out count), or None."""
    name = _name(el.tag)
    if name in LEFT_OUT:
        if name == "rubricblock" and "candidate" in _attr(el, "view").split():
            return None
        return LEFT_OUT[name]
    role = _attr(el, "data-role")
    if role == "tooltip-content" or _attr(el, "role") == "tooltip" or "tooltip-content" in _attr(el, "class"):
        return "tooltips"
    if _attr(el, "aria-hidden") == "true" or el.get("hidden") is not None:
        return "hidden text"
    if re.search(r"display\s*:\s*none", _attr(el, "style")):
        return "hidden text"
    return None


def _script(text: str, table: dict[str, str], mark: str) -> str:
    stripped = normalise_line(text)
    if stripped and all(c in table for c in stripped):
        return "".join(table[c] for c in stripped)
    return f"{mark}({stripped})" if stripped else ""


def _media_ref(el: Any, name: str) -> str:
    ref = _attr(el, MEDIA[name])
    if not ref and name in ("audio", "video"):
        source = next((c for c in el.iter() if _name(c.tag) == "source" and _attr(c, "src")), None)
        ref = _attr(source, "src") if source is not None else ""
    return ref


MAX_DEPTH = 100  # real question markup nests a dozen levels; deeper is refused, never a recursion error


def read(el: Any, reading: Reading, *, skip: Callable[[Any], bool] | None = None, depth: int = 0) -> None:
    """Walk ``el`` into ``reading`` (its own tail excluded); ``skip(child)`` True leaves a child out silently
    (the caller handles it, e.g. an interaction's choices)."""
    if depth > MAX_DEPTH:
        if not reading.refused or not reading.refused[-1].startswith("the markup nests"):
            reading.refused.append(f"the markup nests elements more than {MAX_DEPTH} levels deep")
        return
    name = _name(el.tag)
    if name in BLOCKS:
        reading.stop()
    if name in MEDIA:
        ref = _media_ref(el, name)
        if ref:
            reading.medium(ref, name, attached=ATTACHED in _attr(el, "class").split())
        elif name == "img":
            reading.refused.append("an image without a source")
        return  # fallback content inside object/audio/video is not what the candidate sees
    if name == "a" and MEDIA_LINK.search(_attr(el, "href")):
        reading.medium(_attr(el, "href"), "a")
        return
    if name in ("sup", "sub"):
        inner = Reading(reading.resolve)
        inner.text(el.text)
        _children(el, inner, skip, depth)
        reading.media.extend(inner.media)
        reading.refused.extend(inner.refused)
        table, mark = (SUPERSCRIPT, "^") if name == "sup" else (SUBSCRIPT, "_")
        reading.text(_script(" ".join(inner.result().splitlines()), table, mark))
        return
    reading.text(el.text)
    _children(el, reading, skip, depth)
    if name in BLOCKS:
        reading.stop()
    elif name in CELLS:
        reading.text(" ")


def _children(el: Any, reading: Reading, skip: Callable[[Any], bool] | None, depth: int) -> None:
    for child in el:
        why = _hidden(child) if isinstance(child.tag, str) else "comments"
        if skip is not None and skip(child):
            pass
        elif why is not None:
            if why != "comments":
                reading.left_out[why] = reading.left_out.get(why, 0) + 1
        else:
            read(child, reading, skip=skip, depth=depth + 1)
        reading.text(child.tail)


def read_text(el: Any, resolve: Resolver, *, skip: Callable[[Any], bool] | None = None) -> Reading:
    reading = Reading(resolve)
    read(el, reading, skip=skip)
    return reading


_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,(.*)$", re.DOTALL)


def data_uri(ref: str) -> bytes | None:
    """The bytes of a base64 ``data:`` URI (media embedded in the markup itself), else None."""
    match = _DATA_URI.match(ref.strip())
    if match is None:
        return None
    try:
        return base64.b64decode(re.sub(r"\s+", "", match.group(3)), validate=True)
    except (binascii.Error, ValueError):
        return None


def remote(ref: str) -> bool:
    """A reference to somewhere else: a URL with a scheme (http:, file: …) or protocol-relative (//host/…)."""
    return ref.startswith("//") or (bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", ref)) and not ref.startswith("data:"))


# ------------------------------------------------------------------------------------------------ HTML
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
AUTO_CLOSE = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}


class _TreeBuilder(HTMLParser):
    """HTML (as Moodle stores it, not necessarily well formed) into an ElementTree, forgiving unclosed tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = ET.Element("div")
        self.stack = [self.root]
        self.too_deep = False  # the stack stops growing there, so closing tags never scan a deep stack

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in AUTO_CLOSE and self.stack[-1].tag == tag:
            self.stack.pop()
        el = ET.SubElement(self.stack[-1], tag, {k: v or "" for k, v in attrs})
        if tag not in VOID:
            if len(self.stack) > MAX_DEPTH:
                self.too_deep = True
            else:
                self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ET.SubElement(self.stack[-1], tag, {k: v or "" for k, v in attrs})

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        parent = self.stack[-1]
        if len(parent):
            parent[-1].tail = (parent[-1].tail or "") + data
        else:
            parent.text = (parent.text or "") + data


def read_html(markup: str, resolve: Resolver) -> Reading:
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    reading = read_text(builder.root, resolve)
    if builder.too_deep and not any(r.startswith("the markup nests") for r in reading.refused):
        reading.refused.append(f"the markup nests elements more than {MAX_DEPTH} levels deep")
    return reading


# ------------------------------------------------------------------------------------------------ writing
def segments(text: str) -> list[list[str | tuple[str]]]:
    """A stored text as lines of pieces: plain text (str) and media (a 1-tuple holding the SHA-256)."""
    out: list[list[str | tuple[str]]] = []
    for line in text.split("\n"):
        pieces: list[str | tuple[str]] = []
        at = 0
        for match in PLACEHOLDER.finditer(line):
            if match.start() > at:
                pieces.append(line[at:match.start()])
            pieces.append((match.group(1),))
            at = match.end()
        if at < len(line):
            pieces.append(line[at:])
        out.append(pieces)
    return out


def element_for(content_type: str) -> str:
    """The HTML element that shows a medium of this type."""
    major = content_type.split("/", 1)[0]
    return {"image": "img", "audio": "audio", "video": "video"}.get(major, "object")


def without_media(text: str) -> str:
    return normalise_line(PLACEHOLDER.sub(" ", text))


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def detect_language(*texts: str) -> str:
    """A BCP 47 tag from the script of the text: kana → ja, hangul → ko, Han → zh-CN, Latin letters → en; a text
    with none of them (numbers, symbols) is taken as zh-CN, the service's language."""
    text = " ".join(without_media(t) for t in texts)
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if han == 0 and latin > 0:
        return "en"
    return "zh-CN"
