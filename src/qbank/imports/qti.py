"""IMS QTI content packages in: QTI 3.0 and QTI 2.1/2.2 items in a zip with ``imsmanifest.xml``.

Every manifest resource of type ``imsqti_item_*`` is one question, named by its identifier and title. It must
hold one choice interaction (a media interaction beside it is content: its medium goes with the item). The stem
is what the candidate reads in the item body, in order: the text before the interaction, its prompt, the text
after it, and a shared stimulus the item refers to (``qti-assessment-stimulus-ref``) first. Images, sounds and
videos (``img``, ``object``, ``audio``, ``video``) are package files that go with the item; a web address or a
file the package lacks refuses the question. qbank's own fields travel as metadata on the manifest resource
(``urn:qbank:item:1``, written by the export); a foreign package places its questions through the point map
(identifier, label, metadata), a 3-digit label, or the file-wide point."""

from __future__ import annotations

import posixpath
import urllib.parse
import zipfile
from typing import Any

from qbank.imports.safety import Limits, join_member, local, member_path, open_zip, parse_xml, read_member
from qbank.imports.schemas import Origin, ParsedItem, ParseResult
from qbank.imports.text import Reading, Unresolved, data_uri, read_text, remote
from qbank.items.media import media_key
from qbank.items.schemas import LABELS
from qbank.lib.problems import bad_request

QBANK = "urn:qbank:item:1"
QTI3_NAMESPACE = "imsqtiasi_v3p0"
TRUE_WORDS = {"正确", "对", "是", "true", "yes", "√"}
FALSE_WORDS = {"错误", "错", "否", "false", "no", "×"}
LIST_FIELDS = {"enemy": "enemy_groups", "tag": "tags"}
SCALAR_FIELDS = {"type": "type", "point": "point_code", "facility": "facility", "difficulty": "difficulty",
                 "stimulus": "stimulus_set", "explanation": "explanation", "maintainer": "maintainer",
                 "language": "language"}
NOT_INTERACTIONS = {"mediainteraction"}  # shows a medium; the candidate answers nothing there


def _attrs(el: Any) -> dict[str, str]:
    return {local(k): v for k, v in el.attrib.items()}


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if local(c.tag) == name]


def _descendants(el: Any, name: str) -> list[Any]:
    return [c for c in el.iter() if isinstance(c.tag, str) and local(c.tag) == name]


def _qbank_fields(resource: Any) -> dict[str, Any] | None:
    """qbank's fields from ``<metadata><qbank:item>`` of a manifest resource (None without any)."""
    holders = list(resource.iter(f"{{{QBANK}}}item"))
    if not holders:
        return None
    out: dict[str, Any] = {}
    for holder in holders:
        for field in holder:
            name = local(field.tag)
            value = (field.text or "").strip()
            if name in LIST_FIELDS:
                out.setdefault(LIST_FIELDS[name], []).append(value)
            elif name in SCALAR_FIELDS:
                out[SCALAR_FIELDS[name]] = field.text or ""
    return out


def _metadata_pairs(resource: Any) -> list[tuple[str, str]]:
    """(name, text) of every metadata leaf of a resource, also under the parent's name (LOM keeps its values
    in ``<string>`` elements: ``keyword`` → ``string``)."""
    pairs: list[tuple[str, str]] = []
    for meta in _children(resource, "metadata"):
        parents = {child: parent for parent in meta.iter() for child in parent}
        for el in meta.iter():
            text = (el.text or "").strip()
            if len(el) or not text or not isinstance(el.tag, str):
                continue
            pairs.append((el.tag.rsplit("}", 1)[-1], text))
            parent = parents.get(el)
            if parent is not None and parent is not meta:
                pairs.append((parent.tag.rsplit("}", 1)[-1], text))
    return pairs


