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
from typing import Any

from pydantic import BaseModel

from node.coordinator.tallies import Tallies
from protocol.outcome import FIGURES, Figures, OutcomeReturn
from protocol.period import Period

FORMATS = ("md", "html", "csv", "json")


class CountryRow(BaseModel):
    """One line of the debrief table."""

    country: str
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
    """None when the country submitted no return."""


class Report(BaseModel):
    """Everything the report shows."""

    period: str
    title: str
    start: str
    end: str
    as_of: str
    rows: list[CountryRow]
    totals: Figures
    returns_received: int
    tallies: Tallies


def build(period: Period, tallies: Tallies, returns: list[OutcomeReturn]) -> Report:
    """Join the tallies and the returns into the report's rows."""
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
        )
        for c in tallies.countries
    ]
    totals = Figures(**{name: sum(getattr(f, name) for f in by_country.values()) for name in FIGURES})
    return Report(
        period=period.name,
        title=period.title or period.name,
        start=tallies.start,
        end=tallies.end,
        as_of=tallies.as_of,
        rows=rows,
        totals=totals,
        returns_received=len(by_country),
        tallies=tallies,
    )


_COUNTS = (
    "Enquiry and deconfliction-notice figures come from the exchange itself, counting an exchange as made "
    "only with the receiver's signed receipt; response times and deadlines run from that receipt's time. All other figures come from "
    "each country's signed return."
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


def _table(report: Report) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the debrief table (countries, then the total)."""
    header = [
        "Country",
        "Enquiries sent (threads)",
        "Enquiry messages sent (one per recipient)",
        "Enquiries received",
        "Replies sent",
        "Median response",
        "Overdue",
        "Unproven (recipient's word only)",
        "Deconfliction notices sent",
        "Deconfliction notices acknowledged",
    ]
    header += [FIGURES[name] for name in FIGURES]
    rows = []
    for row in report.rows:
        cells = [
            row.country,
            str(row.enquiries_sent),
            str(row.enquiry_messages_sent),
            str(row.enquiries_received),
            str(row.replies_sent),
            duration(row.median_response_s),
            str(row.overdue),
            str(row.unproven),
            str(row.notices_sent),
            str(row.notices_acknowledged),
        ]
        cells += (
            [str(getattr(row.figures, n)) for n in FIGURES] if row.figures else ["no return"] * len(FIGURES)
        )
        rows.append(cells)
    t = report.tallies.totals
    rows.append(
        [
            "Total",
            str(t.enquiry_threads),
            str(t.enquiries),
            str(t.enquiries),
            str(t.replies),
            "",
            str(t.overdue),
            str(t.unproven),
            str(t.notices),
            str(t.notices_acknowledged),
        ]
        + [str(getattr(report.totals, n)) for n in FIGURES]
    )
    return header, rows


def _busiest(report: Report, limit: int = 10) -> list[list[str]]:
    return [
        [f"{p.sender} → {p.recipient}", str(p.count), str(p.answered)] for p in report.tallies.pairs[:limit]
    ]


def markdown(report: Report) -> str:
    """The report as Markdown (what the terminal and e-mail show)."""
    header, rows = _table(report)
    t = report.tallies.totals
    lines = [
        f"# {report.title}: period report",
        "",
        f"Period {report.start} to {report.end}; figures as of {report.as_of}.",
        f"Outcome returns received from {report.returns_received} of {len(report.rows)} countries.",
        "",
        f"- {t.enquiry_threads} enquiries (threads, as officers count them) sent as {t.enquiries} enquiry "
        f"messages (one per recipient); {t.answered} messages answered, {t.outstanding} outstanding, "
        f"{t.overdue} overdue",
        f"- {t.unproven} enquiry messages reported by their recipient alone, without receipt evidence: "
        "shown as unproven, counted in no other figure",
        f"- {t.unconfirmed} exchanges unconfirmed by one side, {t.disputed} disputed",
        f"- {t.notices} deconfliction notices (one per recipient), {t.notices_acknowledged} acknowledged",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
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
        "## Response times",
        "",
        "| Country answering | Answered | Median | 90th percentile |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.key} | {r.answered} | {duration(r.median_s)} | {duration(r.p90_s)} |"
        for r in report.tallies.response_by_country
    ]
    lines += [
        "",
        _COUNTS,
    ]
    return "\n".join(lines) + "\n"


def csv_text(report: Report) -> str:
    """The debrief table as CSV (one row per country, then the total)."""
    header, rows = _table(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def json_text(report: Report) -> str:
    """The whole report as JSON."""
    return report.model_dump_json(indent=2) + "\n"


def _bars(values: list[tuple[str, float]], width: int = 560, bar: int = 18, unit: str = "") -> str:
    """A horizontal bar chart as inline SVG."""
    top = max((v for _, v in values), default=0) or 1
    height = bar * len(values) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(values):
        y = i * bar + 3
        length = (width - 170) * value / top
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<rect x="110" y="{y}" width="{length:.1f}" height="{bar - 4}" fill="#2f6690"/>')
        parts.append(f'<text x="{115 + length:.1f}" y="{y + 13}" font-size="12">{value:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_text(report: Report) -> str:
    """A self-contained HTML page: the table, and charts drawn as inline SVG."""
    header, rows = _table(report)
    esc = html.escape
    table = "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
    table += (
        "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        + "</tbody></table>"
    )
    days = _bars([(d.key, d.count) for d in report.tallies.days])
    pairs = _bars([(f"{p.sender} → {p.recipient}", p.count) for p in report.tallies.pairs[:10]])
    response = _bars(
        [(r.key, round((r.median_s or 0) / 3600, 1)) for r in report.tallies.response_by_country], unit=" h"
    )
    t = report.tallies.totals
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(report.title)}: period report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tbody tr:last-child {{ font-weight: bold; background: #f2f2f2; }}
</style></head><body>
<h1>{esc(report.title)}: period report</h1>
<p>Period {esc(report.start)} to {esc(report.end)}; figures as of {esc(report.as_of)}.
Outcome returns received from {report.returns_received} of {len(report.rows)} countries.</p>
<p>{t.enquiry_threads} enquiries (threads, as officers count them) sent as {t.enquiries} enquiry messages
(one per recipient); {t.answered} messages answered, {t.outstanding} outstanding, {t.overdue} overdue;
{t.unproven} unproven (recipient's word only, counted in no other figure);
{t.unconfirmed} unconfirmed, {t.disputed} disputed;
{t.notices} deconfliction notices (one per recipient), {t.notices_acknowledged} acknowledged.</p>
{table}
<h2>Enquiry messages per day (one per recipient)</h2>{days}
<h2>Busiest pairs</h2>{pairs}
<h2>Median response time per answering country</h2>{response}
<p>{esc(_COUNTS)}</p>
</body></html>
"""


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`)."""
    renderers: dict[str, Any] = {"md": markdown, "html": html_text, "csv": csv_text, "json": json_text}
    return str(renderers[fmt](report))
