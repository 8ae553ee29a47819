"""Canonical bytes, digests and the text forms of binary values used on the wire.

Signatures are computed over RFC 8785 (JCS) bytes so that any implementation that parses and re-serialises
a structure arrives at the same bytes. Binary values travel as unpadded base64url; decoding is strict, so that
one value has exactly one text form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import rfc8785

from protocol.errors import Malformed, TooLarge

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer RFC 8785 writes as digits (it serialises numbers as IEEE 754 doubles)."""


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only what the standard library's JSON writer encodes exactly as RFC 8785 does:
    objects with ASCII keys (so that code-point order is UTF-16 order), strings, booleans, null and integers
    within the double-precision range. Floats, wider keys or anything else go through the reference encoder.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            return False
        if kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON-compatible value (dicts, lists, str, int, bool, None).

    The pure-Python reference encoder costs hundreds of microseconds per envelope; for plain values (the only
    kind ncpx signs) the C JSON writer with sorted keys, no spaces and no ASCII escaping produces the same bytes,
    which a property test checks against the reference. Anything else is encoded by the reference.
    """
    if _plain(value):
        try:
            return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        except UnicodeEncodeError:  # a lone surrogate: let the reference encoder refuse it by name
            pass
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise Malformed("value cannot be canonicalised") from exc


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (the only digest ncpx uses, named once)."""
    return hashlib.sha256(data).digest()


def b64e(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Strict inverse of :func:`b64e`: refuses padding, other alphabets and non-canonical trailing bits."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise Malformed("invalid base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Malformed("invalid base64url") from exc
    if b64e(data) != text:
        raise Malformed("non-canonical base64url")
    return data


def digest_text(data: bytes) -> str:
    """The form digests take inside signed structures: base64url of SHA-256."""
    return b64e(sha256(data))


def parse_json(raw: bytes, limit: int) -> Any:
    """Parse untrusted JSON bytes under a size limit, refusing duplicate keys and non-finite numbers."""
    if len(raw) > limit:
        raise TooLarge(f"input larger than {limit} bytes")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise Malformed("duplicate key in JSON object")
            result[key] = value
        return result

    def no_constant(name: str) -> Any:
        raise Malformed("non-finite number in JSON")

    try:
        return json.loads(raw, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed("input is not valid JSON") from exc


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC text with millisecond precision, the only time form on the wire."""
    if moment.tzinfo is None:
        raise Malformed("time without a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; accepts any RFC 3339 offset and normalises to UTC milliseconds."""
    if not isinstance(text, str) or not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", text):
        raise Malformed("time must be RFC 3339")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise Malformed("time must be RFC 3339") from exc
    if moment.tzinfo is None:
        raise Malformed("time without a time zone")
    return truncate_ms(moment.astimezone(UTC))


def truncate_ms(moment: datetime) -> datetime:
    """``moment`` cut to whole milliseconds, the precision every signed time carries."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
