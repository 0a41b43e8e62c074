"""Real-shaped banks (Moodle XML, TAO QTI 2.1, QTI 2.2, QTI 3.0; tests/qbank/bank_files.py) imported as they
are: point mapping, media carried with the items, candidate text only, every round trip exact."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.qbank import bank_files as bf
from tests.qbank.helpers import Api, Bank, ImportAnswer, import_file, make_bank

CONTENT = ("stem", "options", "answer", "explanation", "point_code", "facility", "difficulty", "enemy_groups",
           "stimulus_set", "tags", "media", "language", "practical")
MEDIA = re.compile(r"\{\{media:([0-9a-f]{64})\}\}")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'
RAW = ("Expected `", "regex", "Object missing", "Invalid enum", "msgspec")


async def post_import(api: Api, bank: Bank, data: bytes, name: str, headers: dict[str, str] | None = None,
                      point_map: tuple[str, bytes] | None = None, **form: Any) -> ImportAnswer:
    files: dict[str, Any] = {"file": (name, data)}
    if point_map is not None:
        files["point_map"] = point_map
    return await import_file(api, headers or await api.admin(), files,
                             {"occupation_code": bank.occupation, "level": str(bank.level), **form})


async def items_of(api: Api, bank: Bank) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation, "level": bank.level,
                                                      "limit": 500}, headers=await api.admin())
    assert r.status_code == 200, r.text
    return {i["stem"]: i for i in r.json()["items"]}


def comparable(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {stem: {k: i[k] for k in (*CONTENT, "type", "maintainer")} for stem, i in items.items()}


async def media_digests(api: Api, items: dict[str, dict[str, Any]]) -> dict[str, str]:
    """SHA-256 of the bytes the archive gives back for every medium of the items, by key."""
    out = {}
    async with httpx.AsyncClient() as s3:
        for key in {k for i in items.values() for k in i["media"]}:
            r = await api.client.get("/api/v1/media/link", params={"key": key}, headers=await api.admin())
            assert r.status_code == 200, r.text
            out[key] = hashlib.sha256((await s3.get(r.json()["url"])).content).hexdigest()
    return out


async def round_trip(api: Api, bank: Bank, formats: tuple[str, ...] = ("qti3", "moodle", "xlsx")) -> None:
    """Export the bank in each format, import it into a bank with the same blueprint, compare every field and
    every medium's bytes."""
    original = comparable(await items_of(api, bank))
    for fmt in formats:
        r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level,
                                                            "format": fmt}, headers=await api.admin())
        assert r.status_code == 200, r.text
        target = await make_bank(api)
        r = await post_import(api, target, r.content, f"export.{fmt}")
        assert r.status_code == 201, (fmt, r.text)
        assert r.json()["format"] == fmt
        copied = await items_of(api, target)
        assert comparable(copied) == original, fmt
        digests = await media_digests(api, copied)
        assert all(key.endswith(digest) for key, digest in digests.items()), digests


async def test_moodle_bank_imports_with_its_media_through_a_point_map_and_round_trips(api: Api) -> None:
    bank = await make_bank(api)
    data = bf.moodle_bank()
    # As it is, the bank names no appraisal point: every question is refused, by its <name>, once.
    r = await post_import(api, bank, data, "course.xml")
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["detail"].startswith("4 of 4 question(s) refused: nothing was imported")
    fields = [e["field"] for e in problem["errors"]]
    assert fields == ["question '安全标志 red sign' (no. 1): point_code", "question '听声音选设备' (no. 2): point_code",
                      "question '串联电流' (no. 3): point_code", "question '面积单位' (no. 4): point_code"]
    assert "category '$course$/top/Default for 电工基础/电路'" in problem["errors"][2]["reason"]

    r = await post_import(api, bank, data, "course.xml", point_map=("map.csv", bf.MOODLE_POINT_MAP))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["format"] == "moodle" and out["count"] == 4 and out["media"] == 4
    assert [(p["rule"], p["point_code"], p["count"]) for p in out["placed"]] == [
        ("point_map category $course$/top/Default for 电工基础/安全用电", "001", 1),
        ("point_map category $course$/top/Default for 电工基础/安全用电/标志", "002", 1),
        ("point_map category Default for 电工基础/电路", "003", 1),  # the other question there has its idnumber
        ("point_map identifier E-104", "004", 1)]
    assert out["left_out"] == {"answer feedback and hints": 6, "descriptions (not questions)": 1}
    items = await items_of(api, bank)
    sign = items[f"下图所示的安全标志表示什么？\n{{{{media:{bf.sha(bf.RED_SIGN)}}}}}"]
    assert sign["options"] == ["禁止", "警告", "指令"] and sign["explanation"] == "红色标志表示禁止。"
    assert sign["media"] == [f"media/{bf.sha(bf.RED_SIGN)[:2]}/{bf.sha(bf.RED_SIGN)}"]
    sound = next(i for s, i in items.items() if s.startswith("听录音"))
    assert sound["stem"].endswith(f"{{{{media:{bf.sha(bf.HUM)}}}}}") and "hum.wav" not in sound["stem"]
    assert sound["options"] == [f"{{{{media:{bf.sha(bf.FLAG_A)}}}}}", f"{{{{media:{bf.sha(bf.FLAG_B)}}}}}"]
    assert sound["point_code"] == "002" and sound["tags"] == ["听力"]
    assert items["串联电路中\n各处电流相等。"]["point_code"] == "004"
    assert items["下列属于面积或体积单位的是（ ）。"]["options"] == ["m²", "m³", "kg"]
    digests = await media_digests(api, items)
    assert sorted(digests.values()) == sorted(bf.sha(d) for d in (bf.RED_SIGN, bf.HUM, bf.FLAG_A, bf.FLAG_B))
    await round_trip(api, bank)


