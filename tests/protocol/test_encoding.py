"""Canonical bytes, strict base64url, JSON parsing limits, times and ids: the ground every signature stands on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from protocol.codes import DEADLINES, Urgency, due_at, normalise_country, normalise_participant
from protocol.encoding import b64d, b64e, canonical, format_time, parse_json, parse_time
from protocol.errors import Malformed, TooLarge
from protocol.ids import check_uuid, uuid7


def test_canonical_sorts_keys_by_utf16_and_escapes_minimally() -> None:
    # RFC 8785 sorts by UTF-16 code units: U+1F600 (surrogates D83D..) sorts before U+FB01 (a ligature).
    assert canonical({"b": 1, "a": [True, None, "é"], "\ufb01": 0, "\U0001f600": 0}) == (
        '{"a":[true,null,"é"],"b":1,"\U0001f600":0,"\ufb01":0}'.encode()
    )
    assert canonical({"s": 'quote " back \\ nl \n tab \t ctl \x01'}) == (
        b'{"s":"quote \\" back \\\\ nl \\n tab \\t ctl \\u0001"}'
    )


def test_canonical_is_independent_of_insertion_order() -> None:
    assert canonical({"x": 1, "y": {"b": 2, "a": 1}}) == canonical({"y": {"a": 1, "b": 2}, "x": 1})


def test_b64_round_trip_and_strictness() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", bytes(range(256))):
        assert b64d(b64e(data)) == data
    for bad in ("AA==", "A", "+/+/", "AB", "a b", "Zg=="):
        with pytest.raises(Malformed):
            b64d(bad)


def test_parse_json_refuses_duplicates_constants_and_size() -> None:
    assert parse_json(b'{"a": [1, 2]}', 100) == {"a": [1, 2]}
    with pytest.raises(Malformed):
        parse_json(b'{"a": 1, "a": 2}', 100)
    with pytest.raises(Malformed):
        parse_json(b'{"a": NaN}', 100)
    with pytest.raises(Malformed):
        parse_json(b"\xff\xfe", 100)
    with pytest.raises(TooLarge):
        parse_json(b"[" + b"1," * 100 + b"1]", 100)


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    moment = datetime(2015, 9, 28, 7, 0, 0, 123456, tzinfo=timezone(timedelta(hours=7)))
    assert format_time(moment) == "2015-09-28T00:00:00.123Z"
    assert parse_time("2015-09-28T07:00:00.123+07:00") == datetime(2015, 9, 28, 0, 0, 0, 123000, tzinfo=UTC)
    assert parse_time("2015-09-28T00:00:00Z") == datetime(2015, 9, 28, tzinfo=UTC)
    for bad in ("2015-09-28", "2015-09-28T00:00:00", "yesterday", "2015-13-01T00:00:00Z"):
        with pytest.raises(Malformed):
            parse_time(bad)
    with pytest.raises(Malformed):
        format_time(datetime(2015, 9, 28))


def test_uuid7_bits_order_and_determinism() -> None:
    t0 = datetime(2015, 9, 28, tzinfo=UTC)
    first = uuid7(t0, bytes(10))
    assert first == uuid7(t0, bytes(10))
    assert first[14] == "7"
    assert first[19] in "89ab"
    later = uuid7(t0 + timedelta(milliseconds=1), b"\xff" * 10)
    assert first < later
    assert check_uuid(first) == first
    with pytest.raises(Malformed):
        check_uuid(first.upper())
    with pytest.raises(ValueError, match="10 random bytes"):
        uuid7(t0, b"short")


def test_participants_and_countries_are_normalised() -> None:
    assert normalise_participant("th") == "TH"
    assert normalise_participant("EL") == "GR"
    assert normalise_participant(" UK ") == "GB"
    assert normalise_participant("XI-INTERPOL") == "XI-INTERPOL"
    assert normalise_country("el") == "GR"
    for bad in ("XX", "THA", "XI-", "", "ZZ"):
        with pytest.raises(Malformed):
            normalise_participant(bad)
    with pytest.raises(Malformed):
        normalise_country("XI-INTERPOL")


def test_deadlines_follow_urgency() -> None:
    created = datetime(2015, 10, 1, 2, tzinfo=UTC)
    assert due_at(Urgency.URGENT_DIRECT, created) == created + timedelta(hours=8)
    assert due_at(Urgency.URGENT_INDIRECT, created) == created + timedelta(days=3)
    assert due_at(Urgency.NORMAL, created) == created + timedelta(days=7)
    assert set(DEADLINES) == set(Urgency)
