"""The coordinator's dashboard: server-rendered HTML and SVG, refreshed in place by a small same-origin script.

Login takes a coordinator officer token once and sets a session cookie (HttpOnly, SameSite=Strict, Secure when
served over TLS, scoped to ``/dashboard``); only the session id's digest is stored. Every response carries a
Content Security Policy that allows nothing but this origin, so no script, style or font can come from
anywhere else, and nothing on the page is more than metadata: ids, countries, counts and times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from html import escape
from importlib import resources
from urllib.parse import quote, urlencode

from aiohttp import web

from node.browser_sessions import (
    HEADERS,
    Cookie,
    authenticate,
    current,
    digest,
    new_session_id,
    same_origin,
    sign_in_form,
)
from node.coordinator.api import COORDINATOR, report_response
from node.coordinator.report import FORMATS, Report, build, duration, local_time, period_dates, utc_note
from node.coordinator.service import CoordinatorService
from node.coordinator.store import ExchangeRow, Selection, Window
from node.coordinator.tallies import Count, Flagged, Tallies, compute, flags
from node.federation_api import WORKER
from node.officer_api import OFFICERS
from protocol.codes import CrimeArea, Urgency, participant_name
from protocol.encoding import format_time, parse_time
from protocol.errors import Malformed, NotFound, TooLarge, Unauthorized
from protocol.outcome import FIGURES, OutcomeReturn
from protocol.period import Period

COOKIE = Cookie("ncpx_session", "/dashboard")
SESSION_HOURS = 8
LIST_LIMIT = 500
"""Rows a list shows at most (the outstanding enquiries, a drill-down): filters narrow it further."""
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def dashboard_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every dashboard response (this middleware guards the dashboard's sub-application only)."""
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


async def _officer(request: web.Request) -> str | None:
    """The officer of a valid session cookie, or None."""
    coordinator = request.config_dict[COORDINATOR]
    session = await current(request, coordinator.store, COOKIE, coordinator.clock())
    return session.officer if session is not None else None


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/dashboard/static/style.css">'
        '<link rel="icon" href="data:,">'
        f'<script src="/dashboard/static/app.js" defer></script></head><body>{body}</body></html>'
    )
    return web.Response(text=html, content_type="text/html", status=status)


def _login_form(message: str = "") -> str:
    note = f'<p class="error">{escape(message)}</p>' if message else ""
    return (
        '<main class="login"><h1>ncpx coordinator</h1>'
        "<p>Sign in with your coordinator token.</p>"
        f"{note}"
        '<form method="post" action="/dashboard/login">'
        '<label for="token">Token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" required>'
        '<button type="submit">Sign in</button></form></main>'
    )


