"""Assembling a node: storage, trust, service, delivery worker and the HTTP surfaces of its role, with their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from email.utils import format_datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from keys.identity import Identity
from keys.roster import Roster, parse_authority_public, parse_roster
from node import audit_api, console, federation_api, matching_api, officer_api, retention, watch_api
from node.config import NodeConfig
from node.coordinator import api as coordinator_api
from node.coordinator import dashboard
from node.coordinator.api import COORDINATOR
from node.coordinator.service import CoordinatorService
from node.coordinator.store import PostgresStore, SqliteStore
from node.delivery import DeliveryWorker
from node.federation_api import BODIES, LIMITER, MATCHER, QUOTA, SERVICE, TLS, WORKER
from node.logs import request_ids
from node.matching import Matcher
from node.metrics import METRICS, NodeMetrics
from node.metrics_api import count_refusals, metrics
from node.officer_api import OFFICERS, auth_middleware
from node.openapi import openapi_document
from node.problems import problems_middleware
from node.proxies import forwarded_middleware
from node.resync import Resyncer
from node.service import Clock, NodeService, system_clock
from node.storage.database import Database
from node.storage.mailbox import Mailbox
from node.storage.matching import MatchStore
from node.storage.officers import Officers
from node.storage.postgres import PostgresDatabase
from node.storage.watchlist import Watchlist
from node.throttle import FailureLimiter, PeerQuota
from node.tls import FederationTls
from node.trust import Trust
from node.version import VERSION
from protocol.encoding import format_time
from protocol.errors import ConfigError, NcpxError
from protocol.models import PROTOCOL_VERSION

log = logging.getLogger("ncpx.node")


def _read_roster_file(config: NodeConfig) -> bytes | None:
    try:
        return config.roster_file.read_bytes()
    except FileNotFoundError:
        return None


async def open_service(config: NodeConfig, clock: Clock = system_clock) -> tuple[Database, NodeService]:
    """Open storage and keys and build the service (used by the server and by operator commands).

    A configuration whose role differs from the roster's would mount the wrong surfaces (a coordinator taking
    envelopes, a country without its officer API), so it is refused here, before anything listens.
    """
    identity = Identity.load(config.keys_dir, config.key_passphrase())
    if identity.participant != config.id:
        raise NcpxError(f"key folder holds the identity of {identity.participant}, not {config.id}")
    db = await Database.open(config.database)
    try:
        trust = await Trust.load(
            identity,
            parse_authority_public(config.authority),
            db,
            config.roster_file,
            lambda: Identity.load(config.keys_dir, config.key_passphrase()),
        )
        listed = trust.roster.get(config.id).role
        if listed != config.role:
            raise ConfigError(
                f"the configuration gives role {config.role} but the roster lists {config.id} as {listed}: "
                f'set role = "{listed}" in node.toml or ask the roster authority to correct the roster'
            )
        _check_listed_url(config, trust.roster.get(config.id).url)
    except BaseException:
        await db.close()
        raise
    return db, NodeService(config, trust, Mailbox(db), clock)


def _check_listed_url(config: NodeConfig, url: str) -> None:
    """Peers call the URL the roster lists: one they cannot reach this listener at (its scheme disagrees with
    the listener's TLS, or it names no host) would fail every delivery to this node, far from here, as
    handshake or protocol errors; so the node refuses to start on it."""
    parts = urlsplit(url)
    tls = config.federation.tls_cert is not None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the roster lists {config.id} at {url}, which is not an http(s) URL with a host: ask the roster "
            "authority to correct it (ncpx roster rotate --url)"
        )
    if (parts.scheme == "https") != tls:
        has = "speaks TLS" if tls else "speaks plain HTTP (no [federation] tls_cert)"
        raise ConfigError(
            f"the roster lists {config.id} at {url} but its federation listener {has}, so peers could not "
            "deliver to it: make the listener and the roster's URL agree"
        )


async def livez(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: storage answers and takes writes, the roster held still verifies, and our clock agrees with
    the peers' (as the ``Date`` of their last answers shows)."""
    service = request.config_dict[SERVICE]
    db = service.mailbox.db
    try:
        await db.ping()
        if COORDINATOR in request.config_dict:
            await request.config_dict[COORDINATOR].store.ping()
        Roster(service.trust.roster.signed, service.trust.roster.authority)
    except Exception:
        return web.json_response({"status": "not ready"}, status=503)
    if not await db.writable(format_time(service.clock())):
        return web.json_response(
            {"status": "not ready", "reason": "storage full: free disk space"}, status=503
        )
    offsets = request.config_dict[WORKER].clock_offsets()
    # HTTP dates have whole seconds: allow one more than the skew peers accept before calling it off.
    off = {p: round(o) for p, o in offsets.items() if abs(o) > service.config.skew.total_seconds() + 1}
    if off:
        peer, seconds = max(off.items(), key=lambda item: abs(item[1]))
        direction = "behind" if seconds > 0 else "ahead of"
        return web.json_response(
            {
                "status": "not ready",
                "reason": f"this node's clock is {abs(seconds)} s {direction} {peer}'s: set it right (NTP); "
                "peers refuse its messages meanwhile",
                "clock_offsets_s": off,
            },
            status=503,
        )
    return web.json_response(
        {"status": "ready", "participant": service.me, "roster_version": service.trust.roster.version}
    )


async def version(request: web.Request) -> web.Response:
    """What runs here: release, protocol and database schema, for an operator planning an upgrade."""
    db = request.config_dict[SERVICE].mailbox.db
    return web.json_response(
        {
            "version": VERSION,
            "protocol_version": PROTOCOL_VERSION,
            "schema_version": await db.schema_version(),
        }
    )


async def adopt_roster_file(service: NodeService) -> None:
    """Adopt the roster in the roster file if it is newer (the operator drops one there and waits, or sends
    SIGHUP); one that does not verify is logged and left aside."""
    raw = _read_roster_file(service.config)
    if raw is not None:
        try:
            await service.offer_roster(parse_roster(raw))
        except NcpxError as exc:
            log.warning("roster file not adopted: %s", exc.code)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the officer API."""
    return web.json_response(openapi_document())


async def _refresh_roster(app: web.Application) -> None:
    """Periodically: adopt a newer roster dropped in the roster file or held by a peer, and forget answers
    kept for Idempotency-Keys longer than a day."""
    service, worker = app[SERVICE], app[WORKER]
    while True:
        await asyncio.sleep(service.config.delivery.roster_refresh_s)
        await app[OFFICERS].forget_answers(service.clock())
        await adopt_roster_file(service)
        for peer in service.trust.peers(role=None):
            await worker.fetch_roster(peer)


FEDERATION = "/federation/v1"
API = "/v1"
DASHBOARD = "/dashboard"


def _surface(routes: list[web.RouteDef], *middlewares: Middleware) -> web.Application:
    """One surface of a role as a sub-application: its middlewares guard its own routes and nothing else."""
    surface = web.Application(middlewares=middlewares)
    surface.add_routes(routes)
    return surface


def _federation_surface(config: NodeConfig) -> web.Application:
    """What peers call: envelopes, read notices and private matching on a country node, record intake on
    the coordinator."""
    if config.role == "coordinator":
        return _surface([*coordinator_api.intake_routes(), *federation_api.member_routes()])
    return _surface(
        [
            *federation_api.envelope_routes(),
            *federation_api.matching_routes(),
            *federation_api.member_routes(),
        ]
    )


def _officer_surfaces(config: NodeConfig) -> dict[str, web.Application]:
    """What this participant's own people use: the officer API, and on the coordinator the dashboard."""
    if config.role == "coordinator":
        return {
            API: _surface([*coordinator_api.api_routes(), *audit_api.routes()], auth_middleware),
            DASHBOARD: _surface(dashboard.routes(), dashboard.dashboard_headers),
        }
    return {
        API: _surface(
            [*officer_api.routes(), *watch_api.routes(), *matching_api.routes(), *audit_api.routes()],
            auth_middleware,
        )
    }


@dataclass(frozen=True)
class NodeApps:
    """The two applications of one participant, served on separate listeners.

    Other countries must reach the federation listener; nothing else of the node should be reachable from
    where they are. So officer API, console and dashboard are a second application that is simply absent from
    the federation port, instead of routes that a middleware would have to remember to hide.
    """

    federation: web.Application
    officer: web.Application


def _root(config: NodeConfig, listener: str, *middlewares: Middleware) -> web.Application:
    app = web.Application(
        middlewares=[request_ids, count_refusals(listener), problems_middleware, *middlewares],
        client_max_size=config.limits.max_request_bytes,
    )
    app.add_routes([web.get("/livez", livez), web.get("/readyz", readyz), web.get("/version", version)])
    return app


def build_apps(config: NodeConfig, clock: Clock = system_clock) -> NodeApps:
    """Both applications of a participant, sharing one service; storage opens and closes with the federation
    application, which must therefore start first and stop last (:class:`node.server.NodeServer` does).

    Shared state (service, worker, officers, coordinator) is put on both roots and read by the surfaces
    through ``request.config_dict``. Problem+json is each root's middleware, so it also answers paths no
    surface knows.
    """
    federation = _root(config, "federation")
    federation.add_subapp(FEDERATION, _federation_surface(config))
    officer = _root(config, "officer", forwarded_middleware(config.officer.trusted_proxies))
    officer.add_routes([web.get(f"{API}/openapi.json", openapi), web.get("/metrics", metrics)])
    for prefix, surface in _officer_surfaces(config).items():
        officer.add_subapp(prefix, surface)
    if config.role == "node":
        console.mount(officer)  # at the root: the first page an officer's browser opens
    limiter, observed = FailureLimiter(), NodeMetrics()
    for app in (federation, officer):
        app[LIMITER], app[METRICS] = limiter, observed
    federation[QUOTA] = PeerQuota(config.limits.peer_messages_per_minute, config.limits.peer_bytes_per_minute)
    federation[BODIES] = asyncio.Semaphore(config.limits.concurrent_bodies)

    async def dated(_: web.Request, response: web.StreamResponse) -> None:
        # Peers read our clock from this header (readiness compares it): it must be the clock we sign with.
        response.headers[hdrs.DATE] = format_datetime(clock(), usegmt=True)

    federation.on_response_prepare.append(dated)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        db, service = await open_service(config, clock)
        tls = None
        if config.federation.tls_cert is not None and config.federation.tls_key is not None:
            tls = FederationTls(
                config.id,
                config.federation.tls_cert,
                config.federation.tls_key,
                config.key_passphrase(),
                lambda: service.trust.roster,
            )
            federation[TLS] = tls
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=4))
        worker = DeliveryWorker(service, session, tls, observed)
        officers = Officers(db)
        verifiers = None
        coordinator = None
        postgres = None
        if config.role == "coordinator":
            if config.coordinator_database_url is not None:
                postgres = await PostgresDatabase.open(config.coordinator_database_url)
            if config.coordinator_verify_workers:
                verifiers = ProcessPoolExecutor(
                    config.coordinator_verify_workers, mp_context=multiprocessing.get_context("spawn")
                )
            coordinator = CoordinatorService(
                service.trust,
                SqliteStore(db) if postgres is None else PostgresStore(postgres),
                service.clock,
                config.coordinator_grace_s,
                verifiers,
                config.limits,
                config.coordinator_down_after_s,
            )
        matcher = None
        if config.role == "node":
            matcher = Matcher(service, worker, MatchStore(db), Watchlist(db))
        for shared in (federation, officer):
            shared[SERVICE], shared[WORKER], shared[OFFICERS] = service, worker, officers
            if coordinator is not None:
                shared[COORDINATOR] = coordinator
            if matcher is not None:
                shared[MATCHER] = matcher
        await worker.start()
        tasks = [asyncio.create_task(_refresh_roster(app))]
        if config.role == "node":  # after a restore: ask the peers for what the backup lacks
            tasks.append(asyncio.create_task(Resyncer(service, worker).run(), name="resync"))
        if config.retention.messages_days is not None:
            tasks.append(
                asyncio.create_task(retention.run(db, config.retention, service.clock), name="purge")
            )
        if matcher is not None:
            chosen = config.matching
            tasks.append(
                asyncio.create_task(
                    matcher.run(lambda: chosen.peers(service.trust.peers()), chosen.interval_s)
                )
            )
        log.info("node %s ready, roster version %d", service.me, service.trust.roster.version)
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if matcher is not None:
            matcher.close()
        await worker.stop()
        await session.close()
        if verifiers is not None:
            verifiers.shutdown(cancel_futures=True)
        service.close()
        if postgres is not None:
            await postgres.close()
        await db.close()

    federation.cleanup_ctx.append(lifecycle)
    return NodeApps(federation, officer)
