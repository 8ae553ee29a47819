"""The coordinator is blind by construction: no byte of message content ever reaches it.

A unique marker is planted in every content field and attachment of many enquiries and replies. Every byte sent
to the coordinator over HTTP passes through a recording proxy; afterwards the marker (plain, and in the base64
forms content would take on the wire) must be absent from those bytes, from every file in the coordinator's
folder (database, WAL, log) and from everything the coordinator serves (tallies, lists, report in every format).
Nor can content be addressed to the coordinator or come from it: it has no envelope endpoint at all, and a node
refuses an enquiry the coordinator signs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keys import Identity, Roster, parse_authority_public, parse_roster
from node.client import Client
from node.topology import LocalNode, Topology, wait_until
from protocol.codes import CrimeArea, Urgency
from protocol.compose import compose_enquiry
from protocol.encoding import canonical, format_time
from protocol.envelope import Envelope, join_batch, open_body, open_envelope
from protocol.errors import CannotOpen, NotForUs
from protocol.models import EnquiryBody
from protocol.requests import sign_request
from tests.e2e.test_crash_safety import rows

pytestmark = pytest.mark.e2e

MARKER = "BLINDMARK-7f3a9c41"
ATTACHMENT = b"%PDF-1.4 evidence " + MARKER.encode() + b" end"
COUNTRIES = ["TH", "MY", "ID"]
PERIOD = "jpa-blind"
PROBLEM_JSON = "application/problem+json"


class RecordingProxy:
    """A TCP proxy in front of the coordinator that keeps every byte in both directions."""

    def __init__(self) -> None:
        self.target = 0
        self.received = bytearray()
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client, self.sent), daemon=True).start()
        self._pump(client, upstream, self.received)

    def _pump(self, source: socket.socket, sink: socket.socket, log: bytearray) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    log.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def forms(marker: bytes) -> list[bytes]:
    """The marker as content could appear: plain, and inside base64 or base64url at every alignment."""
    found = [marker]
    for shift in range(3):
        padded = b"\0" * shift + marker
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(padded)
            found.append(text[4 : len(text) - 4])  # the stable middle, independent of what surrounds it
    return found


FORBIDDEN = forms(MARKER.encode()) + forms(ATTACHMENT)


def assert_blind(data: bytes, where: str) -> None:
    for needle in FORBIDDEN:
        assert needle not in data, f"content found in {where}"


def content(i: int) -> dict[str, object]:
    m = f"{MARKER}-{i}"
    return {
        "subject": f"Subject {m}",
        "text": f"Text {m}",
        "handling": "H3",
        "handling_note": f"Restriction {m}",
        "subjects": {
            "persons": [
                {
                    "family_name": f"Family{m}",
                    "given_names": f"Given {m}",
                    "aliases": [f"Alias {m}"],
                    "travel_documents": [{"number": f"P{i}{MARKER[:12]}"}],
                }
            ],
            "phones": [{"number": "+66812345678", "note": f"Note {m}"}],
            "travel_documents": [{"number": f"V{i}{MARKER[:12]}"}],
            "vessels": [{"name": f"Vessel {m}", "imo": "9074729"}],
            "bank_accounts": [{"account": f"AC{MARKER}", "bank": f"Bank {m}", "holder": f"Holder {m}"}],
            "addresses": [{"lines": [f"Street {m}"], "city": f"City {m}"}],
        },
        "attachments": [
            {
                "name": f"{m}.pdf",
                "media_type": "application/pdf",
                "data": base64.urlsafe_b64encode(ATTACHMENT).rstrip(b"=").decode(),
            }
        ],
    }


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[tuple[Topology, RecordingProxy]]:
    proxy = RecordingProxy()
    # Plain HTTP between the nodes, so that the proxy reads every byte the coordinator is sent in clear.
    topo = Topology(tmp_path, [*COUNTRIES, "XI-COORD"], coordinator="XI-COORD", tls=False)
    coordinator = topo.nodes["XI-COORD"]
    proxy.target = coordinator.port
    coordinator.public_url = f"http://127.0.0.1:{proxy.port}"
    topo.create()
    now = datetime.now(UTC)
    topo.declare_period(PERIOD, format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29)))
    topo.start()
    yield topo, proxy
    topo.stop()
    proxy.close()


def test_no_content_reaches_the_coordinator(topology: tuple[Topology, RecordingProxy]) -> None:
    topo, proxy = topology
    th, my, id_ = (topo.nodes[c].client() for c in COUNTRIES)
    sent: list[tuple[str, str]] = []
    for i in range(12):
        recipients = ["MY", "ID"] if i % 3 == 0 else ["MY" if i % 2 else "ID"]
        created = th.json(
            "POST", "/v1/enquiries", {"recipients": recipients, "area": "people_smuggling", **content(i)}
        )
        sent += [(m["recipient"], m["id"]) for m in created["messages"]]
    clients = {"MY": my, "ID": id_}
    for recipient, message_id in sent:
        wait_until(lambda: _inbox_has(clients[recipient], message_id), 30, "delivery")  # noqa: B023 - called at once
        opened = clients[recipient].json("GET", f"/v1/messages/{message_id}")["message"]
        assert MARKER in opened["text"]  # the marker really is in the content the nodes exchange
        clients[recipient].json("POST", f"/v1/messages/{message_id}/read")
        reply = content(100 + len(message_id))
        reply.pop("subject")
        clients[recipient].json("POST", f"/v1/messages/{message_id}/replies", reply)
    th.json(
        "POST",
        "/v1/outcomes",
        {"period": PERIOD, "figures": {"arrests": 3}, "highlights": "Shared with the coordinator on purpose"},
    )
    coordinator = topo.nodes["XI-COORD"].client()

    def tallied() -> bool:
        totals = coordinator.json("GET", f"/v1/period/{PERIOD}/tallies")["totals"]
        outcomes = coordinator.json("GET", f"/v1/period/{PERIOD}/outcomes")["outcomes"]
        return bool(totals["enquiries"] == totals["answered"] == totals["replies"] == len(sent) and outcomes)

    wait_until(tallied, 60, "every record at the coordinator")
    [outcome] = coordinator.json("GET", f"/v1/period/{PERIOD}/outcomes")["outcomes"]
    assert outcome["highlights"] == "Shared with the coordinator on purpose"  # sealed to it, and only to it

    served = b""
    for path in ("tallies", "outstanding", "flags", "nodes", "outcomes"):
        _, raw, _ = coordinator.request("GET", f"/v1/period/{PERIOD}/{path}")
        served += raw
    for fmt in ("md", "html", "csv", "json"):
        _, raw, _ = coordinator.request("GET", f"/v1/period/{PERIOD}/report", query={"format": fmt})
        served += raw
    assert_blind(served, "what the coordinator serves")

    topo.stop()  # flush and close the coordinator's files before reading them
    assert len(proxy.received) > 10_000, "the proxy saw the nodes' records"
    assert b"/federation/v1/records" in proxy.received
    assert_blind(bytes(proxy.received), "bytes sent to the coordinator")
    assert_blind(bytes(proxy.sent), "bytes the coordinator answered")
    files = [p for p in (topo.root / "XI-COORD").rglob("*") if p.is_file()]
    assert any(p.name == "node.db" for p in files)
    for path in files:
        assert_blind(path.read_bytes(), str(path))
    # The countries store bodies sealed as well: their files hold no content in clear either.
    for country in COUNTRIES:
        for path in (topo.root / country).rglob("node.db*"):
            assert MARKER.encode() not in path.read_bytes()


def _inbox_has(client: Client, message_id: str) -> bool:
    items = client.json("GET", "/v1/messages", query={"folder": "inbox", "limit": 500})["items"]
    return any(i["id"] == message_id for i in items)


def test_coordinator_holds_no_key_that_opens_a_body(topology: tuple[Topology, RecordingProxy]) -> None:
    topo, _ = topology
    th = topo.nodes["TH"].client()
    for recipient in ("MY", "ID"):
        th.json(
            "POST", "/v1/enquiries", {"recipients": [recipient], "area": "people_smuggling", **content(1)}
        )
    wait_until(
        lambda: len(rows(topo.nodes["TH"], "SELECT id FROM messages WHERE state = 'delivered'")) == 2,
        30,
        "delivery",
    )
    coordinator = Identity.load(topo.root / "XI-COORD" / "keys")
    envelopes = [
        Envelope.model_validate_json(bytes(r[0]))  # type: ignore[call-overload]
        for r in rows(topo.nodes["TH"], "SELECT envelope FROM messages WHERE folder = 'sent'")
    ]
    assert len(envelopes) == 2
    roster = _roster(topo)
    now = datetime.now(UTC)
    for envelope in envelopes:
        assert coordinator.decryption_key(envelope.header.recipient_key) is None
        with pytest.raises(NotForUs):
            open_envelope(
                envelope,
                roster,
                coordinator,
                now,
                skew=timedelta(minutes=5),
                max_age=timedelta(days=1),
                max_attachment_bytes=1 << 20,
            )
        signer = roster.signing_key("TH", envelope.header.sender_key, now)
        for key in coordinator.encryption_keys:
            with pytest.raises(CannotOpen):
                open_body(envelope.header, envelope.sealed, key, signer, 1 << 20)


def _roster(topo: Topology) -> Roster:
    return Roster(
        parse_roster((topo.root / "XI-COORD" / "roster.json").read_bytes()),
        parse_authority_public(topo.authority_key.with_suffix(".pub").read_text()),
    )


def _deliver(node: LocalNode, envelope: Envelope, signer: Identity) -> tuple[int, str, dict[str, object]]:
    """POST ``envelope`` to ``node`` exactly as a peer's delivery worker would, signed with ``signer``'s keys."""
    path = "/federation/v1/envelopes"
    body = join_batch([canonical(envelope.wire())])
    headers = sign_request("POST", path, node.id, body, signer, datetime.now(UTC))
    request = urllib.request.Request(node.federation_url + path, data=body, headers=headers, method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL
            return response.status, response.headers.get_content_type(), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), json.loads(exc.read())


def test_no_envelope_goes_to_or_comes_from_the_coordinator(topology: tuple[Topology, RecordingProxy]) -> None:
    topo, proxy = topology
    roster = _roster(topo)
    th = Identity.load(topo.root / "TH" / "keys")
    coordinator = Identity.load(topo.root / "XI-COORD" / "keys")
    body = EnquiryBody.model_validate(content(7))

    def enquiry(sender: Identity, recipient: str) -> Envelope:
        [item] = compose_enquiry(
            body,
            [recipient],
            CrimeArea.PEOPLE_SMUGGLING,
            Urgency.NORMAL,
            sender,
            roster,
            sender.encryption_keys[-1].public_key(),
            datetime.now(UTC),
            os.urandom,
        )
        return item.envelope

    # Sealed to the coordinator's own key and signed by a member: still no door to put it through.
    to_coordinator = enquiry(th, "XI-COORD")
    answer = _deliver(topo.nodes["XI-COORD"], to_coordinator, th)
    assert (answer[0], answer[1], answer[2].get("code")) == (404, PROBLEM_JSON, "not_found")
    # Signed with the coordinator's real keys: a country node takes no enquiry from it.
    from_coordinator = enquiry(coordinator, "MY")
    answer = _deliver(topo.nodes["MY"], from_coordinator, coordinator)
    assert (answer[0], answer[1], answer[2].get("code")) == (403, PROBLEM_JSON, "not_a_node")

    topo.stop()  # flush and close every file before reading them
    assert b"/federation/v1/envelopes" in proxy.received  # the envelope did reach the coordinator's door
    assert rows(topo.nodes["XI-COORD"], "SELECT count(*) FROM messages") == [(0,)]
    assert rows(topo.nodes["MY"], "SELECT count(*) FROM messages") == [(0,)]
    for path in (topo.root / "XI-COORD").rglob("*"):
        if path.is_file():
            assert to_coordinator.header.id.encode() not in path.read_bytes(), path
    for path in (topo.root / "MY").rglob("*"):
        if path.is_file():
            assert from_coordinator.header.id.encode() not in path.read_bytes(), path
