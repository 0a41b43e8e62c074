"""A plain PDF writer for sheets kept as evidence: text lines a person reads, and the machine-readable document
embedded as a file, so a reader and a machine both get it."""

from __future__ import annotations


def _pdf_text(text: str) -> str:
    safe = text.encode("ascii", "replace").decode()
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def score_sheet_pdf(title: str, lines: list[str], attachment: bytes) -> bytes:
    """A plain PDF: the sheet as text lines (Helvetica, ASCII; 50 lines a page) and the canonical JSON of the sheet
    (names in Chinese included) as an embedded file, so that a reader and a machine both get it."""
    pages = [lines[i:i + 50] for i in range(0, max(len(lines), 1), 50)] or [[]]
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    ef = add(b"<< /Type /EmbeddedFile /Subtype /application#2Fjson /Length %d >>\nstream\n" % len(attachment)
             + attachment + b"\nendstream")
    spec = add(b"<< /Type /Filespec /F (score-sheet.json) /UF (score-sheet.json) /EF << /F %d 0 R >> >>" % ef)
    pages_id = len(objs) + 1 + 2 * len(pages) + 1  # filled in below
    kids = []
    for n, page_lines in enumerate(pages):
        text = [f"BT /F1 14 Tf 40 800 Td ({_pdf_text(title)}) Tj ET" if n == 0 else ""]
        y = 770
        for line in page_lines:
            text.append(f"BT /F1 9 Tf 40 {y} Td ({_pdf_text(line)}) Tj ET")
            y -= 15
        stream = "\n".join(t for t in text if t).encode()
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R "
                        b">> >> /Contents %d 0 R >>" % (pages_id, font, content)))
    names = add(b"<< /Names [(score-sheet.json) %d 0 R] >>" % spec)
    assert len(objs) + 1 == pages_id
    add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R /Names << /EmbeddedFiles %d 0 R >> >>" % (pages_id, names))
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, catalog, xref)
    return bytes(out)
