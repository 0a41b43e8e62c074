"""Occupations, blueprint versions and layouts, with the blueprint's validation rules."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild as pb
from qbank.audit.services import record
from qbank.blueprints.models import Blueprint, Layout, Occupation
from qbank.blueprints.schemas import (
    BlueprintIn,
    BlueprintOut,
    BlueprintWarning,
    LayoutIn,
    LayoutOut,
    OccupationIn,
    OccupationOut,
    Point,
    Scope,
)
from qbank.db import get_or_404
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict

MIN_POINTS = 200
SHARE_RULES = (("X", ">=", 80.0), ("Y", "<=", 15.0), ("Z", "<=", 5.0))


def walk(scopes: list[Scope], prefix: str = "scopes") -> Iterator[tuple[str, Scope, list[str]]]:
    """Every scope with its JSON path and its code path from the root."""
    stack: list[tuple[str, Scope, list[str]]] = [(f"{prefix}[{i}]", s, [s.code]) for i, s in enumerate(scopes)]
    stack.reverse()
    while stack:
        path, scope, codes = stack.pop()
        yield path, scope, codes
        children = [(f"{path}.children[{i}]", c, [*codes, c.code]) for i, c in enumerate(scope.children)]
        stack.extend(reversed(children))


def leaf_points(scopes: list[Scope]) -> list[tuple[Point, list[str]]]:
    """Every appraisal point with the code path of its scope."""
    return [(p, codes) for _, scope, codes in walk(scopes) for p in scope.points]


def engine_blueprint(data: BlueprintIn) -> tuple[pb.Blueprint, list[str]]:
    """The blueprint as the engine takes it (scopes flattened, parents named) and each flat scope's JSON path."""
    scopes: list[pb.Scope] = []
    paths: list[str] = []
    points: dict[str, pb.AppraisalPoint] = {}
    for path, scope, codes in walk(data.scopes):
        scopes.append(pb.Scope(code=scope.code, weight=scope.weight, parent=codes[-2] if len(codes) > 1 else None,
                               name=scope.name))
        paths.append(path)
        for point in scope.points:
            points.setdefault(point.code, pb.AppraisalPoint(code=point.code, scope=scope.code,
                                                            importance=point.importance))
    return pb.Blueprint(scopes=tuple(scopes), points=tuple(points.values())), paths


_ENGINE_SCOPE = re.compile(r"^blueprint\.scopes\[(\d+)\](.*)$")


def weight_errors(data: BlueprintIn) -> tuple[list[FieldError], dict[str, float]]:
    """The engine's weight rule (``paperbuild.blueprint``, ``WEIGHT_RULE``): every scope whose weights do not add
    up, each as its own error at its JSON path; and the resolved weights when there is none."""
    bp, paths = engine_blueprint(data)
    try:
        return [], pb.resolved_weights(bp)
    except pb.InvalidInput as exc:
        errors = []
        for field, reason in exc.problems:
            m = _ENGINE_SCOPE.match(field)
            where = f"{paths[int(m.group(1))]}{m.group(2)}" if m and int(m.group(1)) < len(paths) else "scopes"
            errors.append(FieldError(field=where, reason=reason))
        return errors, {}


def validate_blueprint(data: BlueprintIn,
                       ) -> tuple[list[FieldError], list[BlueprintWarning], dict[str, float], dict[str, float]]:
    """Every error (the tree, the codes, the weights: each bad scope), the warnings, X/Y/Z shares and the resolved
    weights."""
    errors: list[FieldError] = []
    scope_paths: dict[str, str] = {}
    point_paths: dict[str, str] = {}
    for path, scope, _ in walk(data.scopes):
        if scope.code in scope_paths:
            errors.append(FieldError(field=f"{path}.code",
                                     reason=f"duplicate scope code {scope.code} (also at {scope_paths[scope.code]})"))
        scope_paths.setdefault(scope.code, path)
        if not scope.children and not scope.points:
            errors.append(FieldError(field=path, reason=f"scope {scope.code} is empty: no child scopes, no points"))
        if scope.children and scope.points:
            errors.append(FieldError(field=path, reason=f"scope {scope.code} has both child scopes and points"))
        for j, point in enumerate(scope.points):
            ppath = f"{path}.points[{j}]"
            if point.code in point_paths:
                where = point_paths[point.code]
                reason = f"duplicate point code {point.code} (also at {where})"
                errors.append(FieldError(field=f"{ppath}.code", reason=reason))
            point_paths.setdefault(point.code, ppath)
    weights: dict[str, float] = {}
    if not errors:  # weights resolve only on a sound tree
        more, weights = weight_errors(data)
        errors += more
    points = [p for p, _ in leaf_points(data.scopes)]
    counts = Counter(p.importance for p in points)
    n = max(len(points), 1)
    shares = {k: round(100.0 * counts.get(k, 0) / n, 2) for k in ("X", "Y", "Z")}
    warnings: list[BlueprintWarning] = []
    for importance, op, limit in SHARE_RULES:
        share = shares[importance]
        if (op == ">=" and share < limit) or (op == "<=" and share > limit):
            warnings.append(BlueprintWarning(code=f"share_{importance}", message=(
                f"{importance} points are {share:g} % of the blueprint; the national rule is {op} {limit:g} %")))
    if len(points) < MIN_POINTS:
        warnings.append(BlueprintWarning(code="few_points", message=(
            f"{len(points)} appraisal points; a level usually has at least {MIN_POINTS}")))
    return errors, warnings, shares, weights


