"""The envelope: round trip, and every way a forged, altered or misaddressed one is refused (no event loop)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keys.roster import revoke, rotate
from protocol import CrimeArea, EnquiryBody, Envelope, Urgency, open_envelope, parse_envelope
from protocol.encoding import sha256
from protocol.envelope import header_digest, open_body, seal_body
from protocol.errors import (
    BadSignature,
    CannotOpen,
    ExpiredKey,
    Malformed,
    NotForUs,
    RevokedKey,
    StaleTimestamp,
    TamperedHeader,
    TooLarge,
    UnknownKey,
    UnknownSender,
)
from protocol.models import Attachment, ReplyBody
from protocol.signing import sign
from tests.protocol.helpers import BODY, LIMIT, MAX_AGE, NOW, SKEW, Counter, World, envelope, header, world


def open_as_my(w: World, env: Envelope, now: object = NOW, limit: int = LIMIT) -> EnquiryBody | ReplyBody:
    return open_envelope(env, w.roster, w.my, now, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=limit)  # type: ignore[arg-type]


def test_round_trip_through_bytes() -> None:
    w = world()
    body = BODY.model_copy(
        update={"attachments": [Attachment(name="crew.pdf", media_type="application/pdf", data=b"%PDF-1.4")]}
    )
    env = envelope(w, body=body)
    parsed = parse_envelope(env.canonical_bytes(), LIMIT)
    assert parsed == env
    assert open_as_my(w, parsed) == body


def test_addressed_elsewhere_is_not_for_us_and_cannot_be_opened_with_other_keys() -> None:
    w = world()
    env = envelope(w)
    with pytest.raises(NotForUs):
        open_envelope(env, w.roster, w.th, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT)
    signer = w.roster.signing_key("TH", w.th.signing_kid, NOW)
    with pytest.raises(CannotOpen):
        open_body(env.header, env.sealed, w.th.encryption_keys[0], signer, LIMIT)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("area", CrimeArea.MONEY_LAUNDERING),
        ("urgency", Urgency.NORMAL),
        ("created_at", NOW - timedelta(seconds=1)),
        ("thread", "01502120-a900-7000-8000-000000000000"),
        ("id", "01502120-a900-7000-8000-000000000001"),
    ],
)
def test_any_changed_header_field_breaks_the_outer_signature(field: str, value: object) -> None:
    w = world()
    env = envelope(w)
    forged = Envelope(header=env.header.model_copy(update={field: value}), sealed=env.sealed, sig=env.sig)
    with pytest.raises(BadSignature):
        open_as_my(w, forged)


def test_flipped_sealed_byte_breaks_the_outer_signature() -> None:
    w = world()
    env = envelope(w)
    sealed = bytearray(env.sealed)
    sealed[40] ^= 1
    with pytest.raises(BadSignature):
        open_as_my(w, Envelope(header=env.header, sealed=bytes(sealed), sig=env.sig))


def test_sealed_part_lifted_into_another_header_is_tampered() -> None:
    """A legitimate sender re-wraps a body sealed for one header under another: the inner check catches it."""
    w = world()
    original = header(w, random=Counter(b"a"))
    other = header(w, random=Counter(b"b"), area="document_visa_fraud")
    _, to = w.roster.encryption_key("MY", NOW)
    sealed = seal_body(original, BODY, w.th.signing, to, bytes([9]) * 32)
    outer = sign(w.th.signing, "outer", header_digest(other) + sha256(sealed))
    with pytest.raises(TamperedHeader):
        open_as_my(w, Envelope(header=other, sealed=sealed, sig=outer))


def test_body_kind_must_match_header_kind() -> None:
    w = world()
    h = header(w)
    _, to = w.roster.encryption_key("MY", NOW)
    sealed = seal_body(h, ReplyBody(text="not an enquiry"), w.th.signing, to, bytes([9]) * 32)
    outer = sign(w.th.signing, "outer", header_digest(h) + sha256(sealed))
    with pytest.raises(TamperedHeader):
        open_as_my(w, Envelope(header=h, sealed=sealed, sig=outer))


def test_timestamps_outside_the_window_are_stale() -> None:
    w = world()
    env = envelope(w)
    with pytest.raises(StaleTimestamp):
        open_as_my(w, env, now=NOW - SKEW - timedelta(seconds=1))
    with pytest.raises(StaleTimestamp):
        open_as_my(w, env, now=NOW + MAX_AGE + timedelta(seconds=1))
    assert (
        open_as_my(w, env, now=NOW + MAX_AGE) == BODY
    )  # old but inside the age limit: a backlog still opens


def test_unknown_sender_unknown_key_revoked_and_expired() -> None:
    w = world()
    env = envelope(w)
    outsider = env.model_copy(update={"header": env.header.model_copy(update={"sender": "ID"})})
    with pytest.raises(UnknownSender):
        open_as_my(w, outsider)
    unknown = env.model_copy(update={"header": env.header.model_copy(update={"sender_key": "A" * 20})})
    with pytest.raises(UnknownKey):
        open_as_my(w, unknown)
    w.resign(revoke(w.body, "TH", w.th.signing_kid, NOW))
    with pytest.raises(RevokedKey):
        open_as_my(w, env)


def test_key_used_after_its_overlap_has_ended_is_expired() -> None:
    w = world()
    old = envelope(w, created_at=NOW + timedelta(days=8), due_at=NOW + timedelta(days=8, hours=8))
    w.th.rotate()
    w.resign(rotate(w.body, w.th.card(), timedelta(days=7), NOW))
    with pytest.raises(ExpiredKey):
        open_as_my(w, old, now=NOW + timedelta(days=8))


def test_attachments_over_the_limit_are_too_large() -> None:
    w = world()
    body = BODY.model_copy(
        update={
            "attachments": [
                Attachment(name="big.bin", media_type="application/octet-stream", data=b"x" * 2048)
            ]
        }
    )
    with pytest.raises(TooLarge):
        open_as_my(w, envelope(w, body=body), limit=1024)


def test_enquiry_deadline_must_follow_urgency_and_replies_must_name_a_request() -> None:
    w = world()
    with pytest.raises(Malformed):
        open_as_my(w, envelope(w, due_at=NOW + timedelta(days=7)))
    with pytest.raises(Malformed):
        open_as_my(w, envelope(w, kind="reply", due_at=None))


def test_parse_refuses_oversize_and_junk() -> None:
    w = world()
    raw = envelope(w).canonical_bytes()
    with pytest.raises(TooLarge):
        parse_envelope(raw, len(raw) - 1)
    with pytest.raises(Malformed):
        parse_envelope(b'{"header": {}}', LIMIT)
    with pytest.raises(Malformed):
        parse_envelope(raw.replace(b'"sig"', b'"extra":1,"sig"', 1), LIMIT)
