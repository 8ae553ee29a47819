"""Federation API (mounted at ``/federation/v1``): what peer nodes call. Every request is signed by a roster member.

Order of work for envelopes: authenticate the request, verify and open each envelope, store it, and only then
return the signed receipt. A refused envelope changes nothing stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any, TypeVar

from aiohttp import web

from node.delivery import DeliveryWorker
from node.logs import bind
from node.matching import Matcher
from node.metrics import METRICS
from node.problems import problem_body, problem_response, read_body
from node.service import NodeService
from node.storage.officers import Officers
from node.storage.reminders import Reminder, Reminders
from node.storage.resync import PARTS, ResyncStore
from node.throttle import FailureLimiter, PeerQuota
from node.tls import FederationTls
from protocol.codes import normalise_participant
from protocol.encoding import format_time, parse_json, parse_time
from protocol.envelope import parse_model, split_batch
from protocol.errors import (
    BadSignature,
    Malformed,
    NotACoordinator,
    NotANode,
    NotForUs,
    NotFound,
    UnknownKey,
    UnknownSender,
    WrongCertificate,
)
from protocol.match_messages import Blinded, Done, Offer, Result
from protocol.models import Model
from protocol.requests import SENDER, SignedRequest, check_body, verify_request_head

log = logging.getLogger("ncpx.federation")

SERVICE = web.AppKey("service", NodeService)
LIMITER = web.AppKey("limiter", FailureLimiter)
"""Failed attempts per address, shared by every surface of the node."""
QUOTA = web.AppKey("quota", PeerQuota)
"""What each peer delivered in the last minute."""
BODIES = web.AppKey("bodies", asyncio.Semaphore)
"""Turns for reading peers' bodies (``limits.concurrent_bodies`` at a time)."""
WORKER = web.AppKey("worker", DeliveryWorker)
M = TypeVar("M", bound=Model)
MATCHER = web.AppKey("matcher", Matcher)
"""Both sides of private matching sessions (country nodes only)."""
TLS = web.AppKey("tls", FederationTls)
"""Mutual TLS of the federation listener, when the node has a certificate."""


def _member(service: NodeService, claimed: str) -> str | None:
    """The roster member a request claims to come from, if it is one (and not ourselves)."""
    try:
        participant = normalise_participant(claimed)
        service.trust.roster.get(participant)
    except (Malformed, UnknownSender):
        return None
    return participant if participant != service.me else None


async def authenticated(request: web.Request) -> tuple[SignedRequest, Any]:
    """Verify a federation request's signature and parse its JSON body; the signer counts as alive."""
    signed, body = await authenticated_bytes(request)
    return signed, parse_json(body, len(body))


async def authenticated_bytes(request: web.Request) -> tuple[SignedRequest, bytes]:
    """Verify a federation request's signature; its body as it arrived. The signer counts as alive.

    The signature headers are checked before a byte of the body is read: a caller that cannot sign as a
    roster member never gets a buffer filled, however large a body it announces.
    """
    service = request.config_dict[SERVICE]
    limiter, now, address = request.config_dict[LIMITER], service.clock(), request.remote or "unknown"
    limiter.check(address, now)
    try:
        signed = verify_request_head(
            request.method,
            request.path,
            request.headers,
            service.trust.roster,
            service.me,
            service.clock(),
            service.config.skew,
        )
    except UnknownKey:
        # A member signing with a key we do not know has most likely rotated, so its roster is newer than ours:
        # fetch it (the authority's signature on it, not this request, decides whether it is adopted).
        member = _member(service, request.headers.get(SENDER, ""))
        if member is not None:
            request.config_dict[WORKER].fetch_roster_soon(member)
        raise
    except (BadSignature, UnknownSender, NotForUs, Malformed):
        # Nobody the roster names, or a forgery: counted per address. A member refused for now (a key we do
        # not know yet, a clock off) retries with its own backoff and is not counted.
        limiter.failed(address, now)
        raise
    bind(peer=signed.sender)
    _check_certificate(request, signed.sender)
    async with request.config_dict[BODIES]:
        body = await read_body(request, service.config.limits)
    await asyncio.to_thread(check_body, signed, body)  # hashing a maximal body takes tens of milliseconds
    request.config_dict[WORKER].peer_alive(signed.sender)
    return signed, body