def occupation_out(row: Occupation) -> OccupationOut:
    return OccupationOut(code=row.code, name=row.name, levels=list(row.levels), created_at=row.created_at)


async def get_occupation(db: AsyncSession, code: str) -> Occupation:
    row = await get_or_404(db, Occupation, code, "occupation")
    return row


async def require_level(db: AsyncSession, code: str, level: int) -> Occupation:
    occupation = await get_occupation(db, code)
    if level not in occupation.levels:
        raise bad_request("level", f"occupation {code} has no level {level} (it has {sorted(occupation.levels)})")
    return occupation


async def create_occupation(db: AsyncSession, data: OccupationIn) -> Occupation:
    if await db.get(Occupation, data.code) is not None:
        raise conflict(f"occupation {data.code} already exists")
    if len(set(data.levels)) != len(data.levels):
        raise bad_request("levels", "levels repeat")
    row = Occupation(code=data.code, name=data.name, levels=sorted(data.levels))
    db.add(row)
    await db.flush()
    return row


def blueprint_out(row: Blueprint) -> BlueprintOut:
    data = msgspec.convert({"scopes": row.scopes}, BlueprintIn)
    _, warnings, shares, weights = validate_blueprint(data)
    return BlueprintOut(id=row.id, occupation_code=row.occupation_code, level=row.level, version=row.version,
                        scopes=data.scopes, points=len(leaf_points(data.scopes)), shares=shares, warnings=warnings,
                        weights={k: round(v, 6) for k, v in weights.items()},
                        created_at=row.created_at, created_by=row.created_by, used_at=row.used_at)


def _checked_scopes(data: BlueprintIn) -> list[Any]:
    errors, _, _, _ = validate_blueprint(data)
    if errors:
        more = f"; … and {len(errors) - 5} more (every one is in errors)" if len(errors) > 5 else ""
        raise ProblemError(400, f"the blueprint has {len(errors)} error(s): " + "; ".join(
            f"{e.field}: {e.reason}" for e in errors[:5]) + more, errors=errors)
    return msgspec.to_builtins(data.scopes)  # type: ignore[no-any-return]


async def create_blueprint(db: AsyncSession, actor: Actor, code: str, level: int, data: BlueprintIn) -> Blueprint:
    await require_level(db, code, level)
    scopes = _checked_scopes(data)
    latest = await db.scalar(select(func.max(Blueprint.version)).where(
        Blueprint.occupation_code == code, Blueprint.level == level))
    row = Blueprint(occupation_code=code, level=level, version=(latest or 0) + 1, scopes=scopes,
                    created_by=actor.label)
    db.add(row)
    await db.flush()
    return row


async def replace_blueprint(db: AsyncSession, row: Blueprint, data: BlueprintIn) -> Blueprint:
    if row.used_at is not None:
        raise conflict(f"blueprint {row.id} (version {row.version}) was used by a paper on "
                       f"{row.used_at.isoformat()} and is immutable; create a new version instead")
    row.scopes = _checked_scopes(data)
    await db.flush()
    return row


async def get_blueprint(db: AsyncSession, blueprint_id: int) -> Blueprint:
    row = await get_or_404(db, Blueprint, blueprint_id, "blueprint")
    return row


async def current_blueprint(db: AsyncSession, code: str, level: int) -> Blueprint | None:
    return await db.scalar(select(Blueprint).where(Blueprint.occupation_code == code, Blueprint.level == level)
                           .order_by(Blueprint.version.desc()).limit(1))


async def point_index(db: AsyncSession, code: str, level: int) -> dict[str, tuple[Point, list[str]]]:
    """The current blueprint's points by code, each with its scope path; empty when there is none."""
    row = await current_blueprint(db, code, level)
    if row is None:
        return {}
    data = msgspec.convert({"scopes": row.scopes}, BlueprintIn)
    return {p.code: (p, codes) for p, codes in leaf_points(data.scopes)}


