"""Code lists officers and other systems already know (domain.md), so values are recognisable on sight.

Participant ids are ISO 3166-1 alpha-2 country codes, upper case, or an organisation id of the form
``XI-NAME`` (XI is never assigned to a country). EU and UK habits (``EL`` for Greece, ``UK`` for the United
Kingdom) are accepted and normalised so that one country never appears under two ids.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from protocol.errors import Malformed

# ISO 3166-1 alpha-2, officially assigned codes.
_ISO_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
    IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)
_ALIASES = {"EL": "GR", "UK": "GB"}
_ORG = re.compile(r"^XI-[A-Z0-9]{2,32}$")


def normalise_participant(value: str) -> str:
    """Canonical participant id for ``value``; raises :class:`Malformed` for anything else."""
    candidate = value.strip().upper()
    candidate = _ALIASES.get(candidate, candidate)
    if candidate in _ISO_ALPHA2 or _ORG.match(candidate):
        return candidate
    raise Malformed("participant id must be an ISO 3166-1 alpha-2 code or XI-<ORGANISATION>")


def normalise_country(value: str) -> str:
    """Canonical ISO 3166-1 alpha-2 code (nationalities, issuing states, flags)."""
    candidate = _ALIASES.get(value.strip().upper(), value.strip().upper())
    if candidate in _ISO_ALPHA2:
        return candidate
    raise Malformed("country must be an ISO 3166-1 alpha-2 code")


class Kind(StrEnum):
    """What an envelope carries."""

    ENQUIRY = "enquiry"
    REPLY = "reply"
    NOTICE = "notice"


class CrimeArea(StrEnum):
    """Crime areas of the Period of Action (travels in clear: the coordinator tallies by it)."""

    PEOPLE_SMUGGLING = "people_smuggling"
    THB_SEXUAL = "thb_sexual_exploitation"
    THB_LABOUR = "thb_labour_exploitation"
    CHILD_SEXUAL_EXPLOITATION_ONLINE = "child_sexual_exploitation_online"
    FORCED_MARRIAGE = "forced_marriage"
    DOCUMENT_FRAUD = "document_visa_fraud"
    MONEY_LAUNDERING = "money_laundering"
    OTHER = "other"


class LabourSector(StrEnum):
    """Sectors of labour exploitation named in the debrief; sealed, never in the header."""

    AGRICULTURE = "agriculture"
    FARMING = "farming"
    FISHING = "fishing"
    BEAUTY_MASSAGE = "beauty_massage"
    DOMESTIC_WORK = "domestic_work"
    ENTERTAINMENT = "entertainment"
    CONSTRUCTION = "construction"
    MANUFACTURING = "manufacturing"
    OTHER = "other"


class Urgency(StrEnum):
    """Urgency classes of Directive (EU) 2023/977, each with its answer deadline."""

    URGENT_DIRECT = "urgent_direct"
    """Urgent, information held directly by the requested contact point: 8 hours."""
    URGENT_INDIRECT = "urgent_indirect"
    """Urgent, information to be obtained from other authorities: 3 days."""
    NORMAL = "normal"
    """Every other request: 7 days."""


DEADLINES: dict[Urgency, timedelta] = {
    Urgency.URGENT_DIRECT: timedelta(hours=8),
    Urgency.URGENT_INDIRECT: timedelta(days=3),
    Urgency.NORMAL: timedelta(days=7),
}


def due_at(urgency: Urgency, created_at: datetime) -> datetime:
    """When an answer to a request of this urgency, created at ``created_at``, is due."""
    return created_at + DEADLINES[urgency]


class Handling(StrEnum):
    """SIENA handling codes."""

    H0 = "H0"
    """For law-enforcement purposes only."""
    H1 = "H1"
    """Not to be used as evidence in judicial proceedings without the provider's permission."""
    H2 = "H2"
    """Not to be disseminated further without the provider's permission."""
    H3 = "H3"
    """Other restrictions, stated in free text."""


HANDLING_MEANINGS: dict[Handling, str] = {
    Handling.H0: "for law-enforcement purposes only",
    Handling.H1: "not to be used as evidence in judicial proceedings without the provider's permission",
    Handling.H2: "not to be disseminated further without the provider's permission",
    Handling.H3: "other restrictions, stated in the handling note",
}
"""What each handling code asks of the receiver, in the words displays show next to the code."""


class Tlp(StrEnum):
    """Traffic Light Protocol 2.0 markings."""

    CLEAR = "TLP:CLEAR"
    GREEN = "TLP:GREEN"
    AMBER = "TLP:AMBER"
    AMBER_STRICT = "TLP:AMBER+STRICT"
    RED = "TLP:RED"


class SourceReliability(StrEnum):
    """4x4 evaluation: how reliable the source is."""

    A = "A"
    B = "B"
    C = "C"
    X = "X"


class InformationAccuracy(StrEnum):
    """4x4 evaluation: how far the information itself can be trusted."""

    KNOWN_TRUE = "1"
    KNOWN_TO_SOURCE = "2"
    CORROBORATED = "3"
    CANNOT_JUDGE = "4"


EVALUATION_MEANINGS: dict[SourceReliability | InformationAccuracy, str] = {
    SourceReliability.A: "completely reliable source",
    SourceReliability.B: "usually reliable source",
    SourceReliability.C: "source not usually reliable",
    SourceReliability.X: "source cannot be assessed",
    InformationAccuracy.KNOWN_TRUE: "known to be true without reservation",
    InformationAccuracy.KNOWN_TO_SOURCE: "known personally to the source but not to the officer",
    InformationAccuracy.CORROBORATED: "not known personally to the source but corroborated",
    InformationAccuracy.CANNOT_JUDGE: "cannot be judged",
}
"""The 4x4 grades in words, for displays."""


class TravelDocumentType(StrEnum):
    """Kind of travel or identity document."""

    PASSPORT = "passport"
    ID_CARD = "id_card"
    VISA = "visa"
    SEAMAN_BOOK = "seaman_book"
    OTHER = "other"
