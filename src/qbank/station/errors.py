"""A refusal at the station: a status and the reason in Chinese and in English (the screen shows the reader's)."""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    def __init__(self, status: int, en: str, zh: str, **extra: Any) -> None:
        super().__init__(en)
        self.status, self.en, self.zh, self.extra = status, en, zh, extra
