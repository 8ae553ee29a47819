"""Officer API (``/v1``): bearer token per officer, every action audited, contents never logged.

Handlers parse input into the models of :mod:`node.api_models`, call :class:`node.service.NodeService` and
render models back; they hold no logic of their own beyond paging and the idempotency record.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ValidationError

from node.api_models import (
    AttachmentInfo,
    Created,
    CreatedMessage,
    DraftNotice,
    DraftNotices,
    MessageDetail,
    MessageSummary,
    NewEnquiry,
    NewNotice,
    NewOutcome,
    NewReply,
    OutcomeQueued,
    Page,
    Peers,
    PeerView,
    Thread,
    ThreadEntry,
)
from node.delivery import DeliveryWorker
from node.effects import Audit, Effect, KeepAnswer
from node.federation_api import LIMITER, SERVICE, WORKER
from node.logs import bind
from node.problems import read_body
from node.search import search
from node.service import NodeService, Records
from node.storage.mailbox import MessageView
from node.storage.officers import Officers
from node.storage.reminders import Reminders
from protocol.codes import Kind, normalise_participant
from protocol.encoding import format_time, parse_json
from protocol.errors import CannotOpen, Conflict, Malformed, NotFound, Purged, Unauthorized
from protocol.ids import check_uuid
from protocol.models import EnquiryBody, Header, NoticeBody, Receipt
from protocol.validation import explain

OFFICERS = web.AppKey("officers", Officers)
OFFICER = web.RequestKey("officer", str)
FOLDERS = ("inbox", "sent", "outbox")
STATES = (
    "queued",
    "sent",
    "received",
    "delivered",
    "read",
    "answered",
    "acknowledged",
    "undeliverable",
    "overdue",
)
KINDS = tuple(k.value for k in Kind)
SIGN_IN_REFUSED = (
    "this token is not valid or was revoked: ask your operator for a new one with `ncpx officer add`"
)
SIGN_IN_MISSING = (
    "no officer token was given: set NCPX_TOKEN (or pass --token) to the token your operator gave you"
)
M = TypeVar("M", bound=BaseModel)
Submit = Callable[[Records], Awaitable[object]]
_idempotency_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()
"""One lock per (officer, key) while requests with it are in progress; a lock nobody holds is forgotten."""


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=model.model_dump_json(exclude_none=True), content_type="application/json"
    )


def _parse(model: type[M], raw: bytes) -> M:
    data = parse_json(raw, len(raw))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Malformed(explain(exc)) from exc


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Require a valid officer token on every route of the API it guards (a node's officer API, the coordinator's).

    It is a middleware of those sub-applications only: federation, health and the dashboard never see it.
    """
    limiter, now = request.config_dict[LIMITER], request.config_dict[SERVICE].clock()
    address = request.remote or "unknown"
    limiter.check(address, now)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    name = (
        await request.config_dict[OFFICERS].authenticate(token.strip())
        if scheme.lower() == "bearer" and token
        else None
    )
    if name is None:
        limiter.failed(address, now)
        await request.config_dict[OFFICERS].audit(f"address {address}", "sign_in", None, "refused", now)
        raise Unauthorized(SIGN_IN_MISSING if not token else SIGN_IN_REFUSED)
    request[OFFICER] = name
    response: web.StreamResponse = await handler(request)
    return response


def _service(request: web.Request) -> NodeService:
    return request.config_dict[SERVICE]


def message_id_of(request: web.Request) -> str:
    """The message id of the path; one that is not a UUID names no message."""
    try:
        message_id = check_uuid(request.match_info["id"])
    except Malformed as exc:
        raise NotFound from exc
    bind(message_id=message_id)
    return message_id


def sender_of(request: web.Request) -> str | None:
    """``?from=``: which sender's message is meant, needed only when two senders used the same id."""
    claimed = request.query.get("from")
    return normalise_participant(claimed) if claimed else None


def _created(headers: list[Header]) -> Created:
    return Created(
        thread=headers[0].thread,
        messages=[
            CreatedMessage(
                id=h.id,
                recipient=h.recipient,
                state="queued",
                due_at=format_time(h.due_at) if h.due_at else None,
            )
            for h in headers
        ],
    )


