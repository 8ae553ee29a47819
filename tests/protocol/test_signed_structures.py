"""Request signatures, receipts, metadata records and outcome returns: each binds who, to whom, what and when."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from protocol import CrimeArea, make_receipt, sign_request, verify_receipt, verify_request
from protocol.errors import (
    BadSignature,
    CannotOpen,
    Malformed,
    NotForUs,
    StaleTimestamp,
    UnknownSender,
    Unproven,
)
from protocol.models import MetadataRecord
from protocol.outcome import FIGURES, Figures, OutcomeReturn, make_return, open_highlights, verify_return
from protocol.receipts import receipt_digest, verify_delivery_evidence, verify_record
from protocol.records import make_record
from tests.protocol.helpers import NOW, SKEW, envelope, fixed_identity, world

PATH = "/federation/v1/envelopes"


def test_request_signature_round_trip() -> None:
    w = world()
    headers = sign_request("POST", PATH, "MY", b"{}", w.th, NOW)
    signed = verify_request("POST", PATH, headers, b"{}", w.roster, "MY", NOW + timedelta(seconds=30), SKEW)
    assert signed.sender == "TH"
    assert signed.at == NOW


@pytest.mark.parametrize(
    ("method", "path", "body", "me", "error"),
    [
        ("PUT", PATH, b"{}", "MY", BadSignature),
        ("POST", "/federation/v1/status", b"{}", "MY", BadSignature),
        ("POST", PATH, b"{ }", "MY", BadSignature),
        ("POST", PATH, b"{}", "TH", NotForUs),
    ],
)
def test_request_signature_binds_method_path_body_and_recipient(
    method: str, path: str, body: bytes, me: str, error: type[Exception]
) -> None:
    w = world()
    headers = sign_request("POST", PATH, "MY", b"{}", w.th, NOW)
    with pytest.raises(error):
        verify_request(method, path, headers, body, w.roster, me, NOW, SKEW)


def test_request_outside_skew_missing_headers_and_outsiders() -> None:
    w = world()
    headers = sign_request("POST", PATH, "MY", b"{}", w.th, NOW)
    with pytest.raises(StaleTimestamp):
        verify_request("POST", PATH, headers, b"{}", w.roster, "MY", NOW + SKEW + timedelta(seconds=1), SKEW)
    partial = {k: v for k, v in headers.items() if k != "Ncpx-Signature"}
    with pytest.raises(BadSignature):
        verify_request("POST", PATH, partial, b"{}", w.roster, "MY", NOW, SKEW)
    outsider = sign_request("POST", PATH, "MY", b"{}", w.outsider, NOW)
    with pytest.raises(UnknownSender):
        verify_request("POST", PATH, outsider, b"{}", w.roster, "MY", NOW, SKEW)


def test_receipt_binds_the_exact_envelope_and_the_receiver() -> None:
    w = world()
    env = envelope(w)
    receipt = make_receipt(env, w.my, NOW)
    verify_receipt(receipt, env, w.roster)
    forged = receipt.model_copy(update={"received_at": NOW + timedelta(seconds=1)})
    with pytest.raises(BadSignature):
        verify_receipt(forged, env, w.roster)
    other = envelope(w, area="money_laundering")
    with pytest.raises(Malformed):
        verify_receipt(receipt, other, w.roster)
    by_sender = make_receipt(env, w.th, NOW)
    with pytest.raises(NotForUs):
        verify_receipt(by_sender, env, w.roster)


def test_records_carry_header_fields_only_and_only_parties_may_report() -> None:
    w = world()
    env = envelope(w)
    receipt = make_receipt(env, w.my, NOW)
    record = make_record(env.header, "received", w.my, NOW, env.digest(), bytes(10), receipt)
    verify_record(record, w.roster)
    assert set(record.wire()) <= {
        "v", "record_id", "event", "reporter", "at", "message_id", "thread", "kind", "sender", "recipient",
        "area", "urgency", "created_at", "due_at", "in_reply_to", "envelope_digest", "receipt", "receipt_digest",
        "reply_id", "reply_digest", "reporter_key", "sig",
    }  # fmt: skip
    assert record.receipt_digest == receipt_digest(receipt)
    assert record.receipt is None
    with pytest.raises(BadSignature):
        verify_record(record.model_copy(update={"area": CrimeArea.MONEY_LAUNDERING}), w.roster)
    third = fixed_identity("ID", 6, 7)
    claimed = make_record(env.header, "received", third, NOW, env.digest(), bytes(10), receipt)
    with pytest.raises(NotForUs):
        verify_record(claimed, w.roster)


def test_a_sent_record_carries_the_receipt_that_proves_exactly_its_delivery() -> None:
    w = world()
    env = envelope(w)
    receipt = make_receipt(env, w.my, NOW)
    record = make_record(env.header, "sent", w.th, NOW, env.digest(), bytes(10), receipt)
    assert record.receipt == receipt
    assert verify_delivery_evidence(record, w.roster) == receipt
    other = envelope(w, area="money_laundering")
    forged = [
        make_record(env.header, "sent", w.th, NOW, env.digest(), bytes(10)),  # no receipt at all
        make_record(env.header, "sent", w.th, NOW, env.digest(), bytes(10), make_receipt(other, w.my, NOW)),
        make_record(other.header, "sent", w.th, NOW, other.digest(), bytes(10), receipt),  # other envelope
        record.model_copy(update={"receipt": receipt.model_copy(update={"received_at": NOW - SKEW})}),
    ]
    for bad in forged:
        with pytest.raises(Unproven):
            verify_delivery_evidence(bad, w.roster)


def test_each_kind_of_evidence_travels_only_in_the_record_it_belongs_to() -> None:
    w = world()
    env = envelope(w)
    receipt = make_receipt(env, w.my, NOW)
    sent = make_record(env.header, "sent", w.th, NOW, env.digest(), bytes(10), receipt).wire()
    reply = make_record(
        env.header, "answered", w.my, NOW, env.digest(), bytes(10), None, (env.header.id, "d")
    )
    misplaced = [
        sent | {"event": "received"},  # a receipt in a received record
        sent | {"receipt_digest": "d"},  # a receipt digest in a sent record
        sent | {"reply_id": env.header.id, "reply_digest": "d"},  # a reply named by a sent record
        {k: v for k, v in reply.wire().items() if k != "reply_digest"},  # an answer naming half a reply
    ]
    for data in misplaced:
        with pytest.raises(ValidationError):
            MetadataRecord.model_validate(data)


def test_outcome_return_signed_and_highlights_sealed_to_the_coordinator() -> None:
    w = world()
    coordinator = fixed_identity("XI-COORD", 9, 10)
    key = coordinator.encryption_keys[0]
    outcome = make_return(
        "jpa-2015",
        Figures(arrests=32, persons_assisted=59),
        w.th,
        NOW,
        highlights="Two networks disrupted",
        coordinator=(coordinator.encryption_kid, key.public_key()),
        ephemeral=bytes([11]) * 32,
    )
    verify_return(outcome, w.roster, "TH")
    assert open_highlights(outcome, key) == "Two networks disrupted"
    with pytest.raises(CannotOpen):
        open_highlights(outcome, w.my.encryption_keys[0])
    with pytest.raises(NotForUs):
        verify_return(outcome, w.roster, "MY")
    with pytest.raises(BadSignature):
        verify_return(outcome.model_copy(update={"figures": Figures(arrests=33)}), w.roster, "TH")


def test_a_figure_left_out_of_a_return_is_absent_not_zero() -> None:
    """Not reported is not 0: the signed bytes carry only the figures given, and a return signed when every
    figure was required (all eight present) still verifies."""
    w = world()
    partial = make_return("jpa-2015", Figures(arrests=0), w.th, NOW)
    assert partial.wire()["figures"] == {"arrests": 0}
    verify_return(OutcomeReturn.model_validate(partial.wire()), w.roster, "TH")
    with pytest.raises(BadSignature):
        verify_return(
            partial.model_copy(update={"figures": Figures(arrests=0, trainings_held=0)}), w.roster, "TH"
        )
    complete = make_return("jpa-2015", Figures(**dict.fromkeys(FIGURES, 0)), w.th, NOW)
    assert len(complete.wire()["figures"]) == len(FIGURES)
    verify_return(OutcomeReturn.model_validate(complete.wire()), w.roster, "TH")