async def login(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/login: a valid coordinator token opens a session."""
    if not same_origin(request):
        return _page("ncpx coordinator", _login_form("Sign-in refused."), 403)
    now = request.config_dict[COORDINATOR].clock()
    form = await sign_in_form(request, now)
    officer = await authenticate(request, form, "dashboard_sign_in", now)
    if officer is None:
        return _page("ncpx coordinator", _login_form("That token was not accepted."), 401)
    coordinator = request.config_dict[COORDINATOR]
    session_id = new_session_id()
    await coordinator.store.open_session(
        digest(session_id), officer, now, now + timedelta(hours=SESSION_HOURS)
    )
    response = web.HTTPSeeOther("/dashboard")
    COOKIE.set(response, request, session_id, SESSION_HOURS * 3600)
    response.headers.update(HEADERS)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/logout: end the session."""
    session_id = COOKIE.value(request)
    if session_id and same_origin(request):
        await request.config_dict[COORDINATOR].store.end_session(digest(session_id))
    response = web.HTTPSeeOther("/dashboard")
    COOKIE.clear(response)
    response.headers.update(HEADERS)
    raise response


def _choose(request: web.Request) -> Period:
    periods = request.config_dict[COORDINATOR].trust.roster.signed.roster.periods or []
    if not periods:
        raise NotFound("no Period of Action is declared in the roster yet")
    wanted = request.query.get("period")
    for period in periods:
        if period.name == wanted:
            return period
    return periods[-1]


def _header(request: web.Request, period: Period, officer: str) -> str:
    periods = request.config_dict[COORDINATOR].trust.roster.signed.roster.periods or []
    choices = "".join(
        f'<a href="/dashboard?period={quote(p.name)}"{" class=current" if p.name == period.name else ""}>'
        f"{escape(p.title or p.name)}</a>"
        for p in periods
    )
    return (
        f"<header><h1>{escape(period.title or period.name)}</h1><nav>{choices}</nav>"
        f'<form method="post" action="/dashboard/logout"><span>{escape(officer)}</span>'
        '<button type="submit">Sign out</button></form></header>'
    )


async def page(request: web.Request) -> web.Response:
    """GET /dashboard: the login form, or the live page of a period (filtered by the query's fields)."""
    officer = await _officer(request)
    if officer is None:
        return _page("ncpx coordinator: sign in", _login_form())
    period = _choose(request)
    refresh = request.query.get("refresh", "10")
    seconds = refresh if refresh.isdigit() and int(refresh) >= 1 else "10"
    fragment = await render_fragment(request, period)
    query = urlencode([(k, v) for k, v in request.query.items() if k != "refresh"])
    body = (
        _header(request, period, officer)
        + '<div class="tools">'
        + _filters(request, period)
        + _exports(period)
        + "</div>"
        f'<main id="live" data-src="/dashboard/fragment?{escape(query)}" data-refresh="{seconds}">'
        f"{fragment}</main>"
    )
    return _page(f"ncpx coordinator: {period.name}", body)


def _filters(request: web.Request, period: Period) -> str:
    """The filter form: a plain GET form, so it works without the script."""
    q = request.query

    def select(name: str, label: str, options: list[tuple[str, str]]) -> str:
        chosen = q.get(name, "")
        items = "".join(
            f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(text)}</option>'
            for v, text in [("", "all"), *options]
        )
        return f'<label>{label} <select name="{name}">{items}</select></label>'

    countries = [(c, f"{c} {participant_name(c)}") for c in sorted(period.participants)]
    return (
        '<form class="filters" method="get" action="/dashboard">'
        f'<input type="hidden" name="period" value="{escape(period.name)}">'
        + select("country", "Country", countries)
        + select("area", "Area", [(a.value, a.value.replace("_", " ")) for a in CrimeArea])
        + select("urgency", "Urgency", [(u.value, u.value.replace("_", " ")) for u in Urgency])
        + f'<label>From <input type="date" name="from" value="{escape(q.get("from", ""))}"></label>'
        f'<label>To <input type="date" name="to" value="{escape(q.get("to", ""))}"></label>'
        '<button type="submit">Apply</button>'
        f'<a href="/dashboard?period={quote(period.name)}">Clear</a></form>'
    )


def _exports(period: Period) -> str:
    """Links to the report in each format (a copy for sharing: the highlights are withheld)."""
    links = "".join(
        f'<a class="export" href="/dashboard/report?period={quote(period.name)}&amp;format={fmt}" download>'
        f"{fmt.upper()}</a>"
        for fmt in FORMATS
    )
    return f'<p class="exports">Report: {links}</p>'


def _selection(request: web.Request, period: Period) -> Selection:
    """The query's filters, checked: a value the period cannot have is refused rather than silently ignored."""
    q = request.query

    def pick(name: str, allowed: list[str]) -> str | None:
        value = q.get(name) or None
        if value is not None and value not in allowed:
            raise Malformed(f"{name} must be one of the period's values; choose it from the form")
        return value

    def day(name: str) -> date | None:
        text = q.get(name) or None
        try:
            return date.fromisoformat(text) if text else None
        except ValueError as exc:
            raise Malformed(f"{name} must be a date written YYYY-MM-DD") from exc

    first, last = day("from"), day("to")
    return Selection(
        country=pick("country", period.participants),
        sender=pick("sender", period.participants),
        recipient=pick("recipient", period.participants),
        area=pick("area", [a.value for a in CrimeArea]),
        urgency=pick("urgency", [u.value for u in Urgency]),
        since=datetime.combine(first, time(), period.zone) if first else None,
        before=datetime.combine(last + timedelta(days=1), time(), period.zone) if last else None,
    )


async def fragment(request: web.Request) -> web.Response:
    """GET /dashboard/fragment: the live part of the page, for the in-place refresh."""
    if await _officer(request) is None:
        return web.Response(status=401, text="sign in again", content_type="text/plain")
    return web.Response(text=await render_fragment(request, _choose(request)), content_type="text/html")


