"""Assembling a node: storage, trust, service, delivery worker and the HTTP routes, with their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import ssl
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

import aiohttp
from aiohttp import web

from keys.identity import Identity
from keys.roster import Roster, parse_authority_public, parse_roster
from node import federation_api, officer_api
from node.config import NodeConfig
from node.coordinator import api as coordinator_api
from node.coordinator import dashboard
from node.coordinator.api import COORDINATOR
from node.coordinator.service import CoordinatorService
from node.coordinator.store import SqliteStore
from node.delivery import DeliveryWorker
from node.federation_api import SERVICE, WORKER
from node.mailbox import Mailbox
from node.officer_api import OFFICERS, auth_middleware
from node.officers import Officers
from node.openapi import openapi_document
from node.problems import problems_middleware
from node.service import Clock, NodeService, system_clock
from node.storage.database import Database
from node.trust import Trust
from protocol.errors import NcpxError

log = logging.getLogger("ncpx.node")


def _read_roster_file(config: NodeConfig) -> bytes | None:
    try:
        return config.roster_file.read_bytes()
    except FileNotFoundError:
        return None


async def open_service(config: NodeConfig, clock: Clock = system_clock) -> tuple[Database, NodeService]:
    """Open storage and keys and build the service (used by the server and by operator commands)."""
    identity = Identity.load(config.keys_dir, config.passphrase())
    if identity.participant != config.id:
        raise NcpxError(f"key folder holds the identity of {identity.participant}, not {config.id}")
    db = await Database.open(config.database)
    try:
        trust = await Trust.load(
            identity, parse_authority_public(config.authority), db, _read_roster_file(config)
        )
    except BaseException:
        await db.close()
        raise
    return db, NodeService(config, trust, Mailbox(db), clock)


async def livez(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: storage answers and the roster held still verifies."""
    service = request.app[SERVICE]
    try:
        await service.mailbox.db.fetchone("SELECT 1")
        Roster(service.trust.roster.signed, service.trust.roster.authority)
    except Exception:
        return web.json_response({"status": "not ready"}, status=503)
    return web.json_response(
        {"status": "ready", "participant": service.me, "roster_version": service.trust.roster.version}
    )


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the officer API."""
    return web.json_response(openapi_document())


async def _refresh_roster(app: web.Application) -> None:
    """Adopt a newer roster dropped in the roster file or held by a peer, periodically."""
    service, worker = app[SERVICE], app[WORKER]
    while True:
        await asyncio.sleep(service.config.delivery.roster_refresh_s)
        raw = _read_roster_file(service.config)
        if raw is not None:
            try:
                await service.offer_roster(parse_roster(raw))
            except NcpxError as exc:
                log.warning("roster file not adopted: %s", exc.code)
        for peer in service.trust.peers(role=None):
            await worker.fetch_roster(peer)


def build_app(config: NodeConfig, clock: Clock = system_clock) -> web.Application:
    """The aiohttp application of one node; storage opens and closes with the app."""
    app = web.Application(
        middlewares=[problems_middleware, auth_middleware],
        client_max_size=config.limits.max_request_bytes,
    )
    app.add_routes(federation_api.routes())
    if config.role == "coordinator":
        app.add_routes(coordinator_api.federation_routes())
        app.add_routes(coordinator_api.api_routes())
        app.add_routes(dashboard.routes())
        app.middlewares.append(dashboard.dashboard_headers)
    else:
        app.add_routes(officer_api.routes())
    app.add_routes(
        [web.get("/livez", livez), web.get("/readyz", readyz), web.get("/v1/openapi.json", openapi)]
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        db, service = await open_service(config, clock)
        client_tls = ssl.create_default_context(cafile=config.peer_ca_file) if config.peer_ca_file else True
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=4, ssl=client_tls))
        worker = DeliveryWorker(service, session)
        app[SERVICE], app[WORKER], app[OFFICERS] = service, worker, Officers(db)
        verifiers = None
        if config.role == "coordinator":
            if config.coordinator_verify_workers:
                verifiers = ProcessPoolExecutor(
                    config.coordinator_verify_workers, mp_context=multiprocessing.get_context("spawn")
                )
            app[COORDINATOR] = CoordinatorService(
                service.trust,
                SqliteStore(db),
                service.clock,
                config.coordinator_grace_s,
                verifiers,
                config.limits,
            )
        await worker.start()
        refresher = asyncio.create_task(_refresh_roster(app))
        log.info("node %s ready, roster version %d", service.me, service.trust.roster.version)
        yield
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await worker.stop()
        await session.close()
        if verifiers is not None:
            verifiers.shutdown(cancel_futures=True)
        await db.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def tls_context(config: NodeConfig) -> ssl.SSLContext | None:
    """Server TLS context when a certificate is configured (optional: security never depends on it)."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def serve(config: NodeConfig) -> None:
    """Run a node until interrupted; files it creates (database, WAL, logs) are private to its user."""
    os.umask(0o077)
    web.run_app(
        build_app(config),
        host=config.listen_host,
        port=config.listen_port,
        ssl_context=tls_context(config),
        access_log=logging.getLogger("ncpx.access"),
        access_log_format='%a "%r" %s %b %Tfs',
        print=lambda text: log.info("%s", text),
        handle_signals=True,
    )
