"""A Period of Action: name, start and end, participants and coordinator, signed by the roster authority.

Periods travel inside the signed roster, so every node and the coordinator agree on them without a channel of
their own. Records outside a period are kept by the coordinator but not counted in it.
"""

from __future__ import annotations

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