def _check_certificate(request: web.Request, sender: str) -> None:
    """Over mutual TLS, the request must be signed by the member whose certificate opened the connection: a
    member cannot lend its connection to another's signature, nor use another's stolen certificate."""
    tls = request.config_dict.get(TLS)
    if tls is None:
        return
    connection = request.transport.get_extra_info("ssl_object") if request.transport else None
    certificate = connection.getpeercert(binary_form=True) if connection is not None else None
    if tls.participant(certificate) != sender:
        raise WrongCertificate(
            "this connection's TLS certificate is not the one the roster lists for the request's signer: "
            "call with your own node's certificate"
        )


async def envelopes(request: web.Request) -> web.Response:
    """Accept a batch of envelopes; per-envelope receipts or problems, 4xx when none was accepted."""
    signed, body = await authenticated_bytes(request)
    items = split_batch(body)
    service = request.config_dict[SERVICE]
    request.config_dict[QUOTA].take(signed.sender, len(items), len(body), service.clock())
    results = await service.receive(signed.sender, items)
    rendered: list[dict[str, Any]] = []
    refused: Counter[str] = Counter()
    for result in results:
        if result.receipt is not None:
            rendered.append({"id": result.id, "receipt": result.receipt.wire()})
        else:
            assert result.error is not None
            refused[result.error.code] += 1
            item: dict[str, Any] = {"id": result.id, "problem": problem_body(result.error)}
            if result.refusal is not None:
                item["refusal"] = result.refusal.wire()
            rendered.append(item)
    # Counted and logged by code only: a refused envelope leaves no trace here, not even its id in the log.
    for code, count in sorted(refused.items()):
        request.config_dict[METRICS].envelopes_refused.labels(signed.sender, code).inc(count)
        log.warning("envelopes refused", extra={"code": code, "count": count})
    if all(r.receipt is None for r in results):
        first = results[0].error
        assert first is not None
        return problem_response(first, results=rendered)
    return web.json_response({"results": rendered})


async def status(request: web.Request) -> web.Response:
    """Read notices about messages we sent to the requesting peer."""
    signed, payload = await authenticated(request)
    items = payload.get("statuses") if isinstance(payload, dict) else None
    if not isinstance(items, list) or len(items) > 10_000:
        raise Malformed("expected {statuses: [...]}")
    applied = await request.config_dict[SERVICE].receive_statuses(signed.sender, items)
    return web.json_response({"applied": applied})


async def reminder(request: web.Request) -> web.Response:
    """The coordinator of a period this node takes part in reminds it of its missing outcome return; kept for
    the officers (``GET /v1/reminders``). Metadata only: a period, what is missing, when."""
    signed, payload = await authenticated(request)
    service = request.config_dict[SERVICE]
    if not isinstance(payload, dict) or payload.get("about") != "outcome_return":
        raise Malformed("expected {period, about: outcome_return, sent_at}")
    name, sent_at = payload.get("period"), payload.get("sent_at")
    if not isinstance(name, str) or not isinstance(sent_at, str):
        raise Malformed("expected {period, about: outcome_return, sent_at}")
    period = service.trust.roster.period(name)
    if signed.sender != period.coordinator:
        raise NotACoordinator(f"only the coordinator of {name} sends reminders about it")
    if service.me not in period.participants:
        raise NotFound(f"this node does not take part in {name}")
    at = format_time(service.clock())
    await Reminders(service.mailbox.db).keep(
        Reminder(name, signed.sender, "outcome_return", format_time(parse_time(sent_at)), at)
    )
    return web.json_response({"stored": True, "received_at": at})


async def hello(request: web.Request) -> web.Response:
    """A peer (re)started: its backoff is already reset by authentication; tell it our roster version."""
    signed, payload = await authenticated(request)
    service = request.config_dict[SERVICE]
    theirs = payload.get("roster_version") if isinstance(payload, dict) else None
    if isinstance(theirs, int) and theirs > service.trust.roster.version:
        request.config_dict[WORKER].fetch_roster_soon(signed.sender)
    return web.json_response({"participant": service.me, "roster_version": service.trust.roster.version})


