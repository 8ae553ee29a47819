"""A Period of Action: name, start and end, participants and coordinator, signed by the roster authority.

Periods travel inside the signed roster, so every node and the coordinator agree on them without a channel of
their own. Only exchanges between two participants of a period concern its coordinator; among those, records
dated outside the period are kept but not counted in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from protocol.models import Model, ParticipantId, UtcTime

PeriodName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class Period(Model):
    """One Period of Action."""

    name: PeriodName
    """Short name used on the command line and in URLs, e.g. ``jpa-2015``."""
    title: Annotated[str, Field(max_length=200)] = ""
    start: UtcTime
    end: UtcTime
    participants: Annotated[list[ParticipantId], Field(min_length=1, max_length=200)]
    coordinator: ParticipantId

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError("a period must end after it starts")
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("a participant is listed twice")
        return self

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the period (start inclusive, end exclusive)."""
        return self.start <= moment < self.end


def shared_by(periods: Iterable[Period], coordinator: str, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` both take part in a period that ``coordinator`` serves.

    Only such exchanges concern the coordinator: the bilateral traffic of anyone else stays between the two
    countries, and a node never reports it (nor does the coordinator accept it).
    """
    return any(p.coordinator == coordinator and a in p.participants and b in p.participants for p in periods)
