"""The bank health report as rich tables, for the CLI (the figures come from the service, unchanged)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from qbank.banks.schemas import BankHealth


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]not met[/red]"


def render_health(report: BankHealth, console: Console) -> None:
    console.print(f"[bold]Bank health: occupation {report.occupation}, level {report.level}[/bold] "
                  "(only approved items count)")
    minimums = Table(title="§17(二) minimums")
    for column in ("what", "approved", "required", "shortfall", "status"):
        minimums.add_column(column)
    for label, m in (("theory items", report.theory_items), ("practical papers", report.practical_papers)):
        minimums.add_row(label, str(m.approved), str(m.required), str(m.shortfall), _met(m.met))
    console.print(minimums)

    types = Table(title="Approved items by type")
    types.add_column("type")
    types.add_column("approved", justify="right")
    for name, n in report.approved_by_type.items():
        types.add_row(name, str(n))
    console.print(types)

    cov = report.points
    blueprint = f"blueprint {cov.blueprint_id} v{cov.blueprint_version}" if cov.blueprint_id else "no blueprint"
    console.print(f"Appraisal points ({blueprint}): {cov.points}; without theory items: {len(cov.without_items)} "
                  f"{', '.join(cov.without_items[:30])}"
                  + (f" (of which with practical tasks only: {', '.join(cov.practical_only[:30])})"
                     if cov.practical_only else "")
                  + f"; under {cov.min_items_per_point} theory items: "
                  f"{len(cov.under_minimum)} {', '.join(cov.under_minimum[:30])}; "
                  f"theory items outside the blueprint: {cov.outside_blueprint}")
    points = Table(title="Points with fewer than the minimum of theory items")
    for column in ("point", "importance", "scope", "theory items", "practical tasks"):
        points.add_column(column)
    for p in cov.per_point:
        if p.items < cov.min_items_per_point:
            points.add_row(p.code, p.importance, p.scope, str(p.items), str(p.practical_tasks))
    if points.row_count:
        console.print(points)
    console.print(cov.note)

    supply = Table(title="Papers with no shared item, per layout")
    for column in ("layout", "type", "per paper", "approved", "papers"):
        supply.add_column(column)
    for lay in report.supply:
        for s in lay.sections:
            supply.add_row(f"{lay.layout_id} {lay.name}", s.type, str(s.per_paper), str(s.approved), str(s.papers))
        supply.add_row(f"{lay.layout_id} {lay.name}", "[bold]layout[/bold]", "", "",
                       f"[bold]{lay.papers}[/bold] (binding: {lay.binding_type})")
    console.print(supply if report.supply else "No layouts for this level.")

    imp = report.importance
    console.print("Importance shares (theory): " + ", ".join(
        f"{k} {imp.counts[k]} ({imp.percent[k]:g} %)" for k in imp.counts)
        + f"; national rule X ≥ 80 %, Y ≤ 15 %, Z ≤ 5 %: {_met(imp.within_rules)}")

    hist = Table(title="Facility of approved theory items")
    hist.add_column("facility")
    hist.add_column("items", justify="right")
    for lo, hi, n in zip(report.facility.edges, report.facility.edges[1:], report.facility.counts, strict=False):
        hist.add_row(f"{lo:.1f}–{hi:.1f}", str(n))
    console.print(hist)
    console.print(f"Mean facility: {report.facility.mean if report.facility.mean is not None else '—'}")

    console.print(f"Near duplicates: {len(report.near_duplicates)} pair(s) "
                  + " ".join(f"{p.a}~{p.b}" for p in report.near_duplicates[:50]))
    u = report.usage
    console.print(f"Never used: {u.never_used} item(s); most used: "
                  + (", ".join(f"{m.item_id} ({m.times_used}×)" for m in u.most_used) or "none"))
