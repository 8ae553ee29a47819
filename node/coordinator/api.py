"""The coordinator's HTTP surface: records and outcome returns from nodes, tallies for the coordinator's staff.

``/federation/v1/records`` and ``/federation/v1/outcomes`` take signed requests from roster members, like every
federation route. ``/v1/period/...`` needs a coordinator officer token, like the officer API of a node.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from node.coordinator.report import FORMATS, build, render
from node.coordinator.service import CoordinatorService, RecordResult
from node.coordinator.store import Window
from node.coordinator.tallies import compute, flags, open_enquiries
from node.federation_api import authenticated
from node.metrics import METRICS
from node.problems import problem_body, problem_response
from protocol.encoding import format_time
from protocol.errors import Malformed, NotANode
from protocol.outcome import OutcomeReturn, open_highlights
from protocol.period import Period

COORDINATOR = web.AppKey("coordinator", CoordinatorService)
log = logging.getLogger("ncpx.coordinator")


def _json(data: BaseModel | list[BaseModel] | dict[str, Any]) -> web.Response:
    if isinstance(data, BaseModel):
        return web.Response(text=data.model_dump_json(), content_type="application/json")
    if isinstance(data, list):
        return web.json_response([item.model_dump(mode="json") for item in data])
    return web.json_response(data)


async def records(request: web.Request) -> web.Response:
    """POST /federation/v1/records: a batch of signed metadata records."""
    signed, payload = await authenticated(request)
    results = await request.config_dict[COORDINATOR].receive_records(signed.sender, payload)
    return _results(request, signed.sender, results)


async def match_records(request: web.Request) -> web.Response:
    """POST /federation/v1/match-records: a batch of signed matching records (counts, never items)."""
    signed, payload = await authenticated(request)
    results = await request.config_dict[COORDINATOR].receive_match_records(signed.sender, payload)
    return _results(request, signed.sender, results)


def _results(request: web.Request, sender: str, results: list[RecordResult]) -> web.Response:
    """Each record's outcome, counted in the metrics; a batch refused whole is answered with the first
    refusal's problem."""
    rendered = [
        {"record_id": r.record_id, "ok": True}
        if r.error is None
        else {"record_id": r.record_id, "problem": problem_body(r.error)}
        for r in results
    ]
    errors = [r.error for r in results if r.error is not None]
    _count(request, sender, len(results) - len(errors), Counter(e.code for e in errors))
    if results and len(errors) == len(results):
        return problem_response(errors[0], results=rendered)
    return web.json_response({"results": rendered})


def _count(request: web.Request, node: str, accepted: int, refused: Counter[str]) -> None:
    """Metrics of one batch, and a warning per code refused (with how many: a batch holds up to 5000)."""
    metrics = request.config_dict[METRICS]
    if accepted:
        metrics.records_accepted.labels(node).inc(accepted)
    for code, count in sorted(refused.items()):
        metrics.records_refused.labels(node, code).inc(count)
        log.warning("records refused", extra={"code": code, "count": count})


async def outcomes(request: web.Request) -> web.Response:
    """POST /federation/v1/outcomes: a country's signed outcome return."""
    signed, payload = await authenticated(request)
    outcome = await request.config_dict[COORDINATOR].receive_outcome(signed.sender, payload)
    return web.json_response({"period": outcome.period, "participant": outcome.participant, "stored": True})


def _period(request: web.Request) -> Period:
    return request.config_dict[COORDINATOR].trust.roster.period(request.match_info["name"])


async def list_periods(request: web.Request) -> web.Response:
    """GET /v1/period: the periods declared in the roster."""
    periods = request.config_dict[COORDINATOR].trust.roster.signed.roster.periods or []
    return _json({"periods": [p.model_dump(mode="json") for p in periods]})


async def tallies(request: web.Request) -> web.Response:
    """GET /v1/period/{name}/tallies."""
    coordinator = request.config_dict[COORDINATOR]
    return _json(await compute(coordinator.store, _period(request), coordinator.clock(), coordinator.grace_s))


async def outstanding(request: web.Request) -> web.Response:
    """GET /v1/period/{name}/outstanding[?overdue=true]: unanswered enquiries (ids, pair, age)."""
    coordinator = request.config_dict[COORDINATOR]
    overdue = request.query.get("overdue", "").lower() in ("1", "true", "yes")
    try:
        limit = min(max(int(request.query.get("limit", "1000")), 1), 10_000)
    except ValueError as exc:
        raise Malformed("limit must be a number") from exc
    items = await open_enquiries(coordinator.store, _period(request), coordinator.clock(), overdue, limit)
    return _json({"items": [i.model_dump(mode="json") for i in items]})


async def flagged(request: web.Request) -> web.Response:
    """GET /v1/period/{name}/flags: unconfirmed and disputed exchanges."""
    coordinator = request.config_dict[COORDINATOR]
    now = coordinator.clock()
    items = await flags(coordinator.store, Window(_period(request), now), now, coordinator.grace_s)
    return _json({"items": [i.model_dump(mode="json") for i in items]})