async def roster(request: web.Request) -> web.Response:
    """The signed roster we hold (public: its authority signature is what makes it trustworthy)."""
    service = request.config_dict[SERVICE]
    return web.Response(body=service.trust.roster.signed.to_bytes(), content_type="application/json")


async def _matching(request: web.Request, model: type[M]) -> tuple[str, M]:
    """A signed matching request from a country node, parsed; only country nodes take part."""
    signed, body = await authenticated_bytes(request)
    if not request.config_dict[SERVICE].trust.roster.is_node(signed.sender):
        raise NotANode("only country nodes take part in private matching")
    return signed.sender, parse_model(model, body, len(body))


async def match_offer(request: web.Request) -> web.Response:
    """A peer offers a matching session: accepted within its daily budget."""
    peer, offer = await _matching(request, Offer)
    return web.json_response((await request.config_dict[MATCHER].on_offer(peer, offer)).wire())


async def match_blinded(request: web.Request) -> web.Response:
    """A peer's blinded items: answered, with the digests of our own list."""
    peer, blinded = await _matching(request, Blinded)
    return web.json_response((await request.config_dict[MATCHER].on_blinded(peer, blinded)).wire())


async def match_result(request: web.Request) -> web.Response:
    """A peer closes its session, with its sealed claims."""
    peer, result = await _matching(request, Result)
    await request.config_dict[MATCHER].on_result(peer, result)
    return web.json_response(Done(session=result.session).wire())


def matching_routes() -> list[web.RouteDef]:
    """Private matching between country nodes (:mod:`node.matching`)."""
    return [
        web.post("/match/offer", match_offer),
        web.post("/match/blinded", match_blinded),
        web.post("/match/result", match_result),
    ]


RESYNC_PAGE = 500
"""Most messages in one page of a re-sync answer (fewer when their envelopes pass the byte budget)."""


async def resync(request: web.Request) -> web.Response:
    """A peer restored from a backup asks what we hold for it since a time (:mod:`node.resync`): a page of
    ``sent_by_us`` (its envelopes we received, our receipts, when our officers read or acknowledged them) or
    of ``sent_to_us`` (our envelopes to it, with its receipts). Only the signer's own messages are ever
    returned, and envelopes as they are stored: sealed, readable by their recipient alone."""
    signed, payload = await authenticated(request)
    service = request.config_dict[SERVICE]
    shape = "expected {part: sent_by_us or sent_to_us, since, after: null or [delivered_at, sender, id]}"
    if not isinstance(payload, dict) or payload.get("part") not in PARTS:
        raise Malformed(shape)
    after = payload.get("after")
    if after is not None and not (
        isinstance(after, list) and len(after) == 3 and all(isinstance(v, str) for v in after)
    ):
        raise Malformed(shape)
    since = format_time(parse_time(str(payload.get("since"))))
    page = await ResyncStore(service.mailbox.db).held_for(
        signed.sender,
        payload["part"],
        since,
        tuple(after) if after is not None else None,
        RESYNC_PAGE,
        service.config.limits.max_request_bytes,
    )
    await Officers(service.mailbox.db).audit(
        f"peer {signed.sender}", "resync_answer", payload["part"], f"ok: {len(page)}", service.clock()
    )
    items = [
        {
            "envelope": held.envelope.decode("utf-8"),
            "receipt": json.loads(held.receipt) if held.receipt else None,
            "read_at": held.read_at,
            "acknowledged_at": held.acknowledged_at,
        }
        for held in page
    ]
    # The asker pages on until an empty page: one request more than needed, and no count to get wrong.
    return web.json_response({"items": items, "next": list(page[-1].cursor) if page else None})


def envelope_routes() -> list[web.RouteDef]:
    """Where messages, read notices and the coordinator's reminders arrive: mounted on country nodes only, so
    the coordinator cannot take one."""
    return [
        web.post("/envelopes", envelopes),
        web.post("/status", status),
        web.post("/reminders", reminder),
        web.post("/resync", resync),
    ]


def member_routes() -> list[web.RouteDef]:
    """What every roster member offers every other, whatever its role: hello and the roster it holds."""
    return [web.post("/hello", hello), web.get("/roster", roster)]
