"""The period report: the co-chairs' debrief table, from the exchange's own tallies and the countries' returns.

Enquiry and deconfliction-notice figures come from the exchange (metadata records), everything else from each
country's signed outcome return; a country that sent none is shown as "no return" rather than as zeros. The report says what it counts:
enquiries as threads (as officers count them) and as messages (one per recipient), and exchanges without
receipt evidence apart, in an "unproven" column that enters no other figure. Rendering is pure: a
:class:`Report` in, text out, in Markdown, self-contained HTML (inline SVG, nothing loaded from anywhere), CSV
or JSON.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel

from node.coordinator.tallies import Tallies
from protocol.codes import participant_name
from protocol.encoding import parse_time
from protocol.outcome import FIGURES, Figures, OutcomeReturn
from protocol.period import Period

FORMATS = ("md", "html", "csv", "json")


class CountryRow(BaseModel):
    """One line of the debrief table."""

    country: str
    name: str
    enquiries_sent: int
    """Threads: one per enquiry, however many countries it went to."""
    enquiry_messages_sent: int
    """One per recipient."""
    enquiries_received: int
    replies_sent: int
    outstanding: int
    overdue: int
    unproven: int
    """Enquiry messages the country alone says it received (no receipt from the sender's side)."""
    median_response_s: float | None
    notices_sent: int
    """Deconfliction notices, one per recipient."""
    notices_acknowledged: int
    """Of those, how many their recipient acknowledged."""
    figures: Figures | None
    """None when the country submitted no return; inside, a figure it left out is None."""
    highlights: str | None = None
    """The free text it sealed to the coordinator: in the coordinator's own copy only."""


class Report(BaseModel):
    """Everything the report shows. Instants are UTC (RFC 3339); ``dates`` and ``as_of_local`` are the same
    moments as the secretariat reads them, in the period's zone."""

    period: str
    title: str
    timezone: str
    start: str
    end: str
    dates: str
    as_of: str
    as_of_local: str
    rows: list[CountryRow]
    totals: Figures
    """Sums of what was reported; a figure no country reported is None."""
    not_reported: dict[str, list[str]]
    """Per figure, the countries that have not reported it (no return, or a return without it)."""
    returns_received: int
    own_copy: bool
    """Whether this is the coordinator's own copy, with the highlights; a copy for sharing withholds them."""
    highlights_withheld: int
    """How many countries' highlights this copy leaves out (0 in the coordinator's own copy)."""
    tallies: Tallies


def _day(d: date, year: bool = True) -> str:
    return f"{d.day} {d:%B}" + (f" {d.year}" if year else "")


def local_time(period: Period, moment: datetime) -> str:
    """An instant as the secretariat reads it: ``25 November 2015 14:00`` in the period's zone."""
    local = period.local(moment)
    return f"{_day(local.date())} {local:%H:%M}"


def period_dates(period: Period) -> str:
    """The period's span in its zone: ``28 September to 28 October 2015`` when it runs from local midnight to
    local midnight (its last day shown inclusive), with times otherwise."""
    start, end = period.local(period.start), period.local(period.end)
    if start.time() != time() or end.time() != time():
        return f"{local_time(period, period.start)} to {local_time(period, period.end)}"
    last = period.last_day()
    first = _day(start.date(), year=start.year != last.year)
    return f"{first} to {_day(last)}"


def build(
    period: Period, tallies: Tallies, returns: list[OutcomeReturn], highlights: dict[str, str] | None = None
) -> Report:
    """Join the tallies and the returns into the report's rows.

    ``highlights`` (opened by the coordinator, per country) makes the coordinator's own copy; without them the
    report is a copy for sharing, which says how many countries' highlights it withholds.
    """
    by_country = {r.participant: r.figures for r in returns}
    response = {r.key: r.median_s for r in tallies.response_by_country}
    notices = {c.country: [0, 0] for c in tallies.countries}
    for n in tallies.notices:
        counted = notices.setdefault(n.sender, [0, 0])
        counted[0] += n.sent
        counted[1] += n.acknowledged
    rows = [
        CountryRow(
            country=c.country,
            name=participant_name(c.country),
            enquiries_sent=c.threads_sent,
            enquiry_messages_sent=c.sent,
            enquiries_received=c.received,
            replies_sent=c.replies_sent,
            outstanding=c.outstanding,
            overdue=c.overdue,
            unproven=c.unproven,
            median_response_s=response.get(c.country),
            notices_sent=notices[c.country][0],
            notices_acknowledged=notices[c.country][1],
            figures=by_country.get(c.country),
            highlights=(highlights or {}).get(c.country),
        )
        for c in tallies.countries
    ]
    reported = {
        name: [getattr(f, name) for f in by_country.values() if getattr(f, name) is not None]
        for name in FIGURES
    }
    missing = {
        name: [r.country for r in rows if r.figures is None or getattr(r.figures, name) is None]
        for name in FIGURES
    }
    as_of = parse_time(tallies.as_of)
    return Report(
        period=period.name,
        title=period.title or period.name,
        timezone=period.zone_name,
        start=tallies.start,
        end=tallies.end,
        dates=period_dates(period),
        as_of=tallies.as_of,
        as_of_local=local_time(period, as_of),
        rows=rows,
        totals=Figures(**{name: sum(values) if values else None for name, values in reported.items()}),
        not_reported={name: countries for name, countries in missing.items() if countries},
        returns_received=len(by_country),
        own_copy=highlights is not None,
        highlights_withheld=0
        if highlights is not None
        else sum(1 for r in returns if r.highlights is not None),
        tallies=tallies,
    )


_COUNTS = (
    "Enquiry and deconfliction-notice figures come from the exchange itself, counting an exchange as made "
    "only with the receiver's signed receipt; response times and deadlines run from that receipt's time. All "
    "other figures come from each country's signed return; a figure a country left out is shown as not "
    "reported, never as 0."
)


def duration(seconds: float | None) -> str:
    """A response time as officers say it: ``45 min``, ``6.5 h``, ``2.1 days``."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


Cell = str | int | float | None


def _table(report: Report, human: bool) -> tuple[list[str], list[list[Cell]]]:
    """Header and rows of the debrief table (countries, then the total).

    For people (``human``), durations read as officers say them and a missing figure says why; for machines,
    durations are seconds and a missing figure is an empty cell, so that every number parses as a number.
    """
    header = [
        "Country",
        "Name",
        "Enquiries sent (threads)",
        "Enquiry messages sent (one per recipient)",
        "Enquiries received",
        "Replies sent",
        "Median response" if human else "Median response (s)",
        "Overdue",
        "Unproven (recipient's word only)",
        "Deconfliction notices sent",
        "Deconfliction notices acknowledged",
    ]
    header += [FIGURES[name] for name in FIGURES]

    def figure(figures: Figures | None, name: str) -> Cell:
        value = getattr(figures, name) if figures is not None else None
        if value is not None or not human:
            return value
        return "no return" if figures is None else "not reported"

    rows: list[list[Cell]] = []
    for row in report.rows:
        median = row.median_response_s
        cells: list[Cell] = [
            row.country,
            row.name,
            row.enquiries_sent,
            row.enquiry_messages_sent,
            row.enquiries_received,
            row.replies_sent,
            duration(median) if human else (round(median, 1) if median is not None else None),
            row.overdue,
            row.unproven,
            row.notices_sent,
            row.notices_acknowledged,
        ]
        rows.append(cells + [figure(row.figures, n) for n in FIGURES])
    t = report.tallies.totals
    total: list[Cell] = ["Total", "", t.enquiry_threads, t.enquiries, t.enquiries, t.replies, None, t.overdue]
    total += [t.unproven, t.notices, t.notices_acknowledged]
    total += [
        getattr(report.totals, n) if not human or getattr(report.totals, n) is not None else "not reported"
        for n in FIGURES
    ]
    rows.append(total)
    return header, rows


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def _busiest(report: Report, limit: int = 10) -> list[list[str]]:
    return [
        [f"{p.sender} → {p.recipient}", str(p.count), str(p.answered)] for p in report.tallies.pairs[:limit]
    ]


def _returns_lines(report: Report) -> list[str]:
    """Who has not reported what, and what became of the highlights: the chase list before the debrief."""
    lines = [
        f"- {FIGURES[name]}: not reported by {', '.join(f'{c} ({participant_name(c)})' for c in countries)}"
        for name, countries in report.not_reported.items()
    ]
    return lines or ["- every country reported every figure"]


def _highlights_note(report: Report) -> str:
    if report.own_copy:
        return "Coordinator's own copy: it contains the highlights countries sealed to the coordinator; do not share it."
    return (
        f"Highlights: withheld from this copy, which is meant for sharing ({report.highlights_withheld} "
        "countries sealed highlights to the coordinator; they are in the coordinator's own copy only)."
    )


def markdown(report: Report) -> str:
    """The report as Markdown (what the terminal and e-mail show)."""
    header, rows = _table(report, human=True)
    t = report.tallies.totals
    lines = [
        f"# {report.title}: period report",
        "",
        f"Period {report.dates} ({report.timezone}); figures as of {report.as_of_local}.",
        f"Outcome returns received from {report.returns_received} of {len(report.rows)} countries.",
        "",
        f"- {t.enquiry_threads} enquiries (threads, as officers count them) sent as {t.enquiries} enquiry "
        f"messages (one per recipient); {t.answered} messages answered, {t.outstanding} outstanding, "
        f"{t.overdue} overdue",
        f"- {t.unproven} enquiry messages reported by their recipient alone, without receipt evidence: "
        "shown as unproven, counted in no other figure",
        f"- {t.unconfirmed} exchanges unconfirmed by one side, {t.disputed} disputed",
        f"- {t.notices} deconfliction notices (one per recipient), {t.notices_acknowledged} acknowledged",
        f"- {t.matching_sessions} private matching sessions, {t.matching_hits} hits found",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_text(c) for c in r) + " |" for r in rows]
    lines += ["", "## Outcome returns not yet complete", "", *_returns_lines(report)]
    lines += ["", "## Busiest pairs", "", "| Pair | Enquiries | Answered |", "|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in _busiest(report)]
    lines += [
        "",
        "## Deconfliction notices",
        "",
        "| Pair | Day (UTC) | Notices | Acknowledged |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {n.sender} → {n.recipient} | {n.day} | {n.sent} | {n.acknowledged} |"
        for n in report.tallies.notices
    ]
    lines += [
        "",
        "## Private matching",
        "",
        "| Asking → answering | Day (UTC) | Sessions | Done | Failed | Items asked | Hits | Confirmed by answerer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {m.asker} → {m.answerer} | {m.day} | {m.sessions} | {m.done} | {m.failed} | {m.items} | {m.hits} "
        f"| {m.confirmed} |"
        for m in report.tallies.matching
    ]
    lines += [
        "",
        "## Response times",
        "",
        "| Country answering | Answered | Median | 90th percentile |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.key} | {r.answered} | {duration(r.median_s)} | {duration(r.p90_s)} |"
        for r in report.tallies.response_by_country
    ]
    lines += ["", "## Highlights", "", _highlights_note(report)]
    if report.own_copy:
        lines += [""] + [f"- **{r.country} ({r.name})**: {r.highlights}" for r in report.rows if r.highlights]
    lines += ["", _COUNTS, "", utc_note(report)]
    return "\n".join(lines) + "\n"


def utc_note(report: Report) -> str:
    """The footnote that gives the report's local dates in UTC."""
    return (
        f"Dates, times and days are in {report.timezone}. In UTC the period runs from {report.start} to "
        f"{report.end} (end exclusive), and the figures are as of {report.as_of}."
    )


def csv_text(report: Report) -> str:
    """The debrief table as CSV (one row per country, then the total): counts and seconds as plain numbers."""
    header, rows = _table(report, human=False)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_text(c) for c in r] for r in rows)
    return out.getvalue()