class _Package:
    """One package being read: its members, and the media its questions show."""

    def __init__(self, archive: zipfile.ZipFile, limits: Limits, result: ParseResult) -> None:
        self.archive, self.limits, self.result = archive, limits, result
        self.names = set(archive.namelist())

    def resolver(self, base: str, position: str, field: str) -> Any:
        def resolve(ref: str, element: str) -> str:
            embedded = data_uri(ref)
            if embedded is not None:
                return self.result.carry(f"{field} {element}", embedded, position)
            if remote(ref):
                raise Unresolved(f"{ref!r} is outside the package (a web address): put the file into the package "
                                 "or remove the reference")
            member = member_path(base, urllib.parse.unquote(ref.split("#", 1)[0].split("?", 1)[0]))
            if member is None:
                raise Unresolved(f"{ref!r} leads outside the package")
            if member not in self.names:
                raise Unresolved(f"{ref!r} is not in the package (no member {member!r})")
            return self.result.carry(posixpath.basename(member), read_member(self.archive, member, self.limits),
                                     position)
        return resolve

    def reading(self, el: Any, base: str, position: str, field: str, media: list[str],
                attached: list[str] | None = None, **kw: Any) -> str:
        """The candidate's text of ``el``; the media it shows are added to ``media`` (in order), those it carries
        without a place in the text to ``attached``."""
        reading: Reading = read_text(el, self.resolver(base, position, field), **kw)
        for reason in reading.refused:
            self.result.error(position, field, reason)
        self.result.leave_out(reading.left_out)
        media.extend(m for m in reading.media if m not in reading.attached)
        if attached is not None:
            attached.extend(reading.attached)
        return reading.result()

    def stimulus(self, root: Any, base: str, position: str, media: list[str]) -> tuple[str, str | None]:
        """The text of the shared stimuli the item refers to, and the first one's identifier."""
        texts, first = [], None
        for ref in _descendants(root, "assessmentstimulusref"):
            attrs = _attrs(ref)
            member = member_path(base, urllib.parse.unquote(attrs.get("href", "")))
            if member is None or member not in self.names:
                self.result.error(position, "stem", f"the shared stimulus {attrs.get('href')!r} is not in the package")
                continue
            stimulus = parse_xml(read_member(self.archive, member, self.limits), member)
            for body in _descendants(stimulus, "stimulusbody"):
                texts.append(self.reading(body, member, position, "stem", media))
            first = first or attrs.get("identifier") or _attrs(stimulus).get("identifier")
        return "\n".join(t for t in texts if t), first

    def item(self, root: Any, member: str, position: str, resource: Any) -> ParsedItem | None:
        result = self.result
        interactions = [el for el in root.iter() if isinstance(el.tag, str) and local(el.tag).endswith("interaction")
                        and local(el.tag) not in NOT_INTERACTIONS]
        choices_i = [el for el in interactions if local(el.tag) == "choiceinteraction"]
        if len(interactions) != 1 or len(choices_i) != 1:
            kinds = ", ".join(sorted({local(el.tag) for el in interactions})) or "none"
            result.error(position, "interaction", f"exactly one choice interaction is imported; this item has: {kinds}")
            return None
        interaction = choices_i[0]
        choices = _children(interaction, "simplechoice")
        if len(choices) > len(LABELS):
            result.error(position, "options", f"an item has 2 to 8 options, got {len(choices)}")
            return None
        media: list[str] = []
        attached: list[str] = []
        shared, stimulus_id = self.stimulus(root, member, position, media)
        body = next(iter(_descendants(root, "itembody")), root)
        stem = self.reading(body, member, position, "stem", media, attached,
                            skip=lambda el: isinstance(el.tag, str) and local(el.tag) == "simplechoice")
        stem = "\n".join(t for t in (shared, stem) if t)
        options = [self.reading(c, member, position, f"options[{i}]", media) for i, c in enumerate(choices)]
        label_of = {_attrs(c).get("identifier", ""): LABELS[i] for i, c in enumerate(choices)}
        response_id = _attrs(interaction).get("responseidentifier", "RESPONSE")
        declaration = next((d for d in _descendants(root, "responsedeclaration")
                            if _attrs(d).get("identifier") == response_id), None)
        if declaration is None:
            result.error(position, "answer", f"no response declaration {response_id!r} holds the correct response")
            return None
        answer: list[str] = []
        for value in _descendants(declaration, "value"):
            key = (value.text or "").strip()
            if key not in label_of:
                result.error(position, "answer", f"the correct response {key!r} is not one of the choices "
                                                 f"({', '.join(label_of)})")
                continue
            answer.append(label_of[key])
        fields: dict[str, Any] = {"stem": stem, "options": options, "answer": sorted(answer)}
        own = _qbank_fields(resource)
        meta = dict(own or {})
        feedback = _descendants(root, "modalfeedback")
        if "explanation" not in meta and feedback:
            meta["explanation"] = self.reading(feedback[0], member, position, "explanation", media)
        if own is None and _attrs(root).get("lang"):
            meta["language"] = _attrs(root)["lang"]
        if stimulus_id and "stimulus_set" not in meta:
            meta["stimulus_set"] = stimulus_id
        if "facility" in meta:
            try:
                meta["facility"] = float(meta["facility"])
            except ValueError:
                result.error(position, "facility", f"{meta['facility']!r} is not a number between 0 and 1")
                del meta["facility"]
        item_type = meta.pop("type", None) or _type_of(_attrs(declaration).get("cardinality", "single"), options)
        fields.update(meta)
        fields["media"] = list(dict.fromkeys(media_key(s) for s in [*media, *attached]))
        label = _attrs(root).get("label", "").strip()
        origin = Origin(identifiers=[i for i in (_attrs(root).get("identifier"), _attrs(resource).get("identifier"))
                                     if i], label=label or None, metadata=_metadata_pairs(resource),
                        implied_point=label if len(label) == 3 and label.isdigit() else None,
                        implied_by=f"label {label!r}")
        return ParsedItem(position=position, type=item_type, fields=fields, origin=origin)



