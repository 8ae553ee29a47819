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


class TravelDocumentType(StrEnum):
    """Kind of travel or identity document."""

    PASSPORT = "passport"
    ID_CARD = "id_card"
    VISA = "visa"
    SEAMAN_BOOK = "seaman_book"
    OTHER = "other"


_NAMES = """
AD Andorra|AE United Arab Emirates|AF Afghanistan|AG Antigua and Barbuda|AI Anguilla|AL Albania|AM Armenia|AO Angola
AQ Antarctica|AR Argentina|AS American Samoa|AT Austria|AU Australia|AW Aruba|AX Åland Islands|AZ Azerbaijan
BA Bosnia and Herzegovina|BB Barbados|BD Bangladesh|BE Belgium|BF Burkina Faso|BG Bulgaria|BH Bahrain|BI Burundi
BJ Benin|BL Saint Barthélemy|BM Bermuda|BN Brunei Darussalam|BO Bolivia|BQ Bonaire, Sint Eustatius and Saba
BR Brazil|BS Bahamas|BT Bhutan|BV Bouvet Island|BW Botswana|BY Belarus|BZ Belize|CA Canada|CC Cocos (Keeling) Islands
CD Congo, Democratic Republic of the|CF Central African Republic|CG Congo|CH Switzerland|CI Côte d'Ivoire
CK Cook Islands|CL Chile|CM Cameroon|CN China|CO Colombia|CR Costa Rica|CU Cuba|CV Cabo Verde|CW Curaçao
CX Christmas Island|CY Cyprus|CZ Czechia|DE Germany|DJ Djibouti|DK Denmark|DM Dominica|DO Dominican Republic
DZ Algeria|EC Ecuador|EE Estonia|EG Egypt|EH Western Sahara|ER Eritrea|ES Spain|ET Ethiopia|FI Finland|FJ Fiji
FK Falkland Islands (Malvinas)|FM Micronesia|FO Faroe Islands|FR France|GA Gabon|GB United Kingdom|GD Grenada
GE Georgia|GF French Guiana|GG Guernsey|GH Ghana|GI Gibraltar|GL Greenland|GM Gambia|GN Guinea|GP Guadeloupe
GQ Equatorial Guinea|GR Greece|GS South Georgia and the South Sandwich Islands|GT Guatemala|GU Guam
GW Guinea-Bissau|GY Guyana|HK Hong Kong|HM Heard Island and McDonald Islands|HN Honduras|HR Croatia|HT Haiti
HU Hungary|ID Indonesia|IE Ireland|IL Israel|IM Isle of Man|IN India|IO British Indian Ocean Territory|IQ Iraq
IR Iran|IS Iceland|IT Italy|JE Jersey|JM Jamaica|JO Jordan|JP Japan|KE Kenya|KG Kyrgyzstan|KH Cambodia|KI Kiribati
KM Comoros|KN Saint Kitts and Nevis|KP Korea, Democratic People's Republic of|KR Korea, Republic of|KW Kuwait
KY Cayman Islands|KZ Kazakhstan|LA Lao People's Democratic Republic|LB Lebanon|LC Saint Lucia|LI Liechtenstein
LK Sri Lanka|LR Liberia|LS Lesotho|LT Lithuania|LU Luxembourg|LV Latvia|LY Libya|MA Morocco|MC Monaco|MD Moldova
ME Montenegro|MF Saint Martin (French part)|MG Madagascar|MH Marshall Islands|MK North Macedonia|ML Mali|MM Myanmar
MN Mongolia|MO Macao|MP Northern Mariana Islands|MQ Martinique|MR Mauritania|MS Montserrat|MT Malta|MU Mauritius
MV Maldives|MW Malawi|MX Mexico|MY Malaysia|MZ Mozambique|NA Namibia|NC New Caledonia|NE Niger|NF Norfolk Island
NG Nigeria|NI Nicaragua|NL Netherlands|NO Norway|NP Nepal|NR Nauru|NU Niue|NZ New Zealand|OM Oman|PA Panama|PE Peru
PF French Polynesia|PG Papua New Guinea|PH Philippines|PK Pakistan|PL Poland|PM Saint Pierre and Miquelon
PN Pitcairn|PR Puerto Rico|PS Palestine, State of|PT Portugal|PW Palau|PY Paraguay|QA Qatar|RE Réunion|RO Romania
RS Serbia|RU Russian Federation|RW Rwanda|SA Saudi Arabia|SB Solomon Islands|SC Seychelles|SD Sudan|SE Sweden
SG Singapore|SH Saint Helena, Ascension and Tristan da Cunha|SI Slovenia|SJ Svalbard and Jan Mayen|SK Slovakia
SL Sierra Leone|SM San Marino|SN Senegal|SO Somalia|SR Suriname|SS South Sudan|ST Sao Tome and Principe
SV El Salvador|SX Sint Maarten (Dutch part)|SY Syrian Arab Republic|SZ Eswatini|TC Turks and Caicos Islands|TD Chad
TF French Southern Territories|TG Togo|TH Thailand|TJ Tajikistan|TK Tokelau|TL Timor-Leste|TM Turkmenistan
TN Tunisia|TO Tonga|TR Türkiye|TT Trinidad and Tobago|TV Tuvalu|TW Taiwan|TZ Tanzania|UA Ukraine|UG Uganda
UM United States Minor Outlying Islands|US United States of America|UY Uruguay|UZ Uzbekistan|VA Holy See
VC Saint Vincent and the Grenadines|VE Venezuela|VG Virgin Islands (British)|VI Virgin Islands (U.S.)|VN Viet Nam
VU Vanuatu|WF Wallis and Futuna|WS Samoa|YE Yemen|YT Mayotte|ZA South Africa|ZM Zambia|ZW Zimbabwe
"""
COUNTRY_NAMES: dict[str, str] = dict(
    entry.strip().split(" ", 1) for line in _NAMES.strip().splitlines() for entry in line.split("|")
)
"""Short English names of ISO 3166-1 alpha-2 codes, as the secretariat writes them beside the code."""


def participant_name(participant: str) -> str:
    """A participant's name for people: the country's name, or an organisation id without its ``XI-`` prefix."""
    if participant.startswith("XI-"):
        return participant[3:]
    return COUNTRY_NAMES.get(participant, participant)
