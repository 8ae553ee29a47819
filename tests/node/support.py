"""Building blocks for node integration tests: real keys, a real signed roster, real servers on loopback.

Nothing here replaces code of ours: nodes are the real ``node.server.NodeServer`` (both listeners) on 127.0.0.1,
their databases are real SQLite files, and crafted federation requests are signed with real keys so that each
test can probe exactly one refusal.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sqlite3
import ssl as ssl_module
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.identity import Identity
from keys.roster import (
    Role,
    Roster,
    RosterBody,
    SignedRoster,
    add_participant,
    authority_public_text,
    new_roster,
    sign_roster,
)
from keys.tls import TLS_CERT_FILE, TLS_KEY_FILE, make_tls_certificate
from node.config import Delivery, FederationListener, Limits, NodeConfig, OfficerListener
from node.delivery import DeliveryWorker
from node.federation_api import SERVICE, WORKER
from node.officer_api import OFFICERS
from node.server import NodeServer
from node.service import NodeService
from node.topology import free_port
from protocol.codes import CrimeArea, Urgency
from protocol.compose import Outgoing, compose_enquiry
from protocol.encoding import canonical
from protocol.envelope import Envelope, join_batch, split_batch
from protocol.models import EnquiryBody
from protocol.receipts import make_receipt, make_refusal
from protocol.requests import sign_request
from protocol.signing import LocalKeys, sign

T = TypeVar("T")

ENVELOPES = "/federation/v1/envelopes"
STATUS = "/federation/v1/status"
HELLO = "/federation/v1/hello"
ROSTER = "/federation/v1/roster"
PROBLEM_JSON = "application/problem+json"

FAST_DELIVERY = Delivery(backoff_initial_s=0.05, backoff_cap_s=0.5, request_timeout_s=5.0)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``python -m node.cli`` in its own process, while the test's event loop keeps serving its nodes: exit code,
    standard output, standard error. ``NCPX_CONFIG`` from the test's own environment is never passed on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if k != "NCPX_CONFIG"}, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def wait_for(
    condition: Callable[[], Awaitable[T | None] | T | None], within: float = 10.0, what: str = "condition"
) -> T:
    """Poll ``condition`` (sync or async) until it returns something other than None/False, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value is not None and value is not False:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


