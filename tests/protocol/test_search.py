"""Search over opened bodies: words found whatever the case, accents, punctuation or separators; never in
attachment contents; a query that asks nothing finds nothing."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from protocol.models import EnquiryBody, NoticeBody
from protocol.search import matches, query_words, searchable

BODY = EnquiryBody.model_validate(
    {
        "subject": "Crew of the Sea-Star",
        "text": "Skipper Nguyễn Văn An was seen in Belawan.",
        "handling": "H3",
        "handling_note": "Do not share with immigration",
        "subjects": {
            "vessels": [{"name": "Sea Star", "imo": "9074729"}],
            "phones": [{"number": "+66812345678"}],
        },
        "attachments": [
            {
                "name": "crew-list.pdf",
                "media_type": "application/pdf",
                "data": base64.b64encode(b"secret").decode(),
            }
        ],
    }
)


def found(query: str, body: EnquiryBody | NoticeBody = BODY) -> bool:
    return matches(query_words(query), searchable(body))


def test_every_field_the_sender_wrote_is_searched() -> None:
    for query in ("sea star", "SEA-STAR", "belawan", "nguyen van", "immigration", "9074729", "crew-list"):
        assert found(query), query


def test_numbers_are_found_however_they_are_written() -> None:
    assert found("+66 81")
    assert found("66812345678")


def test_words_must_begin_a_word_and_all_be_present() -> None:
    assert not found("star crew lagos")
    assert not found("tar")  # inside a word, not at its start
    assert not found("awan")


def test_attachment_contents_and_empty_queries_find_nothing() -> None:
    assert not found("secret")
    assert not found("")
    assert not found("  --  ")


def test_a_notice_is_searched_by_case_and_operation() -> None:
    notice = NoticeBody.model_validate(
        {
            "subject": "Active on a vessel",
            "case_reference": "MY-2015-0042",
            "contact": "Insp. Aziz",
            "text": "Contact us before acting.",
            "operation": {"place": "Port Klang", "window": "2015-10-03"},
        }
    )
    assert found("my-2015-0042", notice)
    assert found("port klang", notice)


@given(st.text(min_size=1, max_size=30))
def test_any_text_the_sender_wrote_is_found_by_itself(text: str) -> None:
    body = EnquiryBody(subject="s", text=text)
    assert found(text, body) == bool(query_words(text))
