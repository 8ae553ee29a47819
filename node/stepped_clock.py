"""A wall clock moved forward in steps by a file, so that a demo can run a month-long Period of Action in a minute.

Deadlines are hours and days long (8 hours, 3 days, 7 days); a demo that wants to show overdue enquiries and late
answers cannot wait for them. Every process of the demo (each node and the coordinator) reads the same offset
file, so they keep agreeing with each other to the millisecond, and request timestamps, receipts, deadlines and
the coordinator's tallies all stay consistent while the demo jumps the whole federation hours ahead at a time.
The wall clock's pace is kept between steps: timeouts, backoff and TLS are untouched.

It is chosen by the ``NCPX_CLOCK_OFFSET_FILE`` environment variable; without it a node runs on the wall clock.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocol.errors import ConfigError

ENVIRONMENT = "NCPX_CLOCK_OFFSET_FILE"


class SteppedClock:
    """The wall clock plus the offset (seconds, a decimal number) in ``path``, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)
        self()  # refuse an unreadable offset at start, not at the first request

    def __call__(self) -> datetime:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._offset = None, timedelta(0)
            return datetime.now(UTC)
        seen = (status.st_ino, status.st_mtime_ns)
        if seen != self._seen:
            text = self.path.read_text().strip()
            try:
                self._offset = timedelta(seconds=float(text or "0"))
            except ValueError:
                raise ConfigError(
                    f"{self.path} must hold the clock offset in seconds (a number): fix or remove the file"
                ) from None
            self._seen = seen
        return datetime.now(UTC) + self._offset

    def advance(self, offset: timedelta) -> None:
        """Set the offset every reader of the file adopts at its next reading (written whole, then renamed)."""
        partial = self.path.with_suffix(".partial")
        partial.write_text(f"{offset.total_seconds():.6f}\n")
        os.replace(partial, self.path)


def clock_from_environment() -> SteppedClock | None:
    """The stepped clock ``NCPX_CLOCK_OFFSET_FILE`` names, or None (the wall clock) when it is not set."""
    path = os.environ.get(ENVIRONMENT)
    return SteppedClock(Path(path)) if path else None
