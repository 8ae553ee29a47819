"""Replaying the 2015 Joint Period of Action: declared with ``--historical`` in Asia/Bangkok, filled with signed
records and returns, and reported in local dates and local days with the debrief's figures."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from keys import Identity, Roster, add_participant, generate_authority, new_roster, parse_roster, sign_roster
from keys.roster import Role
from node.config import Limits
from node.coordinator.report import build, render
from node.coordinator.service import CoordinatorService
from node.storage.database import Database
from node.trust import Trust
from protocol.encoding import parse_time
from protocol.outcome import FIGURES, Figures, make_return
from tests.coordinator.support import Coordinator, coordinator_store

COUNTRIES = ["AU", "ID", "MY", "MV", "NZ", "PH", "LK", "TH"]
PARTICIPANTS = [*COUNTRIES, "XI-INTERPOL"]
DEBRIEF = parse_time("2015-11-25T10:00:00+07:00")

#: The debrief's totals (co-chairs' statement, 25 November 2015), split across the countries' returns; Maldives
#: sent no return and Indonesia left two figures out.
RETURNS: dict[str, dict[str, int]] = {
    "TH": {"persons_assisted": 30, "search_warrants": 3, "suspects_identified": 30, "arrests": 15,
           "new_investigations": 4, "awareness_activities": 40, "trainings_held": 6, "officers_trained": 250},
    "MY": {"persons_assisted": 20, "search_warrants": 2, "suspects_identified": 20, "arrests": 10,
           "new_investigations": 2, "awareness_activities": 20, "trainings_held": 4, "officers_trained": 200},
    "ID": {"persons_assisted": 9, "search_warrants": 2, "suspects_identified": 13, "arrests": 7,
           "new_investigations": 2, "awareness_activities": 8},
    "AU": {"persons_assisted": 0, "search_warrants": 0, "suspects_identified": 0, "arrests": 0,
           "new_investigations": 0, "awareness_activities": 0, "trainings_held": 2, "officers_trained": 35},
    "NZ": {}, "PH": {}, "LK": {},
}  # fmt: skip
TOTALS = {
    "persons_assisted": 59, "search_warrants": 7, "suspects_identified": 63, "arrests": 32,
    "new_investigations": 8, "awareness_activities": 68, "trainings_held": 12, "officers_trained": 485,
}  # fmt: skip


@pytest.fixture
def declared(tmp_path: Path) -> tuple[Roster, dict[str, Identity]]:
    """The 2015 roster with the period declared through the CLI with --historical."""
    key = generate_authority(tmp_path / "authority.key")
    epoch = parse_time("2015-07-01T00:00:00Z")
    ids = {pid: Identity.generate(pid) for pid in [*PARTICIPANTS, "XI-COORD"]}
    body = new_roster(key.public_key(), epoch)
    for pid, identity in ids.items():
        role = Role.COORDINATOR if pid == "XI-COORD" else Role.NODE
        body = add_participant(body, identity.card(), f"https://{pid.lower()}.example", role, pid, epoch)
    roster_file = tmp_path / "roster.json"
    roster_file.write_bytes(sign_roster(body, key).to_bytes())
    declared = subprocess.run(
        [
            sys.executable, "-m", "node.cli", "period", "create", "--roster", str(roster_file),
            "--authority-key", str(tmp_path / "authority.key"), "--name", "jpa-2015",
            "--title", "Joint Period of Action 2015", "--start", "2015-09-28T00:00:00+07:00",
            "--end", "2015-10-29T00:00:00+07:00", "--timezone", "Asia/Bangkok",
            "--participants", ",".join(PARTICIPANTS), "--coordinator", "XI-COORD", "--historical",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert declared.returncode == 0, declared.stderr
    assert "warning" in declared.stderr
    return Roster(parse_roster(roster_file.read_bytes()), key.public_key()), ids


@pytest.fixture
async def replay(
    tmp_path: Path, declared: tuple[Roster, dict[str, Identity]], database_url: str | None
) -> AsyncIterator[Coordinator]:
    """A coordinator on the declared 2015 roster, on the debrief day (on each store)."""
    roster, ids = declared
    db = await Database.open(tmp_path / "coordinator.db")
    now = [DEBRIEF]
    async with coordinator_store(db, database_url) as store:
        service = CoordinatorService(
            Trust(ids["XI-COORD"], roster, db), store, lambda: now[0], limits=Limits()
        )
        period = roster.period("jpa-2015")
        yield Coordinator(service, store, period, ids, roster, now, random.Random(2015))
    await db.close()


async def test_a_replayed_2015_period_reports_local_dates_local_days_and_the_debrief_figures(
    replay: Coordinator,
) -> None:
    c = replay
    # Enquiries near local midnight, each on a different UTC day than its Bangkok day, and one before the start.
    moments = {
        "2015-09-28T00:30:00+07:00": "2015-09-28",  # 27 September in UTC
        "2015-10-01T06:00:00+07:00": "2015-10-01",  # 30 September in UTC
        "2015-10-28T03:00:00+07:00": "2015-10-28",  # 27 October in UTC
        "2015-10-28T23:30:00+07:00": "2015-10-28",  # the last local hour of the period
        "2015-09-27T23:00:00+07:00": None,  # before the period starts in Bangkok: kept, not counted
    }
    for moment in moments:
        for envelope in c.enquiry("TH", "MY", parse_time(moment)):
            await c.deliver(envelope, timedelta(seconds=46))
    first = c.enquiry("XI-INTERPOL", "LK", parse_time("2015-10-05T12:00:00+07:00"))[0]
    await c.deliver(first)
    await c.answer(first, first.header.created_at + timedelta(hours=3))

    for country, figures in RETURNS.items():
        outcome = make_return("jpa-2015", Figures(**figures), c.ids[country], DEBRIEF - timedelta(days=1))
        await c.service.receive_outcome(country, outcome.wire())

    tallies = await c.tallies()
    assert tallies.timezone == "Asia/Bangkok"
    assert [(d.key, d.count) for d in tallies.days] == [
        ("2015-09-28", 1),
        ("2015-10-01", 1),
        ("2015-10-05", 1),
        ("2015-10-28", 2),
    ]
    assert tallies.totals.enquiries == 5
    report = build(c.period, tallies, await c.store.outcomes("jpa-2015"))
    assert report.dates == "28 September to 28 October 2015"
    assert report.totals.model_dump() == TOTALS
    assert report.returns_received == 7
    assert report.not_reported["trainings_held"] == ["ID", "LK", "MV", "NZ", "PH", "XI-INTERPOL"]
    markdown = render(report, "md")
    assert "Period 28 September to 28 October 2015 (Asia/Bangkok); figures as of 25 November 2015 10:00." in (
        markdown
    )
    assert "In UTC the period runs from 2015-09-27T17:00:00.000Z to 2015-10-28T17:00:00.000Z" in markdown
    total = next(line for line in markdown.splitlines() if line.startswith("| Total |"))
    assert [cell.strip() for cell in total.split("|")[-9:-1]] == [str(TOTALS[n]) for n in FIGURES]
    assert "| MV | Maldives |" in markdown
    assert "| XI-INTERPOL | INTERPOL |" in markdown
