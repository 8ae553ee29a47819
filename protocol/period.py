"""A Period of Action: name, start and end, participants and coordinator, signed by the roster authority.

Periods travel inside the signed roster, so every node and the coordinator agree on them without a channel of
their own. Only exchanges between two participants of a period concern its coordinator; among those, records
dated outside the period are kept but not counted in it.

A period is declared in a time zone (an IANA name such as ``Asia/Bangkok``): its instants travel in UTC like
every time on the wire, but the secretariat plans and reports in local days, so every date shown and every
per-day count follows that zone. A period declared without one (before zones existed) is in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from protocol.errors import InvalidPeriod
from protocol.models import Model, ParticipantId, UtcTime

PeriodName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


def time_zone(name: str | None) -> tzinfo:
    """The time zone called ``name`` (UTC for None); :class:`InvalidPeriod` when the zone database lacks it."""
    if name is None or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidPeriod(
            "the time zone is not an IANA name this system knows; give one such as Asia/Bangkok"
        ) from exc


class LocalDay(NamedTuple):
    """One calendar day in the period's zone, as the UTC instants it runs between (its ends cut to the period)."""

    day: date
    start: datetime
    end: datetime


class Period(Model):
    """One Period of Action."""

    name: PeriodName
    """Short name used on the command line and in URLs, e.g. ``jpa-2015``."""
    title: Annotated[str, Field(max_length=200)] = ""
    start: UtcTime
    end: UtcTime
    """Exclusive: a period of 28 September to 28 October local time ends at local midnight starting 29 October."""
    participants: Annotated[list[ParticipantId], Field(min_length=1, max_length=200)]
    coordinator: ParticipantId
    timezone: Annotated[str, Field(max_length=64)] | None = None
    """IANA zone the period is planned and reported in; absent (and so left out of the signed bytes of rosters
    signed before zones existed) means UTC."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        time_zone(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise InvalidPeriod("a period must end after it starts; give an end later than the start")
        if len(set(self.participants)) != len(self.participants):
            raise InvalidPeriod("a participant is listed twice; list each participant once")
        return self

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the period (start inclusive, end exclusive)."""
        return self.start <= moment < self.end

    @property
    def zone(self) -> tzinfo:
        """The period's time zone."""
        return time_zone(self.timezone)

    @property
    def zone_name(self) -> str:
        """The zone's name as shown to people."""
        return self.timezone or "UTC"

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the period's zone."""
        return moment.astimezone(self.zone)

    def last_day(self) -> date:
        """The last local day the period covers (its end is exclusive)."""
        return self.local(self.end - timedelta(milliseconds=1)).date()

    def local_days(self) -> list[LocalDay]:
        """Every local day the period touches, in order, each as the UTC instants it spans inside the period."""
        tz = self.zone
        days = []
        day = self.local(self.start).date()
        while day <= self.last_day():
            begin = datetime.combine(day, time(), tz).astimezone(UTC)
            after = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
            days.append(LocalDay(day, max(begin, self.start), min(after, self.end)))
            day += timedelta(days=1)
        return days


def period_from(fields: dict[str, Any]) -> Period:
    """A period from ``fields`` as given on a command line, every refusal a named :class:`InvalidPeriod`."""
    try:
        return Period.model_validate(fields)
    except ValidationError as exc:
        wrong = ", ".join(sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]}))
        raise InvalidPeriod(
            f"the period's {wrong or 'fields'} are not valid; see 'ncpx period create --help'"
        ) from exc


def shared_by(periods: Iterable[Period], coordinator: str, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` both take part in a period that ``coordinator`` serves.

    Only such exchanges concern the coordinator: the bilateral traffic of anyone else stays between the two
    countries, and a node never reports it (nor does the coordinator accept it).
    """
    return any(p.coordinator == coordinator and a in p.participants and b in p.participants for p in periods)
