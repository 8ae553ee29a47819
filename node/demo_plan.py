"""The seeded plan of ``ncpx demo``'s Period of Action, and the figures it must produce.

Pure: who asks whom, about what, how urgently, on which of the demo's compressed days, and when (or whether)
each recipient answers, all drawn from one seed. The demo carries the plan out on real nodes; the figures the
coordinator must then report follow from the plan alone (:func:`expected`), so that the demo and its test can
check the coordinator's tallies against what was sent rather than against themselves.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from protocol.codes import DEADLINES, CrimeArea, LabourSector, Urgency

COUNTRIES_2015 = ("AU", "ID", "MY", "MV", "NZ", "PH", "LK", "TH")
"""The eight countries of the 2015 Period of Action, in the debrief's order."""
INTERPOL = "XI-INTERPOL"
STEPS = (0, 3, 6, 12, 20, 30, 54, 80, 110, 150, 165, 185)
"""The compressed timeline: hours since the period's first day at which the demo acts. The federation's clock
jumps from one to the next; the report is made at the last. No deadline of a planned enquiry (sent at a wave,
8, 72 or 168 hours later) falls within two hours of the last step, so seconds of real time cannot tip one."""
WAVES = {0: 0.35, 20: 0.25, 54: 0.25, 150: 0.15}
"""Hours at which enquiries go out, and the share of them sent then."""
KILL_STEP = 54
"""The step at which one node is killed with SIGKILL and restarted while others send to it."""
MATCH_STEP = 30
"""The step at which two countries deconflict their watch lists."""
AREAS = {
    CrimeArea.PEOPLE_SMUGGLING: 30,
    CrimeArea.THB_LABOUR: 25,
    CrimeArea.THB_SEXUAL: 20,
    CrimeArea.DOCUMENT_FRAUD: 12,
    CrimeArea.MONEY_LAUNDERING: 8,
    CrimeArea.FORCED_MARRIAGE: 5,
}
"""Crime areas of the 2015 seeds, weighted as the debrief's enquiries were spread (smuggling and labour first)."""
SECTORS = (
    LabourSector.FISHING,
    LabourSector.AGRICULTURE,
    LabourSector.CONSTRUCTION,
    LabourSector.DOMESTIC_WORK,
    LabourSector.MANUFACTURING,
    LabourSector.ENTERTAINMENT,
    LabourSector.BEAUTY_MASSAGE,
)
URGENCIES = {Urgency.URGENT_DIRECT: 15, Urgency.URGENT_INDIRECT: 25, Urgency.NORMAL: 60}
ANSWER_IN_TIME, ANSWER_LATE = 0.6, 0.15
"""Shares of enquiry messages answered before their deadline and after it; the rest are never answered."""


@dataclass(frozen=True)
class Answer:
    """One recipient of an enquiry: when it answers (a step's hour), or None when it never does."""

    recipient: str
    at: int | None


@dataclass(frozen=True)
class Planned:
    """One enquiry (a thread), sent at hour ``sent`` to one or more recipients."""

    number: int
    sender: str
    area: CrimeArea
    sector: LabourSector | None
    urgency: Urgency
    sent: int
    answers: tuple[Answer, ...]

    def due(self) -> int:
        """Hour of its deadline (from the receipt, which the demo's nodes issue at the sending step)."""
        return self.sent + int(DEADLINES[self.urgency] / timedelta(hours=1))


def walkthrough(countries: list[str]) -> Planned:
    """The enquiry the demo follows step by step: the first of TH and MY asks the other (or the first two
    countries), urgent, about a vessel; answered within the hour."""
    sender, recipient = _pair(countries)
    return Planned(
        0, sender, CrimeArea.PEOPLE_SMUGGLING, None, Urgency.URGENT_DIRECT, 0, (Answer(recipient, 0),)
    )


def _pair(countries: list[str]) -> tuple[str, str]:
    return ("TH", "MY") if {"TH", "MY"} <= set(countries) else (countries[0], countries[1])


def matching_pair(countries: list[str]) -> tuple[str, str]:
    """The two countries that deconflict (TH and MY when both take part)."""
    return _pair(countries)


def victim(countries: list[str]) -> str:
    """The node killed midway: the first country that is neither in the walkthrough nor deconflicting."""
    spared = set(_pair(countries))
    return next((c for c in countries if c not in spared), countries[-1])


def plan(countries: list[str], enquiries: int, seed: int) -> list[Planned]:
    """The walkthrough enquiry, then ``enquiries`` more among the countries and INTERPOL (which asks and is
    asked less often), a few to two or three countries at once."""
    draw = random.Random(seed)  # noqa: S311 - a reproducible plan of demo traffic, not a secret
    members = [*countries, INTERPOL]
    weights = [1.0 if m != INTERPOL else 0.3 for m in members]
    planned = [walkthrough(countries)]
    waves = draw.choices(list(WAVES), list(WAVES.values()), k=enquiries)
    for number, sent in enumerate(sorted(waves), start=1):
        sender = draw.choices(members, weights)[0]
        others = [m for m in members if m != sender]
        width = min(len(others), draw.choices((1, 2, 3), (80, 15, 5))[0])
        recipients = draw.sample(others, width)
        area = draw.choices(list(AREAS), list(AREAS.values()))[0]
        urgency = draw.choices(list(URGENCIES), list(URGENCIES.values()))[0]
        window = DEADLINES[urgency] / timedelta(hours=1)
        answers = []
        for recipient in recipients:
            roll = draw.random()
            delay = None
            if roll < ANSWER_IN_TIME:
                delay = window * draw.uniform(0.05, 0.9)
            elif roll < ANSWER_IN_TIME + ANSWER_LATE:
                delay = window * draw.uniform(1.1, 1.5)
            answers.append(Answer(recipient, _step_after(sent + delay) if delay is not None else None))
        sector = draw.choice(SECTORS) if area is CrimeArea.THB_LABOUR else None
        planned.append(Planned(number, sender, area, sector, urgency, sent, tuple(answers)))
    return planned


def _step_after(hour: float) -> int | None:
    """The first step at or after ``hour``; None when the period's demo ends before it (never answered)."""
    return next((step for step in STEPS if step >= hour), None)


def expected(planned: list[Planned]) -> dict[str, Any]:
    """The exchange's figures the coordinator must report, as of the last step: totals, and per ordered pair
    the enquiry messages and how many were answered."""
    end = STEPS[-1]
    pairs: Counter[tuple[str, str]] = Counter()
    answered_pairs: Counter[tuple[str, str]] = Counter()
    overdue = 0
    for p in planned:
        for a in p.answers:
            pairs[(p.sender, a.recipient)] += 1
            if a.at is not None:
                answered_pairs[(p.sender, a.recipient)] += 1
            elif p.due() < end:
                overdue += 1
    enquiries, answered = sum(pairs.values()), sum(answered_pairs.values())
    return {
        "enquiry_threads": len(planned),
        "enquiries": enquiries,
        "replies": answered,
        "answered": answered,
        "outstanding": enquiries - answered,
        "overdue": overdue,
        "pairs": [
            {"sender": s, "recipient": r, "count": n, "answered": answered_pairs[(s, r)]}
            for (s, r), n in sorted(pairs.items())
        ],
    }
