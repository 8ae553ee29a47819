"""Watch-list entries and planned operations as officers give them, each with the matching tokens it yields.

A node matches tokens, never entries (:mod:`protocol.normalise`, :mod:`protocol.grid`), so every input that
reaches storage has its tokens computed here first: an entry that cannot become a token is refused with the
named error of :mod:`protocol.normalise` before anything is stored. The CSV form of a watch list lives here
too, because an import must be checked row by row and refused whole: officers fix a file once, not one
surprise at a time, and a half-imported list would match some of their targets and silently miss the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from protocol import grid, normalise
from protocol.codes import Handling, normalise_country
from protocol.encoding import format_time
from protocol.errors import (
    InvalidOperation,
    InvalidRows,
    InvalidSubject,
    Malformed,
    NcpxError,
)
from protocol.models import Model, ShortText


def _country(value: str) -> str:
    try:
        return normalise_country(value)
    except Malformed:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as TH") from None


Country = Annotated[
    str, AfterValidator(_country), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{2}$"})
]
"""A country code attributed to its field when wrong (``protocol.models.CountryCode`` raises a bare error)."""
Number = Annotated[str, Field(min_length=1, max_length=60)]


class Listing(Model):
    """What every watch-list entry and planned operation carries besides its subject: whose it is and how
    the other country may use the fact that it exists."""

    case_reference: Annotated[str, Field(min_length=1, max_length=100)]
    contact: ShortText
    """Who the other country's officer should call about this case: name, phone, e-mail."""
    handling: Handling = Handling.H0
    handling_note: Annotated[str, Field(max_length=2_000)] | None = None

    @model_validator(mode="after")
    def _h3_needs_note(self) -> Listing:
        if self.handling is Handling.H3 and not (self.handling_note or "").strip():
            raise ValueError("handling code H3 requires handling_note, the restriction in words")
        return self


class Entry(Listing):
    """A watch-list entry: a subject this country works on, until its expiry date (inclusive, UTC)."""

    expires_on: date

    def tokens(self) -> frozenset[str]:
        """The entry's matching tokens; raises the named error of the first field that cannot be one."""
        raise NotImplementedError


class PersonEntry(Entry):
    """A person: names in any order, date of birth and nationality (a name alone names too many people)."""

    kind: Literal["person"] = "person"
    names: ShortText
    date_of_birth: date
    nationality: Country

    def tokens(self) -> frozenset[str]:
        return frozenset({normalise.person(self.names, self.date_of_birth, self.nationality)})


class DocumentEntry(Entry):
    """A travel or identity document, by its number."""

    kind: Literal["document"] = "document"
    number: Number

    def tokens(self) -> frozenset[str]:
        return frozenset({normalise.document(self.number)})


class PhoneEntry(Entry):
    """A phone number, international (``+66 81 234 5678``) or national with its ``region``."""

    kind: Literal["phone"] = "phone"
    number: Number
    region: Country | None = None

    def tokens(self) -> frozenset[str]:
        return frozenset({normalise.phone(self.number, self.region)})


class VesselEntry(Entry):
    """A vessel: its IMO number, its name under its flag, or both (then either matches, since vessels are
    renamed and reflagged while their IMO number stays)."""

    kind: Literal["vessel"] = "vessel"
    name: ShortText | None = None
    imo: Number | None = None
    flag: Country | None = None

    def tokens(self) -> frozenset[str]:
        found = set()
        if self.imo is not None:
            found.add(normalise.vessel_imo(self.imo))
        if self.name is not None and self.flag is not None:
            found.add(normalise.vessel_name(self.name, self.flag))
        if not found:
            raise InvalidSubject("a vessel needs its IMO number, or its name and flag")
        return frozenset(found)


class AccountEntry(Entry):
    """A bank account: an IBAN, or a national account number with its country."""

    kind: Literal["account"] = "account"
    number: Number
    country: Country | None = None

    def tokens(self) -> frozenset[str]:
        return frozenset({normalise.account(self.number, self.country)})


