"""``GET /metrics`` on the officer listener, and the count of refusals on both listeners.

Who may scrape: the officer listener is on loopback unless its operator chose otherwise, but what it serves
there is also for officers' browsers, so the figures are not left open to whoever reaches it. Without
``[officer] metrics_token`` only a client on this machine (a loopback address, as the trusted reverse proxy
reports it) may scrape; with one, every scrape must present it as a bearer token, from wherever it comes (the
case of Prometheus in another container). An officer's token does not open ``/metrics``, and the metrics token
opens nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import shutil
from ipaddress import ip_address
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from node.coordinator.api import COORDINATOR
from node.federation_api import LIMITER, SERVICE, WORKER
from node.metrics import METRICS, NodeLag, Snapshot
from node.problems import REFUSED, Handler
from node.storage.gauges import Gauges
from protocol.encoding import parse_time
from protocol.errors import Unauthorized

PATH = "/metrics"

LOCAL_ONLY = (
    "metrics are served only to this machine: scrape from 127.0.0.1, or set [officer] metrics_token and send "
    "it as a bearer token"
)
SCRAPE_REFUSED = "metrics need the bearer token set as [officer] metrics_token: send it in Authorization"


def _from_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ip_address(remote).is_loopback
    except ValueError:
        return False


def _check_access(request: web.Request) -> None:
    """Refuse a scrape that is neither local (with no token configured) nor carries the configured token;
    wrong tokens count towards the address's failure limit, as officers' do."""
    service = request.config_dict[SERVICE]
    expected = service.config.officer.metrics_token
    if expected is None:
        if not _from_loopback(request.remote):
            raise Unauthorized(LOCAL_ONLY)
        return
    limiter, now, address = request.config_dict[LIMITER], service.clock(), request.remote or "unknown"
    limiter.check(address, now)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        limiter.failed(address, now)
        raise Unauthorized(SCRAPE_REFUSED)


def _sizes(database: Path, folder: Path) -> tuple[int, int]:
    """Bytes of the database and its write-ahead log, and bytes free where the data folder is."""
    used = 0
    for path in (database, database.with_name(database.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            used += os.stat(path).st_size
    return used, shutil.disk_usage(folder).free


async def snapshot(request: web.Request) -> Snapshot:
    """The figures a scrape reports, read now: the database's tables, its files, the worker's clock offsets."""
    service = request.config_dict[SERVICE]
    config = service.config
    gauges = Gauges(service.mailbox.db)
    now = service.clock()
    nodes: dict[str, NodeLag] = {}
    coordinator = request.config_dict.get(COORDINATOR)
    if coordinator is not None:
        for node, (seen, _, backlog, oldest, _) in (await coordinator.store.node_reports()).items():
            heard = parse_time(seen)
            lag = (heard - parse_time(oldest)).total_seconds() if oldest and backlog else 0.0
            nodes[node] = NodeLag(backlog, max(0.0, lag), max(0.0, (now - heard).total_seconds()))
    database_bytes, free_bytes = await asyncio.to_thread(_sizes, config.database, config.data_dir)
    return Snapshot(
        participant=service.me,
        role=config.role,
        roster_version=service.trust.roster.version,
        messages=await gauges.messages(),
        queued=await gauges.queued(),
        now=now.timestamp(),
        coordinator=service.coordinator(),
        clock_offsets=request.config_dict[WORKER].clock_offsets(),
        database_bytes=database_bytes,
        free_bytes=free_bytes,
        nodes=nodes,
    )


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this participant's registry."""
    _check_access(request)
    registry = request.config_dict[METRICS]
    async with registry.scraping:  # one snapshot rendered at a time: two scrapes never mix their figures
        registry.state.snapshot = await snapshot(request)
        body = generate_latest(registry.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def count_refusals(listener: str) -> Middleware:
    """A middleware counting the problem responses of ``listener`` by code."""

    @web.middleware
    async def counted(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        code = response.get(REFUSED)
        if code is not None:
            request.config_dict[METRICS].refusals.labels(listener, code).inc()
        return response

    return counted
