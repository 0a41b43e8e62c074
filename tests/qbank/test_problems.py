"""Bad bytes in a request that the framework itself cannot read are bad input (400), not a service failure."""

from __future__ import annotations

from tests.qbank.helpers import Api, make_bank


async def test_a_form_field_that_is_not_utf8_text_is_a_400(api: Api) -> None:
    bank = await make_bank(api)
    body = (b"--b\r\nContent-Disposition: form-data; name=\"occupation_code\"\r\n\r\n" + bank.occupation.encode()
            + b"\r\n--b\r\nContent-Disposition: form-data; name=\"level\"\r\n\r\n3\r\n--b\r\n"
            b"Content-Disposition: form-data; name=\"point_map\"\r\n\r\n\xff\xd8\xff\xe0 not text\r\n--b--\r\n")
    r = await api.client.post("/api/v1/imports", content=body, headers={
        **await api.admin(), "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and "UTF-8" in r.json()["detail"]
