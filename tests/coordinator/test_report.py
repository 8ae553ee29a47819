"""The period report: every debrief figure per country and in total, in each format, with nothing external."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

from node.coordinator.report import FORMATS, build, duration, render
from node.coordinator.tallies import (
    Count,
    CountryFlow,
    NoticeCount,
    PairCount,
    ResponseTime,
    Tallies,
    Totals,
)
from protocol.codes import _ISO_ALPHA2, COUNTRY_NAMES, participant_name
from protocol.encoding import parse_time
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
    assert "| MY | Malaysia | 2 | 2 | 4 | 2 | 1.5 h | 2 | 2 | 0 | 0 | no return |" in markdown
    assert "| TH | Thailand | 3 | 4 | 1 | 0 | n/a | 0 | 0 | 2 | 2 |" in markdown
    total = next(line for line in markdown.splitlines() if line.startswith("| Total |"))
    cells = [cell.strip() for cell in total.split("|")[2:13]]
    assert cells == ["", "6", "7", "7", "4", "", "2", "2", "3", "2", "40"]
    assert "| TH → MY | 2015-09-28 | 2 | 2 |" in markdown
    assert "3 deconfliction notices (one per recipient), 2 acknowledged" in markdown
    table = list(csv.reader(io.StringIO(render(REPORT, "csv"))))
    assert table[0][:2] == ["Country", "Name"]
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
    assert "Malaysia" in page
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


def test_csv_and_json_carry_numbers_and_md_html_durations() -> None:
    """Seconds as numbers for machines; "1.5 h" only where people read it."""
    table = list(csv.DictReader(io.StringIO(render(REPORT, "csv"))))
    my = next(row for row in table if row["Country"] == "MY")
    assert float(my["Median response (s)"]) == 5400.0
    assert my["Arrests"] == ""  # no return: an empty cell, never a word in a number column
    for row in table:
        for column, value in row.items():
            if column not in ("Country", "Name") and value:
                float(value)  # every other cell parses as a number
    data = json.loads(render(REPORT, "json"))
    assert data["rows"][1]["median_response_s"] == 5400.0
    assert "1.5 h" in render(REPORT, "md")
    assert "1.5 h" in render(REPORT, "html")


def test_the_response_chart_draws_what_the_table_says() -> None:
    """A 46-second median is a bar of 46 seconds labelled "46 s", not an empty bar labelled "0 h"."""
    tallies = TALLIES.model_copy(
        update={
            "response_by_country": [
                ResponseTime(key="MY", answered=2, median_s=46.0, p90_s=50.0),
                ResponseTime(key="AU", answered=1, median_s=92.0, p90_s=92.0),
            ]
        }
    )
    page = render(build(PERIOD, tallies, []), "html")
    chart = page.split("Median response time per answering country</h2>")[1].split("</svg>")[0]
    widths = {
        label: float(width)
        for label, width in re.findall(
            r'>(MY|AU) [A-Za-z]+</text><rect x="150" y="[\d.]+" width="([\d.]+)"', chart
        )
    }
    assert widths["MY"] > 0
    assert widths["AU"] == 2 * widths["MY"]
    assert "46 s" in chart
    assert "0 h" not in chart


def test_a_figure_left_out_is_not_reported_and_the_report_says_by_whom() -> None:
    report = build(PERIOD, TALLIES, [figures_return("AU", arrests=20), figures_return("TH", arrests=0)])
    assert report.totals.arrests == 20
    assert report.totals.persons_assisted is None  # nobody reported it: not a total of 0
    assert report.not_reported["persons_assisted"] == ["AU", "MY", "TH"]
    assert report.not_reported["arrests"] == ["MY"]  # TH reported a real 0
    markdown = render(report, "md")
    assert (
        "| TH | Thailand | 3 | 4 | 1 | 0 | n/a | 0 | 0 | 2 | 2 | not reported | not reported | not reported | 0 |"
        in markdown
    )
    assert "- Arrests: not reported by MY (Malaysia)" in markdown
    table = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    th = next(row for row in table if row["Country"] == "TH")
    assert (th["Arrests"], th["Suspects identified"]) == ("0", "")
    rows = {r["country"]: r for r in json.loads(render(report, "json"))["rows"]}
    assert rows["TH"]["figures"]["arrests"] == 0
    assert rows["TH"]["figures"]["persons_assisted"] is None


def test_highlights_only_in_the_coordinators_own_copy() -> None:
    returns = [figures_return("AU", arrests=20).model_copy(update={"highlights": b"sealed"})]
    shared = build(PERIOD, TALLIES, returns)
    own = build(PERIOD, TALLIES, returns, {"AU": "Dismantled a network in the fishing sector"})
    for fmt in FORMATS:
        assert "fishing" not in render(shared, fmt)
        assert "fishing" in render(own, fmt) or fmt == "csv"
    assert "withheld from this copy" in render(shared, "md")
    assert "withheld from this copy" in render(shared, "html")
    assert json.loads(render(shared, "json"))["highlights_withheld"] == 1
    assert "do not share it" in render(own, "md")


def test_dates_are_shown_in_the_periods_zone_with_utc_in_a_footnote() -> None:
    bangkok = PERIOD.model_copy(
        update={
            "timezone": "Asia/Bangkok",
            "start": parse_time("2015-09-28T00:00:00+07:00"),
            "end": parse_time("2015-10-29T00:00:00+07:00"),
        }
    )
    report = build(bangkok, TALLIES, [])
    assert report.dates == "28 September to 28 October 2015"
    assert report.as_of_local == "25 November 2015 07:00"
    markdown = render(report, "md")
    assert "Period 28 September to 28 October 2015 (Asia/Bangkok)" in markdown
    assert "In UTC the period runs from 2015-09-28T00:00:00.000Z" in markdown  # the tallies' UTC instants
    assert render(build(PERIOD, TALLIES, []), "md").count("28 September to 27 October 2015 (UTC)") == 1


def test_every_iso_code_has_a_name() -> None:
    assert {c: participant_name(c) for c in ("TH", "LK", "MV", "XI-INTERPOL")} == {
        "TH": "Thailand",
        "LK": "Sri Lanka",
        "MV": "Maldives",
        "XI-INTERPOL": "INTERPOL",
    }
    assert set(COUNTRY_NAMES) == set(_ISO_ALPHA2)