def json_text(report: Report) -> str:
    """The whole report as JSON."""
    return report.model_dump_json(indent=2) + "\n"


def _bars(values: list[tuple[str, float, str]], width: int = 560, bar: int = 18) -> str:
    """A horizontal bar chart as inline SVG: each bar is ``(label, value, value as shown)``, drawn to scale."""
    top = max((v for _, v, _ in values), default=0) or 1
    height = bar * len(values) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value, shown) in enumerate(values):
        y = i * bar + 3
        length = (width - 230) * value / top
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label)}</text>')
        parts.append(
            f'<rect x="150" y="{y}" width="{length:.1f}" height="{bar - 4}" fill="#2f6690" data-value="{value:g}"/>'
        )
        parts.append(f'<text x="{155 + length:.1f}" y="{y + 13}" font-size="12">{html.escape(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_text(report: Report) -> str:
    """A self-contained HTML page: the table, and charts drawn as inline SVG to the scale of the table's numbers."""
    header, rows = _table(report, human=True)
    esc = html.escape
    table = "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
    table += (
        "".join("<tr>" + "".join(f"<td>{esc(_text(c))}</td>" for c in r) + "</tr>" for r in rows)
        + "</tbody></table>"
    )
    days = _bars(
        [(f"{date.fromisoformat(d.key):%a %d %b}", d.count, str(d.count)) for d in report.tallies.days]
    )
    pairs = _bars([(f"{p.sender} → {p.recipient}", p.count, str(p.count)) for p in report.tallies.pairs[:10]])
    response = _bars(
        [
            (f"{r.key} {participant_name(r.key)}", r.median_s, duration(r.median_s))
            for r in report.tallies.response_by_country
            if r.median_s is not None
        ]
    )
    missing = "".join(f"<li>{esc(line[2:])}</li>" for line in _returns_lines(report))
    highlights = "".join(
        f"<li><b>{esc(r.country)} ({esc(r.name)})</b>: {esc(r.highlights)}</li>"
        for r in report.rows
        if r.highlights
    )
    t = report.tallies.totals
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(report.title)}: period report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
tbody tr:last-child {{ font-weight: bold; background: #f2f2f2; }}
</style></head><body>
<h1>{esc(report.title)}: period report</h1>
<p>Period <span title="{esc(report.start)} to {esc(report.end)} UTC">{esc(report.dates)}</span> ({esc(report.timezone)});
figures as of <span title="{esc(report.as_of)}">{esc(report.as_of_local)}</span>.
Outcome returns received from {report.returns_received} of {len(report.rows)} countries.</p>
<p>{t.enquiry_threads} enquiries (threads, as officers count them) sent as {t.enquiries} enquiry messages
(one per recipient); {t.answered} messages answered, {t.outstanding} outstanding, {t.overdue} overdue;
{t.unproven} unproven (recipient's word only, counted in no other figure);
{t.unconfirmed} unconfirmed, {t.disputed} disputed;
{t.notices} deconfliction notices (one per recipient), {t.notices_acknowledged} acknowledged;
{t.matching_sessions} private matching sessions, {t.matching_hits} hits found.</p>
{table}
<h2>Outcome returns not yet complete</h2><ul>{missing}</ul>
<h2>Enquiry messages per day (one per recipient, {esc(report.timezone)} days)</h2>{days}
<h2>Busiest pairs</h2>{pairs}
<h2>Median response time per answering country</h2>{response}
<h2>Highlights</h2><p>{esc(_highlights_note(report))}</p><ul>{highlights}</ul>
<p>{esc(_COUNTS)}</p>
<p>{esc(utc_note(report))}</p>
</body></html>
"""


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`)."""
    renderers: dict[str, Any] = {"md": markdown, "html": html_text, "csv": csv_text, "json": json_text}
    return str(renderers[fmt](report))
