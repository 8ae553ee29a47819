"""Schema failures become sentences that say where, in words, and which rule; never the refused input."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from node.api_models import NewEnquiry
from protocol.validation import explain


def refusal(**fields: Any) -> str:
    data = {"recipients": ["MY"], "area": "other", "subject": "s", "text": "t", **fields}
    with pytest.raises(ValidationError) as caught:
        NewEnquiry.model_validate(data)
    return explain(caught.value)


def test_a_nested_subject_is_named_in_words_with_its_position() -> None:
    told = refusal(
        subjects={"persons": [{"family_name": "A"}, {"family_name": "B", "date_of_birth": "1990-13-01"}]}
    )
    assert told == "The date of birth of person 2 is not a date: write it as YYYY-MM-DD, e.g. 1990-03-31."
    told = refusal(subjects={"persons": [{"family_name": "A", "travel_documents": [{"number": ""}]}]})
    assert told == "The number of travel document 1 of person 1 must not be empty."


def test_the_rule_of_each_field_is_said() -> None:
    assert refusal(urgency="soon") == (
        "The urgency must be one of 'urgent_direct', 'urgent_indirect' or 'normal'."
    )
    assert refusal(recipients=[]) == "The recipients must have at least 1 item."
    assert refusal(subject="x" * 301) == "The subject is longer than 300 characters."
    assert refusal(subjects={"phones": ["+66812345678"]}) == "Phone 1 must be a JSON object."
    assert refusal(evaluation={"source": "B"}) == "The information accuracy of the evaluation is required."


def test_an_unknown_field_is_never_named_and_many_failures_are_counted() -> None:
    told = refusal(my_private_note="x")
    assert told == "The request has a field ncpx does not know: remove it."
    assert "my_private_note" not in told
    many = refusal(subjects={"phones": [{"number": str(n)} for n in range(8)]})
    assert many.count("is not an E.164 phone number") == 5
    assert many.endswith("(3 more problems of the same request not shown.)")
