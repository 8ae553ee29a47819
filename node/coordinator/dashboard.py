"""The coordinator's dashboard: server-rendered HTML and SVG, refreshed in place by a small same-origin script.

Login takes a coordinator officer token once and sets a session cookie (HttpOnly, SameSite=Strict, Secure when
served over TLS, scoped to ``/dashboard``); only the session id's digest is stored. Every response carries a
Content Security Policy that allows nothing but this origin, so no script, style or font can come from
anywhere else, and nothing on the page is more than metadata: ids, countries, counts and times.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from html import escape
from importlib import resources

from aiohttp import web

from node.coordinator.api import COORDINATOR
from node.coordinator.report import Report, build, duration, local_time, period_dates, utc_note
from node.coordinator.service import CoordinatorService
from node.coordinator.store import Window
from node.coordinator.tallies import Flagged, OpenEnquiry, Tallies, compute, flags, open_enquiries
from node.federation_api import LIMITER
from node.officer_api import OFFICERS
from protocol.encoding import format_time, parse_time
from protocol.errors import NotFound, RequestTimeout, TooLarge
from protocol.outcome import FIGURES, OutcomeReturn
from protocol.period import Period

COOKIE = "ncpx_session"
SESSION_HOURS = 8
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send "Origin: null" on our own forms
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@web.middleware
async def dashboard_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every dashboard response (this middleware guards the dashboard's sub-application only)."""
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


