"""The in-process coordinator fixture (see :mod:`tests.coordinator.support`), once on each store: the node's
SQLite file and a PostgreSQL database (see :mod:`tests.postgres`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.coordinator.support import Coordinator, open_coordinator
from tests.postgres import postgres_cluster, postgres_url

__all__ = ["coordinator", "database_url", "postgres_cluster", "postgres_url"]  # fixtures for every test here


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Where the coordinator's store is: None for the node's SQLite file, else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str | None) -> AsyncIterator[Coordinator]:
    async with open_coordinator(tmp_path, database_url) as opened:
        yield opened