async def static(request: web.Request) -> web.Response:
    """GET /dashboard/static/{name}: the page's script and style, served from the package."""
    name = request.match_info["name"]
    if name not in STATIC:
        raise NotFound
    text = (resources.files("node.coordinator") / "static" / name).read_text(encoding="utf-8")
    return web.Response(text=text, content_type=STATIC[name])


async def render_fragment(request: web.Request, period: Period) -> str:
    """Every panel of the dashboard for ``period``; dates in the period's zone, UTC on hover and in the footer.
    The query's filters select the outstanding list (the figures above it are the whole period's)."""
    coordinator = request.config_dict[COORDINATOR]
    now = coordinator.clock()
    selection = _selection(request, period)
    window = Window(period, now)
    tallies = await compute(coordinator.store, period, now, coordinator.grace_s)
    outstanding = await coordinator.store.exchanges(window, selection, open_only=True, limit=LIST_LIMIT)
    flagged = await flags(coordinator.store, window, now, coordinator.grace_s)
    nodes = await coordinator.store.node_reports()
    returns = await coordinator.store.outcomes(period.name)
    reminded = await coordinator.store.last_reminders(period.name)
    report = build(period, tallies, returns)
    return "".join(
        [
            _progress(period, now, tallies),
            _panel("Countries", _countries(period, report, returns), wide=True),
            _panel(
                f"Outcome returns ({report.returns_received} of {len(report.rows)} received)",
                _returns(period, report, reminded),
                wide=True,
            ),
            _panel(
                f"Outstanding enquiries ({len(outstanding)}{'+' if len(outstanding) == LIST_LIMIT else ''}"
                f"{', filtered' if selection != Selection() else ''}; soonest due first)",
                _outstanding(period, outstanding, now),
                wide=True,
            ),
            _panel("Enquiries between countries (sender → recipient)", _heatmap(period, tallies), wide=True),
            '<div class="grid">',
            _panel(f"Enquiry messages per day ({period.zone_name} days)", _daily(tallies)),
            _panel("Enquiries by crime area", _breakdown(tallies.areas)),
            _panel("Enquiries by urgency", _breakdown(tallies.urgencies)),
            _panel("Response time per answering country (median and 90th percentile)", _response(tallies)),
            "</div>",
            _panel("Nodes: up or down, record backlog", _nodes(period, coordinator, nodes, now), wide=True),
            _panel(
                f"Unconfirmed ({tallies.totals.unconfirmed}) and disputed ({tallies.totals.disputed}) exchanges",
                _flags(flagged),
                wide=True,
            ),
            f'<p class="asof">As of {escape(local_time(period, now))} ({escape(period.zone_name)}); '
            f"{escape(utc_note(report))} Metadata only: the coordinator holds no content.</p>",
        ]
    )


def _when(period: Period, stamp: str | None) -> str:
    """An RFC 3339 text in the period's zone, UTC on hover (empty when there is none)."""
    if not stamp:
        return ""
    return f'<time datetime="{escape(stamp)}" title="{escape(stamp)} UTC">{escape(local_time(period, parse_time(stamp)))}</time>'


def _drill(period: Period, **query: str) -> str:
    return "/dashboard/exchanges?" + escape(urlencode({"period": period.name, **query}))