def _type_of(cardinality: str, options: list[str]) -> str:
    words = {o.strip().lower() for o in options}
    if cardinality == "multiple":
        return "multiple_choice"
    if len(options) == 2 and words & TRUE_WORDS and words & FALSE_WORDS:
        return "true_false"
    return "single_choice"


def _version(root: Any) -> str:
    return "qti3" if QTI3_NAMESPACE in root.tag or root.tag.rsplit("}", 1)[-1].startswith("qti-") else "qti21"


def parse_qti(data: bytes, limits: Limits) -> ParseResult:
    result = ParseResult()
    versions: set[str] = set()
    with open_zip(data, limits, "QTI package") as archive:
        package = _Package(archive, limits, result)
        manifest_name = next((n for n in sorted(package.names, key=len)
                              if n.rsplit("/", 1)[-1] == "imsmanifest.xml"), None)
        if manifest_name is None:
            raise bad_request("file", "the package has no imsmanifest.xml")
        manifest = parse_xml(read_member(archive, manifest_name, limits), manifest_name)
        resources = [r for r in manifest.iter() if isinstance(r.tag, str) and local(r.tag) == "resource"
                     and _attrs(r).get("type", "").startswith("imsqti_item")]
        if not resources:
            raise bad_request("file", "the manifest lists no QTI item resources (type imsqti_item_…)")
        for resource in resources:
            attrs = _attrs(resource)
            identifier = attrs.get("identifier", "?")
            href = attrs.get("href") or next((_attrs(f).get("href", "") for f in _children(resource, "file")), "")
            member = join_member(manifest_name, href)
            if member not in package.names:
                position = f"item {identifier}"
                result.positions.append(position)
                result.error(position, "href", f"the package has no file {member!r}")
                continue
            root = parse_xml(read_member(archive, member, limits), member)
            title = _attrs(root).get("title", "").strip()
            position = f"item {_attrs(root).get('identifier') or identifier}" + (f" {title!r}" if title else "")
            result.positions.append(position)
            if local(root.tag) != "assessmentitem":
                result.error(position, "item", f"the root element is {local(root.tag)}, not an assessment item")
                continue
            versions.add(_version(root))
            item = package.item(root, member, position, resource)
            if item is not None:
                result.items.append(item)
    result.format = versions.pop() if len(versions) == 1 else "qti"
    return result
