"""Matching tokens for watch-list subjects, written once: the same subject typed two ways gives one token.

Private matching compares exact strings, so everything that makes two spellings of one subject differ must be
removed before the comparison, and nothing more: a token that forgets too much turns different people into
one. Each function returns a token whose prefix names its kind (``phone:+66812345678``), so a passport number
can never equal a bank account number, and raises a named :class:`~protocol.errors.InvalidSubject` error for
input that cannot be a subject of its kind. What is set aside:

- **text** (names, vessel names, addresses): Unicode compatibility forms, letter case (``casefold``, so that
  ``ß`` equals ``ss``), accents on Latin letters (``Nguyễn`` equals ``Nguyen``; marks in other scripts, such as
  Thai vowel signs, are part of the spelling and kept), apostrophes and full stops inside words
  (``O'Brien`` equals ``OBrien``), and every other run of punctuation or spacing, which separates words;
- **person names**: additionally the order of the words, because given and family names swap between
  countries' conventions (``Perera Kamal`` equals ``Kamal Perera``); the date of birth and nationality stay
  part of the token, since a name alone names too many people;
- **travel document numbers**: spaces, hyphens and other separators, and case;
- **phones**: every national or international way of writing a number, through Google's ``phonenumbers``
  library: the result is E.164, and a number invalid for its country calling code is refused;
- **vessels**: the IMO number's check digit is verified; a vessel without one is matched on flag and name;
- **bank accounts**: an IBAN (two letters, two check digits) is checked with ISO 7064 mod 97-10 and kept
  without spaces; other accounts are national numbers, matched on country and their letters and digits;
- **addresses**: text rules per line, the lines in their order, with the city and the country.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from typing import Final

import phonenumbers

from protocol.codes import normalise_country
from protocol.errors import (
    InvalidAccount,
    InvalidAddress,
    InvalidDocument,
    InvalidImo,
    InvalidName,
    InvalidPhone,
)

_LATIN_WITHOUT_DECOMPOSITION: Final = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "\u0131": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)
"""Latin letters that carry a stroke rather than a combining accent, so NFKD leaves them whole (U+0131 is the
dotless i)."""
_JOINERS: Final = re.compile("['\u2019\u02bc`\u00b4.]")
"""Marks that join the parts of one word (O'Brien, St.) rather than separate two: the apostrophe, the right
single quotation mark and the modifier apostrophe that keyboards substitute for it, the grave and acute
accents typed in its place, and the full stop."""
_ALPHANUMERIC: Final = re.compile(r"[^0-9A-Z]")
_IBAN: Final = re.compile(r"^[A-Z]{2}[0-9]{2}[0-9A-Z]{11,30}$")
MAX_DOCUMENT: Final = 40


def words(text: str) -> list[str]:
    """The words of ``text`` with case, Latin accents, punctuation and spacing set aside, in their order."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue  # an accent on a Latin base letter
        kept.append(char)
    plain = _JOINERS.sub(
        "", unicodedata.normalize("NFC", "".join(kept)).translate(_LATIN_WITHOUT_DECOMPOSITION)
    )
    # Letters, digits and the marks of non-Latin scripts make words; everything else separates them.
    return "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in plain).split()


def person(names: str, date_of_birth: date, nationality: str) -> str:
    """Token of a person: every name word sorted (family and given names in one string, any order), the date
    of birth and the ISO 3166-1 nationality."""
    parts = sorted(words(names))
    if not parts:
        raise InvalidName()
    return f"person:{' '.join(parts)}|{date_of_birth.isoformat()}|{normalise_country(nationality)}"


def document(number: str) -> str:
    """Token of a travel document: its letters and digits, upper case, without separators."""
    plain = _ALPHANUMERIC.sub("", number.upper())
    if not plain or len(plain) > MAX_DOCUMENT:
        raise InvalidDocument()
    return f"document:{plain}"


def phone(number: str, region: str | None = None) -> str:
    """Token of a phone number in E.164; ``region`` is the country of a number written without ``+``."""
    try:
        parsed = phonenumbers.parse(number, normalise_country(region) if region else None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone() from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone()
    return "phone:" + phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def imo_check_digit_matches(digits: str) -> bool:
    """Whether a seven-digit IMO number's last digit is the weighted sum (7..2) of the first six, mod 10."""
    values = [int(ch) for ch in digits]
    return sum(d * w for d, w in zip(values[:6], range(7, 1, -1), strict=True)) % 10 == values[6]


def vessel_imo(imo: str) -> str:
    """Token of a vessel by IMO number (``IMO 9074729`` or ``9074729``), its check digit verified."""
    digits = re.sub(r"^IMO", "", _ALPHANUMERIC.sub("", imo.upper()))
    if not re.fullmatch(r"[0-9]{7}", digits) or not imo_check_digit_matches(digits):
        raise InvalidImo()
    return f"vessel:imo:{digits}"


def vessel_name(name: str, flag: str) -> str:
    """Token of a vessel without an IMO number: its flag state and its name's words in their order."""
    parts = words(name)
    if not parts:
        raise InvalidName()
    return f"vessel:name:{normalise_country(flag)}:{' '.join(parts)}"


def iban_checks(iban: str) -> bool:
    """ISO 13616 / ISO 7064 mod 97-10: the country code and check digits moved to the end, letters as
    10..35, the number modulo 97 is 1."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def account(number: str, country: str | None = None) -> str:
    """Token of a bank account: an IBAN checked with mod 97 (whatever ``country`` says: the IBAN names its
    own), or a national number with its country."""
    plain = _ALPHANUMERIC.sub("", number.upper())
    if _IBAN.match(plain):
        if not iban_checks(plain):
            raise InvalidAccount()
        return f"account:iban:{plain}"
    if country is None or not plain or len(plain) > MAX_DOCUMENT:
        raise InvalidAccount()
    return f"account:{normalise_country(country)}:{plain}"


def address(lines: Sequence[str], city: str | None, country: str) -> str:
    """Token of an address: each line's words in their order, then the city, then the ISO country."""
    parts = [" ".join(words(line)) for line in lines]
    parts = [part for part in parts if part]
    if not parts:
        raise InvalidAddress()
    return f"address:{normalise_country(country)}:{'|'.join(parts)}|{' '.join(words(city or ''))}"