def _outstanding(period: Period, rows: list[ExchangeRow], now: datetime) -> str:
    """Unanswered enquiries, soonest deadline first: what will be overdue tomorrow shows before it is."""
    if not rows:
        return '<p class="empty">Nothing outstanding.</p>'
    stamp = format_time(now)
    body = []
    for r in rows:
        overdue = r.due_at is not None and r.due_at < stamp
        left = (parse_time(r.due_at) - now).total_seconds() if r.due_at else None
        status = "overdue" if overdue else (f"due in {duration(left)}" if left is not None else "")
        body.append(
            f'<tr data-message="{escape(r.message_id)}"{" class=overdue" if overdue else ""}>'
            f"<td>{escape(r.message_id)}</td><td>{escape(r.sender)} → {escape(r.recipient)}</td>"
            f"<td>{escape(r.area)}</td><td>{escape(r.urgency)}</td><td>{_when(period, r.due_at)}</td>"
            f"<td>{escape(status)}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("message", "pair", "area", "urgency", "due", "status"))
    return f'<table class="outstanding"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _countries(period: Period, report: Report, returns: list[OutcomeReturn]) -> str:
    """The secretariat's per-country table: what each country sent, received, answered and still owes."""
    submitted = {r.participant: r.submitted_at for r in returns}
    flows = {c.country: c for c in report.tallies.countries}
    header = [
        "country",
        "name",
        "sent",
        "received",
        "replied",
        "outstanding",
        "overdue",
        "median response",
        "return",
    ]
    body = []
    for row in report.rows:
        flow = flows[row.country]
        at = submitted.get(row.country)
        cells = [
            row.country,
            row.name,
            str(flow.threads_sent),
            str(flow.received),
            str(flow.replies_sent),
            str(flow.outstanding),
            str(flow.overdue),
            duration(row.median_response_s),
            local_time(period, at) if at is not None else "missing",
        ]
        link = f'<a href="{_drill(period, country=row.country)}">{escape(row.country)}</a>'
        body.append(
            f'<tr data-country="{escape(row.country)}"><td>{link}</td>'
            + "".join(f"<td>{escape(c)}</td>" for c in cells[1:])
            + "</tr>"
        )
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f'<table class="countries"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _returns(period: Period, report: Report, reminded: dict[str, tuple[str, bool]]) -> str:
    """Who has not sent an outcome return, with a reminder to each, and which figures the returns leave out:
    the chase list."""
    missing = [r for r in report.rows if r.figures is None]
    items = []
    for r in missing:
        last = reminded.get(r.country)
        note = (
            f' <span class="reminded">reminded {_when(period, last[0])}'
            f"{'' if last[1] else ' (its node did not answer)'}</span>"
            if last
            else ""
        )
        items.append(
            f'<li data-missing="{escape(r.country)}">{escape(r.country)} ({escape(r.name)}){note}'
            '<form class="remind" method="post" action="/dashboard/remind">'
            f'<input type="hidden" name="period" value="{escape(period.name)}">'
            f'<input type="hidden" name="country" value="{escape(r.country)}">'
            '<button type="submit">Send reminder</button></form></li>'
        )
    parts = [
        f'<p class="missing">Missing:</p><ul class="missing">{"".join(items)}</ul>'
        if missing
        else '<p class="missing">Every country has sent its return.</p>'
    ]
    gaps = [
        [FIGURES[name], ", ".join(c for c in countries if c not in {r.country for r in missing})]
        for name, countries in report.not_reported.items()
    ]
    parts.append(
        _table(["figure", "returns without it"], [g for g in gaps if g[1]], "No return leaves a figure out.")
    )
    return "".join(parts)


def _panel(title: str, content: str, wide: bool = False) -> str:
    return f'<section class="panel{" wide" if wide else ""}"><h2>{escape(title)}</h2>{content}</section>'


def _progress(period: Period, now: datetime, tallies: Tallies) -> str:
    total = (period.end - period.start).total_seconds()
    done = min(max((now - period.start).total_seconds() / total, 0.0), 1.0)
    left = max((period.end - now).days, 0)
    t = tallies.totals
    cards = [
        ("Enquiries (threads)", t.enquiry_threads),
        ("Enquiry messages", t.enquiries),
        ("Replies", t.replies),
        ("Answered", t.answered),
        ("Outstanding", t.outstanding),
        ("Overdue", t.overdue),
        ("Unproven (one side only)", t.unproven),
        ("Deconfliction notices", t.notices),
        ("Notices acknowledged", t.notices_acknowledged),
        ("Matching sessions", t.matching_sessions),
        ("Matching hits", t.matching_hits),
        ("Countries active", t.countries_active),
    ]
    return (
        '<section class="progress">'
        f'<p><span title="{escape(format_time(period.start))} to {escape(format_time(period.end))} UTC">'
        f"{escape(period_dates(period))}</span> ({escape(period.zone_name)}): {done:.0%} elapsed, {left} days left</p>"
        '<svg class="bar" viewBox="0 0 100 4" preserveAspectRatio="none" role="img" aria-label="period progress">'
        '<rect width="100" height="4" fill="#dde3ea"/>'
        f'<rect width="{done * 100:.2f}" height="4" fill="#2f6690"/></svg>'
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{value}</b><span>{escape(label)}</span></div>' for label, value in cards
        )
        + "</div></section>"
    )


