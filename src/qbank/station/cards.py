"""Seat cards and proctor codes: derived from the site's key and the package, so that `qbank station cards` prints
them from the package alone (before the window, without the station's database) and the station recognises them.

A desk code is good for one sign-in; a proctor code opens one room's console. Codes use 32 unambiguous characters
(no 0/O, 1/I): eight of them are 40 bits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qbank.lib.digest import canonical_json
from qbank.lib.pdf import A4, Box, Text, cjk_pdf, text_width

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def codes_key(site_key: X25519PrivateKey) -> bytes:
    raw = site_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"qbank-station-codes/1").derive(raw)


def _code(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "|".join(parts).encode(), hashlib.sha256).digest()
    chars = "".join(ALPHABET[b % 32] for b in digest[:8])
    return f"{chars[:4]}-{chars[4:]}"


def desk_code(key: bytes, package_id: str, number: str) -> str:
    """The one-time code on a candidate's seat card."""
    return _code(key, "desk", package_id, number)


def proctor_code(key: bytes, package_id: str, room: str) -> str:
    """The code that opens a room's proctor console."""
    return _code(key, "proctor", package_id, room)


def fresh_code() -> str:
    """A random one-time code (a candidate moved to another machine)."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise(code: str) -> str:
    """What the candidate typed, as the code is written: upper case, the dash in place, blanks ignored."""
    chars = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{chars[:4]}-{chars[4:]}" if len(chars) == 8 else chars


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


# ------------------------------------------------------------------------------------------- the PDF
CARD_W, CARD_H = 257.5, 180.0
MARGIN_X, MARGIN_Y = 40.0, 50.0


def _centred(x: float, w: float, y: float, size: float, text: str) -> Text:
    return Text(x + (w - text_width(text, size)) / 2, y, size, text)


def _row(y: float, size: float, desk: str, number: str, name: str) -> list[Text | Box]:
    return [Text(MARGIN_X, y, size, desk), Text(MARGIN_X + 70, y, size, number), Text(MARGIN_X + 280, y, size, name)]


def _card(x: float, y: float, session: dict[str, Any], cand: dict[str, Any], code: str) -> list[Text | Box]:
    left = x + 14
    return [
        Box(x, y, CARD_W, CARD_H, dash=True),
        _centred(x, CARD_W, y + CARD_H - 24, 12, "理论考试座位卡 Seat card"),
        Text(left, y + CARD_H - 44, 9, str(session.get("title", ""))[:40]),
        Text(left, y + CARD_H - 66, 14, f"{cand['name']}"),
        Text(left, y + CARD_H - 84, 10, f"准考证号 No. {cand['number']}"),
        Text(left, y + CARD_H - 100, 10, f"考场 Room {cand['room']}    座位 Desk {cand['desk']}"),
        Text(left, y + 62, 9, "座位卡登录码（仅可使用一次） One-time desk code:"),
        Text(left, y + 34, 22, code),
        Text(left, y + 18, 7, "在考试机登录页的“座位卡登录码”处输入此码"),
        Text(left, y + 8, 7, "Enter it under “Desk code” on the exam station's sign-in screen"),
    ]


def cards_pdf(header: dict[str, Any], session: dict[str, Any], roster: list[dict[str, Any]], key: bytes) -> bytes:
    """One page per room for its proctor (the console code and the room's seats), then eight seat cards a page,
    by room and desk; the codes also embedded as JSON (``cards.json``) for machines."""
    package_id = str(header["package_id"])
    rooms: dict[str, list[dict[str, Any]]] = {}
    for cand in sorted(roster, key=lambda c: (c["room"], c["desk"], c["number"])):
        rooms.setdefault(cand["room"], []).append(cand)
    pages: list[list[Text | Box]] = []
    doc: dict[str, Any] = {"package_id": package_id, "session": header.get("session"), "site": header.get("site"),
                           "rooms": {}, "candidates": {}}
    for room, seats in rooms.items():
        code = proctor_code(key, package_id, room)
        doc["rooms"][room] = code
        page: list[Text | Box] = [
            Text(MARGIN_X, A4[1] - 70, 18, f"监考员登录码 Proctor code — 考场 Room {room}"),
            Text(MARGIN_X, A4[1] - 96, 10, f"{session.get('title', '')}  考点 Site {header.get('site')}  "
                                           f"场次 Session {header.get('session')}"),
            Text(MARGIN_X, A4[1] - 140, 28, code),
            Text(MARGIN_X, A4[1] - 164, 9, "打开考试机的 /proctor 页面，输入此码。请妥善保管，勿交给考生。"),
            Text(MARGIN_X, A4[1] - 178, 9, "Open /proctor on the exam station and enter this code. Keep it from "
                                           "candidates."),
            *_row(A4[1] - 214, 11, "座位 Desk", "准考证号 Admission number", "姓名 Name"),
        ]
        y = A4[1] - 234
        for cand in seats:
            if y < MARGIN_Y:
                pages.append(page)
                page, y = [Text(MARGIN_X, A4[1] - 70, 12, f"考场 Room {room}（续 continued）")], A4[1] - 100
            page += _row(y, 10, str(cand["desk"]), cand["number"], cand["name"])
            y -= 16
        pages.append(page)
    cards = [c for seats in rooms.values() for c in seats]
    for start in range(0, len(cards), 8):
        page = []
        for k, cand in enumerate(cards[start:start + 8]):
            col, row = k % 2, k // 2
            code = desk_code(key, package_id, cand["number"])
            doc["candidates"][cand["number"]] = code
            page += _card(MARGIN_X + col * CARD_W, A4[1] - MARGIN_Y - (row + 1) * CARD_H - row * 8, session, cand,
                          code)
        pages.append(page)
    return cjk_pdf(pages, canonical_json(doc), "cards.json")
