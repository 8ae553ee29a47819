"""Mutual TLS between nodes, pinned by the roster; the officer listener's TLS, proxy and safety rules; the
connection cap.

Certificates are made exactly as ``ncpx init`` makes them (``keys.tls.make_tls_certificate``) and listed in the
signed roster; each refusal below happens in the TLS handshake, before the node parses a single HTTP header,
except the one a valid certificate cannot be refused for at that layer (signing as someone else).
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from keys.roster import revoke, rotate
from keys.tls import TLS_CERT_FILE, TLS_KEY_FILE, make_tls_certificate, read_tls_certificate
from node.config import FederationListener, OfficerListener, load_config, write_config
from node.server import NodeServer
from protocol.encoding import canonical
from protocol.errors import ConfigError, Malformed
from tests.node.support import HELLO, Federation, Node, free_port, http, post_signed, wait_for

ENQUIRY = {"recipients": ["MY"], "area": "people_smuggling", "subject": "Over TLS", "text": "Hello, mTLS."}


@pytest.fixture
async def fed(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Federation]:
    federation = Federation(tmp_path / "fed", session, ["TH", "MY", "ID"], tls=True)
    yield federation
    await federation.stop_all()


def client_tls(fed: Federation, server: str, presenting: str | None) -> ssl.SSLContext:
    """A client trusting ``server``'s roster certificate, presenting ``presenting``'s own (or none)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cafile=fed.root / server / "keys" / TLS_CERT_FILE)
    if presenting is not None:
        keys = fed.root / presenting / "keys"
        context.load_cert_chain(keys / TLS_CERT_FILE, keys / TLS_KEY_FILE)
    return context


async def hello(fed: Federation, node: Node, signer: str, context: ssl.SSLContext) -> int:
    """Status of a hello signed by ``signer`` over a fresh connection made with ``context``."""
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = canonical({"roster_version": 1})
        response = await post_signed(session, node, HELLO, body, fed.identities[signer])
        return response.status


async def test_an_enquiry_travels_over_mutual_tls(fed: Federation) -> None:
    th, my = await fed.start("TH"), await fed.start("MY")
    assert th.url.startswith("https://")
    created = await th.call("POST", "/v1/enquiries", body=ENQUIRY)
    message_id = created["messages"][0]["id"]
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery over mutual TLS")
    shown = await my.call("GET", f"/v1/messages/{message_id}")
    assert shown["message"]["text"] == "Hello, mTLS."


async def test_a_member_with_its_certificate_is_served(fed: Federation) -> None:
    my = await fed.start("MY")
    assert await hello(fed, my, "TH", client_tls(fed, "MY", "TH")) == 200


@pytest.mark.parametrize("presenting", [None, "stranger"])
async def test_a_caller_without_a_roster_certificate_is_refused_in_the_handshake(
    fed: Federation, presenting: str | None
) -> None:
    my = await fed.start("MY")
    if presenting == "stranger":  # a well-formed certificate, made the same way, that no roster lists
        make_tls_certificate(fed.root / "stranger" / "keys", "TH", datetime.now(UTC))
    # The request itself is signed with TH's real key: only the missing certificate stops it.
    with pytest.raises(aiohttp.ClientError):
        await hello(fed, my, "TH", client_tls(fed, "MY", presenting))
    assert my.server.sites[0].name.startswith("https://")


