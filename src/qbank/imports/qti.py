"""IMS QTI content packages: QTI 3.0 and QTI 2.1 items in a zip with ``imsmanifest.xml``.

Read: every manifest resource of type ``imsqti_item_*`` with one choice interaction. Written: QTI 3.0.
qbank's own fields that QTI has no place for travel as namespaced metadata on the manifest resource
(``urn:qbank:item:1``); without it the point code comes from the item's ``label`` attribute."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET  # building only; parsing goes through defusedxml

from qbank.imports.safety import Limits, join_member, local, open_zip, parse_xml, read_member
from qbank.imports.schemas import ParsedItem, ParseResult
from qbank.items.schemas import LABELS
from qbank.lib.problems import FieldError, bad_request

QTI3 = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
CP3 = "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"
QBANK = "urn:qbank:item:1"
MATCH_CORRECT = "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml"
TRUE_WORDS = {"正确", "对", "是", "true", "yes", "√"}
FALSE_WORDS = {"错误", "错", "否", "false", "no", "×"}
LIST_FIELDS = {"enemy": "enemy_groups", "tag": "tags"}
SCALAR_FIELDS = {"type": "type", "point": "point_code", "facility": "facility", "difficulty": "difficulty",
                 "stimulus": "stimulus_set", "explanation": "explanation", "maintainer": "maintainer"}


def _attrs(el: Any) -> dict[str, str]:
    return {local(k): v for k, v in el.attrib.items()}


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if local(c.tag) == name]


def _descendants(el: Any, name: str) -> list[Any]:
    return [c for c in el.iter() if local(c.tag) == name]


def _text_of(el: Any) -> str:
    return "".join(el.itertext()).strip()


def _metadata(resource: Any) -> dict[str, Any]:
    """qbank's fields from ``<metadata><qbank:item>`` of a manifest resource."""
    out: dict[str, Any] = {}
    for holder in resource.iter(f"{{{QBANK}}}item"):
        for field in holder:
            name = local(field.tag)
            value = (field.text or "").strip()
            if name in LIST_FIELDS:
                out.setdefault(LIST_FIELDS[name], []).append(value)
            elif name in SCALAR_FIELDS:
                out[SCALAR_FIELDS[name]] = field.text or ""
    return out


def _body_stem(body: Any, interaction: Any) -> str:
    """The item body's text outside the interaction, when the interaction has no prompt."""
    parts: list[str] = []

    def visit(el: Any) -> None:
        if el is interaction:
            return
        if el.text:
            parts.append(el.text)
        for child in el:
            visit(child)
            if child.tail:
                parts.append(child.tail)

    visit(body)
    return "".join(parts).strip()


def parse_item(root: Any, position: str, meta: dict[str, Any], errors: list[FieldError]) -> ParsedItem | None:
    def err(field: str, reason: str) -> None:
        errors.append(FieldError(field=f"{position}: {field}", reason=reason))

    if local(root.tag) != "assessmentitem":
        err("item", f"the root element is {local(root.tag)}, not an assessment item")
        return None
    interactions = [el for el in root.iter() if local(el.tag).endswith("interaction")]
    choices_i = [el for el in interactions if local(el.tag) == "choiceinteraction"]
    if len(interactions) != 1 or len(choices_i) != 1:
        kinds = ", ".join(sorted({local(el.tag) for el in interactions})) or "none"
        err("interaction", f"exactly one choice interaction is imported; this item has: {kinds}")
        return None
    interaction = choices_i[0]
    body = next(iter(_descendants(root, "itembody")), root)
    prompt = _children(interaction, "prompt")
    stem = _text_of(prompt[0]) if prompt else _body_stem(body, interaction)
    choices = _children(interaction, "simplechoice")
    if len(choices) > len(LABELS):
        err("options", f"an item has 2 to 8 options, got {len(choices)}")
        return None
    label_of = {_attrs(c).get("identifier", ""): LABELS[i] for i, c in enumerate(choices)}
    options = [_text_of(c) for c in choices]
    response_id = _attrs(interaction).get("responseidentifier", "RESPONSE")
    declaration = next((d for d in _descendants(root, "responsedeclaration")
                        if _attrs(d).get("identifier") == response_id), None)
    if declaration is None:
        err("answer", f"no response declaration {response_id!r} holds the correct response")
        return None
    cardinality = _attrs(declaration).get("cardinality", "single")
    answer: list[str] = []
    for value in _descendants(declaration, "value"):
        key = (value.text or "").strip()
        if key not in label_of:
            err("answer", f"the correct response {key!r} is not one of the choices ({', '.join(label_of)})")
            continue
        answer.append(label_of[key])
    answer.sort()
    fields: dict[str, Any] = {"stem": stem, "options": options, "answer": answer}
    item_type = meta.pop("type", None)
    if item_type is None:
        words = {o.strip().lower() for o in options}
        if cardinality == "multiple":
            item_type = "multiple_choice"
        elif len(options) == 2 and words & TRUE_WORDS and words & FALSE_WORDS:
            item_type = "true_false"
        else:
            item_type = "single_choice"
    if "point_code" not in meta:
        label = _attrs(root).get("label", "").strip()
        if label:
            meta["point_code"] = label
        else:
            err("point_code", "no appraisal point: give qbank metadata <qbank:point> or the item's label attribute")
    if "explanation" not in meta:
        feedback = _descendants(root, "modalfeedback")
        if feedback:
            meta["explanation"] = _text_of(feedback[0])
    if "facility" in meta:
        try:
            meta["facility"] = float(meta["facility"])
        except ValueError:
            err("facility", f"{meta['facility']!r} is not a number between 0 and 1")
            del meta["facility"]
    fields.update(meta)
    return ParsedItem(position=position, type=item_type, fields=fields)


