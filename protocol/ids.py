"""UUIDv7 message ids (RFC 9562), built from a time and random bytes the caller supplies."""

from __future__ import annotations

import uuid
from datetime import datetime

from protocol.errors import Malformed

RANDOM_BYTES = 10
"""How many random bytes :func:`uuid7` consumes."""


def uuid7(now: datetime, random: bytes) -> str:
    """A UUIDv7 for ``now``; sortable by creation time. ``random`` must be 10 fresh random bytes."""
    if len(random) != RANDOM_BYTES:
        raise ValueError("uuid7 needs exactly 10 random bytes")
    millis = int(now.timestamp() * 1000)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    rand = int.from_bytes(random, "big")
    value |= ((rand >> 68) & 0xFFF) << 64  # 12 bits of rand_a
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # 62 bits of rand_b
    return str(uuid.UUID(int=value))


def check_uuid(text: str) -> str:
    """``text`` as a canonical lower-case UUID string, or :class:`Malformed`."""
    try:
        parsed = uuid.UUID(text)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Malformed("invalid UUID") from exc
    canonical = str(parsed)
    if canonical != text:
        raise Malformed("UUID must be in canonical lower-case form")
    return canonical