async def test_a_certificate_serves_only_its_own_participant(fed: Federation) -> None:
    my = await fed.start("MY")
    # ID's connection, TH's signature: both genuine, but a member may not lend its connection to another.
    status = await hello(fed, my, "TH", client_tls(fed, "MY", "ID"))
    assert status == 403
    connector = aiohttp.TCPConnector(ssl=client_tls(fed, "MY", "ID"), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        response = await post_signed(session, my, HELLO, canonical({}), fed.identities["TH"])
    response.problem("wrong_certificate", 403)


async def test_a_revoked_member_is_refused_in_the_handshake_once_the_roster_says_so(fed: Federation) -> None:
    my = await fed.start("MY")
    assert await hello(fed, my, "TH", client_tls(fed, "MY", "TH")) == 200
    assert fed.body is not None
    fed.body = revoke(fed.body, "TH", None, datetime.now(UTC))
    assert await my.service.offer_roster(fed.signed())
    with pytest.raises(aiohttp.ClientError):
        await hello(fed, my, "TH", client_tls(fed, "MY", "TH"))
    assert await hello(fed, my, "ID", client_tls(fed, "MY", "ID")) == 200


async def test_the_sender_accepts_only_the_peers_roster_certificate(fed: Federation) -> None:
    """Someone answering at MY's address with another certificate (here ID's own node) never gets TH's
    enquiry: TH's worker trusts only the certificate the roster lists for MY."""
    th = await fed.start("TH")
    impostor = fed.config("ID").model_copy(
        update={"federation": fed.config("ID").federation.model_copy(update={"port": fed.ports["MY"]})}
    )
    server = NodeServer(impostor, access_log=False)
    await server.start()
    try:
        created = await th.call("POST", "/v1/enquiries", body=ENQUIRY)
        message_id = created["messages"][0]["id"]
        peers = await wait_for(lambda: _failures(th), what="a failed attempt at the impostor's address")
        assert peers >= 1
        assert (await th.summary(message_id, "sent") or {})["state"] in ("queued", "sent")
        stored = sqlite3.connect(f"file:{impostor.database}?mode=ro", uri=True)
        try:
            assert stored.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        finally:
            stored.close()
    finally:
        await server.stop()


async def _failures(node: Node) -> int | None:
    peers = (await node.call("GET", "/v1/peers"))["peers"]
    failures = sum(p["failures"] for p in peers if p["id"] == "MY")
    return failures or None


async def test_the_officer_listener_can_speak_tls(fed: Federation, session: aiohttp.ClientSession) -> None:
    keys = fed.root / "TH" / "keys"
    config = fed.config("TH")
    officer = config.officer.model_copy(
        update={"tls_cert": keys / TLS_CERT_FILE, "tls_key": keys / TLS_KEY_FILE}
    )
    th = await fed.start("TH", officer=officer)
    context = client_tls(fed, "TH", None)
    url = th.api_url.replace("http://", "https://")
    response = await http(session, "GET", url + "/readyz", ssl=context)
    assert response.status == 200
    with pytest.raises(aiohttp.ClientError):
        await http(session, "GET", th.api_url + "/readyz")


def test_an_officer_listener_off_loopback_needs_tls(tmp_path: Path) -> None:
    listener = OfficerListener(host="0.0.0.0")  # noqa: S104 - the refused configuration
    with pytest.raises(ConfigError) as refused:
        listener.check()
    assert "would carry tokens and message contents in clear" in refused.value.detail
    OfficerListener(host="0.0.0.0", plain_http=True).check()  # noqa: S104 - a container's published port
    OfficerListener(host="::1").check()
    with pytest.raises(ConfigError):
        FederationListener(tls_cert=tmp_path / "tls.crt").check()


def test_the_configuration_file_is_checked_on_load(fed: Federation) -> None:
    config = fed.config("TH").model_copy(update={"officer": OfficerListener(host="10.1.2.3")})
    path = config.data_dir / "node.toml"
    write_config(path, config)
    with pytest.raises(ConfigError, match=r"officer listener on 10\.1\.2\.3"):
        load_config(path)


async def test_connections_beyond_the_cap_are_closed_at_once(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    fed = Federation(tmp_path / "cap", session, ["MY"])
    my = await fed.start("MY", federation=FederationListener(port=fed.ports["MY"], max_connections=3))
    try:
        # All four connect before the node's loop accepts any, so it accepts them in one turn: the cap must
        # count the ones it has just accepted as well as those already made.
        sockets = [socket.create_connection(("127.0.0.1", fed.ports["MY"]), timeout=5) for _ in range(4)]
        extra = sockets[-1]
        assert await asyncio.to_thread(extra.recv, 1) == b""  # closed unread, not left waiting
        # At least: on a shared machine a stray process may knock at a reused port too.
        assert my.server.sites[0].refused >= 1
        for sock in sockets:
            sock.close()
        response = await wait_for(lambda: _livez(session, my), what="a connection accepted again")
        assert response == 200
    finally:
        await fed.stop_all()


async def test_a_listener_that_cannot_bind_closes_what_the_node_had_opened(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    fed = Federation(tmp_path / "taken", session, ["MY"])
    before = _lasting_threads()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        officer = OfficerListener(port=taken.getsockname()[1])
        server = NodeServer(fed.config("MY", officer=officer))
        with pytest.raises(ConfigError, match="cannot listen on"):
            await server.start()
    # Storage was opened first; left open, its thread would keep the process from ever exiting.
    assert _lasting_threads() == before
    again = await fed.start("MY")  # the same folder serves at once
    assert (await again.call("GET", "/v1/peers")) is not None
    await fed.stop_all()


def _lasting_threads() -> set[int | None]:
    """Threads that keep a process alive, but for the event loop's own executor (closed with the loop)."""
    return {t.ident for t in threading.enumerate() if not t.daemon and not t.name.startswith("asyncio_")}


async def _livez(session: aiohttp.ClientSession, node: Node) -> int | None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        try:
            return (await http(fresh, "GET", node.url + "/livez")).status
        except aiohttp.ClientError:
            return None


@pytest.mark.parametrize(
    ("proxies", "signed_in"),
    [(["127.0.0.1"], True), ([], False), (["127.0.0.2"], False)],
    ids=["from-the-configured-proxy", "no-proxy-configured", "another-address-is-the-proxy"],
)
async def test_dashboard_sign_in_behind_a_tls_proxy(
    federation: Callable[..., Federation], session: aiohttp.ClientSession, proxies: list[str], signed_in: bool
) -> None:
    """A TLS-terminating proxy forwards the officer's https origin; only a configured proxy is believed."""
    fed = federation(["TH", "XI-COORD"], coordinator="XI-COORD")
    officer = OfficerListener(port=free_port(), trusted_proxies=proxies)
    coordinator = await fed.start("XI-COORD", officer=officer)
    headers = {
        "Origin": "https://ncpx.example.org",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "ncpx.example.org",
    }
    async with session.post(
        coordinator.api_url + "/dashboard/login",
        data={"token": coordinator.token},
        headers=headers,
        allow_redirects=False,
    ) as response:
        if signed_in:
            assert response.status == 303
            assert "Secure" in response.headers["Set-Cookie"]
        else:
            assert response.status == 403
            assert "Set-Cookie" not in response.headers


async def test_a_renewed_certificate_is_presented_once_the_roster_lists_it(fed: Federation) -> None:
    th, my = await fed.start("TH"), await fed.start("MY")
    keys = fed.root / "TH" / "keys"
    old = (keys / TLS_CERT_FILE).read_bytes()
    new = make_tls_certificate(keys, "TH", datetime.now(UTC))  # what 'ncpx keys rotate --certificate' does
    assert fed.body is not None
    fed.body = rotate(fed.body, fed.identities["TH"].card(new), timedelta(days=7), datetime.now(UTC))
    [listed] = [p.tls_certificates for p in fed.body.participants if p.id == "TH"]
    assert listed is not None
    assert listed[0] == new
    assert len(listed) == 2  # the previous one stays for the switch
    for node in (th, my):
        assert await node.service.offer_roster(fed.signed())
    # TH now presents the new certificate: a client trusting only that one completes the handshake with TH.
    assert await hello(fed, th, "MY", client_tls(fed, "TH", "MY")) == 200
    # MY accepts TH's new certificate, and TH's enquiry still flows.
    assert await hello(fed, my, "TH", client_tls(fed, "MY", "TH")) == 200
    created = await th.call("POST", "/v1/enquiries", body=ENQUIRY)
    message_id = created["messages"][0]["id"]
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery after the renewal")
    assert old != (keys / TLS_CERT_FILE).read_bytes()


def test_a_card_already_in_the_roster_is_refused(fed: Federation) -> None:
    assert fed.body is not None
    card = fed.identities["TH"].card(read_tls_certificate(fed.root / "TH" / "keys"))
    with pytest.raises(Malformed, match="already in the roster"):
        rotate(fed.body, card, timedelta(days=7), datetime.now(UTC))