class AddressEntry(Entry):
    """A street address: its lines in order, the city and the country."""

    kind: Literal["address"] = "address"
    lines: Annotated[list[ShortText], Field(min_length=1, max_length=6)]
    city: Annotated[str, Field(max_length=200)] | None = None
    country: Country

    def tokens(self) -> frozenset[str]:
        return frozenset({normalise.address(self.lines, self.city, self.country)})


KINDS: Final[tuple[type[Entry], ...]] = (
    PersonEntry,
    DocumentEntry,
    PhoneEntry,
    VesselEntry,
    AccountEntry,
    AddressEntry,
)
NewEntry = Annotated[
    PersonEntry | DocumentEntry | PhoneEntry | VesselEntry | AccountEntry | AddressEntry,
    Field(discriminator="kind"),
]
ENTRY: Final[TypeAdapter[NewEntry]] = TypeAdapter(NewEntry)
KIND_NAMES: Final = tuple(str(model.model_fields["kind"].default) for model in KINDS)
SHARED: Final = ("case_reference", "contact", "expires_on", "handling", "handling_note")
SUBJECT_FIELDS: Final = {
    name: tuple(f for f in model.model_fields if f != "kind" and f not in SHARED)
    for name, model in zip(KIND_NAMES, KINDS, strict=True)
}
"""Per kind, the fields that describe the subject itself (stored together; the shared ones have columns)."""
COLUMNS: Final = (
    "kind",
    *dict.fromkeys(f for fields in SUBJECT_FIELDS.values() for f in fields),
    *SHARED,
)
"""The CSV columns, in the order an export writes them: every field of every kind."""
LINE_SEPARATOR: Final = "|"
"""Between the lines of an address in one CSV cell."""


def sentence(error: ErrorDetails) -> str:
    """One validation error as a sentence naming our own field, never the value that was refused (nor the
    name of a field we do not know, which is the sender's text)."""
    loc = [str(part) for part in error["loc"]]
    kind = loc.pop(0) if loc and loc[0] in KIND_NAMES else None
    field = ".".join(loc)
    what = f"a {kind} entry" if kind else "an operation"
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"kind must be one of {', '.join(KIND_NAMES)}"
    if error["type"] == "extra_forbidden":
        return (
            f"{field} does not apply to {what}"
            if loc[-1] in COLUMNS
            else f"a field unknown to {what} was given"
        )
    if error["type"] == "missing":
        return f"{field} is required for {what}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def _invalid(exc: ValidationError) -> Malformed:
    return Malformed("; ".join(dict.fromkeys(sentence(e) for e in exc.errors()))[:2_000])


