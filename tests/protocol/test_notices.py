"""Deconfliction notices as plain function calls: composed and sealed like enquiries, without a deadline, never in
reply to anything, and always naming what the sender is active on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from protocol import CrimeArea, Urgency, open_envelope
from protocol.codes import Kind
from protocol.compose import compose_notice
from protocol.errors import Malformed
from protocol.models import NoticeBody, NoticeOperation, Phone, Subjects
from tests.protocol.helpers import LIMIT, MAX_AGE, NOW, SKEW, Counter, envelope, world

NOTICE = NoticeBody(
    subject="Active on a phone",
    case_reference="TH-2015-77",
    contact="Pol. Maj. Somchai",
    text="Surveillance running: contact us before acting.",
    subjects=Subjects(phones=[Phone(number="+60123456789")]),
)


def test_a_notice_is_composed_sealed_and_opened_like_an_enquiry_but_without_a_deadline() -> None:
    w = world()
    own = w.th.encryption_keys[-1].public_key()
    [out] = compose_notice(
        NOTICE, ["MY"], CrimeArea.OTHER, Urgency.URGENT_DIRECT, w.th, w.roster, own, NOW, Counter()
    )
    header = out.envelope.header
    assert (header.kind, header.due_at, header.in_reply_to) == (Kind.NOTICE, None, None)
    assert header.thread != header.id
    opened = open_envelope(
        out.envelope, w.roster, w.my, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT
    )
    assert opened == NOTICE
    assert b"TH-2015-77" not in out.envelope.canonical_bytes()


def test_a_notice_goes_to_others_only() -> None:
    w = world()
    own = w.th.encryption_keys[-1].public_key()
    for recipients in ([], ["TH"]):
        with pytest.raises(Malformed):
            compose_notice(
                NOTICE, recipients, CrimeArea.OTHER, Urgency.NORMAL, w.th, w.roster, own, NOW, Counter()
            )


def test_a_notice_header_carries_no_deadline_and_answers_nothing() -> None:
    w = world()
    for changes in (
        {"due_at": NOW + timedelta(days=7)},
        {"due_at": None, "in_reply_to": envelope(w).header.id},
    ):
        forged = envelope(w, body=NOTICE, kind="notice", **changes)  # type: ignore[arg-type]
        with pytest.raises(Malformed):
            open_envelope(forged, w.roster, w.my, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT)
    honest = envelope(w, body=NOTICE, kind="notice", due_at=None)  # type: ignore[arg-type]
    assert open_envelope(honest, w.roster, w.my, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT)


def test_a_notice_names_a_target_or_an_operation() -> None:
    bare = NOTICE.model_dump(exclude={"subjects", "operation"})
    with pytest.raises(ValidationError, match="at least one target"):
        NoticeBody(**bare)
    operation = NoticeOperation(place="Sadao checkpoint", window="3-5 Oct 2015, ICT", what="surveillance")
    assert NoticeBody(**bare, operation=operation).operation == operation
    with pytest.raises(ValidationError):
        NoticeBody(**{**bare, "case_reference": ""}, operation=operation)
