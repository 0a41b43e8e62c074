"""Placing imported questions on appraisal points: the file's own point, a point map, a file-wide point.

Real banks (Moodle courses, TAO item banks) know nothing of 3-digit appraisal points. A question's point comes,
first found wins, from:

1. the file naming it: the xlsx column 鉴定点, QTI ``qbank:point`` metadata, a Moodle tag ``point:005``;
2. a point map rule (a small CSV ``kind,key,point`` or a JSON list of ``{"kind", "key", "point"}``), most specific
   kind first: ``identifier`` (QTI item or resource identifier, Moodle ``idnumber``), ``label`` (QTI label),
   ``metadata`` (``name=value`` or ``value`` of a manifest metadata element), ``category`` (Moodle category path;
   a rule for a category covers its subcategories, the longest matching path wins);
3. what the file implies: a QTI label or the last segment of a Moodle category that is a 3-digit code;
4. the file-wide point sent with the import.

The answer counts how many questions each of them placed."""

from __future__ import annotations

import csv
import io
import re
from typing import Literal

import msgspec

from qbank.imports.schemas import ParsedItem, ParseResult, Placement
from qbank.lib.problems import FieldError, ProblemError, bad_request

RuleKind = Literal["identifier", "label", "metadata", "category"]
KINDS: tuple[RuleKind, ...] = ("identifier", "label", "metadata", "category")
MAX_MAP_BYTES = 1024 * 1024
MAX_RULES = 20_000
POINT = re.compile(r"^\d{3}$")
NAMED = "named in the file (鉴定点 column, qbank:point metadata, point: tag)"


class Rule(msgspec.Struct, kw_only=True):
    kind: RuleKind
    key: str
    point: str
    where: str = ""  # "point_map line 3": how errors name the rule

    @property
    def label(self) -> str:
        return f"point_map {self.kind} {self.key}"


def category_segments(path: str) -> tuple[str, ...]:
    """A Moodle category path as segments, without its context (``$course$``, ``$system$`` …) and ``top``."""
    parts = [p.strip() for p in path.split("/") if p.strip()]
    if parts and parts[0].startswith("$") and parts[0].endswith("$"):
        parts = parts[1:]
    if parts and parts[0].lower() == "top":
        parts = parts[1:]
    return tuple(parts)


def _rules_of(rows: list[tuple[str, dict[str, object]]]) -> list[Rule]:
    errors: list[FieldError] = []
    rules: list[Rule] = []
    for where, row in rows:
        kind, key, point = (str(row.get(k) or "").strip() for k in ("kind", "key", "point"))
        if kind not in KINDS:
            errors.append(FieldError(field=f"{where}: kind", reason=(
                f"{kind!r} is not one of {', '.join(KINDS)}" if kind else "the kind is empty")))
        if not key:
            errors.append(FieldError(field=f"{where}: key", reason="the key is empty"))
        if not POINT.match(point):
            errors.append(FieldError(field=f"{where}: point", reason=f"{point!r} is not a 3-digit appraisal point"))
        if kind in KINDS and key and POINT.match(point):
            rules.append(Rule(kind=kind, key=key, point=point, where=where))
    if errors:
        raise ProblemError(400, f"point_map: {len(errors)} bad rule field(s); nothing was imported; "
                                + "; ".join(f"{e.field}: {e.reason}" for e in errors[:3]), errors=errors)
    return rules