class TestClock:
    """The wall clock plus an offset a test can move (a node's ``clock`` callable)."""

    __test__ = False

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Response:
    """What a test looks at in an HTTP answer."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    def problem(self, code: str, status: int | None = None) -> dict[str, Any]:
        """Assert this is an RFC 9457 problem with ``code`` and return it."""
        assert self.content_type == PROBLEM_JSON, (self.status, self.content_type, self.body[:300])
        data = self.json()
        assert data["code"] == code, data
        assert data["status"] == self.status
        assert data["type"].endswith("/" + code)
        if status is not None:
            assert self.status == status, data
        return dict(data)


@dataclass
class Node:
    """One running node: its real app served on loopback, with an officer token."""

    id: str
    config: NodeConfig
    server: NodeServer
    session: aiohttp.ClientSession
    clock: TestClock
    token: str = ""
    running: bool = True

    @property
    def app(self) -> web.Application:
        """The federation application (it holds the shared state)."""
        return self.server.apps.federation

    @property
    def url(self) -> str:
        """The federation listener (what peers call)."""
        scheme = "https" if self.config.federation.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.config.federation.port}"

    @property
    def api_url(self) -> str:
        """The officer listener (officer API, dashboard)."""
        return f"http://127.0.0.1:{self.config.officer.port}"

    @property
    def service(self) -> NodeService:
        return self.app[SERVICE]

    @property
    def worker(self) -> DeliveryWorker:
        return self.app[WORKER]

    @property
    def db_path(self) -> Path:
        return self.config.database

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.server.stop()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = "",
        params: dict[str, str] | None = None,
    ) -> Response:
        """An officer API call (``token=""`` means this node's officer; None sends no Authorization)."""
        sent = dict(headers or {})
        if token == "":
            token = self.token
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        return await http(self.session, method, self.api_url + path, data=data, headers=sent, params=params)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An officer API call expected to succeed; returns the decoded JSON."""
        response = await self.request(method, path, **kwargs)
        assert response.status < 300, (response.status, response.body[:500])
        return response.json()

    async def listing(self, **query: str) -> list[dict[str, Any]]:
        """Items of ``GET /v1/messages`` (one page of up to 500)."""
        page = await self.call("GET", "/v1/messages", params={"limit": "500", **query})
        return list(page["items"])

    async def summary(self, message_id: str, folder: str) -> dict[str, Any] | None:
        for item in await self.listing(folder=folder):
            if item["id"] == message_id:
                return item
        return None

    async def state_is(self, message_id: str, folder: str, state: str) -> dict[str, Any] | None:
        item = await self.summary(message_id, folder)
        return item if item is not None and item["state"] == state else None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Read the node's SQLite file directly, read-only."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def count(self, table: str = "messages") -> int:
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 - test's own table names


async def http(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    ssl: ssl_module.SSLContext | bool = True,
) -> Response:
    async with session.request(method, url, data=data, headers=headers, params=params, ssl=ssl) as response:
        body = await response.read()
        return Response(response.status, response.content_type, body, dict(response.headers))


@dataclass
class Federation:
    """An authority, the identities of several participants, their roster, and the nodes started from it."""

    root: Path
    session: aiohttp.ClientSession
    ids: list[str]
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=60))
    """Keys are valid from here on, so that old timestamps can be tested without ``expired_key``."""
    authority: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    identities: dict[str, Identity] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    body: RosterBody | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    coordinator: str | None = None
    """Which of ``ids`` the roster (and its configuration) makes the coordinator; the others are country nodes."""
    tls: bool = False
    """Mutual TLS between the nodes, with certificates made as ``ncpx init`` makes them and pinned in the roster."""
    coordinator_database_url: str | None = None
    """The coordinator's PostgreSQL database (None: its tables stay in its SQLite file)."""

    def __post_init__(self) -> None:
        body = new_roster(self.authority.public_key(), self.epoch)
        for pid in self.ids:
            self.identities[pid] = Identity.generate(pid)
            self.ports[pid] = free_port()
            certificate = None
            if self.tls:
                certificate = make_tls_certificate(self.root / pid / "keys", pid, datetime.now(UTC))
            body = add_participant(
                body,
                self.identities[pid].card(certificate),
                self.url(pid),
                Role.COORDINATOR if pid == self.coordinator else Role.NODE,
                f"{pid} contact point",
                self.epoch,
            )
        self.body = body

    def url(self, pid: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.ports[pid]}"

    @property
    def authority_text(self) -> str:
        return authority_public_text(self.authority.public_key())

    def signed(self, body: RosterBody | None = None) -> SignedRoster:
        """The current roster body (or ``body``) signed by the authority."""
        chosen = body or self.body
        assert chosen is not None
        return sign_roster(chosen, self.authority)

    def roster(self) -> Roster:
        return Roster(self.signed(), self.authority.public_key())

    def config(
        self,
        pid: str,
        *,
        limits: Limits | None = None,
        delivery: Delivery | None = None,
        roster: SignedRoster | None = None,
        federation: FederationListener | None = None,
        officer: OfficerListener | None = None,
        verify_workers: int = 0,
    ) -> NodeConfig:
        """Write the node folder (keys, roster file) and return its configuration."""
        folder = self.root / pid
        keys = folder / "keys"
        if not (keys / "identity.key").exists():
            self.identities[pid].save(keys)
        (folder / "roster.json").write_bytes((roster or self.signed()).to_bytes())
        return NodeConfig(
            id=pid,
            role="coordinator" if pid == self.coordinator else "node",
            federation=federation
            or FederationListener(
                port=self.ports[pid],
                tls_cert=keys / TLS_CERT_FILE if self.tls else None,
                tls_key=keys / TLS_KEY_FILE if self.tls else None,
            ),
            officer=officer or OfficerListener(port=free_port()),
            data_dir=folder,
            authority=self.authority_text,
            roster_file=folder / "roster.json",
            limits=limits or Limits(),
            delivery=delivery or FAST_DELIVERY,
            verify_workers=verify_workers,
            coordinator_database_url=self.coordinator_database_url if pid == self.coordinator else None,
        )

    async def start(
        self,
        pid: str,
        *,
        clock: TestClock | None = None,
        limits: Limits | None = None,
        delivery: Delivery | None = None,
        roster: SignedRoster | None = None,
        federation: FederationListener | None = None,
        officer: OfficerListener | None = None,
        verify_workers: int = 0,
    ) -> Node:
        """Build the node's real app and serve it on its loopback ports; add one officer.

        Envelopes are checked on a thread unless ``verify_workers`` asks for the checking pool: starting its
        processes for every node of every test would cost the suite minutes, and only the tests of the pool
        itself need them."""
        config = self.config(
            pid,
            limits=limits,
            delivery=delivery,
            roster=roster,
            federation=federation,
            officer=officer,
            verify_workers=verify_workers,
        )
        clock = clock or TestClock()
        server = NodeServer(config, clock, access_log=False)
        await server.start()
        node = Node(pid, config, server, self.session, clock)
        previous = self.nodes.get(pid)
        if previous is not None:  # a restart: the officer (and its token) is already in the database
            node.token = previous.token
        else:
            node.token = await node.app[OFFICERS].add(f"officer-{pid.lower()}", datetime.now(UTC))
        self.nodes[pid] = node
        return node

    async def stop_all(self) -> None:
        for node in self.nodes.values():
            await node.stop()

    # -- crafting what a (possibly hostile) peer sends --

    def compose(
        self,
        sender: str,
        recipients: list[str],
        *,
        now: datetime | None = None,
        body: EnquiryBody | None = None,
        urgency: Urgency = Urgency.NORMAL,
        keys: LocalKeys | None = None,
    ) -> list[Outgoing]:
        """Real envelopes from ``sender``, exactly as its node would make them."""
        identity = self.identities[sender]
        return compose_enquiry(
            body or EnquiryBody(subject="crafted enquiry", text="crafted text"),
            recipients,
            CrimeArea.PEOPLE_SMUGGLING,
            urgency,
            keys or identity,
            self.roster(),
            identity.encryption_keys[-1].public_key(),
            now or datetime.now(UTC),
            os.urandom,
        )

    def envelope(self, sender: str, recipient: str, **kwargs: Any) -> Envelope:
        return self.compose(sender, [recipient], **kwargs)[0].envelope


def batch(*envelopes: Envelope | dict[str, Any]) -> bytes:
    """The body of a federation envelopes request."""
    return join_batch([canonical(e.wire() if isinstance(e, Envelope) else e) for e in envelopes])


async def post_signed(
    session: aiohttp.ClientSession,
    node: Node,
    path: str,
    body: bytes,
    signer: LocalKeys,
    *,
    recipient: str | None = None,
    now: datetime | None = None,
    tweak: Callable[[dict[str, str]], None] | None = None,
) -> Response:
    """A federation request signed by ``signer`` (a real key), optionally altered after signing."""
    headers = sign_request("POST", path, recipient or node.id, body, signer, now or datetime.now(UTC))
    headers["Content-Type"] = "application/json"
    if tweak is not None:
        tweak(headers)
    return await http(session, "POST", node.url + path, data=body, headers=headers)


# -- a hostile peer: a roster member (or whoever answers at its URL) that answers envelopes falsely --

HOSTILE_MODES = (
    "receipt_wrong_key",
    "receipt_other_digest",
    "refusal_unsigned",
    "refusal_wrong_key",
    "redirect",
    "oversized",
)


@dataclass
class HostilePeer:
    """Serves at ``pid``'s roster URL and answers every envelope batch as ``mode`` says.

    It holds ``pid``'s real keys, so everything it signs is as good as that member's word, except what the
    mode falsifies. ``hits`` counts envelope requests; ``sink_hits`` counts requests that reached the address
    a redirect points to (which a node must never follow).
    """

    fed: Federation
    pid: str
    mode: str
    hits: int = 0
    sink_hits: int = 0
    runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self) -> HostilePeer:
        sink_port = free_port()
        app = web.Application()
        app.router.add_post(ENVELOPES, self._envelopes)
        app.router.add_route("*", "/{tail:.*}", self._anything_else)
        sink = web.Application()
        sink.router.add_route("*", "/{tail:.*}", self._sink)
        for application, port in ((app, self.fed.ports[self.pid]), (sink, sink_port)):
            runner = web.AppRunner(application, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.runners.append(runner)
        self.sink = f"http://127.0.0.1:{sink_port}"
        return self

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()

    async def _anything_else(self, request: web.Request) -> web.Response:
        return web.json_response({"participant": self.pid, "roster_version": 0})

    async def _sink(self, request: web.Request) -> web.Response:
        self.sink_hits += 1
        return web.json_response({"results": []})

    async def _envelopes(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        raw = await request.read()
        envelopes = [Envelope.model_validate_json(line) for line in split_batch(raw)]
        me = self.fed.identities[self.pid]
        other = self.fed.identities[next(p for p in self.fed.ids if p != self.pid)]
        now = datetime.now(UTC)
        if self.mode == "redirect":
            raise web.HTTPTemporaryRedirect(self.sink + ENVELOPES)
        if self.mode == "oversized":
            # Genuine receipts, padded past any sane size: only the cap on what is read stops them.
            genuine = [{"id": e.header.id, "receipt": make_receipt(e, me, now).wire()} for e in envelopes]
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(json.dumps({"results": genuine}).encode())
            for _ in range(9):
                await response.write(b" " * (1024 * 1024))
            await response.write_eof()
            return response
        results: list[dict[str, Any]] = []
        for envelope in envelopes:
            digest = envelope.digest()
            if self.mode == "receipt_wrong_key":
                genuine = make_receipt(envelope, me, now)
                unsigned = {k: v for k, v in genuine.wire().items() if k != "sig"}
                forged = genuine.model_copy(
                    update={"sig": sign(other.signing, "receipt", canonical(unsigned))}
                )
                results.append({"id": envelope.header.id, "receipt": forged.wire()})
            elif self.mode == "receipt_other_digest":
                wrong = make_receipt(envelope, me, now, envelope_digest=digest[::-1])
                results.append({"id": envelope.header.id, "receipt": wrong.wire()})
            else:
                problem = {"code": "cannot_open", "title": "Sealed content cannot be opened", "status": 400}
                result: dict[str, Any] = {"id": envelope.header.id, "problem": problem}
                if self.mode == "refusal_wrong_key":
                    genuine_refusal = make_refusal(
                        envelope.header.sender, envelope.header.id, digest, "cannot_open", me, now
                    )
                    unsigned = {k: v for k, v in genuine_refusal.wire().items() if k != "sig"}
                    result["refusal"] = genuine_refusal.model_copy(
                        update={"sig": sign(other.signing, "refusal", canonical(unsigned))}
                    ).wire()
                results.append(result)
        return web.json_response({"results": results})
