"""The station benchmark's baseline: a trivial Litestar handler that writes one SQLite row per answer change
(WAL, synchronous=FULL, autocommit: one fsync per request, in the handler). Run by benchmarks/station.py as
`python -m uvicorn station_baseline:app` with STATION_BASELINE_DB set."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from litestar import Litestar, put

conn = sqlite3.connect(os.environ.get("STATION_BASELINE_DB", "baseline.sqlite3"), isolation_level=None,
                       check_same_thread=False)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
conn.execute("CREATE TABLE IF NOT EXISTS answer_log (id INTEGER PRIMARY KEY, number TEXT, no INTEGER, places TEXT, "
             "seq INTEGER, at REAL)")


@put("/answers/{number:str}/{no:int}")
async def save(number: str, no: int, data: dict[str, Any]) -> dict[str, Any]:
    conn.execute("INSERT INTO answer_log (number, no, places, seq, at) VALUES (?, ?, ?, ?, ?)",
                 (number, no, str(data.get("places")), data.get("seq"), time.time()))
    return {"saved": True, "seq": data.get("seq")}


app = Litestar(route_handlers=[save])
