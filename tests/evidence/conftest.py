"""Fixtures of the evidence engine tests: one local S3 server per test session (per xdist worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evidence import LocalS3Server


@pytest.fixture(scope="session")
def s3server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    server = LocalS3Server(tmp_path_factory.mktemp("weed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()  # by its own pid: SIGTERM, SIGKILL after 10 s
