"""No 500 on malformed bodies or files: invalid UTF-8 in JSON, truncated or corrupt members of an xlsx or a QTI
package answer 400 problem details and change nothing; the error handler itself never raises."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from tests.qbank.helpers import Api, audit_count, import_file, make_bank

XLSX_SHEET = "xl/worksheets/sheet1.xml"


def workbook() -> bytes:
    from openpyxl import Workbook

    from qbank.imports.excel import COLUMNS

    wb = Workbook()
    ws = wb.active
    ws.title = "items"
    ws.append([f"{chinese}/{key}" for key, chinese in COLUMNS])
    ws.append(["判断题", "安全电压一般不超过36伏。", *[None] * 8, "正确", None, "001"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def rewrite(data: bytes, name: str, change: Any) -> bytes:
    """The same zip with one member's bytes changed (and stored consistently, CRC included)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            body = source.read(info)
            z.writestr(info.filename, change(body) if info.filename == name else body)
    return out.getvalue()


def corrupt_crc(data: bytes, name: str) -> bytes:
    """Flip a byte inside one member's compressed data: its CRC (or its deflate stream) no longer holds."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def qti_package(item_xml: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("imsmanifest.xml", '<?xml version="1.0"?><manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" '
                   'identifier="m"><resources><resource identifier="r1" type="imsqti_item_xmlv2p1" href="i1.xml">'
                   '<file href="i1.xml"/></resource></resources></manifest>')
        z.writestr("i1.xml", item_xml)
    return out.getvalue()


CASES = {
    "truncated sheet xml": lambda: rewrite(workbook(), XLSX_SHEET, lambda b: b[: len(b) // 2]),
    "sheet xml that is not xml": lambda: rewrite(workbook(), XLSX_SHEET, lambda b: b"\x00\x01 not xml"),
    "sheet text not in utf-8": lambda: rewrite(workbook(), XLSX_SHEET, lambda b: b.replace(
        "安全".encode(), "安全".encode("gb18030"))),
    "corrupt sheet member": lambda: corrupt_crc(workbook(), XLSX_SHEET),
    "corrupt workbook member": lambda: corrupt_crc(workbook(), "xl/workbook.xml"),
    "truncated workbook xml": lambda: rewrite(workbook(), "xl/workbook.xml", lambda b: b[: len(b) // 2]),
    "truncated styles xml": lambda: rewrite(workbook(), "xl/styles.xml", lambda b: b[: len(b) // 3]),
    "truncated QTI item": lambda: qti_package('<?xml version="1.0"?><assessmentItem xmlns="http://www.imsglobal'
                                              '.org/xsd/imsqti_v2p1" identifier="i1"><itemBody><p>电流'),
    "corrupt QTI member": lambda: corrupt_crc(qti_package("<assessmentItem>" + "x" * 4000 + "</assessmentItem>"),
                                              "i1.xml"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_malformed_files_are_a_400_and_change_nothing(api: Api, case: str) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    before = await audit_count(api, "item.create") + await audit_count(api, "import.create")
    r = await import_file(api, admin, {"file": ("bank.bin", CASES[case]())},
                          {"occupation_code": bank.occupation, "level": str(bank.level)})
    assert r.status_code == 400 and r.job is not None and r.job["status"] == "failed", r.text  # the job's refusal
    assert r.json()["errors"][0]["field"].startswith("file") or "row" in r.json()["errors"][0]["field"], r.json()
    after = await audit_count(api, "item.create") + await audit_count(api, "import.create")
    items = (await api.client.get("/api/v1/items", params={"occupation": bank.occupation}, headers=admin)).json()
    assert after == before and items["total"] == 0


@pytest.mark.parametrize("body", [b'{"code": "1-01-01-01", "name": "\xff\xfe", "levels": [3]}',
                                  b'{"code": "1-01-01-01", "name": "\xe7\x94", "levels": [3]}',
                                  b"\xef\xbb\xbf{}", b'{"code": "1-01-01-01", "name": "\\ud800", "levels": [3]}',
                                  b'{"a":' * 5000])
async def test_a_json_body_that_is_not_utf8_json_is_a_400(api: Api, body: bytes) -> None:
    admin = await api.admin()
    r = await api.client.post("/api/v1/occupations", content=body,
                              headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"], r.json()
    assert (await api.client.get("/api/v1/occupations/1-01-01-01", headers=admin)).status_code == 404


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be shown")


@pytest.mark.parametrize("exc", [_Unprintable(), ValueError(b"\xff bytes"), RecursionError()])
def test_the_error_handler_never_raises(exc: Exception) -> None:
    """Even when the exception cannot be rendered, or the log cannot be written: a 500 problem details answer."""
    import structlog
    from litestar import Litestar
    from litestar.testing import RequestFactory

    from qbank.lib.problems import internal_error_handler

    request = RequestFactory(app=Litestar()).get("/api/v1/imports")

    class BrokenLogger:
        def __getattr__(self, _: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> None:
                raise TypeError("str or Text instance required, not ExpatError")
            return fail

    for factory in (None, lambda *a: BrokenLogger()):
        structlog.reset_defaults()
        if factory is not None:
            structlog.configure(logger_factory=factory, cache_logger_on_first_use=False)
        try:
            response = internal_error_handler(request, exc)
        finally:
            structlog.reset_defaults()
        assert response.status_code == 500
        assert response.media_type == "application/problem+json"