async def nodes(request: web.Request) -> web.Response:
    """GET /v1/period/{name}/nodes: whether each participant is up (``up``, ``idle``, ``down`` since when, or
    ``never`` heard from), when it was last heard from, and its record lag."""
    coordinator = request.config_dict[COORDINATOR]
    period = _period(request)
    known = await coordinator.store.node_reports()
    now = format_time(coordinator.clock())
    result = []
    for participant in sorted(period.participants):
        seen, last_record, backlog, oldest, implausible = known.get(
            participant, (None, None, None, None, False)
        )
        alive = coordinator.liveness(seen, last_record)
        result.append(
            {
                "participant": participant,
                "state": alive.state,
                "down_since": alive.since,
                "last_seen_at": seen,
                "last_record_at": last_record,
                "backlog": backlog,
                "backlog_implausible": implausible,
                "oldest_queued_at": oldest,
                "as_of": now,
            }
        )
    return _json({"nodes": result})


def _opened(coordinator: CoordinatorService, returns: list[OutcomeReturn]) -> dict[str, str]:
    """The highlights of ``returns`` that were sealed to us, opened, per country."""
    identity = coordinator.trust.identity
    opened = {}
    for o in returns:
        key = identity.decryption_key(o.coordinator_key) if o.coordinator_key else None
        text = open_highlights(o, key) if key is not None else None
        if text is not None:
            opened[o.participant] = text
    return opened


async def outcome_list(request: web.Request) -> web.Response:
    """GET /v1/period/{name}/outcomes: the stored returns, with highlights opened (they were sealed to us)."""
    coordinator = request.config_dict[COORDINATOR]
    returns = await coordinator.store.outcomes(_period(request).name)
    highlights = _opened(coordinator, returns)
    rendered = [
        {
            "participant": o.participant,
            "submitted_at": format_time(o.submitted_at),
            "figures": o.figures.wire(),
            "highlights": highlights.get(o.participant),
        }
        for o in returns
    ]
    return _json({"outcomes": rendered})


CONTENT_TYPES = {"md": "text/markdown", "html": "text/html", "csv": "text/csv", "json": "application/json"}


async def report(request: web.Request) -> web.Response:
    """GET /v1/period/{name}/report?format=md|html|csv|json[&copy=own]: the co-chairs' debrief table."""
    return await report_response(request, _period(request))


async def report_response(request: web.Request, period: Period) -> web.Response:
    """The report of ``period`` in the ``format`` the query names (md by default), for the API and the
    dashboard's export buttons alike.

    A copy for sharing by default, which withholds the highlights countries sealed to the coordinator;
    ``copy=own`` is the coordinator's own copy, with them.
    """
    coordinator = request.config_dict[COORDINATOR]
    fmt = request.query.get("format", "md")
    if fmt not in FORMATS:
        raise Malformed(f"format must be one of {', '.join(FORMATS)}")
    copy = request.query.get("copy", "shared")
    if copy not in ("own", "shared"):
        raise Malformed("copy must be own or shared")
    tallied = await compute(coordinator.store, period, coordinator.clock(), coordinator.grace_s)
    returns = await coordinator.store.outcomes(period.name)
    highlights = _opened(coordinator, returns) if copy == "own" else None
    text = render(build(period, tallied, returns, highlights), fmt)
    headers = (
        {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"} if fmt == "html" else {}
    )
    return web.Response(text=text, content_type=CONTENT_TYPES[fmt], charset="utf-8", headers=headers)


def intake_routes() -> list[web.RouteDef]:
    """Record and outcome intake, mounted under ``/federation/v1``: what nodes call on the coordinator."""
    return [
        web.post("/records", records),
        web.post("/match-records", match_records),
        web.post("/outcomes", outcomes),
    ]


async def not_a_country_node(request: web.Request) -> web.Response:
    """A country node's officer route called on the coordinator: say so, instead of a bare "not found"."""
    raise NotANode(
        "this is a coordinator token (and the coordinator's node), and the coordinator neither sends nor "
        "receives messages: use your country node's address and your officer token there"
    )


def api_routes() -> list[web.RouteDef]:
    """Mounted under ``/v1``: what the coordinator's staff call (officer tokens of the coordinator node)."""
    return [
        web.post("/enquiries", not_a_country_node),
        web.get("/messages", not_a_country_node),
        web.route("*", "/messages/{tail:.*}", not_a_country_node),
        web.get("/period", list_periods),
        web.get("/period/{name}/tallies", tallies),
        web.get("/period/{name}/outstanding", outstanding),
        web.get("/period/{name}/flags", flagged),
        web.get("/period/{name}/nodes", nodes),
        web.get("/period/{name}/outcomes", outcome_list),
        web.get("/period/{name}/report", report),
    ]