def parse_entry(data: Any, today: date) -> tuple[NewEntry, frozenset[str]]:
    """An entry from decoded JSON (or a CSV row), with its tokens; refused with :class:`Malformed` (each
    problem a sentence), a named :class:`InvalidSubject` error, or when it has already expired."""
    try:
        entry = ENTRY.validate_python(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    tokens = entry.tokens()
    if entry.expires_on < today:
        raise InvalidSubject("expires_on has passed; give the last day the entry should be matched")
    return entry, tokens


def entry_from_parts(kind: str, subject: dict[str, Any], shared: dict[str, Any]) -> NewEntry:
    """An entry as stored (its subject fields and its shared ones apart), whole again."""
    return ENTRY.validate_python({"kind": kind, **subject, **shared})


def parse_csv(text: str, today: date) -> list[tuple[NewEntry, frozenset[str]]]:
    """Every entry of a CSV watch list with its tokens, or :class:`InvalidRows` naming each bad row.

    Rows are numbered as a spreadsheet shows them, the header being row 1. Empty cells are absent fields;
    an address's lines share one cell, separated by ``|``.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [cell.strip() for cell in next(reader, [])]
    problems: list[tuple[int, str]] = [
        (1, f"column {position} of the header is not one of {', '.join(COLUMNS)}")
        for position, name in enumerate(header, 1)
        if name not in COLUMNS
    ]
    if "kind" not in header:
        problems.append((1, "the header has no kind column"))
    if len(set(header)) != len(header):
        problems.append((1, "the header names a column twice"))
    if problems:
        raise InvalidRows(problems)
    entries: list[tuple[NewEntry, frozenset[str]]] = []
    for number, row in enumerate(reader, 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append((number, "the row has more cells than the header has columns"))
            continue
        data: dict[str, Any] = {
            name: cell.strip() for name, cell in zip(header, row, strict=False) if cell.strip()
        }
        if "lines" in data:
            data["lines"] = [line.strip() for line in data["lines"].split(LINE_SEPARATOR)]
        try:
            entries.append(parse_entry(data, today))
        except NcpxError as exc:
            problems.append((number, exc.detail))
    if problems:
        raise InvalidRows(problems)
    return entries


def to_csv(entries: Iterable[NewEntry]) -> str:
    """A watch list as CSV that :func:`parse_csv` reads back into the same entries."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        row = entry.model_dump(mode="json", exclude_none=True)
        if "lines" in row:
            row["lines"] = f" {LINE_SEPARATOR} ".join(row["lines"])
        writer.writerow(row)
    return out.getvalue()


class OperationKind(StrEnum):
    """What a planned operation is (event deconfliction: RISSafe and SAFETNet match the same kinds)."""

    RAID = "raid"
    ARREST = "arrest"
    SURVEILLANCE = "surveillance"
    UNDERCOVER = "undercover"
    BOARDING = "boarding"


class Point(Model):
    """Where an operation takes place: a point (WGS 84 degrees) and the radius it covers, in metres."""

    latitude: Annotated[float, Field(ge=-90.0, le=90.0)]
    longitude: Annotated[float, Field(ge=-180.0, le=180.0)]
    radius_m: Annotated[float, Field(ge=0.0, le=grid.MAX_RADIUS_M)]


class Place(Model):
    """Where an operation takes place when it is an address (a house to search, a flat to watch)."""

    lines: Annotated[list[ShortText], Field(min_length=1, max_length=6)]
    city: Annotated[str, Field(max_length=200)] | None = None
    country: Country


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone name such as Asia/Bangkok") from None
    return name


Instant = Annotated[
    datetime,
    PlainSerializer(format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "description": "RFC 3339, or local time in `zone` without an offset"}),
]


class NewOperation(Listing):
    """A planned operation: what, where (a point and radius, or an address), when (a window), whose.

    Times without an offset are local times in ``zone``; every time is kept in UTC, and ``zone`` only says
    how to show it to the officers who planned it.
    """

    kind: OperationKind
    point: Point | None = None
    address: Place | None = None
    zone: Annotated[str, AfterValidator(_zone)]
    start: Instant
    end: Instant

    @field_validator("start", "end")
    @classmethod
    def _in_utc(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is None:
            zone = info.data.get("zone")
            if zone is None:
                raise ValueError("a time without an offset needs a valid zone")
            value = value.replace(tzinfo=ZoneInfo(zone))
        return value.astimezone(ZoneInfo("UTC"))

    @model_validator(mode="after")
    def _one_place(self) -> NewOperation:
        if (self.point is None) == (self.address is None):
            raise ValueError("give exactly one of point (with radius) and address")
        if not self.start < self.end:
            raise ValueError("end must come after start")
        return self

    def tokens(self) -> frozenset[str]:
        """An address operation's one token is its address's (so it also meets a watched address); a point
        operation's are the grid's (cell, hour) pairs."""
        if self.address is not None:
            return frozenset({normalise.address(self.address.lines, self.address.city, self.address.country)})
        assert self.point is not None  # _one_place holds it
        return frozenset(
            grid.operation(
                self.point.latitude, self.point.longitude, self.point.radius_m, self.start, self.end
            )
        )


def parse_operation(data: Any, now: datetime) -> tuple[NewOperation, frozenset[str]]:
    """An operation from decoded JSON with its tokens; refused like :func:`parse_entry`, and when it is
    already over."""
    try:
        operation = NewOperation.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    if operation.end <= now:
        raise InvalidOperation("the operation's window is over; give its planned start and end")
    return operation, operation.tokens()
