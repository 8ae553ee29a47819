"""The stepped clock a demo's processes share: one file moves them all, together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.stepped_clock import SteppedClock
from protocol.errors import ConfigError


def close(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) < 1


def test_every_reader_adopts_each_step(tmp_path: Path) -> None:
    writer, reader = SteppedClock(tmp_path / "offset"), SteppedClock(tmp_path / "offset")
    assert close(reader(), datetime.now(UTC))  # no file yet: the wall clock
    writer.advance(timedelta(hours=6))
    assert close(reader(), datetime.now(UTC) + timedelta(hours=6))
    writer.advance(timedelta(days=3))
    assert close(reader(), datetime.now(UTC) + timedelta(days=3))
    assert close(writer(), reader())


def test_a_file_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    (tmp_path / "offset").write_text("tomorrow\n")
    with pytest.raises(ConfigError, match="offset in seconds"):
        SteppedClock(tmp_path / "offset")