async def _create(request: web.Request, raw: bytes, action: str, submit: Submit) -> web.Response:
    """Queue new messages; with an Idempotency-Key, a repeat of the same request returns the first answer."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise Malformed("Idempotency-Key must be 1 to 200 characters")
    digest = hashlib.sha256(request.path.encode() + b"\0" + raw).hexdigest()
    status, body = await submit_once(
        request,
        key,
        digest,
        action,
        submit,
        lambda h: (201, _created(h).model_dump_json(exclude_none=True).encode()),
    )
    return web.Response(status=status, body=body, content_type="application/json")


async def submit_once(
    request: web.Request,
    key: str | None,
    digest: str,
    action: str,
    submit: Submit,
    answer: Callable[[list[Header]], tuple[int, bytes]],
) -> tuple[int, bytes]:
    """Run ``submit`` once per (officer, ``key``): a repeat gets the first ``answer`` (status, body) again,
    a different request under the same key (another ``digest``) is a :class:`Conflict`.

    The audit entry and the kept answer are written in the same transaction as the messages, so a crash can
    never leave a message without its record (and a retried request without its answer). The console's forms
    use it too, with a key written into each form, so that a double click or a resubmitted page sends once.
    """
    officer: str = request[OFFICER]
    officers = request.config_dict[OFFICERS]
    now = _service(request).clock()
    lock = _idempotency_locks.setdefault((officer, key), asyncio.Lock()) if key else asyncio.Lock()
    async with lock:
        if key is not None:
            stored = await officers.idempotent_response(officer, key, now)
            if stored is not None:
                request_hash, status, body = stored
                if request_hash != digest:
                    raise Conflict("Idempotency-Key was used for a different request")
                return status, body
        given: list[tuple[int, bytes]] = []

        def records(headers: list[Header]) -> list[Effect]:
            given.append(answer(headers))
            rows: list[Effect] = [Audit(now, officer, action, h.id, "ok") for h in headers]
            if key is not None:
                rows.append(KeepAnswer(officer, key, digest, *given[0], now))
            return rows

        await submit(records)
        return given[0]


async def create_enquiry(request: web.Request) -> web.Response:
    """POST /v1/enquiries."""
    service = _service(request)
    raw = await read_body(request, service.config.limits)
    new = _parse(NewEnquiry, raw)
    officer: str = request[OFFICER]
    return await _create(
        request,
        raw,
        "send_enquiry",
        lambda records: service.submit_enquiry(
            new.body(), new.recipients, new.area, new.urgency, officer, records
        ),
    )


async def create_notice(request: web.Request) -> web.Response:
    """POST /v1/notices."""
    service = _service(request)
    raw = await read_body(request, service.config.limits)
    new = _parse(NewNotice, raw)
    officer: str = request[OFFICER]
    recipients = service.everyone() if new.recipients == "all" else new.recipients
    return await _create(
        request,
        raw,
        "send_notice",
        lambda records: service.submit_notice(
            new.body(), recipients, new.area, new.urgency, officer, records
        ),
    )


async def list_drafts(request: web.Request) -> web.Response:
    """GET /v1/notices/drafts: draft notices waiting for an officer, opened (they never left this node)."""
    return _json(DraftNotices(items=await draft_notices(_service(request))))


async def draft_notices(service: NodeService) -> list[DraftNotice]:
    """Every draft not sent yet, opened, oldest first."""
    return [
        DraftNotice(
            id=d.id,
            recipient=d.recipient,
            area=d.area,
            urgency=d.urgency,
            origin=d.origin,
            created_at=d.created_at,
            notice=service.open_draft(d),
        )
        for d in await service.drafts.unsent()
    ]


async def send_draft(request: web.Request) -> web.Response:
    """POST /v1/notices/drafts/{id}/send: the draft becomes a sealed notice, queued for its recipient."""
    service = _service(request)
    draft_id = message_id_of(request)
    raw = await read_body(request, service.config.limits)
    officer: str = request[OFFICER]
    return await _create(
        request, raw, "send_notice", lambda records: service.send_draft(draft_id, officer, records)
    )


async def discard_draft(request: web.Request) -> web.Response:
    """DELETE /v1/notices/drafts/{id}."""
    await forget_draft(request, message_id_of(request))
    return web.Response(status=204)


async def forget_draft(request: web.Request, draft_id: str) -> None:
    """Discard an unsent draft (audited), or NotFound."""
    service = _service(request)
    await service.drafts.discard(draft_id)
    await request.config_dict[OFFICERS].audit(
        request[OFFICER], "discard_draft", draft_id, "ok", service.clock()
    )


async def create_reply(request: web.Request) -> web.Response:
    """POST /v1/messages/{id}/replies."""
    service = _service(request)
    message_id = message_id_of(request)
    raw = await read_body(request, service.config.limits)
    new = _parse(NewReply, raw)
    officer: str = request[OFFICER]
    return await _create(
        request,
        raw,
        "send_reply",
        lambda records: service.submit_reply(message_id, new.body(), officer, records, sender_of(request)),
    )


async def list_messages(request: web.Request) -> web.Response:
    """GET /v1/messages?folder=&peer=&state=&area=&kind=&overdue=&limit=&cursor=&subject=&q=."""
    service = _service(request)
    query = request.query
    folder = query.get("folder", "inbox")
    if folder not in FOLDERS:
        raise Malformed(f"folder must be one of {', '.join(FOLDERS)}")
    state = query.get("state") or None
    if state is not None and state not in STATES:
        raise Malformed(f"state must be one of {', '.join(STATES)}")
    kind = query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise Malformed(f"kind must be one of {', '.join(KINDS)}")
    overdue = query.get("overdue", "").lower() in ("1", "true", "yes") or state == "overdue"
    try:
        limit = min(max(int(query.get("limit", "50")), 1), 500)
    except ValueError as exc:
        raise Malformed("limit must be a number") from exc
    after = decode_cursor(query["cursor"]) if query.get("cursor") else None
    peer = query.get("peer")
    filters: dict[str, Any] = {
        "peer": peer.upper() if peer else None,
        "state": None if state == "overdue" else state,
        "area": query.get("area") or None,
        "kind": kind,
        "overdue": overdue,
        "after": after,
    }
    if query.get("q"):
        found = await search(service, folder, query["q"], limit, filters)
        return _json(
            Page(
                items=[MessageSummary.model_validate(v.summary()) for v in found.views],
                next=encode_cursor(found.last) if found.last else None,
                searched=found.scanned,
            )
        )
    rows = await service.mailbox.listing(folder, **filters, limit=limit + 1, now=service.clock())
    items = [MessageSummary.model_validate(r.summary()) for r in rows[:limit]]
    if query.get("subject", "").lower() in ("1", "true", "yes"):
        items = [
            item.model_copy(update={"subject": await _subject(service, view)})
            for item, view in zip(items, rows, strict=False)
        ]
    cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return _json(Page(items=items, next=cursor))


async def _subject(service: NodeService, view: MessageView) -> str | None:
    """A message's subject, for triage without opening (and so marking read) each message. It is sealed, so
    each costs a decryption: listings include it only when asked (``?subject=true``)."""
    if view.kind is Kind.REPLY:
        return None
    full = await service.mailbox.get(view.id, service.clock(), view.sender)
    try:
        body = await asyncio.to_thread(service.open_message, full)
    except (Purged, CannotOpen):  # purged under retention, or recovered after a restore without its body
        return None
    return body.subject if isinstance(body, EnquiryBody | NoticeBody) else None


def encode_cursor(view: MessageView) -> str:
    """Where the next page of a listing starts (the console pages the same way)."""
    return base64.urlsafe_b64encode(json.dumps([view.created_at, view.id]).encode()).decode()


def decode_cursor(text: str) -> tuple[str, str]:
    """The position a cursor names; a cursor that was not ours is refused."""
    try:
        created_at, message_id = json.loads(base64.urlsafe_b64decode(text.encode()))
        return str(created_at), check_uuid(str(message_id))
    except (ValueError, TypeError, Malformed) as exc:
        raise Malformed("invalid cursor") from exc


async def message_detail(service: NodeService, view: MessageView) -> MessageDetail:
    """A message opened, with its attachments listed and its receipt (the console shows the same)."""
    body = await asyncio.to_thread(service.open_message, view)  # a large body decrypts off the event loop
    data = view.summary()
    content = body.model_dump(exclude={"attachments", "kind"})
    data.update(content)
    data["attachments"] = [
        AttachmentInfo(
            index=i,
            name=a.name,
            media_type=a.media_type,
            size=len(a.data),
            url=f"/v1/messages/{view.id}/attachments/{i}",
        )
        for i, a in enumerate(body.attachments)
    ]
    data["receipt"] = receipt_of(view)
    return MessageDetail.model_validate(data)


async def show_message(request: web.Request) -> web.Response:
    """GET /v1/messages/{id}: the message, opened, with its thread listed (headers, states and receipts)."""
    service = _service(request)
    message_id = message_id_of(request)
    now = service.clock()
    view = await service.mailbox.get(message_id, now, sender_of(request))
    current = await message_detail(service, view)
    thread = [
        ThreadEntry.model_validate({**v.summary(), "receipt": receipt_of(v)})
        for v in await service.mailbox.thread(view.thread, now)
    ]
    await request.config_dict[OFFICERS].audit(
        request[OFFICER], "open_message", message_id, "ok", service.clock()
    )
    return _json(Thread(message=current, thread=thread))


def receipt_of(view: MessageView) -> Receipt | None:
    """The signed receipt a message holds, if any."""
    return Receipt.model_validate_json(view.receipt) if view.receipt else None


async def mark_read(request: web.Request) -> web.Response:
    """POST /v1/messages/{id}/read."""
    service = _service(request)
    message_id = message_id_of(request)
    sender = sender_of(request)
    await service.mark_read(message_id, sender)
    await request.config_dict[OFFICERS].audit(
        request[OFFICER], "mark_read", message_id, "ok", service.clock()
    )
    view = await service.mailbox.get(message_id, service.clock(), sender)
    return web.json_response({"id": message_id, "state": view.state, "read_at": view.read_at})


async def acknowledge(request: web.Request) -> web.Response:
    """POST /v1/messages/{id}/acknowledge: a received deconfliction notice (the sender is told)."""
    service = _service(request)
    message_id = message_id_of(request)
    view = await service.acknowledge(message_id, sender_of(request))
    await request.config_dict[OFFICERS].audit(
        request[OFFICER], "acknowledge_notice", message_id, "ok", service.clock()
    )
    return web.json_response({"id": message_id, "state": view.state, "acknowledged_at": view.acknowledged_at})


async def attachment(request: web.Request) -> web.StreamResponse:
    """GET /v1/messages/{id}/attachments/{index}: the bytes, as a download."""
    service = _service(request)
    message_id = message_id_of(request)
    view = await service.mailbox.get(message_id, service.clock(), sender_of(request))
    body = await asyncio.to_thread(service.open_message, view)
    try:
        item = body.attachments[int(request.match_info["index"])]
    except (ValueError, IndexError) as exc:
        raise NotFound from exc
    await request.config_dict[OFFICERS].audit(
        request[OFFICER], "download_attachment", message_id, "ok", service.clock()
    )
    ascii_name = item.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return web.Response(
        body=item.data,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(item.name)}",
            "X-Content-Type-Options": "nosniff",
            "X-Ncpx-Media-Type": item.media_type,
        },
    )


def _ago(moment: float | None) -> str | None:
    return format_time(datetime.fromtimestamp(moment).astimezone()) if moment else None


async def peer_views(service: NodeService, worker: DeliveryWorker) -> Peers:
    """The roster as this node sees it, with delivery state per peer (the console shows the same)."""
    backlog = await service.mailbox.backlog()
    now = datetime.now().timestamp()
    views = []
    for member in service.trust.roster.participants:
        if member.id == service.me:
            continue
        state = worker.peers.get(member.id)
        reachable = None
        if state is not None and (state.last_success or state.failures):
            reachable = state.failures == 0
        views.append(
            PeerView(
                id=member.id,
                name=member.name,
                role=member.role.value,
                url=member.url,
                status=member.status.value,
                backlog=backlog.get(member.id, 0),
                reachable=reachable,
                failures=state.failures if state else 0,
                last_error=state.last_error if state else None,
                last_success_at=_ago(state.last_success) if state else None,
                last_seen_at=_ago(state.last_seen) if state else None,
                unreachable_since=_ago(state.unreachable_since) if state else None,
                next_attempt_in_s=round(state.next_attempt - now, 1)
                if state and state.next_attempt > now
                else None,
            )
        )
    return Peers(me=service.me, roster_version=service.trust.roster.version, peers=views)


async def peers(request: web.Request) -> web.Response:
    """GET /v1/peers: the roster with delivery state per peer."""
    return _json(await peer_views(_service(request), request.config_dict[WORKER]))


async def submit_outcome(request: web.Request) -> web.Response:
    """POST /v1/outcomes: this country's signed outcome return, queued for the coordinator."""
    service = _service(request)
    raw = await read_body(request, service.config.limits)
    new = _parse(NewOutcome, raw)
    officer: str = request[OFFICER]
    audit = Audit(service.clock(), officer, "submit_outcome", new.period, "ok")
    outcome = await service.submit_outcome(new.period, new.figures, new.highlights, officer, audit)
    queued = OutcomeQueued(
        period=outcome.period,
        participant=outcome.participant,
        submitted_at=format_time(outcome.submitted_at),
        figures=outcome.figures,
        highlights_sealed=outcome.highlights is not None,
    )
    return _json(queued, 202)


async def reminders(request: web.Request) -> web.Response:
    """GET /v1/reminders: what the coordinator reminded this node of (a missing outcome return), newest first."""
    kept = await Reminders(_service(request).mailbox.db).recent()
    return web.json_response({"reminders": [r._asdict() for r in kept]})


def routes() -> list[web.RouteDef]:
    """The officer routes, mounted under ``/v1`` on country nodes."""
    return [
        web.post("/enquiries", create_enquiry),
        web.get("/messages", list_messages),
        web.get("/messages/{id}", show_message),
        web.post("/messages/{id}/replies", create_reply),
        web.post("/messages/{id}/read", mark_read),
        web.post("/messages/{id}/acknowledge", acknowledge),
        web.post("/notices", create_notice),
        web.get("/notices/drafts", list_drafts),
        web.post("/notices/drafts/{id}/send", send_draft),
        web.delete("/notices/drafts/{id}", discard_draft),
        web.get("/messages/{id}/attachments/{index}", attachment),
        web.get("/peers", peers),
        web.post("/outcomes", submit_outcome),
        web.get("/reminders", reminders),
    ]
