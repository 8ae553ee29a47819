"""Human durations on the command line: ``90s``, ``30m``, ``12h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

from protocol.errors import Malformed

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``7d`` → 7 days; refuses anything else with :class:`Malformed`."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise Malformed("duration must look like 90s, 30m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
