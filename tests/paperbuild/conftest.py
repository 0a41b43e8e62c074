"""Fixtures for the assembly engine tests: small seeded banks (fast) and the full level-3 bank."""

from __future__ import annotations

import pytest

from paperbuild.synthetic import Bank, generate_bank, level3_layout, small_bank, small_layout


@pytest.fixture(scope="session")
def bank() -> Bank:
    return small_bank(0, n_stimulus_sets=3, times_used_max=5)


@pytest.fixture(scope="session")
def layout():  # type: ignore[no-untyped-def]
    return small_layout()


@pytest.fixture(scope="session")
def big_bank() -> Bank:
    return generate_bank(0)


@pytest.fixture(scope="session")
def big_layout():  # type: ignore[no-untyped-def]
    return level3_layout()
