"""Models refuse what officers must not send and what peers must not invent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocol.errors import ALL_ERRORS, NcpxError, error_for_code, problem_type
from protocol.models import (
    Attachment,
    EnquiryBody,
    Person,
    Phone,
    ReplyBody,
    Subjects,
    TravelDocument,
    Vessel,
)


def test_h3_requires_a_handling_note() -> None:
    with pytest.raises(ValidationError):
        EnquiryBody(subject="s", text="t", handling="H3")
    with pytest.raises(ValidationError):
        ReplyBody(text="t", handling="H3", handling_note="   ")
    assert EnquiryBody(subject="s", text="t", handling="H3", handling_note="not for court").handling_note


def test_imo_check_digit() -> None:
    assert Vessel(name="Ever Given", imo="9811000").imo == "9811000"
    assert Vessel(name="X", imo="9074729").imo == "9074729"
    with pytest.raises(ValidationError):
        Vessel(name="X", imo="9074728")
    with pytest.raises(ValidationError):
        Vessel(name="X", imo="907472")


@pytest.mark.parametrize("written", ["IMO 9074729", "IMO9074729", "imo 9074729", " 9074729 "])
def test_imo_numbers_are_taken_as_officers_write_them_and_stored_bare(written: str) -> None:
    assert Vessel(name="X", imo=written).imo == "9074729"


@pytest.mark.parametrize(
    "written", ["IMO 9074728", "IMO  9074729", "IMO-9074729", "MMSI 9074729", "IMO 90747290"]
)
def test_a_prefixed_imo_number_is_still_checked(written: str) -> None:
    with pytest.raises(ValidationError):
        Vessel(name="X", imo=written)


def test_phone_numbers_are_e164() -> None:
    assert Phone(number="+66812345678").number == "+66812345678"
    for bad in ("0812345678", "+0123456789", "+66 81 234", "+1234567890123456"):
        with pytest.raises(ValidationError):
            Phone(number=bad)


def test_unknown_fields_are_refused_and_countries_normalised() -> None:
    with pytest.raises(ValidationError):
        EnquiryBody.model_validate({"subject": "s", "text": "t", "invented": 1})
    person = Person(
        family_name="Perera",
        nationality="lk",
        travel_documents=[TravelDocument(number="N123", issuing_country="UK")],
    )
    assert person.nationality == "LK"
    assert person.travel_documents[0].issuing_country == "GB"


def test_attachment_names_cannot_carry_paths() -> None:
    for bad in ("../etc/passwd", "a\\b", "line\nbreak", ""):
        with pytest.raises(ValidationError):
            Attachment(name=bad, media_type="text/plain", data=b"")
    assert Attachment(name="photo 1.jpg", media_type="image/jpeg", data=b"x").name == "photo 1.jpg"


def test_attachment_bytes_total() -> None:
    body = EnquiryBody(
        subject="s",
        text="t",
        subjects=Subjects(),
        attachments=[
            Attachment(name=f"{i}.bin", media_type="application/octet-stream", data=b"x" * 10)
            for i in range(3)
        ],
    )
    assert body.attachment_bytes() == 30


def test_every_error_has_a_unique_stable_code_and_type() -> None:
    codes = [cls.code for cls in ALL_ERRORS]
    assert len(codes) == len(set(codes))
    for cls in ALL_ERRORS:
        assert issubclass(cls, NcpxError)
        assert error_for_code(cls.code) is cls
        assert problem_type(cls.code).endswith("/" + cls.code)
        assert 400 <= cls.status < 600
    assert error_for_code("no-such-code") is NcpxError


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".bashrc", "a/b.txt", "a\\b.txt", "photo\u202egpj.exe", "bell\x07.txt", "x" * 201],
)
def test_unsafe_attachment_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        Attachment(name=name, media_type="text/plain", data=b"x")


@pytest.mark.parametrize("name", ["scan 1.pdf", "ภาพถ่าย.jpg", "report.v2.docx"])
def test_ordinary_attachment_names_pass(name: str) -> None:
    assert Attachment(name=name, media_type="text/plain", data=b"x").name == name