async def test_tao_qti21_package_keeps_what_the_candidate_reads(api: Api) -> None:
    bank = await make_bank(api)
    r = await post_import(api, bank, bf.tao_package(), "tao.zip", point_map=("map.json", bf.TAO_POINT_MAP))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["format"] == "qti21" and out["count"] == 3 and out["media"] == 2
    assert [(p["rule"], p["point_code"], p["count"]) for p in out["placed"]] == [
        ("label '003'", "003", 1), ("point_map identifier i1501", "001", 1),
        ("point_map metadata keyword=听力", "002", 1), ("point_map label Q9", "005", 0)]
    assert out["left_out"] == {"inline feedback": 1, "rubrics for scorers": 1, "tooltips": 1}
    items = await items_of(api, bank)
    sign = items[f"Look at the text in the picture.\n{{{{media:{bf.sha(bf.SIGN)}}}}}\nWhat does it say?"]
    assert sign["options"] == ["Go", "Stop", "Wait"] and sign["answer"] == ["B"] and sign["language"] == "en-US"
    hear = items[f"Listen:\n{{{{media:{bf.sha(bf.ffmpeg_media('mp3'))}}}}}\nWhich words do you hear?"]
    assert hear["type"] == "multiple_choice" and hear["answer"] == ["A", "B"] and hear["point_code"] == "002"
    assert items["Read carefully.\nWhich unit measures electric current?"]["point_code"] == "003"
    await round_trip(api, bank)


async def test_qti22_and_qti3_packages_with_a_file_wide_point(api: Api) -> None:
    bank = await make_bank(api)
    r = await post_import(api, bank, bf.qti22_package(), "flags.zip")
    assert r.status_code == 400 and "no appraisal point" in r.json()["errors"][0]["reason"], r.text
    assert r.json()["errors"][0]["field"] == "item flags-22 'Flags': point_code"
    r = await post_import(api, bank, bf.qti22_package(), "flags.zip", point="007")
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "qti21"
    assert r.json()["placed"] == [{"rule": "file-wide point", "point_code": "007", "count": 1}]
    flags = (await items_of(api, bank))["哪一面旗表示注意安全？"]
    assert flags["options"] == [f"{{{{media:{bf.sha(bf.FLAG_A)}}}}}", f"{{{{media:{bf.sha(bf.FLAG_B)}}}}}"]

    r = await post_import(api, bank, bf.qti3_package(), "qti3.zip", point="008", format="qti3")
    assert r.status_code == 201, r.text
    assert [(p["rule"], p["count"]) for p in r.json()["placed"]] == [("label '006'", 1), ("file-wide point", 1)]
    items = await items_of(api, bank)
    tone, clip = bf.sha(bf.ffmpeg_media("mp3")), bf.sha(bf.ffmpeg_media("mp4"))
    features = items["Listen to the recording before you answer.\n"
                     f"{{{{media:{tone}}}}}\nWhich of these are features of QTI 3? Pick 3 choices."]
    assert features["options"] == ["Shared stimulus", "Flash", "HTML5 audio", "Catalogs"]
    assert features["stimulus_set"] == "stim-listen" and features["language"] == "en-US"
    video = items[f"Watch the clip.\n{{{{media:{clip}}}}}\nDoes the picture move?"]
    assert video["explanation"] == "The test card scrolls." and video["language"] == "en"
    digests = await media_digests(api, items)
    assert {tone, clip} <= set(digests.values())
    await round_trip(api, bank)


async def test_the_export_says_each_items_language(api: Api) -> None:
    import io
    import zipfile

    bank = await make_bank(api)
    admin = await api.admin()
    for stem, language in (("电流的单位是？", None), ("Which unit measures current?", None),
                           ("Which unit measures power?", "en-GB")):
        body = {"occupation_code": bank.occupation, "level": bank.level, "type": "single_choice", "stem": stem,
                "options": ["A1", "B2"], "answer": ["A"], "point_code": "001", "language": language}
        assert (await api.client.post("/api/v1/items", json=body, headers=admin)).status_code == 201
    r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level,
                                                        "format": "qti3"}, headers=admin)
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        langs = sorted(re.search(rb'xml:lang="([^"]+)"', z.read(n)).group(1).decode()  # type: ignore[union-attr]
                       for n in z.namelist() if n.startswith("items/"))
    assert langs == ["en", "en-GB", "zh-CN"]


