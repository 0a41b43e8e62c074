"""A plain PDF writer for sheets kept as evidence and cards printed at a site: text a person reads, and the
machine-readable document embedded as a file, so a reader and a machine both get it.

Chinese text uses the PDF's predefined CJK font STSong-Light with the UniGB-UCS2-H encoding (Adobe-GB1), which every
conforming reader supplies itself: nothing is embedded, so the writer needs no font file and no library."""

from __future__ import annotations

from typing import NamedTuple


class _Objects:
    """Numbered PDF objects, serialised with their cross-reference table."""

    def __init__(self) -> None:
        self.objs: list[bytes] = []

    def add(self, body: bytes) -> int:
        self.objs.append(body)
        return len(self.objs)

    def reserve(self) -> int:
        return self.add(b"")

    def set(self, number: int, body: bytes) -> None:
        self.objs[number - 1] = body

    def stream(self, data: bytes, head: bytes = b"") -> int:
        return self.add(b"<< " + head + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")

    def attachment(self, name: str, data: bytes) -> int:
        """An embedded JSON file; returns the /Names dictionary to put under the catalog's /EmbeddedFiles."""
        ef = self.stream(data, b"/Type /EmbeddedFile /Subtype /application#2Fjson")
        spec = self.add(b"<< /Type /Filespec /F (%s) /UF (%s) /EF << /F %d 0 R >> >>"
                        % (name.encode(), name.encode(), ef))
        return self.add(b"<< /Names [(%s) %d 0 R] >>" % (name.encode(), spec))

    def serialise(self, catalog: int) -> bytes:
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(self.objs, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.objs) + 1)
        out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(self.objs) + 1, catalog, xref)
        return bytes(out)


# ------------------------------------------------------------------------------------------- CJK text pages
class Text(NamedTuple):
    """Text at (x, y) points from the bottom left, ``size`` points high; any text in the Basic Multilingual Plane."""

    x: float
    y: float
    size: float
    text: str


class Box(NamedTuple):
    """A stroked rectangle (a card's cut line); ``dash`` draws it dashed."""

    x: float
    y: float
    w: float
    h: float
    dash: bool = False


A4 = (595, 842)


def _ucs2(text: str) -> bytes:
    """UCS-2 big-endian hex, as UniGB-UCS2-H reads it; characters beyond the BMP become '?'."""
    return "".join(f"{ord(ch) if ord(ch) <= 0xFFFF else 0x3F:04X}" for ch in text).encode()


def text_width(text: str, size: float) -> float:
    """Width in points: ASCII is half an em in STSong-Light, everything else a full em."""
    return sum(0.5 if ord(ch) < 0x7F else 1.0 for ch in text) * size


def cjk_pdf(pages: list[list[Text | Box]], attachment: bytes | None = None,
            attachment_name: str = "data.json") -> bytes:
    """A4 pages of text runs and boxes in STSong-Light (Chinese and Latin), with an optional embedded JSON file."""
    doc = _Objects()
    descriptor = doc.add(b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
                         b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>")
    cid = doc.add(b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry "
                  b"(Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor %d 0 R /DW 1000 /W [1 95 500] >>"
                  % descriptor)
    font = doc.add(b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
                   b"/DescendantFonts [%d 0 R] >>" % cid)
    names = doc.attachment(attachment_name, attachment) if attachment is not None else None
    pages_id = doc.reserve()
    kids = []
    for runs in pages or [[]]:
        ops: list[bytes] = []
        for run in runs:
            if isinstance(run, Box):
                dash = b"[4 3] 0 d " if run.dash else b"[] 0 d "
                ops.append(dash + b"%.1f %.1f %.1f %.1f re S" % (run.x, run.y, run.w, run.h))
            else:
                ops.append(b"BT /F1 %.1f Tf %.1f %.1f Td <%s> Tj ET" % (run.size, run.x, run.y, _ucs2(run.text)))
        content = doc.stream(b"0.6 w\n" + b"\n".join(ops))
        kids.append(doc.add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R "
                            b">> >> /Contents %d 0 R >>" % (pages_id, *A4, font, content)))
    doc.set(pages_id, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    extra = b" /Names << /EmbeddedFiles %d 0 R >>" % names if names else b""
    catalog = doc.add(b"<< /Type /Catalog /Pages %d 0 R%s >>" % (pages_id, extra))
    return doc.serialise(catalog)


def table_pdf(title: str, subtitle: list[str], header: list[str], rows: list[list[str]], columns: list[float],
              attachment: bytes, attachment_name: str) -> bytes:
    """A sheet as A4 pages: a title, a few lines under it, then a table (``columns`` are the x positions, 40 rows a
    page, the header repeated), and the machine-readable document embedded, so a reader and a machine both get it."""
    per_page = 40
    pages: list[list[Text | Box]] = []
    for start in range(0, max(len(rows), 1), per_page):
        runs: list[Text | Box] = []
        y = A4[1] - 60.0
        if not pages:
            runs.append(Text(40, y, 16, title))
            for line in subtitle:
                y -= 20
                runs.append(Text(40, y, 9, line))
        y -= 26
        runs.extend(Text(x, y, 9, cell) for x, cell in zip(columns, header, strict=True))
        for row in rows[start:start + per_page]:
            y -= 16
            runs.extend(Text(x, y, 9, cell) for x, cell in zip(columns, row, strict=True))
        pages.append(runs)
    return cjk_pdf(pages, attachment, attachment_name)
