"""The published vectors: every output recomputed from the stored inputs, byte for byte, and the envelope opens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import Roster, parse_roster
from keys.roster import MAX_ROSTER_BYTES
from protocol import EnquiryBody, open_envelope, parse_envelope, verify_request
from protocol.encoding import parse_time
from protocol.envelope import join_batch
from protocol.models import Refusal
from protocol.receipts import verify_refusal
from tests.vectors.make_vectors import FILE, compute, identity

DOCUMENT = json.loads(FILE.read_text(encoding="utf-8"))
INPUTS, OUTPUTS = DOCUMENT["inputs"], DOCUMENT["outputs"]
RECOMPUTED = compute(INPUTS)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_output_is_reproduced_exactly(name: str) -> None:
    assert RECOMPUTED[name] == OUTPUTS[name]


def published_roster() -> Roster:
    authority = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(INPUTS["authority_private_ed25519"]))
    return Roster(parse_roster(OUTPUTS["roster"].encode()), authority.public_key())


def test_stored_envelope_opens_with_the_recipient_key_only() -> None:
    roster = published_roster()
    now = parse_time(INPUTS["time"])
    my = identity("MY", INPUTS["my_private_ed25519"], INPUTS["my_private_x25519"])
    raw = OUTPUTS["envelope"].encode()
    envelope = parse_envelope(raw, MAX_ROSTER_BYTES)
    body = open_envelope(
        envelope,
        roster,
        my,
        now,
        skew=timedelta(minutes=5),
        max_age=timedelta(days=30),
        max_attachment_bytes=1 << 20,
    )
    assert body == EnquiryBody.model_validate(INPUTS["body"])
    signed = verify_request(
        "POST",
        "/federation/v1/envelopes",
        OUTPUTS["request_headers"],
        join_batch([raw]),
        roster,
        "MY",
        now,
        timedelta(minutes=5),
    )
    assert signed.sender == "TH"


def test_refusal_verifies_as_mys_refusal_of_the_envelope() -> None:
    roster = published_roster()
    refusal = Refusal.model_validate_json(OUTPUTS["refusal"])
    envelope = parse_envelope(OUTPUTS["envelope"].encode(), MAX_ROSTER_BYTES)
    verify_refusal(refusal, "TH", "MY", envelope.header.id, OUTPUTS["envelope_digest"], roster)
    assert refusal.code == "cannot_open"
