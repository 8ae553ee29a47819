"""The console's pages: each one a view of the same service and mailbox the officer API uses.

Every handler runs inside :func:`_guarded`, which finds the officer's session (or sends the browser to the
sign-in page), keeps the idle timeout from running out while the officer works, turns every named error into
a page with the problem's title and what to do, and puts the security headers on whatever goes out.
Requests of the page's own refresh script (``?part=live``) re-render only the changing part, and neither
count as activity nor open a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from node import matching_api, officer_api
from node.browser_sessions import (
    CSRF_FIELD,
    HEADERS,
    Cookie,
    authenticate,
    csrf_ok,
    csrf_token,
    current,
    digest,
    new_session_id,
    same_origin,
    sign_in_form,
)
from node.console import forms
from node.console.catalogue import CATALOGUES, advice, translator
from node.federation_api import SERVICE, WORKER
from node.officer_api import OFFICER, OFFICERS
from node.search import search
from node.service import NodeService
from node.storage.mailbox import MessageView
from node.storage.sessions import Sessions
from protocol.codes import (
    DEADLINES,
    CrimeArea,
    Handling,
    InformationAccuracy,
    LabourSector,
    SourceReliability,
    Tlp,
    TravelDocumentType,
    Urgency,
    due_at,
)
from protocol.encoding import format_time
from protocol.errors import (
    CannotOpen,
    ForgedForm,
    Malformed,
    NcpxError,
    Purged,
    RequestTimeout,
    TooLarge,
    Unauthorized,
)
from protocol.lifecycle import ANSWERABLE, Folder, State

log = logging.getLogger("ncpx.console")

COOKIE = Cookie("ncpx_console", "/")
SIGN_IN_COOKIE = Cookie("ncpx_console_signin", "/signin")
"""Holds the sign-in form's CSRF token until the form comes back (there is no session yet to derive it from)."""
IDLE = timedelta(minutes=30)
"""A session ends after this long without the officer doing anything."""
LONGEST = timedelta(hours=12)
"""And after this long in any case: one shift."""
PAGE = 50
NEW_HITS = 5
"""How many of the newest hits the home page shows above the overdue lists."""
LIVE = "live"
t = translator(CATALOGUES["en"])

