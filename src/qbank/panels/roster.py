"""The session's roster of evaluators and supervisors as xlsx."""

from __future__ import annotations

import io
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.lib.actors import Actor
from qbank.panels.assignment import session_panels
from qbank.panels.people import certificates_of
from qbank.sessions.models import ExamSession
from qbank.settings import Settings


# ------------------------------------------------------------------------------------------------ roster
async def roster_xlsx(db: AsyncSession, settings: Settings, sessions: list[ExamSession]) -> bytes:
    """One sheet: session, time, room, role (组长 leader / 考评员 evaluator / 内督员 / 外督员), name, masked id,
    employer, certificate."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from qbank.lib.sheets import text_cell

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "roster"
    header = ["session", "occupation", "level", "start", "end", "room", "role", "name", "id number (masked)",
              "employer / organisation", "certificate (occupation, level, valid until)"]
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for s in sessions:
        out = await session_panels(db, settings, s)
        certs = await certificates_of(db, [m.evaluator_id for p in out.panels for m in p.members])
        base = [s.id, s.occupation_code, s.level, out.local_start, out.local_end]
        for p in out.panels:
            for m in p.members:
                cert = next((f"{c.occupation_code} L{c.level} {c.valid_until.isoformat()}"
                             for c in sorted(certs.get(m.evaluator_id, []), key=lambda c: c.level)
                             if c.occupation_code == s.occupation_code and c.level <= s.level), "")
                ws.append([text_cell(ws, v) for v in (*base, p.room, "组长 leader" if m.leader else "考评员 evaluator",
                                                      m.name, m.id_number, m.employer, cert)])
        for sup in out.supervisors:
            role = "内督员 internal supervisor" if sup.kind == "internal" else "外督员 external supervisor"
            ws.append([text_cell(ws, v) for v in (*base, "", role, sup.name, "", sup.organisation, "")])
    for col, width in zip("ABCDEFGHIJK", (8, 12, 6, 26, 26, 16, 22, 14, 20, 30, 30), strict=True):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def local_text(settings: Settings, at: datetime) -> str:
    return at.astimezone(settings.tz).isoformat()


async def export_roster(db: AsyncSession, settings: Settings, actor: Actor, session: ExamSession) -> bytes:
    """The session's roster as xlsx; each export is in the trail."""
    body = await roster_xlsx(db, settings, [session])
    await record(db, actor, "panels.roster_export", "session", session.id)
    return body
