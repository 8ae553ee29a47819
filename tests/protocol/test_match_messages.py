"""The matching session's wire messages and the sealed claims that close it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import CannotOpen, Malformed
from protocol.match_messages import MAX_CLAIMS, Claim, Offer, claims_bytes, parse_claims
from protocol.sealing import decrypt_with, encrypt_to

CLAIMS = [Claim(token="phone:+66812345678", case="TH-2026-0042", contact="Pol. Lt. Somchai, +66 2 000 0000")]


def test_claims_sealed_to_the_answerer_open_only_with_its_key() -> None:
    answerer = X25519PrivateKey.generate()
    sealed = encrypt_to(claims_bytes(CLAIMS), answerer.public_key(), os.urandom(32))
    assert b"66812345678" not in sealed
    assert parse_claims(decrypt_with(sealed, answerer), size=1) == CLAIMS
    with pytest.raises(CannotOpen):
        decrypt_with(sealed, X25519PrivateKey.generate())


def test_more_claims_than_items_asked_are_refused() -> None:
    with pytest.raises(Malformed, match="more items than the session asked about"):
        parse_claims(claims_bytes(CLAIMS * 2), size=1)
    assert MAX_CLAIMS <= 10_000


@given(st.binary(max_size=200))
def test_any_bytes_as_claims_give_a_named_error_or_claims(raw: bytes) -> None:
    try:
        claims = parse_claims(raw, size=5)
    except Malformed:
        return
    assert len(claims) <= 5


@pytest.mark.parametrize("session", ["", "x" * 65, "../etc", "ABC"])
def test_a_session_id_outside_the_uuid_alphabet_is_refused(session: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError
        Offer(session=session, size=1, expires_at=datetime.now(UTC) + timedelta(minutes=1))