Handler = Callable[[web.Request, "Signed"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Signed:
    """The officer behind a request and their session's CSRF token."""

    officer: str
    session_id: str

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return csrf_token(self.session_id)


def _service(request: web.Request) -> NodeService:
    return request.config_dict[SERVICE]


def _sessions(request: web.Request) -> Sessions:
    return Sessions(_service(request).mailbox.db)


def _live(request: web.Request) -> bool:
    return request.query.get("part") == LIVE


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    base = {"request": request, "me": _service(request).me, "error": None}
    return aiohttp_jinja2.render_template(template, request, base | context, status=status)


def _problem_page(request: web.Request, error: NcpxError, signed: Signed | None) -> web.Response:
    title = t(f"title.{error.code}")
    context = {
        "signed": signed,
        "title": error.title if title == f"title.{error.code}" else title,
        "detail": error.detail if error.detail != error.title else None,
        "advice": advice(t, error.code),
    }
    return _render(request, "problem.html", context, error.status)


def _guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request) -> web.StreamResponse:
        signed = None
        try:
            now = _service(request).clock()
            session = await current(request, _sessions(request), COOKIE, now)
            if session is None:
                if request.method == "GET" and not _live(request):
                    response: web.StreamResponse = _redirect("/signin")
                else:
                    raise Unauthorized("your console session has ended")
            else:
                signed = Signed(session.officer, COOKIE.value(request) or "")
                if request.method == "POST" and not same_origin(request):
                    raise ForgedForm("the form was sent from a page of another site")
                if not _live(request):
                    until = min(now + IDLE, session.created_at + LONGEST)
                    await _sessions(request).extend_session(session.id_hash, until)
                request[OFFICER] = session.officer
                response = await handler(request, signed)
        except NcpxError as exc:
            response = _problem_page(request, exc, signed)
        except web.HTTPRequestEntityTooLarge:
            limit = _service(request).config.limits.max_request_bytes
            response = _problem_page(
                request, TooLarge(f"a form may carry at most {size_text(limit)}"), signed
            )
        except Exception:
            log.exception("console error on %s %s", request.method, request.path)
            response = _render(
                request,
                "problem.html",
                {
                    "signed": signed,
                    "title": t("error.internal"),
                    "detail": None,
                    "advice": t("advice.internal"),
                },
                500,
            )
        response.headers.update(HEADERS)
        return response

    return run


async def _form(request: web.Request, signed: Signed) -> forms.Form:
    """The posted form, in time and within the size limit, carrying the session's CSRF token."""
    limits = _service(request).config.limits
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            form = await request.post()
    except TimeoutError as exc:
        raise RequestTimeout(f"the form did not arrive within {limits.body_timeout_s:g} s") from exc
    if not csrf_ok(signed.session_id, form.get(CSRF_FIELD)):
        raise ForgedForm("the form did not carry this session's token")
    return form


async def _audit(request: web.Request, officer: str, action: str, target: str | None) -> None:
    await request.config_dict[OFFICERS].audit(officer, action, target, "ok", _service(request).clock())


# -- sign-in and sign-out --


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """GET /signin: the form, with a fresh CSRF token held in a short-lived cookie of its own."""
    nonce = new_session_id()
    message = {"ended": "signin.ended", "out": "signin.signed_out"}.get(request.query.get("m", ""))
    response = _render(request, "signin.html", {"signed": None, "csrf": nonce, "message": message})
    SIGN_IN_COOKIE.set(response, request, nonce, 600)
    response.headers.update(HEADERS)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    """POST /signin: a valid officer token opens a session."""
    try:
        if not same_origin(request):
            raise ForgedForm("the sign-in form was sent from a page of another site")
        now = _service(request).clock()
        form = await sign_in_form(request, now)
        expected = SIGN_IN_COOKIE.value(request)
        sent = form.get(CSRF_FIELD)
        if expected is None or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
            raise ForgedForm("the sign-in form did not come from this console's sign-in page")
        officer = await authenticate(request, form, "console_sign_in", now)
        if officer is None:
            nonce = new_session_id()
            response = _render(
                request, "signin.html", {"signed": None, "csrf": nonce, "message": "signin.refused"}, 401
            )
            SIGN_IN_COOKIE.set(response, request, nonce, 600)
        else:
            session_id = new_session_id()
            await _sessions(request).open_session(digest(session_id), officer, now, now + IDLE)
            await _audit(request, officer, "console_sign_in", None)
            response = _redirect("/")
            COOKIE.set(response, request, session_id, int(LONGEST.total_seconds()))
            SIGN_IN_COOKIE.clear(response)
    except NcpxError as exc:
        response = _problem_page(request, exc, None)
    response.headers.update(HEADERS)
    return response


async def sign_out(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /signout: end the session."""
    await _form(request, signed)
    await _sessions(request).end_session(digest(signed.session_id))
    await _audit(request, signed.officer, "console_sign_out", None)
    response = _redirect("/signin?m=out")
    COOKIE.clear(response)
    return response


# -- pages --


_subjects: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()
"""Subject lines already opened, by (node, folder, sender, id): a listing opens each body once, not on every
refresh (a stored message never changes). Kept in memory only, like any page the node renders."""
SUBJECTS_KEPT = 5000


async def _subject(service: NodeService, view: MessageView) -> str | None:
    key = (service.me, view.folder.value, view.sender, view.id)
    if key not in _subjects:
        full = await service.mailbox.get(view.id, service.clock(), view.sender)
        try:
            body: object = await asyncio.to_thread(service.open_message, full)
        except (Purged, CannotOpen):  # purged under retention, or recovered after a restore without its body
            body = None
        _subjects[key] = getattr(body, "subject", "") or ""
        if len(_subjects) > SUBJECTS_KEPT:
            _subjects.popitem(last=False)
    return _subjects[key] or None


async def _rows(service: NodeService, views: list[MessageView]) -> list[dict[str, Any]]:
    rows = []
    for view in views:
        row = view.summary()
        row["subject"] = await _subject(service, view) if view.kind.value == "enquiry" else None
        rows.append(row)
    return rows


async def _listing(service: NodeService, folder: str, **query: Any) -> list[MessageView]:
    return await service.mailbox.listing(
        folder,
        peer=query.get("peer"),
        state=query.get("state"),
        area=query.get("area"),
        urgency=query.get("urgency"),
        overdue=query.get("overdue", False),
        after=query.get("after"),
        limit=query.get("limit", PAGE),
        now=service.clock(),
    )


async def home(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /: what needs attention first (the newest hits, overdue both ways), then the latest arrivals."""
    service = _service(request)
    hits = await matching_api.hit_views(request)
    context = {
        "signed": signed,
        "hits": [h.model_dump(mode="json") for h in hits[:NEW_HITS]],
        "overdue_inbox": await _rows(service, await _listing(service, "inbox", overdue=True)),
        "overdue_sent": await _rows(service, await _listing(service, "sent", overdue=True)),
        "latest": await _rows(service, await _listing(service, "inbox", limit=10)),
    }
    return _render(request, "home_live.html" if _live(request) else "home.html", context)


def _filters(request: web.Request) -> dict[str, Any]:
    """The listing filters of the query string, each checked against its code list."""
    query = request.query
    chosen: dict[str, Any] = {}
    allowed = {
        "area": [a.value for a in CrimeArea],
        "urgency": [u.value for u in Urgency],
        "state": [*(s.value for s in State), "overdue"],
        "peer": _service(request).trust.peers(role=None),
    }
    for name, values in allowed.items():
        value = query.get(name, "")
        if value and value not in values:
            raise Malformed(f"the {name} filter must be one of the listed choices")
        if value:
            chosen[name] = value
    chosen["overdue"] = query.get("overdue") == "1" or chosen.get("state") == "overdue"
    if chosen.get("state") == "overdue":
        del chosen["state"]
    if query.get("cursor"):
        chosen["after"] = officer_api.decode_cursor(query["cursor"])
    return chosen


async def folder_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /inbox and /sent: a folder, filtered, newest first, a page at a time."""
    service = _service(request)
    folder = "inbox" if request.path == "/inbox" else "sent"
    chosen = _filters(request)
    searched = None
    if words := request.query.get("q", "").strip():
        found = await search(service, folder, words, PAGE, chosen)
        views, searched = found.views, found.scanned
        more = officer_api.encode_cursor(found.last) if found.last else None
    else:
        views = await _listing(service, folder, **chosen, limit=PAGE + 1)
        more = officer_api.encode_cursor(views[PAGE - 1]) if len(views) > PAGE else None
    query = {k: v for k, v in request.query.items() if k not in ("cursor", "part")}
    context = {
        "signed": signed,
        "folder": folder,
        "rows": await _rows(service, views[:PAGE]),
        "searched": searched,
        "more": more,
        "query": query,
        "peers": service.trust.peers(role=None),
        "choices": _choices(),
    }
    return _render(request, "folder_live.html" if _live(request) else "folder.html", context)


def _choices() -> dict[str, list[str]]:
    return {
        "area": [a.value for a in CrimeArea],
        "sector": [s.value for s in LabourSector],
        "urgency": [u.value for u in Urgency],
        "state": [*(s.value for s in State if s is not State.RECEIVED), "overdue"],
        "handling": [h.value for h in Handling],
        "tlp": [x.value for x in Tlp],
        "source": [s.value for s in SourceReliability],
        "information": [i.value for i in InformationAccuracy],
        "document_type": [d.value for d in TravelDocumentType],
    }


def _thread_rows(views: list[MessageView]) -> list[dict[str, Any]]:
    rows = []
    for view in views:
        receipt = officer_api.receipt_of(view)
        rows.append({**view.summary(), "receipt": receipt.model_dump(mode="json") if receipt else None})
    return rows


async def message_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /messages/{id}: the message opened, every field the sender wrote, and its thread with receipts.

    Opening a received message marks it read (the sender is told), as ``ncpx show`` does.
    """
    service = _service(request)
    message_id = officer_api.message_id_of(request)
    sender = officer_api.sender_of(request)
    now = service.clock()
    view = await service.mailbox.get(message_id, now, sender)
    thread = _thread_rows(await service.mailbox.thread(view.thread, now))
    if _live(request):
        return _render(request, "thread_live.html", {"thread": thread, "current": view.summary()})
    if view.folder is Folder.INBOX and view.read_at is None:
        await service.mark_read(message_id, view.sender)
        await _audit(request, signed.officer, "mark_read", message_id)
        view = await service.mailbox.get(message_id, now, view.sender)
        thread = _thread_rows(await service.mailbox.thread(view.thread, now))
    detail = await officer_api.message_detail(service, view)
    await _audit(request, signed.officer, "open_message", message_id)
    answerable = view.folder is Folder.INBOX and view.kind in ANSWERABLE
    context = {
        "signed": signed,
        "message": detail.model_dump(mode="json"),
        "thread": thread,
        "current": view.summary(),
        "answerable": answerable,
        "draft": forms.Draft(),
        "choices": _choices(),
        "problems": [],
        "live": f"/messages/{view.id}?from={view.sender}&part={LIVE}",
    }
    return _render(request, "message.html", context)


async def attachment(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /messages/{id}/attachments/{index}: the officer API's own download (audited there)."""
    return await officer_api.attachment(request)


def _due_choices(now: datetime) -> list[dict[str, str]]:
    return [
        {
            "value": u.value,
            "within": t(f"within.{u.value}"),
            "due": format_time(due_at(u, now)),
            "seconds": str(int(DEADLINES[u].total_seconds())),
        }
        for u in Urgency
    ]


def _compose_context(request: web.Request, signed: Signed, draft: forms.Draft) -> dict[str, Any]:
    service = _service(request)
    return {
        "signed": signed,
        "draft": draft,
        "peers": service.trust.peers(),
        "choices": _choices(),
        "urgencies": _due_choices(service.clock()),
        "problems": [],
    }


async def compose_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /compose: a new enquiry."""
    return _render(request, "compose.html", _compose_context(request, signed, forms.Draft()))


async def compose(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /compose: send the enquiry, or show the form again (one more row, or what to correct)."""
    service = _service(request)
    form = await _form(request, signed)
    draft = forms.read_draft(form)
    context = _compose_context(request, signed, draft)
    if draft.added:
        return _render(request, "compose.html", context)
    new, problems = forms.enquiry(draft, forms.files_of(form), t)
    if new is None:
        return _refused(request, "compose.html", context, Malformed(), problems)
    try:
        _, location = await officer_api.submit_once(
            request,
            "console:" + draft.submission,
            "compose",
            "send_enquiry",
            lambda records: service.submit_enquiry(
                new.body(), new.recipients, new.area, new.urgency, signed.officer, records
            ),
            lambda headers: (303, f"/messages/{headers[0].id}".encode()),
        )
    except NcpxError as exc:
        return _refused(request, "compose.html", context, exc, [])
    return _redirect(location.decode())


def _refused(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    error: NcpxError,
    problems: list[forms.Problem],
) -> web.Response:
    context.update(
        problems=problems,
        error={
            "title": error.title,
            "detail": None if problems or error.detail == error.title else error.detail,
            "advice": advice(t, error.code),
        },
    )
    return _render(request, template, context, error.status)


async def reply(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /messages/{id}/reply: answer a received enquiry, or show the message and the form again."""
    service = _service(request)
    message_id = officer_api.message_id_of(request)
    sender = officer_api.sender_of(request)
    form = await _form(request, signed)
    draft = forms.read_draft(form)
    new, problems = (None, []) if draft.added else forms.reply(draft, forms.files_of(form), t)
    if new is not None:
        view = await service.mailbox.get(message_id, service.clock(), sender)
        _, location = await officer_api.submit_once(
            request,
            "console:" + draft.submission,
            "reply",
            "send_reply",
            lambda records: service.submit_reply(message_id, new.body(), signed.officer, records, sender),
            lambda _: (303, f"/messages/{message_id}?from={view.sender}".encode()),
        )
        return _redirect(location.decode())
    now = service.clock()
    view = await service.mailbox.get(message_id, now, sender)
    context = {
        "signed": signed,
        "message": (await officer_api.message_detail(service, view)).model_dump(mode="json"),
        "thread": _thread_rows(await service.mailbox.thread(view.thread, now)),
        "current": view.summary(),
        "answerable": True,
        "draft": draft,
        "choices": _choices(),
        "problems": [],
        "live": f"/messages/{view.id}?from={view.sender}&part={LIVE}",
    }
    if draft.added:
        return _render(request, "message.html", context)
    return _refused(request, "message.html", context, Malformed(), problems)


def _fingerprint(public: bytes) -> str:
    text = hashlib.sha256(public).hexdigest()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


async def peers_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /peers: reachability and key fingerprints of every roster member, this node's own first."""
    service = _service(request)
    view = await officer_api.peer_views(service, request.config_dict[WORKER])
    keys = {
        member.id: {
            "signing": [
                (k.kid, _fingerprint(k.public)) for k in member.signing_keys if k.status.value == "active"
            ],
            "encryption": [
                (k.kid, _fingerprint(k.public)) for k in member.encryption_keys if k.status.value == "active"
            ],
        }
        for member in service.trust.roster.participants
    }
    context = {"signed": signed, "view": view.model_dump(mode="json"), "keys": keys, "me": service.me}
    return _render(request, "peers.html", context)


STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


async def static(request: web.Request) -> web.StreamResponse:
    """GET /static/{name}: the console's own script and style, from the package."""
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound
    text = (resources.files("node.console") / "static" / name).read_text(encoding="utf-8")
    response = web.Response(text=text, content_type=STATIC[name])
    response.headers.update(HEADERS)
    return response


def size_text(n: int) -> str:
    """A byte count as officers read it."""
    if n < 1024:
        return t("size.bytes", n=n)
    if n < 1024 * 1024:
        return t("size.kib", n=round(n / 1024))
    return t("size.mib", n=round(n / (1024 * 1024), 1))


def routes() -> list[web.RouteDef]:
    """The console's routes, at the root of a country node's officer listener."""
    return [
        web.get("/", _guarded(home)),
        web.get("/signin", sign_in_page),
        web.post("/signin", sign_in),
        web.post("/signout", _guarded(sign_out)),
        web.get("/inbox", _guarded(folder_page)),
        web.get("/sent", _guarded(folder_page)),
        web.get("/compose", _guarded(compose_page)),
        web.post("/compose", _guarded(compose)),
        web.get("/messages/{id}", _guarded(message_page)),
        web.post("/messages/{id}/reply", _guarded(reply)),
        web.get("/messages/{id}/attachments/{index}", _guarded(attachment)),
        web.get("/peers", _guarded(peers_page)),
        web.get("/static/{name}", static),
    ]