def _daily(tallies: Tallies) -> str:
    if not tallies.days:
        return '<p class="empty">No enquiries yet.</p>'
    top = max(d.count for d in tallies.days)
    width, height, gap, small = 600, 160, 2, 11
    bar = min(max((width - 40) / len(tallies.days) - gap, 2), 48)
    parts = [_svg(width, height + 40, "chart", "enquiries per day")]
    for i, day in enumerate(tallies.days):
        h = height * day.count / top
        x = 30 + i * (bar + gap)
        shown = str(day.count) if _width(str(day.count), small) <= bar + gap else ""  # only where it fits
        parts.append(
            f'<g class="day" data-day="{escape(day.key)}"><rect x="{x:.1f}" y="{height - h + 10:.1f}" '
            f'width="{bar:.1f}" height="{h:.1f}" fill="#2f6690"><title>{escape(day.key)}: {day.count}</title></rect>'
            f'<text x="{x + bar / 2:.1f}" y="{height - h + 6:.1f}" text-anchor="middle" font-size="{small}">{shown}</text>'
            "</g>"
        )
    first, last = tallies.days[0].key, tallies.days[-1].key
    parts.append(f'<text x="30" y="{height + 28}" font-size="{FONT}">{escape(first)}</text>')
    if last != first:
        parts.append(
            f'<text x="{width - 10}" y="{height + 28}" font-size="{FONT}" text-anchor="end">{escape(last)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


FONT = 13
"""Chart text size in CSS pixels: the charts are drawn at their natural size, never scaled down to fit."""


def _width(text: str, size: int = FONT) -> float:
    """A generous estimate of ``text``'s width in a sans-serif face (wide capitals included), so that labels
    placed by it never reach their neighbours."""
    return len(text) * size * 0.72


def _svg(width: float, height: float, cls: str, label: str) -> str:
    return (
        f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" class="{cls}" '
        f'role="img" aria-label="{escape(label)}">'
    )


def _name(participant: str, limit: int = 18) -> str:
    name = participant_name(participant)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _heatmap(period: Period, tallies: Tallies) -> str:
    """Rows send, columns receive; a cell links to its exchanges. Column codes stand upright so that long ids
    (XI-INTERPOL) cannot run into their neighbours; rows carry the country's name too."""
    countries = sorted(period.participants)
    counts = {(p.sender, p.recipient): p.count for p in tallies.pairs}
    top = max(counts.values(), default=0) or 1
    rows = {c: f"{c} {_name(c)}" if _name(c) != c.removeprefix("XI-") else c for c in countries}
    cell = 44
    left = max(_width(r) for r in rows.values()) + 12
    head = max(_width(c) for c in countries) + 10
    width, height = left + cell * len(countries) + 4, head + cell * len(countries) + 4
    parts = [_svg(width, height, "heatmap", "enquiries from each country (rows) to each country (columns)")]
    for j, recipient in enumerate(countries):
        x, y = left + j * cell + cell / 2 + 4, head - 6
        parts.append(
            f'<text class="col" x="{x:.1f}" y="{y:.1f}" transform="rotate(-90 {x:.1f} {y:.1f})" '
            f'font-size="{FONT}"><title>{escape(participant_name(recipient))}</title>{escape(recipient)}</text>'
        )
    for i, sender in enumerate(countries):
        y = head + i * cell
        parts.append(
            f'<text class="row" x="4" y="{y + cell / 2 + 4}" font-size="{FONT}">{escape(rows[sender])}</text>'
        )
        for j, recipient in enumerate(countries):
            x = left + j * cell
            count = counts.get((sender, recipient), 0)
            shade = 0.08 + 0.92 * count / top if count else 0.0
            fill = "#f4f6f8" if sender == recipient else f"rgba(47,102,144,{shade:.2f})"
            ink = "#ffffff" if shade > 0.55 else "#1b1b1b"
            square = (
                f'<rect x="{x:.1f}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{escape(sender)} → {escape(recipient)}: {count}</title></rect>"
                f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 + 4}" text-anchor="middle" font-size="{FONT}" '
                f'fill="{ink}">{"" if sender == recipient else count}</text>'
            )
            if sender != recipient:
                square = f'<a href="{_drill(period, sender=sender, recipient=recipient)}">{square}</a>'
            parts.append(
                f'<g class="cell" data-sender="{escape(sender)}" data-recipient="{escape(recipient)}">{square}</g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _breakdown(counts: list[Count]) -> str:
    """Enquiry messages per crime area or urgency, as bars to scale with their counts beside them."""
    if not counts:
        return '<p class="empty">No enquiries yet.</p>'
    labels = [c.key.replace("_", " ") for c in counts]
    left = max(_width(label) for label in labels) + 10
    line, room = 24, 300
    top = max(c.count for c in counts) or 1
    parts = [_svg(left + room + 60, line * len(counts) + 6, "chart breakdown", "enquiries per group")]
    for i, (label, c) in enumerate(zip(labels, counts, strict=True)):
        y = i * line + 4
        bar = room * c.count / top
        parts.append(
            f'<g class="group" data-key="{escape(c.key)}">'
            f'<text x="0" y="{y + 14}" font-size="{FONT}">{escape(label)}</text>'
            f'<rect x="{left:.1f}" y="{y + 2}" width="{bar:.1f}" height="16" fill="#2f6690"/>'
            f'<text x="{left + bar + 6:.1f}" y="{y + 14}" font-size="{FONT}">{c.count}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _response(tallies: Tallies) -> str:
    rows = [r for r in tallies.response_by_country if r.median_s is not None]
    if not rows:
        return '<p class="empty">No enquiry answered yet.</p>'
    top = max((r.p90_s or r.median_s or 0) for r in rows) or 1
    labels = [f"{r.key} ({r.answered})" for r in rows]
    left = max(_width(label) for label in labels) + 10
    room, line = 260, 26
    tail = max(_width(f"{duration(r.median_s)} / {duration(r.p90_s)}") for r in rows)
    parts = [_svg(left + room + tail + 12, line * len(rows) + 8, "chart", "response times")]
    for i, (label, r) in enumerate(zip(labels, rows, strict=True)):
        y = i * line + 4
        median, p90 = (r.median_s or 0) * room / top, (r.p90_s or 0) * room / top
        parts.append(
            f'<g class="response" data-country="{escape(r.key)}">'
            f'<text x="0" y="{y + 15}" font-size="{FONT}">{escape(label)}</text>'
            f'<rect x="{left:.1f}" y="{y + 4}" width="{p90:.1f}" height="14" fill="#b8cfe0"/>'
            f'<rect x="{left:.1f}" y="{y + 4}" width="{median:.1f}" height="14" fill="#2f6690"/>'
            f'<text x="{left + p90 + 6:.1f}" y="{y + 15}" font-size="{FONT}">{escape(duration(r.median_s))} / '
            f"{escape(duration(r.p90_s))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _nodes(
    period: Period,
    coordinator: CoordinatorService,
    known: dict[str, tuple[str, str | None, int, str | None, bool]],
    now: datetime,
) -> str:
    """Each node's liveness (heartbeats, not records: an idle node is up) and its record queue."""
    rows = []
    for participant in sorted(period.participants):
        seen, last_record, backlog, oldest, implausible = known.get(participant, ("", None, 0, None, False))
        alive = coordinator.liveness(seen or None, last_record)
        if alive.since is not None:
            shown = f"down since {local_time(period, parse_time(alive.since))}"
        else:
            shown = {"up": "up", "idle": "up, idle", "never": "never heard from"}[alive.state]
        lag = duration((now - parse_time(oldest)).total_seconds()) if oldest else "none"
        waiting = f"{backlog:,}+ (implausible, as the node reported)" if implausible else str(backlog)
        cells = [participant, participant_name(participant), shown, _ago(now, seen or None)]
        cells += [_ago(now, last_record), waiting, lag]
        rows.append(
            f'<tr data-node="{escape(participant)}" data-state="{alive.state}">'
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "country",
            "name",
            "state",
            "last heard",
            "last record",
            "records waiting",
            "oldest waiting for",
        )
    )
    return f'<table class="nodes"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _ago(now: datetime, stamp: str | None) -> str:
    return duration((now - parse_time(stamp)).total_seconds()) + " ago" if stamp else "never"


def _flags(items: list[Flagged]) -> str:
    rows = [[f.message_id, f"{f.sender} → {f.recipient}", f.kind, f.flag, f.detail] for f in items]
    return _table(["message", "pair", "kind", "flag", "why"], rows, "Both sides agree on every exchange.")


async def _signed_in(request: web.Request) -> str:
    officer = await _officer(request)
    if officer is None:
        raise web.HTTPSeeOther("/dashboard", headers=HEADERS)
    return officer


async def exchanges(request: web.Request) -> web.Response:
    """GET /dashboard/exchanges: the exchanges behind a heatmap cell (sender and recipient) or a country,
    with the page's filters; metadata only."""
    officer = await _signed_in(request)
    period = _choose(request)
    coordinator = request.config_dict[COORDINATOR]
    now = coordinator.clock()
    selection = _selection(request, period)
    rows = await coordinator.store.exchanges(
        Window(period, now), selection, open_only=False, limit=LIST_LIMIT
    )
    if selection.sender or selection.recipient:
        what = f"{selection.sender or 'any'} → {selection.recipient or 'any'}"
    else:
        what = f"{selection.country} ({participant_name(selection.country)})" if selection.country else "all"
    stamp = format_time(now)
    body = []
    for r in rows:
        if r.answered_at:
            state = "answered"
        elif r.receipt_at is None:
            state = "unproven"
        elif r.due_at is not None and r.due_at < stamp:
            state = "overdue"
        else:
            state = "open" if r.kind == "enquiry" else "delivered"
        cells = [
            escape(r.message_id),
            escape(r.kind),
            f"{escape(r.sender)} → {escape(r.recipient)}",
            escape(r.area),
            escape(r.urgency),
            _when(period, r.created_at),
            _when(period, r.receipt_at),
            _when(period, r.due_at),
            _when(period, r.answered_at),
            state,
        ]
        body.append(
            f'<tr data-message="{escape(r.message_id)}" data-kind="{escape(r.kind)}" data-state="{state}">'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "message",
            "kind",
            "pair",
            "area",
            "urgency",
            "created",
            "delivered",
            "due",
            "answered",
            "state",
        )
    )
    table = (
        f'<table class="exchanges"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        if rows
        else '<p class="empty">No exchange matches.</p>'
    )
    more = f" (the first {LIST_LIMIT})" if len(rows) == LIST_LIMIT else ""
    content = (
        _header(request, period, officer)
        + f'<main><p><a href="/dashboard?period={quote(period.name)}">Back to the dashboard</a></p>'
        + _panel(f"Exchanges: {what}: {len(rows)}{more}", table, wide=True)
        + f'<p class="asof">Times in {escape(period.zone_name)}, UTC on hover. Metadata only.</p></main>'
    )
    return _page(f"ncpx coordinator: exchanges {what}", content)


