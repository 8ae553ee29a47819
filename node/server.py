"""Serving a participant: the federation and officer listeners, their TLS, and a cap on open connections.

Every request body is bounded and timed, but a socket costs memory and a file descriptor before any request
arrives: a listener over its ``max_connections`` closes new connections at once instead of letting a flood of
idle ones exhaust the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from node.app import NodeApps, build_apps
from node.config import NodeConfig
from node.federation_api import SERVICE, TLS
from node.service import Clock, NodeService, system_clock

log = logging.getLogger("ncpx.node")
ACCESS_FORMAT = '%a "%r" %s %b %Tfs'
HANDSHAKE_TIMEOUT_S = 10.0
"""A TLS handshake slower than this is dropped (asyncio's default of 60 s lets idle sockets pile up)."""


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

        def factory() -> asyncio.Protocol:
            now, established = loop.time(), set(server.connections)
            for handler, since in list(handshaking.items()):
                if handler in established or now - since > HANDSHAKE_TIMEOUT_S:
                    del handshaking[handler]
            if len(established) + len(handshaking) >= self._limit:
                self.refused += 1
                return _Refused()
            protocol: RequestHandler = server()
            if self._ssl_context is not None:
                handshaking[protocol] = now
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
        options: dict[str, Any] = {"access_log": logger, "access_log_format": ACCESS_FORMAT}
        self._federation = web.AppRunner(self.apps.federation, **options)
        self._officer = web.AppRunner(self.apps.officer, **options)
        self.sites: list[CappedSite] = []

    @property
    def service(self) -> NodeService:
        """The running node's service (once started)."""
        return self.apps.federation[SERVICE]

    async def start(self) -> None:
        """Open storage (federation application first: it owns it), then listen on both addresses."""
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
            await site.start()
            log.info("listening on %s", site.name)
        if tls is None:
            log.warning(
                "the federation listener speaks plain HTTP: set [federation] tls_cert and tls_key (ncpx init "
                "writes them) unless this is a closed test network"
            )

    async def stop(self) -> None:
        """Stop accepting, finish what runs, close storage last."""
        await self._officer.cleanup()
        await self._federation.cleanup()


def _officer_tls(config: NodeConfig) -> ssl.SSLContext | None:
    listener = config.officer
    if listener.tls_cert is None or listener.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(listener.tls_cert, listener.tls_key, password=config.key_passphrase())
    return context


def serve(config: NodeConfig) -> None:
    """Run a node until SIGTERM or SIGINT; files it creates (database, WAL, logs) are private to its user."""
    os.umask(0o077)

    async def run() -> None:
        server = NodeServer(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await server.stop()

    asyncio.run(run())
