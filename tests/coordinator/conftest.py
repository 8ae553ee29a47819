"""The in-process coordinator fixture (see :mod:`tests.coordinator.support`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.coordinator.support import Coordinator, open_coordinator


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[Coordinator]:
    async with open_coordinator(tmp_path) as opened:
        yield opened