async def _officer(request: web.Request) -> str | None:
    """The officer of a valid session cookie, or None."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    coordinator = request.config_dict[COORDINATOR]
    session = await coordinator.store.session(_digest(session_id))
    if session is None or not hmac.compare_digest(session.id_hash, _digest(session_id)):
        return None
    if session.expires_at < coordinator.clock():
        return None
    if not await request.config_dict[OFFICERS].active(session.officer):
        return None  # revoking an officer ends their sessions at once
    return session.officer


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


LOGIN_FORM_BYTES = 4096
LOGIN_FORM_SECONDS = 10.0


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


async def login(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/login: a valid coordinator token opens a session."""
    if not _same_origin(request):
        return _page("ncpx coordinator", _login_form("Sign-in refused."), 403)
    limiter, now = request.config_dict[LIMITER], request.config_dict[COORDINATOR].clock()
    address = request.remote or "unknown"
    limiter.check(address, now)
    # Read before anyone is authenticated: only a token's worth of bytes, and not slowly.
    if request.content_length is None or request.content_length > LOGIN_FORM_BYTES:
        raise TooLarge("a sign-in form holds a token and nothing more")
    try:
        async with asyncio.timeout(LOGIN_FORM_SECONDS):
            form = await request.post()
    except TimeoutError as exc:
        raise RequestTimeout("the sign-in form did not arrive in time") from exc
    token = form.get("token")
    officer = (
        await request.config_dict[OFFICERS].authenticate(token) if isinstance(token, str) and token else None
    )
    if officer is None:
        limiter.failed(address, now)
        await request.config_dict[OFFICERS].audit(
            f"address {address}", "dashboard_sign_in", None, "refused", now
        )
        return _page("ncpx coordinator", _login_form("That token was not accepted."), 401)
    coordinator = request.config_dict[COORDINATOR]
    session_id = secrets.token_urlsafe(32)
    now = coordinator.clock()
    await coordinator.store.open_session(
        _digest(session_id), officer, now, now + timedelta(hours=SESSION_HOURS)
    )
    response = web.HTTPSeeOther("/dashboard")
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/dashboard",
        max_age=SESSION_HOURS * 3600,
    )
    response.headers.update(HEADERS)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/logout: end the session."""
    session_id = request.cookies.get(COOKIE)
    if session_id and _same_origin(request):
        await request.config_dict[COORDINATOR].store.end_session(_digest(session_id))
    response = web.HTTPSeeOther("/dashboard")
    response.del_cookie(COOKIE, path="/dashboard")
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


async def page(request: web.Request) -> web.Response:
    """GET /dashboard: the login form, or the live page of a period."""
    officer = await _officer(request)
    if officer is None:
        return _page("ncpx coordinator: sign in", _login_form())
    period = _choose(request)
    refresh = request.query.get("refresh", "10")
    seconds = refresh if refresh.isdigit() and int(refresh) >= 1 else "10"
    periods = request.config_dict[COORDINATOR].trust.roster.signed.roster.periods or []
    choices = "".join(
        f'<a href="/dashboard?period={escape(p.name)}"{" class=current" if p.name == period.name else ""}>'
        f"{escape(p.title or p.name)}</a>"
        for p in periods
    )
    fragment = await render_fragment(request, period)
    body = (
        f"<header><h1>{escape(period.title or period.name)}</h1><nav>{choices}</nav>"
        f'<form method="post" action="/dashboard/logout"><span>{escape(officer)}</span>'
        '<button type="submit">Sign out</button></form></header>'
        f'<main id="live" data-src="/dashboard/fragment?period={escape(period.name)}" data-refresh="{seconds}">'
        f"{fragment}</main>"
    )
    return _page(f"ncpx coordinator: {period.name}", body)


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
    """Every panel of the dashboard for ``period``; dates in the period's zone, UTC on hover and in the footer."""
    coordinator = request.config_dict[COORDINATOR]
    now = coordinator.clock()
    tallies = await compute(coordinator.store, period, now, coordinator.grace_s)
    overdue = await open_enquiries(coordinator.store, period, now, overdue_only=True, limit=50)
    flagged = await flags(coordinator.store, Window(period, now), now, coordinator.grace_s)
    nodes = await coordinator.store.node_reports()
    returns = await coordinator.store.outcomes(period.name)
    report = build(period, tallies, returns)
    return "".join(
        [
            _progress(period, now, tallies),
            _panel("Countries", _countries(period, report, returns), wide=True),
            _panel(
                f"Outcome returns ({report.returns_received} of {len(report.rows)} received)",
                _returns(report),
                wide=True,
            ),
            '<div class="grid">',
            _panel(f"Enquiry messages per day ({period.zone_name} days)", _daily(tallies)),
            _panel("Enquiries between countries (sender → recipient)", _heatmap(period, tallies)),
            _panel("Response time per answering country (median and 90th percentile)", _response(tallies)),
            _panel("Nodes: up or down, record backlog", _nodes(period, coordinator, nodes, now)),
            "</div>",
            _panel(f"Overdue enquiries ({tallies.totals.overdue})", _overdue(period, overdue), wide=True),
            _panel(
                f"Unconfirmed ({tallies.totals.unconfirmed}) and disputed ({tallies.totals.disputed}) exchanges",
                _flags(flagged),
                wide=True,
            ),
            f'<p class="asof">As of {escape(local_time(period, now))} ({escape(period.zone_name)}); '
            f"{escape(utc_note(report))} Metadata only: the coordinator holds no content.</p>",
        ]
    )


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
        body.append(
            f'<tr data-country="{escape(row.country)}">'
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f'<table class="countries"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _returns(report: Report) -> str:
    """Who has not sent an outcome return, and which figures the returns leave out: the chase list."""
    missing = [r for r in report.rows if r.figures is None]
    parts = [
        '<p class="missing">'
        + (
            "Missing: " + ", ".join(f"{escape(r.country)} ({escape(r.name)})" for r in missing)
            if missing
            else "Every country has sent its return."
        )
        + "</p>"
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
    width, height, gap = 600, 160, 2
    bar = min(max((width - 40) / len(tallies.days) - gap, 2), 48)
    parts = [
        f'<svg viewBox="0 0 {width} {height + 40}" class="chart" role="img" aria-label="enquiries per day">'
    ]
    for i, day in enumerate(tallies.days):
        h = height * day.count / top
        x = 30 + i * (bar + gap)
        parts.append(
            f'<g class="day" data-day="{escape(day.key)}"><rect x="{x:.1f}" y="{height - h + 10:.1f}" '
            f'width="{bar:.1f}" height="{h:.1f}" fill="#2f6690"><title>{escape(day.key)}: {day.count}</title></rect>'
            f'<text x="{x + bar / 2:.1f}" y="{height - h + 6:.1f}" text-anchor="middle" font-size="10">{day.count}</text>'
            "</g>"
        )
    first, last = tallies.days[0].key, tallies.days[-1].key
    parts.append(f'<text x="30" y="{height + 28}" font-size="11">{escape(first)}</text>')
    parts.append(
        f'<text x="{width - 10}" y="{height + 28}" font-size="11" text-anchor="end">{escape(last)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(period: Period, tallies: Tallies) -> str:
    countries = sorted(period.participants)
    counts = {(p.sender, p.recipient): p.count for p in tallies.pairs}
    top = max(counts.values(), default=0) or 1
    cell, left, head = 44, 44, 24
    size = left + cell * len(countries)
    parts = [
        f'<svg viewBox="0 0 {size + 4} {head + cell * len(countries) + 4}" class="heatmap" role="img" '
        'aria-label="enquiries from each country (rows) to each country (columns)">'
    ]
    for j, recipient in enumerate(countries):
        parts.append(
            f'<text x="{left + j * cell + cell / 2}" y="16" text-anchor="middle" font-size="12">{escape(recipient)}</text>'
        )
    for i, sender in enumerate(countries):
        y = head + i * cell
        parts.append(f'<text x="4" y="{y + cell / 2 + 4}" font-size="12">{escape(sender)}</text>')
        for j, recipient in enumerate(countries):
            x = left + j * cell
            count = counts.get((sender, recipient), 0)
            shade = 0.08 + 0.92 * count / top if count else 0.0
            fill = "#f4f6f8" if sender == recipient else f"rgba(47,102,144,{shade:.2f})"
            ink = "#ffffff" if shade > 0.55 else "#1b1b1b"
            parts.append(
                f'<g class="cell" data-sender="{escape(sender)}" data-recipient="{escape(recipient)}">'
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{escape(sender)} → {escape(recipient)}: {count}</title></rect>"
                f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 4}" text-anchor="middle" font-size="13" '
                f'fill="{ink}">{"" if sender == recipient else count}</text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _response(tallies: Tallies) -> str:
    rows = [r for r in tallies.response_by_country if r.median_s is not None]
    if not rows:
        return '<p class="empty">No enquiry answered yet.</p>'
    top = max((r.p90_s or r.median_s or 0) for r in rows) or 1
    width, line = 600, 26
    parts = [
        f'<svg viewBox="0 0 {width} {line * len(rows) + 8}" class="chart" role="img" aria-label="response times">'
    ]
    for i, r in enumerate(rows):
        y = i * line + 4
        scale = (width - 200) / top
        median, p90 = (r.median_s or 0) * scale, (r.p90_s or 0) * scale
        parts.append(
            f'<g class="response" data-country="{escape(r.key)}">'
            f'<text x="0" y="{y + 15}" font-size="12">{escape(r.key)} ({r.answered})</text>'
            f'<rect x="70" y="{y + 4}" width="{p90:.1f}" height="14" fill="#b8cfe0"/>'
            f'<rect x="70" y="{y + 4}" width="{median:.1f}" height="14" fill="#2f6690"/>'
            f'<text x="{76 + p90:.1f}" y="{y + 15}" font-size="11">{escape(duration(r.median_s))} / '
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


def _overdue(period: Period, items: list[OpenEnquiry]) -> str:
    rows = [
        [
            i.message_id,
            f"{i.sender} → {i.recipient}",
            i.area,
            i.urgency,
            local_time(period, parse_time(i.due_at)) if i.due_at else "",
            duration(i.age_s),
        ]
        for i in items
    ]
    return _table(["message", "pair", "area", "urgency", "due", "age"], rows, "Nothing overdue.")


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
        cells = [participant, shown, _ago(now, seen or None), _ago(now, last_record), waiting, lag]
        rows.append(
            f'<tr data-node="{escape(participant)}" data-state="{alive.state}">'
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("country", "state", "last heard", "last record", "records waiting", "oldest waiting for")
    )
    return f'<table class="nodes"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _ago(now: datetime, stamp: str | None) -> str:
    return duration((now - parse_time(stamp)).total_seconds()) + " ago" if stamp else "never"


def _flags(items: list[Flagged]) -> str:
    rows = [[f.message_id, f"{f.sender} → {f.recipient}", f.kind, f.flag, f.detail] for f in items]
    return _table(["message", "pair", "kind", "flag", "why"], rows, "Both sides agree on every exchange.")


def routes() -> list[web.RouteDef]:
    """The dashboard's routes, mounted under ``/dashboard`` on the coordinator only (``""`` is the page itself)."""
    return [
        web.get("", page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/fragment", fragment),
        web.get("/static/{name}", static),
    ]
