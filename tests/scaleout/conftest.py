"""A failed scale-out test shows which members were alive and the end of each one's log (the run's temporary
directory is gone by the time anyone reads CI's output)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from qbank.devtools.topology import Topology


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    topology = getattr(item, "funcargs", {}).get("topology")
    if report.failed and isinstance(topology, Topology):
        report.sections.append(("topology", topology.report()))
