"""The period report: every debrief figure per country and in total, in each format, with nothing external."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

from node.coordinator.report import build, duration, render
from node.coordinator.tallies import (
    Count,
    CountryFlow,
    NoticeCount,
    PairCount,
    ResponseTime,
    Tallies,
    Totals,
)
from protocol.outcome import FIGURES, Figures, OutcomeReturn
from protocol.period import Period

START, END = datetime(2015, 9, 28, tzinfo=UTC), datetime(2015, 10, 28, tzinfo=UTC)
PERIOD = Period(
    name="jpa-2015", title="Joint Period of Action 2015", start=START, end=END,
    participants=["AU", "MY", "TH"], coordinator="XI-COORD",
)  # fmt: skip
TALLIES = Tallies(
    period="jpa-2015",
    start="2015-09-28T00:00:00.000Z",
    end="2015-10-28T00:00:00.000Z",
    as_of="2015-11-25T00:00:00.000Z",
    totals=Totals(
        enquiry_threads=6,
        enquiries=7,
        replies=4,
        answered=4,
        outstanding=3,
        overdue=2,
        unconfirmed=0,
        disputed=1,
        unproven=2,
        countries_active=3,
        notices=3,
        notices_acknowledged=2,
    ),
    countries=[
        CountryFlow(
            country="AU",
            threads_sent=1,
            sent=1,
            received=2,
            replies_sent=2,
            answered=2,
            outstanding=0,
            overdue=0,
            unproven=0,
        ),
        CountryFlow(
            country="MY",
            threads_sent=2,
            sent=2,
            received=4,
            replies_sent=2,
            answered=2,
            outstanding=2,
            overdue=2,
            unproven=2,
        ),
        CountryFlow(
            country="TH",
            threads_sent=3,
            sent=4,
            received=1,
            replies_sent=0,
            answered=0,
            outstanding=1,
            overdue=0,
            unproven=0,
        ),
    ],
    pairs=[PairCount(sender="TH", recipient="MY", count=3, answered=1)],
    days=[Count(key="2015-09-28", count=4), Count(key="2015-10-01", count=3)],
    areas=[Count(key="people_smuggling", count=7)],
    urgencies=[Count(key="normal", count=7)],
    response_by_country=[ResponseTime(key="MY", answered=2, median_s=5400.0, p90_s=90000.0)],
    response_by_pair=[],
    notices=[
        NoticeCount(sender="TH", recipient="MY", day="2015-09-28", sent=2, acknowledged=2),
        NoticeCount(sender="AU", recipient="TH", day="2015-10-01", sent=1, acknowledged=0),
    ],
)


def figures_return(country: str, **figures: int) -> OutcomeReturn:
    return OutcomeReturn(
        period="jpa-2015",
        participant=country,
        submitted_at=END,
        figures=Figures(**figures),
        reporter_key="k" * 20,
    )


REPORT = build(
    PERIOD,
    TALLIES,
    [
        figures_return("AU", arrests=20, persons_assisted=40),
        figures_return("TH", arrests=12, officers_trained=485),
    ],
)


def test_rows_totals_and_missing_returns() -> None:
    rows = {r.country: r for r in REPORT.rows}
    assert rows["MY"].figures is None  # no return: shown as such, never as zeros
    assert REPORT.totals.arrests == 32
    assert REPORT.totals.persons_assisted == 40
    assert REPORT.totals.officers_trained == 485
    assert REPORT.returns_received == 2
    assert rows["MY"].median_response_s == 5400.0


def test_markdown_and_csv_carry_every_figure() -> None:
    markdown = render(REPORT, "md")
    for label in FIGURES.values():
        assert label in markdown
    assert "| MY | 2 | 2 | 4 | 2 | 1.5 h | 2 | 2 | 0 | 0 | no return |" in markdown
    assert "| TH | 3 | 4 | 1 | 0 | n/a | 0 | 0 | 2 | 2 |" in markdown
    total = next(line for line in markdown.splitlines() if line.startswith("| Total |"))
    cells = [cell.strip() for cell in total.split("|")[2:12]]
    assert cells == ["6", "7", "7", "4", "", "2", "2", "3", "2", "40"]
    assert "| TH → MY | 2015-09-28 | 2 | 2 |" in markdown
    assert "3 deconfliction notices (one per recipient), 2 acknowledged" in markdown
    table = list(csv.reader(io.StringIO(render(REPORT, "csv"))))
    assert table[0][0] == "Country"
    assert [row[0] for row in table[1:]] == ["AU", "MY", "TH", "Total"]
    assert table[-1][table[0].index("Arrests")] == "32"
    assert table[-1][table[0].index("Deconfliction notices sent")] == "3"
    assert table[1][table[0].index("Deconfliction notices sent")] == "1"  # AU


def test_json_round_trips_and_html_is_self_contained() -> None:
    data = json.loads(render(REPORT, "json"))
    assert data["totals"]["arrests"] == 32
    assert data["tallies"]["totals"]["enquiries"] == 7
    page = render(REPORT, "html")
    assert page.startswith("<!doctype html>")
    assert "<svg" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"https?:", page)
    assert "Joint Period of Action 2015" in page
    assert "3 deconfliction notices (one per recipient), 2 acknowledged" in page.replace("\n", " ")


def test_durations_read_as_officers_say_them() -> None:
    assert [duration(s) for s in (None, 30, 600, 5400, 3 * 86400)] == [
        "n/a",
        "30 s",
        "10 min",
        "1.5 h",
        "3.0 days",
    ]


def test_every_format_says_what_it_counts() -> None:
    """Threads (enquiries as officers count them), messages (one per recipient) and the unproven rest."""
    for fmt in ("md", "html", "csv"):
        text = render(REPORT, fmt).replace("&#x27;", "'")
        for label in (
            "Enquiries sent (threads)",
            "Enquiry messages sent (one per recipient)",
            "Unproven (recipient's word only)",
        ):
            assert label in text, (fmt, label)
    for fmt in ("md", "html"):
        text = render(REPORT, fmt)
        assert "6 enquiries (threads, as officers count them) sent as 7 enquiry" in text.replace("\n", " ")
        assert "only with the receiver" in text
    data = json.loads(render(REPORT, "json"))
    assert (data["tallies"]["totals"]["enquiry_threads"], data["tallies"]["totals"]["enquiries"]) == (6, 7)
    rows = {r["country"]: r for r in data["rows"]}
    assert (rows["TH"]["enquiries_sent"], rows["TH"]["enquiry_messages_sent"]) == (3, 4)
    assert rows["MY"]["unproven"] == 2
