"""Officer API for private matching (under ``/v1``): the hits found, and a matching round run on request."""

from __future__ import annotations

from aiohttp import web

from node.api_models import Hits, HitView, MatchOutcome, MatchRun, MatchRuns
from node.delivery import TransportError
from node.federation_api import MATCHER, SERVICE
from node.officer_api import OFFICER, OFFICERS
from node.problems import read_body
from protocol.codes import normalise_participant
from protocol.encoding import format_time
from protocol.envelope import parse_model
from protocol.errors import NcpxError, NotANode


async def hits(request: web.Request) -> web.Response:
    """GET /v1/hits: items a peer also holds, each with our case and, once known, theirs."""
    return web.json_response(Hits(items=await hit_views(request)).wire())


async def hit_views(request: web.Request) -> list[HitView]:
    """Every hit, newest first, as the officer API and the console show it."""
    matcher = request.config_dict[MATCHER]
    own = await matcher.items(request.config_dict[SERVICE].clock())
    views = []
    for hit in await matcher.store.hits():
        ours = own.get(hit.token)
        views.append(
            HitView(
                peer=hit.peer,
                kind=ours.kind if ours else hit.token.split(":", 1)[0],
                item=hit.token,
                our_case=ours.case if ours else "",
                our_contact=ours.contact if ours else "",
                peer_case=hit.peer_case,
                peer_contact=hit.peer_contact,
                found_at=format_time(hit.found_at),
                found_by=hit.found_by,
            )
        )
    return views


async def run(request: web.Request) -> web.Response:
    """POST /v1/matching: a round with one peer, or with every other country node; each session's result."""
    raw = await read_body(request, request.config_dict[SERVICE].config.limits)
    asked = parse_model(MatchRun, raw or b"{}", len(raw) + 2)
    return web.json_response(MatchRuns(sessions=await match_round(request, asked.peer)).wire())


async def match_round(request: web.Request, peer_asked: str | None) -> list[MatchOutcome]:
    """A round with one peer, or with every other country node when ``peer_asked`` is None (audited).

    A session that fails is one outcome with its error sentence; the others still run.
    """
    service = request.config_dict[SERVICE]
    if peer_asked is None:
        peers = service.trust.peers()
    else:
        peer = normalise_participant(peer_asked)
        if peer == service.me or not service.trust.roster.is_node(peer):
            raise NotANode(
                f"{peer} is not another country node in the roster: matching runs between countries"
            )
        peers = [peer]
    matcher = request.config_dict[MATCHER]
    outcomes = []
    for peer in peers:
        try:
            done = await matcher.ask(peer)
            outcomes.append(
                MatchOutcome(peer=peer, asked=done.asked, matched=done.matched, new_hits=len(done.new_hits))
            )
        except NcpxError as exc:
            outcomes.append(
                MatchOutcome(peer=peer, asked=0, matched=0, new_hits=0, error=f"{exc.code}: {exc.detail}")
            )
        except TransportError:
            outcomes.append(
                MatchOutcome(
                    peer=peer,
                    asked=0,
                    matched=0,
                    new_hits=0,
                    error=f"{peer} could not be reached; try again later",
                )
            )
    await request.config_dict[OFFICERS].audit(
        request[OFFICER], "match_run", ",".join(peers) or None, "ok", service.clock()
    )
    return outcomes


def routes() -> list[web.RouteDef]:
    """Mounted under ``/v1`` on country nodes."""
    return [web.get("/hits", hits), web.post("/matching", run)]
