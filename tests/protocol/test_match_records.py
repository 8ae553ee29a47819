"""Matching records: signed counts that bind reporter, parties, session and time, and never more than counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.errors import BadSignature, NotForUs
from protocol.match_records import MatchRecord, make_match_record, verify_match_record
from tests.protocol.helpers import NOW, world

AT = NOW + timedelta(hours=1)
SESSION = "01890a5d-ac96-774b-bcce-b302099a8057"
W = world()
TH = W.th


def record(counts: tuple[int, int, int] = (4, 2, 2), code: str | None = None) -> MatchRecord:
    return make_match_record(
        TH, AT, bytes(10), SESSION, ("TH", "MY"), AT - timedelta(seconds=3), counts, code
    )


def test_a_record_verifies_and_any_changed_field_does_not() -> None:
    directory = W.roster
    good = record()
    verify_match_record(good, directory)
    for change in (
        {"matched": 1},
        {"new_hits": 1},
        {"items": 5},
        {"answerer": "ID"},
        {"session": "01890a5d-ac96-774b-bcce-b302099a8058"},
        {"at": AT + timedelta(seconds=1)},
    ):
        with pytest.raises(BadSignature):
            verify_match_record(good.model_copy(update=change), directory)


def test_only_a_party_reports_a_session() -> None:
    directory = W.roster
    with pytest.raises(NotForUs):
        verify_match_record(record().model_copy(update={"asker": "ID"}), directory)
    with pytest.raises(ValueError, match="party"):
        make_match_record(TH, AT, bytes(10), SESSION, ("MY", "ID"), AT, (1, 0, 0))


def test_a_failed_session_names_its_code_and_matched_nothing() -> None:
    failed = record((4, 0, 0), "budget_exhausted")
    assert (failed.outcome, failed.code) == ("failed", "budget_exhausted")
    data = failed.wire()
    with pytest.raises(ValidationError):
        MatchRecord.model_validate({**data, "code": None})
    with pytest.raises(ValidationError):
        MatchRecord.model_validate({**data, "matched": 1})
    with pytest.raises(ValidationError):
        MatchRecord.model_validate({**record().wire(), "code": "malformed"})
    with pytest.raises(ValidationError):
        MatchRecord.model_validate({**record().wire(), "answerer": "TH"})


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_counts_are_nested_hits_within_matched_within_asked(items: int, matched: int, new: int) -> None:
    data = {**record().wire(), "items": items, "matched": matched, "new_hits": new}
    if new <= matched <= items:
        assert MatchRecord.model_validate(data).items == items
    else:
        with pytest.raises(ValidationError):
            MatchRecord.model_validate(data)


def test_a_record_carries_counts_and_no_other_field() -> None:
    assert set(record().wire()) == {
        "v", "record_id", "reporter", "reporter_key", "at", "session", "asker", "answerer", "opened_at", "items",
        "matched", "new_hits", "outcome", "sig",
    }  # fmt: skip