@pytest.mark.parametrize("case", ["remote image", "missing file", "bad base64", "package member missing",
                                  "package remote image", "not a medium", "medium too large", "qti3 asked for 2.1",
                                  "deeply nested markup"])
async def test_media_that_cannot_be_carried_refuse_the_question(api: Api, case: str) -> None:
    bank = await make_bank(api)
    sign = f'<file name="s.png" path="/" encoding="base64">{bf.b64(bf.RED_SIGN)}</file>'
    svg = f'<file name="s.svg" path="/" encoding="base64">{bf.b64(SVG)}</file>'
    cases: dict[str, tuple[bytes, str, dict[str, str], str, str]] = {
        "remote image": (bf.moodle_question('<p>看图</p><img src="https://cdn.example.org/s.png">'), "q.xml", {},
                         "question '坏题' (no. 1): stem", "'https://cdn.example.org/s.png' is outside the file"),
        "missing file": (bf.moodle_question('<p>看图</p><img src="@@PLUGINFILE@@/other.png">', files=sign), "q.xml",
                         {}, "question '坏题' (no. 1): stem", "'other.png' is shown but the question carries no"),
        "bad base64": (bf.moodle_question('<img src="@@PLUGINFILE@@/s.png">',
                                          files='<file name="s.png" encoding="base64">*not base64*</file>'),
                       "q.xml", {}, "question '坏题' (no. 1): stem", "not valid base64"),
        "package member missing": (bf.tao_package(missing_sound=True), "tao.zip", {"point": "001"},
                                   "item i1502 'Listening': stem", "is not in the package"),
        "package remote image": (bf.tao_package(remote_image=True), "tao.zip", {"point": "001"},
                                 "item i1501 'Sign reading': stem", "outside the package (a web address)"),
        "not a medium": (bf.moodle_question('<img src="@@PLUGINFILE@@/s.svg">', files=svg), "q.xml", {},
                         "question '坏题' (no. 1): media", "'s.svg' is not a medium items may carry"),
        "medium too large": (bf.qti3_package(), "qti3.zip", {"point": "001"}, "item q3-video 'Test card': media",
                             "media are limited to 2000 bytes"),
        "qti3 asked for 2.1": (bf.qti22_package(), "flags.zip", {"format": "qti3", "point": "001"}, "format",
                               "the package holds QTI 2.1/2.2 items"),
        "deeply nested markup": (bf.moodle_question("<div>" * 5000 + "深" + "</div>" * 5000), "q.xml", {},
                                 "question '坏题' (no. 1): stem", "more than 100 levels deep"),
    }
    data, name, form, field, words = cases[case]
    settings = api.app.state.settings
    limit = settings.max_upload_bytes
    if case == "medium too large":
        settings.max_upload_bytes = 2000  # the tone (1.6 kB) fits, the clip does not
    try:
        r = await post_import(api, bank, data, name, **form)
    finally:
        settings.max_upload_bytes = limit
    assert r.status_code == 400, r.text
    errors = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert field in errors and words in errors[field], errors
    assert "nothing was imported" in r.json()["detail"] or case == "qti3 asked for 2.1"
    assert not any(raw in reason for reason in errors.values() for raw in RAW), errors
    assert await items_of(api, bank) == {}


@pytest.mark.parametrize("case", ["unknown kind", "bad point", "point not in blueprint", "not csv", "for an xlsx",
                                  "file-wide point not in blueprint"])
async def test_bad_point_maps_are_refused(api: Api, case: str) -> None:
    bank = await make_bank(api)
    cases: dict[str, tuple[bytes, dict[str, Any], str, str]] = {
        "unknown kind": (bf.moodle_bank(), {"point_map": ("m.csv", b"kind,key,point\ncourse,x,001\n")},
                         "point_map line 2: kind", "'course' is not one of identifier, label, metadata, category"),
        "bad point": (bf.moodle_bank(), {"point_map": ("m.json", b'[{"kind": "label", "key": "Q7", "point": "7"}]')},
                      "point_map rule 1: point", "'7' is not a 3-digit appraisal point"),
        "point not in blueprint": (bf.moodle_bank(), {"point_map": ("m.csv", b"kind,key,point\nlabel,Q7,999\n")},
                                   "point_map line 2: point", "999 is not in this level's blueprint"),
        "not csv": (bf.moodle_bank(), {"point_map": ("m.csv", b"category;point\nx;001\n")}, "point_map",
                    "starts with the header line kind,key,point"),
        "for an xlsx": (bf.xlsx_of([{"type": "判断题", "stem": "甲", "answer": "正确", "point_code": "001"}]),
                        {"point_map": ("m.csv", b"kind,key,point\nlabel,Q7,001\n")}, "point_map",
                        "an xlsx names its points"),
        "file-wide point not in blueprint": (bf.qti22_package(), {"point": "999"}, "point",
                                             "appraisal point 999 is not in this level's blueprint"),
    }
    data, form, field, words = cases[case]
    r = await post_import(api, bank, data, "bank.bin", **form)
    assert r.status_code == 400, r.text
    errors = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert field in errors and words in errors[field], errors
    assert await items_of(api, bank) == {}
