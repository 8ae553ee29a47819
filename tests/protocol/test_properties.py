"""Property tests: canonical encoding, seal/open round trips, and hostile input only ever raising named errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    EnquiryBody,
    Envelope,
    Person,
    Phone,
    Subjects,
    open_envelope,
    parse_envelope,
    parse_model,
)
from protocol.encoding import b64d, b64e, canonical
from protocol.errors import NcpxError
from protocol.models import Header, MetadataRecord, Receipt
from tests.protocol.helpers import LIMIT, MAX_AGE, NOW, SKEW, envelope, world

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=30)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
WORLD = world()
VALID = envelope(WORLD)


def parse_outcome(model: type[Any], raw: bytes) -> str:
    """``parsed``, or the code of the named error that refused the bytes (anything else propagates)."""
    try:
        parse_model(model, raw, LIMIT)
    except NcpxError as exc:
        return exc.code
    return "parsed"


@settings(max_examples=1000, deadline=None)
@given(JSON)
def test_canonical_is_byte_for_byte_the_reference_rfc8785_encoder(value: Any) -> None:
    """The fast path (the C JSON writer) must never differ from the reference encoder, whatever the keys,
    text (control characters, non-ASCII, astral planes) or integers."""
    assert canonical(value) == rfc8785.dumps(value)


def test_a_lone_surrogate_is_refused_by_name() -> None:
    with pytest.raises(NcpxError):
        canonical({"text": "\ud800"})


@FAST
@given(
    st.recursive(
        JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=20,
    )
)
def test_values_outside_the_fast_path_are_encoded_by_the_reference(value: Any) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        expected = None
    if expected is None:
        with pytest.raises(NcpxError):
            canonical(value)
    else:
        assert canonical(value) == expected


@FAST
@given(JSON)
def test_canonical_is_a_fixed_point(value: Any) -> None:
    once = canonical(value)
    assert canonical(json.loads(once)) == once


@FAST
@given(st.binary(max_size=200))
def test_base64url_round_trip(data: bytes) -> None:
    assert b64d(b64e(data)) == data


@FAST
@given(
    text=st.text(min_size=1, max_size=500),
    subject=st.text(min_size=1, max_size=100).filter(str.strip),
    names=st.lists(st.text(min_size=1, max_size=40), max_size=3),
    phones=st.lists(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True), max_size=3),
)
def test_seal_open_round_trip(text: str, subject: str, names: list[str], phones: list[str]) -> None:
    body = EnquiryBody(
        subject=subject,
        text=text,
        subjects=Subjects(
            persons=[Person(family_name=n) for n in names], phones=[Phone(number=p) for p in phones]
        ),
    )
    env = envelope(WORLD, body=body)
    parsed = parse_envelope(env.canonical_bytes(), LIMIT)
    opened = open_envelope(
        parsed, WORLD.roster, WORLD.my, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT
    )
    assert opened == body


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_named_errors(raw: bytes) -> None:
    for model in (Envelope, Header, Receipt, MetadataRecord):
        assert parse_outcome(model, raw) in {"parsed", "malformed", "too_large"}


@FAST
@given(JSON)
def test_arbitrary_json_only_raises_named_errors(value: Any) -> None:
    raw = json.dumps(value).encode()
    for model in (Envelope, Header, Receipt, MetadataRecord):
        assert parse_outcome(model, raw) in {"parsed", "malformed", "too_large"}


@FAST
@given(st.data())
def test_mutated_envelopes_only_raise_named_errors(data: st.DataObject) -> None:
    raw = bytearray(VALID.canonical_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    try:
        env = parse_envelope(bytes(raw), LIMIT)
        open_envelope(
            env, WORLD.roster, WORLD.my, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT
        )
    except NcpxError:
        return
    assert env == VALID  # accepted only when the mutation changed nothing that matters
