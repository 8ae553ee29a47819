"""Fixtures: an HTTP client session and a factory of federations whose nodes are stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.node.support import Federation


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def federation(
    tmp_path: Path, session: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Federation]]:
    """``federation(["TH", "MY"])``: keys, a signed roster and node folders; start nodes with ``.start``."""
    made: list[Federation] = []

    def make(ids: list[str], name: str = "fed", coordinator: str | None = None) -> Federation:
        fed = Federation(tmp_path / name, session, ids, coordinator=coordinator)
        made.append(fed)
        return fed

    yield make
    for fed in made:
        await fed.stop_all()