def parse_point_map(data: bytes) -> list[Rule]:
    """The rules of a point map file: JSON (a list of objects) or CSV with the header ``kind,key,point``."""
    if len(data) > MAX_MAP_BYTES:
        raise bad_request("point_map", f"the point map has {len(data)} bytes; at most {MAX_MAP_BYTES} are accepted")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request("point_map", "the point map is not UTF-8 text (CSV or JSON)") from exc
    if text.lstrip().startswith(("[", "{")):
        try:
            decoded = msgspec.json.decode(text.encode())
        except msgspec.DecodeError as exc:
            raise bad_request("point_map", f"not well-formed JSON ({exc})") from exc
        if not isinstance(decoded, list) or not all(isinstance(r, dict) for r in decoded):
            raise bad_request("point_map", 'a JSON point map is a list of {"kind", "key", "point"} objects')
        rows = [(f"point_map rule {n}", r) for n, r in enumerate(decoded, start=1)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if header[:3] != ["kind", "key", "point"]:
            raise bad_request("point_map", "a CSV point map starts with the header line kind,key,point")
        reader.fieldnames = header
        rows = [(f"point_map line {n}", dict(r)) for n, r in enumerate(reader, start=2)]
    if not rows:
        raise bad_request("point_map", "the point map holds no rules")
    if len(rows) > MAX_RULES:
        raise bad_request("point_map", f"the point map has {len(rows)} rules; at most {MAX_RULES} are accepted")
    return _rules_of(rows)


def rule_errors(rules: list[Rule], points: set[str]) -> list[FieldError]:
    return [FieldError(field=f"{r.where}: point", reason=f"appraisal point {r.point} is not in this level's blueprint")
            for r in rules if r.point not in points]


def _match(item: ParsedItem, rules: list[Rule]) -> Rule | None:
    origin = item.origin
    for rule in rules:
        if rule.kind == "identifier" and rule.key in origin.identifiers:
            return rule
    for rule in rules:
        if rule.kind == "label" and origin.label is not None and rule.key == origin.label:
            return rule
    for rule in rules:
        if rule.kind == "metadata":
            name, sep, value = rule.key.partition("=")
            if any((n == name.strip() and v == value.strip()) if sep else v == rule.key
                   for n, v in origin.metadata):
                return rule
    if origin.category is not None:
        segments = category_segments(origin.category)
        best: Rule | None = None
        for rule in rules:
            if rule.kind != "category":
                continue
            wanted = category_segments(rule.key)
            if wanted and segments[:len(wanted)] == wanted and (
                    best is None or len(wanted) > len(category_segments(best.key))):
                best = rule
        return best
    return None


def _unplaced(item: ParsedItem, file_format: str) -> str:
    origin = item.origin
    named = [f"category {origin.category!r}" if origin.category is not None else "",
             f"label {origin.label!r}" if origin.label else ""]
    said = " and ".join(n for n in named if n)
    where = {"xlsx": "the 鉴定点 column is empty", "moodle": "no point: tag"}.get(
        file_format, "no qbank:point metadata")
    return (f"no appraisal point: {where}{f', {said} names none' if said else ''}, no point_map rule matches and no "
            "file-wide point was given")


def place(parsed: ParseResult, rules: list[Rule], file_point: str | None) -> list[Placement]:
    """Give every question without a point of its own one (errors for the rest); how many each source placed."""
    named = 0
    by_rule: dict[int, int] = {id(r): 0 for r in rules}
    implied: dict[tuple[str, str], int] = {}
    file_wide = 0
    for item in parsed.items:
        if str(item.fields.get("point_code") or "").strip():
            named += 1
            continue
        rule = _match(item, rules)
        if rule is not None:
            item.fields["point_code"] = rule.point
            by_rule[id(rule)] += 1
        elif item.origin.implied_point is not None:
            item.fields["point_code"] = item.origin.implied_point
            key = (item.origin.implied_by, item.origin.implied_point)
            implied[key] = implied.get(key, 0) + 1
        elif file_point is not None:
            item.fields["point_code"] = file_point
            file_wide += 1
        else:
            parsed.error(item.position, "point_code", _unplaced(item, parsed.format))
    out = [Placement(rule=NAMED, point_code=None, count=named)] if named else []
    out += [Placement(rule=by, point_code=point, count=n) for (by, point), n in sorted(implied.items())]
    out += [Placement(rule=r.label, point_code=r.point, count=by_rule[id(r)]) for r in rules]
    if file_point is not None:
        out.append(Placement(rule="file-wide point", point_code=file_point, count=file_wide))
    return out
