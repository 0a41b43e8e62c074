"""QTI 3.0 content packages out: choice items with their media, readable by any QTI 3.0 player and by our import.

Each item is ``items/item-ID.xml``: the stem as paragraphs in the item body before the choice interaction, each
medium as the element its type calls for (``img``, ``audio``, ``video``, ``object``) pointing at
``media/SHA256.ext`` in the package, the explanation as a modal feedback, ``xml:lang`` from the item's language
(set, or detected from its text), ``label`` = the point code. qbank's fields that QTI has no place for travel as
``qbank:*`` metadata on the manifest resource; the resource lists the item's media files."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET  # building only

from qbank.imports.qti import QBANK
from qbank.imports.schemas import ExportItem
from qbank.imports.text import ATTACHED, detect_language, element_for, segments, without_media
from qbank.items.media import EXTENSIONS, PLACEHOLDER
from qbank.items.schemas import LABELS

QTI3 = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
CP3 = "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"
MATCH_CORRECT = "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml"

Media = dict[str, tuple[bytes, str]]  # SHA-256 -> bytes, media type


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def media_member(sha: str, content_type: str) -> str:
    return f"media/{sha}.{EXTENSIONS.get(content_type, 'bin')}"


def _medium(parent: ET.Element, sha: str, media: Media, css: str = "") -> ET.Element:
    content_type = media[sha][1]
    src = "../" + media_member(sha, content_type)
    element = element_for(content_type)
    extra = {"class": css} if css else {}
    if element == "img":
        return ET.SubElement(parent, "img", {"src": src, "alt": "", **extra})
    if element == "object":
        return ET.SubElement(parent, "object", {"data": src, "type": content_type, **extra})
    holder = ET.SubElement(parent, element, {"controls": "controls", **extra})
    ET.SubElement(holder, "source", {"src": src, "type": content_type})
    return holder


def _append(holder: ET.Element, text: str) -> None:
    if len(holder):
        holder[-1].tail = (holder[-1].tail or "") + text
    else:
        holder.text = (holder.text or "") + text


def _flow(parent: ET.Element, text: str, media: Media, block: str | None = "p") -> None:
    """A stored text into ``parent``: one ``block`` per line, or inline with ``br`` between lines (None)."""
    for n, pieces in enumerate(segments(text)):
        holder = parent
        if block:
            holder = _sub(parent, block)
        elif n:
            ET.SubElement(holder, "br")
        for piece in pieces:
            if isinstance(piece, str):
                _append(holder, piece)
            else:
                _medium(holder, piece[0], media)


def item_xml(identifier: str, item: ExportItem, media: Media, attached: list[str]) -> bytes:
    content = item.content
    language = content.get("language") or detect_language(content["stem"], *(content.get("options") or []))
    # Plain tag names with an xmlns attribute: no global namespace registry, so concurrent exports are safe.
    root = ET.Element("qti-assessment-item", {
        "xmlns": QTI3, "identifier": identifier, "title": without_media(content["stem"])[:60],
        "label": content["point_code"], "adaptive": "false", "time-dependent": "false", "xml:lang": language})
    multiple = item.type == "multiple_choice"
    declaration = _sub(root, "qti-response-declaration", identifier="RESPONSE",
                       cardinality="multiple" if multiple else "single", base_type="identifier")
    correct = _sub(declaration, "qti-correct-response")
    for label in content.get("answer") or []:
        _sub(correct, "qti-value", label)
    _sub(root, "qti-outcome-declaration", identifier="SCORE", cardinality="single", base_type="float")
    explanation = content.get("explanation") or ""
    if explanation:
        _sub(root, "qti-outcome-declaration", identifier="FEEDBACK", cardinality="single", base_type="identifier")
    body = _sub(root, "qti-item-body")
    _flow(body, content["stem"], media)
    for sha in attached:
        _medium(_sub(body, "div"), sha, media, ATTACHED)
    options = content.get("options") or []
    interaction = _sub(body, "qti-choice-interaction", response_identifier="RESPONSE",
                       max_choices=str(len(options)) if multiple else "1", shuffle="false")
    for label, option in zip(LABELS, options, strict=False):
        _flow(_sub(interaction, "qti-simple-choice", identifier=label), option, media, block=None)
    _sub(root, "qti-response-processing", template=MATCH_CORRECT)
    if explanation:
        feedback = _sub(root, "qti-modal-feedback", outcome_identifier="FEEDBACK", identifier="EXPLANATION",
                        show_hide="show")
        _flow(_sub(feedback, "qti-content-body"), explanation, media)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _resource_metadata(resource: ET.Element, item: ExportItem) -> None:
    content = item.content
    holder = ET.SubElement(_sub(resource, "metadata"), "qbank:item", {"xmlns:qbank": QBANK})
    _sub(holder, "qbank:type", item.type)
    _sub(holder, "qbank:point", content["point_code"])
    _sub(holder, "qbank:facility", repr(float(content.get("facility", 0.6))))
    _sub(holder, "qbank:difficulty", content.get("difficulty", "中等"))
    if content.get("stimulus_set") is not None:
        _sub(holder, "qbank:stimulus", content["stimulus_set"])
    if content.get("language"):
        _sub(holder, "qbank:language", content["language"])
    for group in content.get("enemy_groups") or []:
        _sub(holder, "qbank:enemy", group)
    for tag in content.get("tags") or []:
        _sub(holder, "qbank:tag", tag)
    _sub(holder, "qbank:maintainer", item.maintainer)


def _media_of(content: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(every medium of the item, those without a place in its text), as SHA-256."""
    texts = [content["stem"], content.get("explanation") or "", *(content.get("options") or [])]
    placed = {sha for text in texts for sha in PLACEHOLDER.findall(text)}
    every = [key.rsplit("/", 1)[-1] for key in content.get("media") or []]
    return list(dict.fromkeys([*every, *placed])), [sha for sha in every if sha not in placed]


def write_qti3(items: Iterable[ExportItem], title: str, media: Media) -> bytes:
    """A QTI 3.0 content package of choice items and their media (``media``: SHA-256 → bytes, type)."""
    manifest = ET.Element("manifest", {"xmlns": CP3, "identifier": "qbank-export"})
    meta = _sub(manifest, "metadata")
    _sub(meta, "schema", "QTI Package")
    _sub(meta, "schemaversion", "3.0.0")
    _sub(_sub(manifest, "organizations"), "organization", identifier="qbank", title=title)
    resources = _sub(manifest, "resources")
    written: set[str] = set()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in items:
            identifier = f"item-{item.id}"
            href = f"items/{identifier}.xml"
            every, attached = _media_of(item.content)
            resource = _sub(resources, "resource", identifier=identifier, type="imsqti_item_xmlv3p0", href=href)
            _resource_metadata(resource, item)
            _sub(resource, "file", href=href)
            for sha in every:
                member = media_member(sha, media[sha][1])
                _sub(resource, "file", href=member)
                if member not in written:
                    archive.writestr(member, media[sha][0], compress_type=zipfile.ZIP_STORED)
                    written.add(member)
            archive.writestr(href, item_xml(identifier, item, media, attached))
        archive.writestr("imsmanifest.xml", ET.tostring(manifest, encoding="utf-8", xml_declaration=True))
    return out.getvalue()
