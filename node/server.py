"""Serving a participant: the federation and officer listeners, their TLS, and a cap on open connections.

Every request body is bounded and timed, but a socket costs memory and a file descriptor before any request
arrives: a listener over its ``max_connections`` closes new connections at once instead of letting a flood of
idle ones exhaust the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from node.app import NodeApps, adopt_roster_file, build_apps
from node.config import NodeConfig, reloaded
from node.coordinator.api import COORDINATOR
from node.federation_api import SERVICE, TLS
from node.service import Clock, NodeService, system_clock
from node.stepped_clock import clock_from_environment
from protocol.errors import ConfigError, NcpxError

log = logging.getLogger("ncpx.node")
ACCESS_FORMAT = '%a "%r" %s %b %Tfs'
HANDSHAKE_TIMEOUT_S = 10.0
"""A TLS handshake slower than this is dropped (asyncio's default of 60 s lets idle sockets pile up)."""
SHUTDOWN_GRACE_S = 3.0
"""How long requests in flight on each listener may take to finish once the node is told to stop; the rest are
cancelled. Both listeners and closing storage then stay within the 8 s that leaves a margin below the 10 s
Docker and Kubernetes wait before SIGKILL (aiohttp's default, 60 s, let a slow client outlast them)."""


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.abort()


class CappedSite(web.BaseSite):
    """A TCP listener that holds at most ``limit`` connections; the ones beyond are closed unread."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, limit: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port, self._limit = host, port, limit
        self.refused = 0

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        loop = asyncio.get_running_loop()
        handshaking: dict[RequestHandler, float] = {}
        """Connections still in their TLS handshake, which the application sees only once it succeeds."""
        opening: set[RequestHandler] = set()
        """Plain connections accepted but not yet made: several accepted in one turn of the loop are all made
        only on the next, so each is counted here until then."""

        def factory() -> asyncio.Protocol:
            now, established = loop.time(), set(server.connections)
            for handler, since in list(handshaking.items()):
                if handler in established or now - since > HANDSHAKE_TIMEOUT_S:
                    del handshaking[handler]
            if len(established) + len(handshaking) + len(opening - established) >= self._limit:
                self.refused += 1
                return _Refused()
            protocol: RequestHandler = server()
            if self._ssl_context is not None:
                handshaking[protocol] = now
            else:
                # The transport schedules connection_made right after this returns; forgetting the handler two
                # turns later is after it, when the handler counts among the server's connections if still open.
                opening.add(protocol)
                loop.call_soon(loop.call_soon, opening.discard, protocol)
            return protocol

        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if self._ssl_context else None,
            reuse_address=True,
        )


class NodeServer:
    """Both listeners of one participant, started and stopped in the order their shared state needs."""

    def __init__(self, config: NodeConfig, clock: Clock = system_clock, *, access_log: bool = True) -> None:
        self.config = config
        self.apps: NodeApps = build_apps(config, clock)
        logger = logging.getLogger("ncpx.access") if access_log else None
        options: dict[str, Any] = {
            "access_log": logger,
            "access_log_format": ACCESS_FORMAT,
            "shutdown_timeout": SHUTDOWN_GRACE_S,
        }
        self._federation = web.AppRunner(self.apps.federation, **options)
        self._officer = web.AppRunner(self.apps.officer, **options)
        self.sites: list[CappedSite] = []

    @property
    def service(self) -> NodeService:
        """The running node's service (once started)."""
        return self.apps.federation[SERVICE]

    async def start(self) -> None:
        """Open storage (federation application first: it owns it), then listen on both addresses. If any of it
        fails, what was opened is closed again: storage threads left open would keep the process from exiting."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        await self._federation.setup()
        await self._officer.setup()
        federation, officer = self.config.federation, self.config.officer
        tls = self.apps.federation.get(TLS)
        self.sites = [
            CappedSite(
                self._federation,
                federation.host,
                federation.port,
                federation.max_connections,
                tls.server if tls else None,
            ),
            CappedSite(
                self._officer, officer.host, officer.port, officer.max_connections, _officer_tls(self.config)
            ),
        ]
        for site in self.sites:
            try:
                await site.start()
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {site.name}: {exc.strerror or exc}; another program (or another node) "
                    "may hold that port: stop it, or choose another host or port in node.toml"
                ) from exc
            log.info("listening on %s", site.name)
        if tls is None:
            log.warning(
                "the federation listener speaks plain HTTP: set [federation] tls_cert and tls_key (ncpx init "
                "writes them) unless this is a closed test network"
            )

    async def stop(self) -> None:
        """Stop accepting on both listeners at once, give what runs its grace, close storage last."""
        for site in self.sites:
            await site.stop()
        await self._officer.cleanup()
        await self._federation.cleanup()

    async def reload(self, config: NodeConfig) -> None:
        """Take up a changed configuration without closing a connection (SIGHUP): the settings in
        :data:`node.config.RELOADABLE` and the roster file; a change to any other setting is logged as waiting
        for a restart, and the node keeps running as it was started for that setting."""
        effective, adopted, waiting = reloaded(self.config, config)
        for name in waiting:
            log.warning("%s changed in the configuration; it takes effect when the node restarts", name)
        self.config = self.service.config = effective
        coordinator = self.apps.federation.get(COORDINATOR)
        if coordinator is not None:
            coordinator.skew, coordinator.max_age = effective.skew, effective.max_age
        level = effective.model_dump().get("log_level")
        if "log_level" in adopted and level:
            logging.getLogger().setLevel(level)
        log.info("configuration reloaded: %s", ", ".join(adopted) or "no setting changed that applies live")
        await adopt_roster_file(self.service)


def _officer_tls(config: NodeConfig) -> ssl.SSLContext | None:
    listener = config.officer
    if listener.tls_cert is None or listener.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(listener.tls_cert, listener.tls_key, password=config.key_passphrase())
    return context


def serve(config: NodeConfig, load: Callable[[], NodeConfig]) -> None:
    """Run a node until SIGTERM or SIGINT, reloading with ``load`` on SIGHUP; files it creates (database, WAL,
    logs) are private to its user."""
    os.umask(0o077)

    async def run() -> None:
        server = NodeServer(config, clock_from_environment() or system_clock)
        stop = asyncio.Event()
        reloads: asyncio.Queue[None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, None)
        await server.start()

        async def reloader() -> None:
            while True:
                await reloads.get()
                try:
                    await server.reload(load())
                except NcpxError as exc:
                    log.error("configuration not reloaded, the node runs on as before: %s", exc.detail)

        reloading = asyncio.create_task(reloader())
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            reloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloading
            await server.stop()

    asyncio.run(run())