def parse_qti(data: bytes, limits: Limits) -> ParseResult:
    archive = open_zip(data, limits, "QTI package")
    with archive:
        names = set(archive.namelist())
        manifest_name = next((n for n in sorted(names, key=len) if n.rsplit("/", 1)[-1] == "imsmanifest.xml"), None)
        if manifest_name is None:
            raise bad_request("file", "the package has no imsmanifest.xml")
        manifest = parse_xml(read_member(archive, manifest_name, limits), manifest_name)
        result = ParseResult(items=[], errors=[])
        resources = [r for r in manifest.iter() if local(r.tag) == "resource"
                     and _attrs(r).get("type", "").startswith("imsqti_item")]
        if not resources:
            raise bad_request("file", "the manifest lists no QTI item resources (type imsqti_item_…)")
        for resource in resources:
            attrs = _attrs(resource)
            identifier = attrs.get("identifier", "?")
            href = attrs.get("href") or next((_attrs(f).get("href", "") for f in _children(resource, "file")), "")
            member = join_member(manifest_name, href)
            if member not in names:
                result.errors.append(FieldError(field=f"item {identifier}: href",
                                                reason=f"the package has no file {member!r}"))
                continue
            root = parse_xml(read_member(archive, member, limits), member)
            position = f"item {_attrs(root).get('identifier') or identifier}"
            item = parse_item(root, position, _metadata(resource), result.errors)
            if item is not None:
                result.items.append(item)
        return result


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def item_xml(identifier: str, item_type: str, content: dict[str, Any]) -> bytes:
    # Plain tag names with an xmlns attribute: no global namespace registry, so concurrent exports are safe.
    root = ET.Element("qti-assessment-item", {
        "xmlns": QTI3, "identifier": identifier, "title": content["stem"][:60], "label": content["point_code"],
        "adaptive": "false", "time-dependent": "false", "xml:lang": "zh-CN"})
    multiple = item_type == "multiple_choice"
    declaration = _sub(root, "qti-response-declaration", identifier="RESPONSE",
                       cardinality="multiple" if multiple else "single", base_type="identifier")
    correct = _sub(declaration, "qti-correct-response")
    for label in content.get("answer") or []:
        _sub(correct, "qti-value", label)
    _sub(root, "qti-outcome-declaration", identifier="SCORE", cardinality="single", base_type="float")
    body = _sub(root, "qti-item-body")
    interaction = _sub(body, "qti-choice-interaction", response_identifier="RESPONSE",
                       max_choices="0" if multiple else "1", shuffle="false")
    _sub(interaction, "qti-prompt", content["stem"])
    for label, option in zip(LABELS, content.get("options") or [], strict=False):
        _sub(interaction, "qti-simple-choice", option, identifier=label)
    _sub(root, "qti-response-processing", template=MATCH_CORRECT)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _resource_metadata(resource: ET.Element, item_type: str, content: dict[str, Any], maintainer: str) -> None:
    holder = ET.SubElement(_sub(resource, "metadata"), "qbank:item", {"xmlns:qbank": QBANK})
    _sub(holder, "qbank:type", item_type)
    _sub(holder, "qbank:point", content["point_code"])
    _sub(holder, "qbank:facility", repr(float(content.get("facility", 0.6))))
    _sub(holder, "qbank:difficulty", content.get("difficulty", "中等"))
    if content.get("explanation"):
        _sub(holder, "qbank:explanation", content["explanation"])
    if content.get("stimulus_set") is not None:
        _sub(holder, "qbank:stimulus", content["stimulus_set"])
    for group in content.get("enemy_groups") or []:
        _sub(holder, "qbank:enemy", group)
    for tag in content.get("tags") or []:
        _sub(holder, "qbank:tag", tag)
    _sub(holder, "qbank:maintainer", maintainer)


def write_qti3(items: Iterable[tuple[int, str, dict[str, Any], str]], title: str) -> bytes:
    """A QTI 3.0 content package of (id, type, content, maintainer) choice items."""
    manifest = ET.Element("manifest", {"xmlns": CP3, "identifier": "qbank-export"})
    meta = _sub(manifest, "metadata")
    _sub(meta, "schema", "QTI Package")
    _sub(meta, "schemaversion", "3.0.0")
    _sub(_sub(manifest, "organizations"), "organization", identifier="qbank", title=title)
    resources = _sub(manifest, "resources")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item_id, item_type, content, maintainer in items:
            identifier = f"item-{item_id}"
            href = f"items/{identifier}.xml"
            resource = _sub(resources, "resource", identifier=identifier, type="imsqti_item_xmlv3p0", href=href)
            _resource_metadata(resource, item_type, content, maintainer)
            _sub(resource, "file", href=href)
            archive.writestr(href, item_xml(identifier, item_type, content))
        archive.writestr("imsmanifest.xml", ET.tostring(manifest, encoding="utf-8", xml_declaration=True))
    return out.getvalue()
