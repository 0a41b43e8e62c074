"""Debian's Chromium driven by Playwright, for the browser tests (the review page, the exam station)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


class Shots:
    """Numbered screenshots in ``folder`` (a test's own files: a failing test shows what the page looked like)."""

    def __init__(self, folder: Path, full_page: bool = False) -> None:
        self.folder, self.full_page, self.n = folder, full_page, 0

    def __call__(self, page: Any, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=self.full_page)
        return path
