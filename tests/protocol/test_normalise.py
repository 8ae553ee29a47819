"""Matching tokens: spellings officers treat as the same subject give one token; invalid subjects are refused."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import normalise
from protocol.errors import (
    InvalidAccount,
    InvalidAddress,
    InvalidDocument,
    InvalidImo,
    InvalidName,
    InvalidPhone,
    Malformed,
    NcpxError,
)
from protocol.models import Vessel

DOB = date(1984, 3, 7)
NAME_WORDS = st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1, max_size=4)
SEPARATORS = st.sampled_from([" ", "  ", "-", ", ", "\t", " / "])


def test_person_ignores_case_accents_punctuation_and_name_order() -> None:
    token = normalise.person("Nguyễn Văn An", DOB, "VN")
    assert token == "person:an nguyen van|1984-03-07|VN"
    assert normalise.person("AN, nguyen  van", DOB, "vn") == token
    assert normalise.person("Van-Nguyen An", DOB, "VN") == token


def test_person_keeps_what_tells_people_apart() -> None:
    token = normalise.person("Kamal Perera", DOB, "LK")
    assert normalise.person("Kamal Perera", date(1984, 3, 8), "LK") != token
    assert normalise.person("Kamal Perera", DOB, "IN") != token
    assert normalise.person("Kamala Perera", DOB, "LK") != token


def test_special_latin_letters_and_joined_words() -> None:
    assert normalise.words("Straße Łódź Ærø") == ["strasse", "lodz", "aero"]
    assert normalise.words("O'Brien O\u2019Brien OBrien") == ["obrien"] * 3


def test_marks_of_other_scripts_are_part_of_the_spelling() -> None:
    assert normalise.words("ใจดี") == ["ใจดี"]
    assert normalise.person("สมชาย ใจดี", DOB, "TH") != normalise.person("สมชาย ใจด", DOB, "TH")


@given(NAME_WORDS, SEPARATORS, st.booleans(), st.randoms(use_true_random=False))
@settings(max_examples=80)
def test_person_token_is_invariant_under_the_normalisations(
    parts: list[str], separator: str, upper: bool, rng: random.Random
) -> None:
    reordered = list(parts)
    rng.shuffle(reordered)
    accented = [part.replace("e", "é").replace("a", "à") for part in reordered]
    written = separator.join(accented)
    written = written.upper() if upper else written
    assert normalise.person(written, DOB, "th") == normalise.person(" ".join(parts), DOB, "TH")


@pytest.mark.parametrize("name", ["", "  ", "-- ,.", "''"])
def test_a_name_without_letters_is_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        normalise.person(name, DOB, "TH")


def test_an_unknown_nationality_is_refused() -> None:
    with pytest.raises(Malformed):
        normalise.person("Kamal Perera", DOB, "XX")


def test_document_numbers_lose_separators_and_case() -> None:
    assert normalise.document("a12-345 678") == "document:A12345678" == normalise.document("A12345678")


@pytest.mark.parametrize("number", ["", " - ", "A" * 41])
def test_an_empty_or_overlong_document_number_is_refused(number: str) -> None:
    with pytest.raises(InvalidDocument):
        normalise.document(number)


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("+66 81 234 5678", None),
        ("081-234-5678", "TH"),
        ("0066812345678", "MY"),
        ("+66 (0)81 234 5678", None),
    ],
)
def test_phones_become_e164(written: str, region: str | None) -> None:
    assert normalise.phone(written, region) == "phone:+66812345678"


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("081 234 5678", None),
        ("+999 12345678", None),
        ("+66 12", None),
        ("not a number", "TH"),
        ("+1 555 0100", None),
    ],
)
def test_a_phone_invalid_for_its_country_code_is_refused(written: str, region: str | None) -> None:
    with pytest.raises(InvalidPhone):
        normalise.phone(written, region)


def test_imo_numbers_are_checked() -> None:
    assert normalise.vessel_imo("IMO 9074729") == "vessel:imo:9074729" == normalise.vessel_imo("9074729")
    for bad in ("9074728", "907472", "IMO", "90747290"):
        with pytest.raises(InvalidImo):
            normalise.vessel_imo(bad)


def test_the_envelope_model_uses_the_same_imo_check() -> None:
    with pytest.raises(ValueError, match="check digit"):
        Vessel(name="KM Harapan Jaya", imo="9074728")


def test_vessels_without_imo_match_on_flag_and_name_in_order() -> None:
    token = normalise.vessel_name("KM Harapan  Jaya", "id")
    assert token == "vessel:name:ID:km harapan jaya"
    assert normalise.vessel_name("Jaya Harapan KM", "ID") != token
    with pytest.raises(InvalidName):
        normalise.vessel_name("--", "ID")


def test_ibans_are_checked_with_mod_97() -> None:
    assert normalise.account("gb82 west 1234 5698 7654 32") == "account:iban:GB82WEST12345698765432"
    with pytest.raises(InvalidAccount):
        normalise.account("GB82 WEST 1234 5698 7654 33")


def test_national_accounts_need_their_country() -> None:
    assert normalise.account("123-4-56789-0", "th") == "account:TH:1234567890"
    with pytest.raises(InvalidAccount):
        normalise.account("1234567890")
    with pytest.raises(InvalidAccount):
        normalise.account(" - ", "TH")


def test_addresses_keep_line_order_and_set_aside_spelling() -> None:
    token = normalise.address(["12, Soi Sukhumvit 11"], "BANGKOK", "th")
    assert token == "address:TH:12 soi sukhumvit 11|bangkok"
    assert normalise.address(["12 soi  sukhumvit-11"], "Bangkok", "TH") == token
    with pytest.raises(InvalidAddress):
        normalise.address([" ", "."], "Bangkok", "TH")


@given(st.text(max_size=40), st.sampled_from(["TH", "MY", None]))
@settings(max_examples=150)
def test_any_text_gives_a_token_or_a_named_error(text: str, region: str | None) -> None:
    for attempt in (
        lambda: normalise.person(text, DOB, "TH"),
        lambda: normalise.document(text),
        lambda: normalise.phone(text, region),
        lambda: normalise.vessel_imo(text),
        lambda: normalise.account(text, region),
        lambda: normalise.address([text], text, "TH"),
    ):
        try:
            token = attempt()
        except NcpxError:
            continue
        assert token.split(":", 1)[0] in {"person", "document", "phone", "vessel", "account", "address"}