def layout_total(data: LayoutIn) -> float:
    return round(sum(s.count * s.points_per_item for s in data.sections), 6)


def validate_layout(data: LayoutIn) -> None:
    errors: list[FieldError] = []
    total = layout_total(data)
    if abs(total - 100) > 1e-6:
        errors.append(FieldError(field="sections", reason=f"sections total {total:g} points, not 100"))
    if data.facility_min > data.facility_max:
        errors.append(FieldError(field="facility_min", reason="facility_min is above facility_max"))
    types = [s.type for s in data.sections]
    for i, t in enumerate(types):
        if types.index(t) != i:
            errors.append(FieldError(field=f"sections[{i}].type", reason=f"type {t} has two sections"))
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)


def layout_out(row: Layout) -> LayoutOut:
    data = msgspec.convert({"name": row.name, "sections": row.sections, "duration_minutes": row.duration_minutes,
                            "facility_min": row.facility_min, "facility_max": row.facility_max}, LayoutIn)
    return LayoutOut(id=row.id, occupation_code=row.occupation_code, level=row.level, name=row.name,
                     sections=data.sections, duration_minutes=row.duration_minutes, facility_min=row.facility_min,
                     facility_max=row.facility_max, total_points=layout_total(data), created_at=row.created_at,
                     created_by=row.created_by)


async def create_layout(db: AsyncSession, actor: Actor, code: str, level: int, data: LayoutIn) -> Layout:
    await require_level(db, code, level)
    validate_layout(data)
    exists = await db.scalar(select(Layout.id).where(Layout.occupation_code == code, Layout.level == level,
                                                     Layout.name == data.name))
    if exists is not None:
        raise conflict(f"layout {data.name!r} already exists for {code} level {level} (id {exists})")
    row = Layout(occupation_code=code, level=level, name=data.name, sections=msgspec.to_builtins(data.sections),
                 duration_minutes=data.duration_minutes, facility_min=data.facility_min,
                 facility_max=data.facility_max, created_by=actor.label)
    db.add(row)
    await db.flush()
    return row


async def get_layout(db: AsyncSession, layout_id: int) -> Layout:
    row = await get_or_404(db, Layout, layout_id, "layout")
    return row


# ----------------------------------------------------------------------------------------------- use cases
async def define_occupation(db: AsyncSession, actor: Actor, data: OccupationIn) -> OccupationOut:
    row = await create_occupation(db, data)
    out = occupation_out(row)
    await record(db, actor, "occupation.create", "occupation", row.code, after=out)
    return out


async def list_occupations(db: AsyncSession, actor: Actor) -> list[OccupationOut]:
    """The occupations this caller may see (authors and reviewers: their own)."""
    rows = (await db.scalars(select(Occupation).order_by(Occupation.code))).all()
    return [occupation_out(r) for r in rows if actor.may_touch(r.code)]


async def add_blueprint(db: AsyncSession, actor: Actor, code: str, level: int, data: BlueprintIn) -> BlueprintOut:
    row = await create_blueprint(db, actor, code, level, data)
    out = blueprint_out(row)
    await record(db, actor, "blueprint.create", "blueprint", row.id, after=out,
                 detail={"occupation": code, "level": level, "version": row.version})
    return out


async def list_blueprints(db: AsyncSession, actor: Actor, code: str, level: int) -> list[BlueprintOut]:
    check_occupation(actor, code)
    await require_level(db, code, level)
    rows = (await db.scalars(select(Blueprint).where(
        Blueprint.occupation_code == code, Blueprint.level == level).order_by(Blueprint.version))).all()
    return [blueprint_out(r) for r in rows]


async def correct_blueprint(db: AsyncSession, actor: Actor, blueprint_id: int, data: BlueprintIn) -> BlueprintOut:
    """Replace a blueprint version that no paper has used yet."""
    row = await get_blueprint(db, blueprint_id)
    before = blueprint_out(row)
    row = await replace_blueprint(db, row, data)
    out = blueprint_out(row)
    await record(db, actor, "blueprint.replace", "blueprint", row.id, before=before, after=out)
    return out


async def add_layout(db: AsyncSession, actor: Actor, code: str, level: int, data: LayoutIn) -> LayoutOut:
    row = await create_layout(db, actor, code, level, data)
    out = layout_out(row)
    await record(db, actor, "layout.create", "layout", row.id, after=out)
    return out


async def list_layouts(db: AsyncSession, actor: Actor, code: str, level: int) -> list[LayoutOut]:
    check_occupation(actor, code)
    await require_level(db, code, level)
    rows = (await db.scalars(select(Layout).where(
        Layout.occupation_code == code, Layout.level == level).order_by(Layout.id))).all()
    return [layout_out(r) for r in rows]