async def report(request: web.Request) -> web.Response:
    """GET /dashboard/report: the export buttons' target, the API's report as a download."""
    await _signed_in(request)
    period = _choose(request)
    response = await report_response(request, period)
    fmt = request.query.get("format", "md")
    response.headers["Content-Disposition"] = f'attachment; filename="{period.name}-report.{fmt}"'
    return response


REMIND_FORM_BYTES = 1024


async def remind(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/remind: send a country's node a reminder of its missing outcome return (audited)."""
    officer = await _signed_in(request)
    if not same_origin(request):
        raise Unauthorized("the reminder form must come from the dashboard itself")
    if request.content_length is None or request.content_length > REMIND_FORM_BYTES:
        raise TooLarge("a reminder form holds a period and a country and nothing more")
    form = await request.post()
    name, country = form.get("period"), form.get("country")
    if not isinstance(name, str) or not isinstance(country, str):
        raise Malformed("the reminder form names a period and a country")
    coordinator = request.config_dict[COORDINATOR]
    period = coordinator.trust.roster.period(name)
    delivered = await coordinator.remind(request.config_dict[WORKER].post, period, country, officer)
    await request.config_dict[OFFICERS].audit(
        officer,
        "remind_outcome_return",
        f"{name}/{country}",
        "delivered" if delivered else "not delivered",
        coordinator.clock(),
    )
    raise web.HTTPSeeOther(f"/dashboard?period={quote(name)}", headers=HEADERS)


def routes() -> list[web.RouteDef]:
    """The dashboard's routes, mounted under ``/dashboard`` on the coordinator only (``""`` is the page itself)."""
    return [
        web.get("", page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/fragment", fragment),
        web.get("/exchanges", exchanges),
        web.get("/report", report),
        web.post("/remind", remind),
        web.get("/static/{name}", static),
    ]
