"""The attack corpus: every request a stranger, a forger or a misbehaving member can send a country node, each
answered with its named refusal (``application/problem+json`` with a stable code and status) and none of them
leaving anything stored.

Each :class:`Attack` is run against a fresh real node (MY) on loopback: ``prepare`` sets the stage (an accepted
message, a revocation, earlier failed attempts), then every row of every table is read from the node's SQLite
file, the attack is made, and its answer and the tables are compared. The audit trail is left out of that
comparison, since a refused sign-in is audited on purpose. TH, ID and outsiders are played by this test with
real keys; XI-COORD is the roster's coordinator, never started.

The memory test at the end runs ``ncpx node serve`` as its own process, so that ``/proc`` shows the node's memory
alone while 40 strangers each announce a 30 MiB body.

Refusals proven elsewhere, because they need more than one request and one answer:

- a peer's false answers (receipts signed by the wrong key or for another digest, unsigned or forged refusals,
  a 307 to another address, a 9 MiB answer) never settle a message: ``test_hostile_peer.py``;
- a queued message for a revoked participant or sealed to a revoked key is never sent: ``test_revocation_queue.py``;
- a full disk gives ``storage_full`` (507) and red readiness: ``test_storage_full.py`` (needs root for its tmpfs);
- a maximal batch does not stop ``/livez`` answering: ``test_responsive.py``;
- guessed officer tokens are audited and the address let in again after the window, and a quota for one peer
  leaves the others' traffic alone: ``test_throttle.py``;
- a trickled body gives up its turn for bodies, read notices from another peer than the recipient change
  nothing, identical copies get the original receipt, a mixed batch stores its good envelopes:
  ``test_federation_rejections.py``; officer input echoed in no refusal: ``test_officer_api.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys.identity import Identity
from keys.roster import Role, revoke
from node.config import Delivery, Limits, write_config
from node.officer_api import OFFICERS
from protocol.codes import CrimeArea, due_at
from protocol.encoding import b64e, canonical, format_time, sha256
from protocol.envelope import Envelope, header_digest, seal_body
from protocol.models import Attachment, EnquiryBody, Header, Kind, Receipt, ReplyBody
from protocol.receipts import verify_receipt
from protocol.requests import content_digest, sign_request
from protocol.signing import key_id, sign
from tests.node.support import (
    ENVELOPES,
    HELLO,
    STATUS,
    Federation,
    Node,
    Response,
    batch,
    http,
    post_signed,
    wait_for,
)

COORD = "XI-COORD"
RECORDS = "/federation/v1/records"
MiB = 1024 * 1024
LIMITS = Limits(max_request_bytes=65536, max_attachment_bytes=4096)
BODY = EnquiryBody(subject="crafted enquiry", text="crafted text")
QUIET = Delivery(backoff_initial_s=60, backoff_cap_s=60, request_timeout_s=5.0)
"""A node under attack retries its own deliveries only once a minute, so nothing of its own moves while the
tables are compared."""


def federation_url(node: Node) -> str:
    """Where other countries reach ``node``: its federation listener."""
    return node.url


def officer_url(node: Node) -> str:
    """Where ``node``'s officers reach it (``Node.request`` goes there too): its officer listener."""
    return node.api_url


@dataclass
class Target:
    """The node under attack and everything an attacker may hold: members' real keys, outsiders' keys."""

    fed: Federation
    node: Node
    session: aiohttp.ClientSession
    kept: dict[str, Any] = field(default_factory=dict)
    """What ``prepare`` made and the attack refers to (a message id, a token)."""

    @property
    def th(self) -> Identity:
        return self.fed.identities["TH"]

    async def send(
        self, *envelopes: Envelope | dict[str, Any], signer: Any = None, **kwargs: Any
    ) -> Response:
        """A batch of envelopes in a request signed by ``signer`` (TH unless said)."""
        return await self.post(ENVELOPES, batch(*envelopes), signer, **kwargs)

    async def post(self, path: str, body: bytes, signer: Any = None, **kwargs: Any) -> Response:
        return await post_signed(self.session, self.node, path, body, signer or self.th, **kwargs)

    async def officer(self, method: str, path: str, **kwargs: Any) -> Response:
        """An officer API call, with this node's officer token unless ``token`` says otherwise."""
        return await self.node.request(method, path, **kwargs)

    def header(self, **changes: Any) -> Header:
        """A valid header from TH to MY with ``changes`` applied (due_at follows created_at)."""
        header = self.fed.envelope("TH", "MY").header
        if "created_at" in changes:
            changes.setdefault("due_at", due_at(header.urgency, changes["created_at"]))
        return header.model_copy(update=changes)

    def reseal(
        self,
        header: Header,
        body: EnquiryBody | ReplyBody = BODY,
        *,
        sealed: bytes | None = None,
        seal_header: Header | None = None,
        to: Any = None,
    ) -> Envelope:
        """An envelope for ``header`` with a valid outer signature by TH, whatever is inside."""
        if sealed is None:
            target = to or self.fed.roster().encryption_key(header.recipient, datetime.now(UTC))[1]
            sealed = seal_body(seal_header or header, body, self.th.signing, target, os.urandom(32))
        sig = sign(self.th.signing, "outer", header_digest(header) + sha256(sealed))
        return Envelope(header=header, sealed=sealed, sig=sig)

    def stored(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table but the audit trail (and its row counter), read from the node's file."""
        tables = [r[0] for r in self.node.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: sorted(tuple(r) for r in self.node.rows(f"SELECT * FROM {table}"))  # noqa: S608 - schema names
            for table in tables
            if table not in ("audit", "sqlite_sequence")
        }

    async def revise_roster(self, body: Any) -> None:
        """The authority signs ``body`` as the next roster and the node adopts it."""
        self.fed.body = body
        assert await self.node.service.offer_roster(self.fed.signed())


async def start_announcing(
    url: str, path: str, headers: dict[str, str], length: int, first: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and send a request head announcing ``length`` body bytes, then only ``first`` of them."""
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {address.netloc}", f"Content-Length: {length}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + first)
    await writer.drain()
    return reader, writer


async def answer(reader: asyncio.StreamReader) -> Response:
    """The HTTP answer on a connection made by :func:`start_announcing`."""
    async with asyncio.timeout(10):
        status = int((await reader.readline()).split()[1])
        fields: dict[str, str] = {}
        while (line := await reader.readline()).strip():
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return Response(status, fields.get("content-type", "").split(";")[0], body, fields)


async def announce(url: str, path: str, headers: dict[str, str], length: int, first: bytes = b"") -> Response:
    """A request whose head announces ``length`` body bytes, of which only ``first`` are sent: an answer that
    arrives at all was given without reading the body."""
    reader, writer = await start_announcing(url, path, headers, length, first)
    try:
        return await answer(reader)
    finally:
        writer.close()


Run = Callable[[Target], Awaitable[Response]]
Prepare = Callable[[Target], Awaitable[None]]


@dataclass(frozen=True)
class Attack:
    """One crafted request and the refusal it must earn."""

    name: str
    code: str
    status: int
    run: Run
    prepare: Prepare | None = None
    limits: Limits = field(default_factory=lambda: LIMITS)
    detail: str = ""
    """Words the refusal's detail must hold (what the caller should do)."""


ATTACKS: list[Attack] = []


def attack(
    code: str, status: int, *, prepare: Prepare | None = None, limits: Limits = LIMITS, detail: str = ""
) -> Callable[[Run], Run]:
    """Add the decorated request to the corpus under its function's name."""

    def register(run: Run) -> Run:
        ATTACKS.append(Attack(run.__name__, code, status, run, prepare, limits, detail))
        return run

    return register


def altered(**changes: str | None) -> Callable[[dict[str, str]], None]:
    """A tweak of signed request headers: set each one, or drop it when None."""

    def tweak(headers: dict[str, str]) -> None:
        for name, value in changes.items():
            real = name.replace("_", "-")
            if value is None:
                headers.pop(real)
            else:
                headers[real] = value

    return tweak


def forged_signature() -> str:
    return b64e(Ed25519PrivateKey.generate().sign(b"not the request"))


def outsider() -> Identity:
    """A participant the roster does not name."""
    return Identity.generate("FR")


# -- the request's signature headers, on /envelopes --


@attack("bad_signature", 401)
async def unsigned_request(t: Target) -> Response:
    return await http(
        t.session, "POST", federation_url(t.node) + ENVELOPES, data=batch(t.fed.envelope("TH", "MY"))
    )


@attack("bad_signature", 401)
async def signature_header_missing(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Ncpx_Signature=None))


@attack("bad_signature", 401)
async def sender_header_missing(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Ncpx_Sender=None))


@attack("bad_signature", 401)
async def forged_request_signature(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Ncpx_Signature=forged_signature()))


@attack("malformed", 400)
async def signature_not_base64(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Ncpx_Signature="!!not base64!!"))


@attack("bad_signature", 401)
async def non_ascii_content_digest(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Content_Digest="sha-256=:é:"))


@attack("bad_signature", 401)
async def body_changed_after_signing(t: Target) -> Response:
    other = content_digest(batch(t.fed.envelope("TH", "MY")))
    return await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Content_Digest=other))


@attack("bad_signature", 401)
async def signature_made_for_another_path(t: Target) -> Response:
    body = batch(t.fed.envelope("TH", "MY"))
    headers = sign_request("POST", STATUS, "MY", body, t.th, datetime.now(UTC))
    return await http(t.session, "POST", federation_url(t.node) + ENVELOPES, data=body, headers=headers)


@attack("not_for_us", 421)
async def request_names_another_recipient(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), recipient="ID")


@attack("unknown_sender", 403)
async def request_signed_outside_the_roster(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), signer=outsider())


@attack("unknown_key", 403)
async def request_signed_with_a_key_not_in_the_roster(t: Target) -> Response:
    impostor = Identity("TH", [Ed25519PrivateKey.generate()], [X25519PrivateKey.generate()])
    return await t.send(t.fed.envelope("TH", "MY"), signer=impostor)


@attack("stale_timestamp", 400)
async def request_ten_minutes_old(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), now=datetime.now(UTC) - timedelta(minutes=10))


@attack("stale_timestamp", 400)
async def request_ten_minutes_ahead(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), now=datetime.now(UTC) + timedelta(minutes=10))


@attack("malformed", 400)
async def request_timestamp_not_canonical(t: Target) -> Response:
    def loosen(headers: dict[str, str]) -> None:
        headers["Ncpx-Timestamp"] = headers["Ncpx-Timestamp"].replace("Z", "+00:00")

    return await t.send(t.fed.envelope("TH", "MY"), tweak=loosen)


async def revoke_th(t: Target) -> None:
    assert t.fed.body is not None
    await t.revise_roster(revoke(t.fed.body, "TH", None, datetime.now(UTC)))


@attack("revoked_key", 403, prepare=revoke_th)
async def revoked_participant(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"))


async def accept_one_then_revoke_ths_key(t: Target) -> None:
    assert (await t.send(t.fed.envelope("TH", "MY"))).status == 200
    assert t.fed.body is not None
    await t.revise_roster(revoke(t.fed.body, "TH", t.th.signing_kid, datetime.now(UTC)))


@attack("revoked_key", 403, prepare=accept_one_then_revoke_ths_key)
async def revoked_signing_key_refused_at_once(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"))


async def fail_twenty_times(t: Target) -> None:
    for _ in range(20):
        refused = await t.send(t.fed.envelope("TH", "MY"), tweak=altered(Ncpx_Signature=None))
        refused.problem("bad_signature", 401)


@attack("too_many_attempts", 429, prepare=fail_twenty_times)
async def well_signed_request_after_twenty_forgeries(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"))


# -- bodies refused before they are read --


@attack("bad_signature", 401)
async def unsigned_30_mib_announced(t: Target) -> Response:
    return await announce(federation_url(t.node), ENVELOPES, {}, 30 * MiB, b"{" * 1024)


@attack("unknown_sender", 403)
async def outsider_announces_30_mib(t: Target) -> Response:
    headers = sign_request("POST", ENVELOPES, "MY", b"", outsider(), datetime.now(UTC))
    return await announce(federation_url(t.node), ENVELOPES, headers, 30 * MiB, b"{" * 1024)


@attack("too_large", 413)
async def member_announces_a_body_above_the_limit(t: Target) -> Response:
    headers = sign_request("POST", ENVELOPES, "MY", b"", t.th, datetime.now(UTC))
    return await announce(federation_url(t.node), ENVELOPES, headers, 30 * MiB, b"{" * 1024)


@attack("too_large", 413)
async def member_sends_a_body_above_the_limit(t: Target) -> Response:
    return await t.send({"header": {"pad": "x" * 100_000}})


@attack("too_large", 413)
async def member_sends_a_chunked_body_above_the_limit(t: Target) -> Response:
    body = b"x" * 8192 * 20

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    headers = sign_request("POST", ENVELOPES, "MY", body, t.th, datetime.now(UTC))
    async with t.session.post(federation_url(t.node) + ENVELOPES, data=chunks(), headers=headers) as raw:
        return Response(raw.status, raw.content_type, await raw.read(), dict(raw.headers))


@attack("request_timeout", 408, limits=LIMITS.model_copy(update={"body_timeout_s": 0.5}))
async def member_trickles_its_body(t: Target) -> Response:
    body = batch(t.fed.envelope("TH", "MY"))
    headers = sign_request("POST", ENVELOPES, "MY", body, t.th, datetime.now(UTC))
    stalled = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield body[:10]
        await stalled.wait()  # the rest never comes while the node waits
        yield body[10:]

    try:
        async with (
            asyncio.timeout(10),
            t.session.post(federation_url(t.node) + ENVELOPES, data=trickle(), headers=headers) as raw,
        ):
            return Response(raw.status, raw.content_type, await raw.read(), dict(raw.headers))
    finally:
        stalled.set()


# -- the batch's framing --


def malformed_batch(name: str, raw: bytes) -> None:
    async def run(t: Target) -> Response:
        return await t.post(ENVELOPES, raw)

    ATTACKS.append(Attack(f"malformed_batch_{name}", "malformed", 400, run))


malformed_batch("not_json", b"this is not JSON\n")
malformed_batch("not_an_object", b"[1, 2, 3]\n")
malformed_batch("empty_body", b"")
malformed_batch("empty_line", b"\n")
malformed_batch("not_an_envelope", b'{"header": {"id": "x"}, "sealed": "", "sig": ""}\n')
malformed_batch("duplicate_keys", b'{"header": {"v": 2}, "header": {"v": 2}}\n')
malformed_batch("non_finite_number", b"1e999\n")
malformed_batch("more_than_1000_lines", b"{}\n" * 1001)


@attack("malformed", 400)
async def envelope_with_a_duplicate_key(t: Target) -> Response:
    wire = canonical(t.fed.envelope("TH", "MY").wire()).decode()
    return await t.post(ENVELOPES, wire.replace('"sealed":', '"sig":"AAAA","sealed":', 1).encode() + b"\n")


@attack("malformed", 400)
async def envelope_with_an_unknown_field(t: Target) -> Response:
    wire = t.fed.envelope("TH", "MY").wire()
    wire["header"]["note"] = "smuggled"
    return await t.send(wire)


@attack("unsupported_version", 400, detail="upgraded")
async def envelope_of_protocol_version_1(t: Target) -> Response:
    wire = t.fed.envelope("TH", "MY").wire()
    wire["header"]["v"] = 1
    return await t.send(wire)


# -- each envelope's authenticity, addressing and age --


@attack("bad_signature", 401)
async def envelope_with_a_wrong_outer_signature(t: Target) -> Response:
    envelope = t.fed.envelope("TH", "MY")
    return await t.send(envelope.model_copy(update={"sig": sign(t.th.signing, "outer", b"something else")}))


@attack("bad_signature", 401)
async def envelope_with_its_sealed_part_altered(t: Target) -> Response:
    envelope = t.fed.envelope("TH", "MY")
    flipped = envelope.sealed[:-1] + bytes([envelope.sealed[-1] ^ 1])
    return await t.send(envelope.model_copy(update={"sealed": flipped}))


@attack("unknown_sender", 403)
async def envelope_from_another_member_than_the_signer(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY"), signer=t.fed.identities["ID"])


@attack("unknown_key", 403)
async def envelope_naming_a_signing_key_not_in_the_roster(t: Target) -> Response:
    return await t.send(t.reseal(t.header(sender_key=key_id(Ed25519PrivateKey.generate().public_key()))))


@attack("expired_key", 403)
async def envelope_older_than_its_signing_key(t: Target) -> Response:
    return await t.send(t.reseal(t.header(created_at=t.fed.epoch - timedelta(days=1))))


@attack("not_for_us", 421)
async def envelope_for_another_country(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "ID"))


@attack("not_a_node", 403)
async def enquiry_from_the_coordinator(t: Target) -> Response:
    return await t.send(t.fed.envelope(COORD, "MY"), signer=t.fed.identities[COORD])


@attack("not_a_node", 403)
async def enquiry_addressed_to_the_coordinator(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", COORD))


async def accept_the_original(t: Target) -> None:
    header = t.kept["header"] = t.header()
    assert (await t.send(t.reseal(header))).status == 200


@attack("replayed", 409, prepare=accept_the_original)
async def same_id_with_other_bytes(t: Target) -> Response:
    other = EnquiryBody(subject="crafted enquiry", text="other text")
    return await t.send(t.reseal(t.kept["header"], other))


@attack("stale_timestamp", 400)
async def envelope_created_an_hour_ahead(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY", now=datetime.now(UTC) + timedelta(hours=1)))


@attack("stale_timestamp", 400)
async def envelope_older_than_the_accepted_age(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY", now=datetime.now(UTC) - timedelta(days=31)))


@attack("malformed", 400)
async def enquiry_whose_deadline_does_not_follow_its_urgency(t: Target) -> Response:
    header = t.header()
    return await t.send(t.reseal(header.model_copy(update={"due_at": header.created_at})))


@attack("malformed", 400)
async def enquiry_in_reply_to_a_message(t: Target) -> Response:
    return await t.send(t.reseal(t.header(in_reply_to=t.header().id)))


@attack("malformed", 400)
async def reply_naming_no_message(t: Target) -> Response:
    header = t.header(kind=Kind.REPLY, due_at=None)
    return await t.send(t.reseal(header, ReplyBody(text="an answer to nothing")))


async def seal_to_my_key_then_revoke_it(t: Target) -> None:
    """TH seals an enquiry to MY's encryption key; then the authority revokes that key."""
    t.kept["envelope"] = t.fed.envelope("TH", "MY")
    assert t.fed.body is not None
    kid = t.fed.identities["MY"].encryption_kid
    await t.revise_roster(revoke(t.fed.body, "MY", kid, datetime.now(UTC)))


@attack("revoked_key", 403, prepare=seal_to_my_key_then_revoke_it)
async def sealed_to_a_revoked_key_of_the_node(t: Target) -> Response:
    return await t.send(t.kept["envelope"])


# -- what is sealed inside --


def with_attachment(name: str, size: int = 10) -> EnquiryBody:
    """An enquiry carrying one attachment, its name unchecked (as a hostile sender would make it)."""
    attachment = Attachment.model_construct(
        name=name, media_type="application/octet-stream", data=b"x" * size
    )
    return EnquiryBody(subject="crafted enquiry", text="crafted text").model_copy(
        update={"attachments": [attachment]}
    )


@attack("too_large", 413)
async def attachments_above_the_limit(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY", body=with_attachment("big.bin", 5000)))


@attack("malformed", 400)
async def sealed_attachment_named_dot_dot(t: Target) -> Response:
    return await t.send(t.reseal(t.header(), with_attachment("..")))


@attack("malformed", 400)
async def sealed_attachment_name_with_a_bidi_override(t: Target) -> Response:
    return await t.send(t.reseal(t.header(), with_attachment("invoice\u202efdp.exe")))


@attack("tampered_header", 400)
async def sealed_part_made_for_another_header(t: Target) -> Response:
    original = t.header()
    relabelled = original.model_copy(update={"area": CrimeArea.MONEY_LAUNDERING})
    return await t.send(t.reseal(relabelled, seal_header=original))


@attack("tampered_header", 400)
async def sealed_part_lifted_from_another_message(t: Target) -> Response:
    donor = t.fed.envelope("TH", "MY")
    return await t.send(t.reseal(t.header(), sealed=donor.sealed))


@attack("tampered_header", 400)
async def reply_sealed_under_an_enquiry_header(t: Target) -> Response:
    return await t.send(t.reseal(t.header(), ReplyBody(text="a reply dressed as an enquiry")))


@attack("key_not_held", 409, detail="retried")
async def sealed_to_a_key_the_node_does_not_hold(t: Target) -> Response:
    stranger = X25519PrivateKey.generate().public_key()
    return await t.send(t.reseal(t.header(recipient_key=key_id(stranger)), to=stranger))


@attack("cannot_open", 400)
async def garbage_sealed_under_a_valid_outer_signature(t: Target) -> Response:
    return await t.send(t.reseal(t.header(), sealed=os.urandom(200)))


@attack("cannot_open", 400)
async def sealed_to_another_key_under_the_nodes_key_id(t: Target) -> Response:
    return await t.send(t.reseal(t.header(), to=X25519PrivateKey.generate().public_key()))


# -- per-peer quotas --


@attack("quota_exceeded", 429, limits=LIMITS.model_copy(update={"peer_messages_per_minute": 5}))
async def more_messages_than_the_peer_quota(t: Target) -> Response:
    return await t.send(*(t.fed.envelope("TH", "MY") for _ in range(6)))


@attack(
    "quota_exceeded",
    429,
    limits=Limits(max_request_bytes=MiB, max_attachment_bytes=MiB, peer_bytes_per_minute=64 * 1024),
)
async def more_bytes_than_the_peer_quota(t: Target) -> Response:
    return await t.send(t.fed.envelope("TH", "MY", body=with_attachment("big.bin", 70_000)))


# -- the other federation routes --


def unauthenticated_on(path: str, body: bytes) -> None:
    async def unsigned(t: Target) -> Response:
        return await http(t.session, "POST", federation_url(t.node) + path, data=body)

    async def forged(t: Target) -> Response:
        return await t.post(path, body, tweak=altered(Ncpx_Signature=forged_signature()))

    async def from_outsider(t: Target) -> Response:
        return await t.post(path, body, outsider())

    route = path.rsplit("/", 1)[1]
    ATTACKS.append(Attack(f"{route}_unsigned", "bad_signature", 401, unsigned))
    ATTACKS.append(Attack(f"{route}_forged", "bad_signature", 401, forged))
    ATTACKS.append(Attack(f"{route}_from_an_outsider", "unknown_sender", 403, from_outsider))


unauthenticated_on(STATUS, canonical({"statuses": []}))
unauthenticated_on(HELLO, canonical({"roster_version": 1}))


async def deliver_one_to_th(t: Target) -> None:
    """MY's officer sends TH an enquiry and TH (a real node) receipts it: a message a notice could mark read."""
    th = await t.fed.start("TH")
    created = await t.officer(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    t.kept["sent"] = message_id = created.json()["messages"][0]["id"]
    await wait_for(lambda: t.node.state_is(message_id, "sent", "delivered"), what="delivery to TH")
    assert th.count() == 1


def notices(*statuses: dict[str, Any]) -> bytes:
    return canonical({"statuses": list(statuses)})


def read_notice(t: Target, at: datetime | None = None) -> dict[str, Any]:
    return {"message_id": t.kept["sent"], "state": "read", "at": format_time(at or datetime.now(UTC))}


@attack("malformed", 400, prepare=deliver_one_to_th)
async def status_notice_without_its_fields(t: Target) -> Response:
    return await t.post(STATUS, notices({"state": "read"}))


@attack("malformed", 400, prepare=deliver_one_to_th)
async def status_batch_with_a_bad_notice_after_a_good_one(t: Target) -> Response:
    return await t.post(STATUS, notices(read_notice(t), {"state": "read"}))


@attack("malformed", 400, prepare=deliver_one_to_th)
async def status_notice_of_another_state(t: Target) -> Response:
    return await t.post(STATUS, notices({**read_notice(t), "state": "answered"}))


@attack("stale_timestamp", 400, prepare=deliver_one_to_th)
async def status_notice_dated_in_the_future(t: Target) -> Response:
    return await t.post(STATUS, notices(read_notice(t, datetime.now(UTC) + timedelta(days=400))))


@attack("malformed", 400)
async def status_body_not_a_list(t: Target) -> Response:
    return await t.post(STATUS, canonical({"statuses": "read"}))


@attack("not_found", 404)
async def unknown_federation_route(t: Target) -> Response:
    return await t.post("/federation/v1/nothing", b"{}")


@attack("malformed", 405)
async def wrong_method_on_envelopes(t: Target) -> Response:
    return await http(t.session, "GET", federation_url(t.node) + ENVELOPES)


@attack("not_found", 404)
async def coordinator_record_intake_on_a_node(t: Target) -> Response:
    return await t.post(RECORDS, canonical({"records": []}))


# -- the officer API --


def enquiry(*recipients: str, **extra: Any) -> dict[str, Any]:
    return {"recipients": list(recipients or ["TH"]), "area": "other", "subject": "s", "text": "t", **extra}


@attack("unauthorized", 401)
async def officer_request_without_a_token(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry(), token=None)


@attack("unauthorized", 401)
async def officer_request_with_a_guessed_token(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry(), token="ncpx_not-a-real-token")


@attack("unauthorized", 401)
async def officer_request_with_basic_credentials(t: Target) -> Response:
    basic = {"Authorization": "Basic b2ZmaWNlcjpwYXNz"}
    return await t.officer("POST", "/v1/enquiries", body=enquiry(), token=None, headers=basic)


async def start_th(t: Target) -> None:
    t.kept["token"] = (await t.fed.start("TH")).token


@attack("unauthorized", 401, prepare=start_th)
async def officer_request_with_another_nodes_token(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry(), token=t.kept["token"])


async def add_then_revoke_an_officer(t: Target) -> None:
    officers = t.node.app[OFFICERS]
    t.kept["token"] = token = await officers.add("second officer", datetime.now(UTC))
    assert (await t.officer("GET", "/v1/peers", token=token)).status == 200
    await officers.revoke("second officer", datetime.now(UTC))


@attack("unauthorized", 401, prepare=add_then_revoke_an_officer)
async def officer_request_with_a_revoked_token(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry(), token=t.kept["token"])


async def guess_twenty_tokens(t: Target) -> None:
    for attempt in range(20):
        guessed = await t.officer("GET", "/v1/peers", token=f"ncpx_guess{attempt}")
        guessed.problem("unauthorized", 401)


@attack("too_many_attempts", 429, prepare=guess_twenty_tokens)
async def officer_request_after_twenty_guessed_tokens(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry())


@attack("unauthorized", 401)
async def unauthenticated_officer_body_of_30_mib_announced(t: Target) -> Response:
    headers = {"Content-Type": "application/json"}
    return await announce(officer_url(t.node), "/v1/enquiries", headers, 30 * MiB, b"{" * 1024)


@attack("too_large", 413)
async def officer_announces_a_body_above_the_limit(t: Target) -> Response:
    headers = {"Authorization": f"Bearer {t.node.token}", "Content-Type": "application/json"}
    return await announce(officer_url(t.node), "/v1/enquiries", headers, 30 * MiB, b"{" * 1024)


@attack("malformed", 400)
async def officer_idempotency_key_of_5000_characters(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry(), headers={"Idempotency-Key": "k" * 5000})


@attack("not_found", 404)
async def reply_to_a_message_the_node_never_had(t: Target) -> Response:
    unknown = "01900000-0000-7000-8000-000000000000"
    return await t.officer("POST", f"/v1/messages/{unknown}/replies", body={"text": "answer"})


@attack("invalid_state", 409, prepare=deliver_one_to_th)
async def reply_to_the_nodes_own_enquiry(t: Target) -> Response:
    return await t.officer("POST", f"/v1/messages/{t.kept['sent']}/replies", body={"text": "answer"})


@attack("invalid_state", 409, prepare=deliver_one_to_th)
async def mark_the_nodes_own_enquiry_read(t: Target) -> Response:
    return await t.officer("POST", f"/v1/messages/{t.kept['sent']}/read")


@attack("too_large", 413)
async def officer_request_above_the_limit(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry(text="x" * 70_000))


@attack("too_large", 413)
async def officer_attachment_above_the_limit(t: Target) -> Response:
    data = b64e(os.urandom(5000))
    attachment = {"name": "a.bin", "media_type": "application/octet-stream", "data": data}
    return await t.officer("POST", "/v1/enquiries", body=enquiry(attachments=[attachment]))


@attack("unknown_recipient", 422)
async def enquiry_to_a_country_outside_the_roster(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry("FR"))


@attack("unknown_recipient", 422)
async def enquiry_to_the_nodes_own_country(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry("MY"))


@attack("unknown_recipient", 422)
async def enquiry_to_a_member_and_an_outsider(t: Target) -> Response:
    return await t.officer("POST", "/v1/enquiries", body=enquiry("TH", "FR"))


def bad_attachment_name(label: str, name: str) -> None:
    async def run(t: Target) -> Response:
        attachment = {"name": name, "media_type": "text/plain", "data": b64e(b"text")}
        return await t.officer("POST", "/v1/enquiries", body=enquiry(attachments=[attachment]))

    ATTACKS.append(Attack(f"officer_attachment_name_{label}", "malformed", 400, run))


bad_attachment_name("dot", ".")
bad_attachment_name("dot_dot", "..")
bad_attachment_name("leading_dot", ".bashrc")
bad_attachment_name("with_a_path", "../../etc/passwd")
bad_attachment_name("with_a_control_character", "report\x1b[31m.txt")
bad_attachment_name("with_a_bidi_override", "invoice\u202efdp.exe")
bad_attachment_name("empty", "")


async def receive_from_th_then_make_it_the_coordinator(t: Target) -> None:
    """An enquiry from TH waits in MY's inbox when the authority makes TH the coordinator."""
    envelope = t.fed.envelope("TH", "MY")
    assert (await t.send(envelope)).status == 200
    t.kept["received"] = envelope.header.id
    assert t.fed.body is not None
    participants = [
        p.model_copy(update={"role": Role.COORDINATOR}) if p.id == "TH" else p
        for p in t.fed.body.participants
    ]
    await t.revise_roster(
        t.fed.body.model_copy(update={"version": t.fed.body.version + 1, "participants": participants})
    )


@attack("not_a_node", 403, prepare=receive_from_th_then_make_it_the_coordinator)
async def reply_to_a_participant_that_is_no_longer_a_node(t: Target) -> Response:
    return await t.officer("POST", f"/v1/messages/{t.kept['received']}/replies", body={"text": "answer"})


@attack("not_found", 404)
async def coordinator_period_api_on_a_node(t: Target) -> Response:
    return await t.officer("GET", "/v1/period")


@attack("not_found", 404)
async def coordinator_dashboard_on_a_node(t: Target) -> Response:
    return await http(t.session, "GET", officer_url(t.node) + "/dashboard")


@attack("not_found", 404)
async def coordinator_dashboard_sign_in_on_a_node(t: Target) -> Response:
    form = b"token=ncpx_guess"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return await http(t.session, "POST", officer_url(t.node) + "/dashboard/login", data=form, headers=headers)


# -- running the corpus --


@pytest.fixture
def target_of(federation: Callable[..., Federation], session: aiohttp.ClientSession) -> Callable[..., Any]:
    async def start(limits: Limits) -> Target:
        fed = federation(["TH", "MY", "ID", COORD], coordinator=COORD)
        return Target(fed, await fed.start("MY", limits=limits, delivery=QUIET), session)

    return start


def test_the_corpus_is_large_and_its_names_distinct() -> None:
    assert len(ATTACKS) >= 40
    assert len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("case", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_attack_is_refused_by_name_and_stores_nothing(
    case: Attack, target_of: Callable[..., Awaitable[Target]]
) -> None:
    target = await target_of(case.limits)
    if case.prepare is not None:
        await case.prepare(target)
    before = target.stored()
    response = await case.run(target)
    problem = response.problem(case.code, case.status)
    assert case.detail in problem["detail"]
    for result in problem.get("results", []):  # a refused batch also says why, envelope by envelope
        assert result["problem"]["code"] == case.code
    assert target.stored() == before


async def test_the_crafted_requests_pass_when_nothing_is_wrong(
    target_of: Callable[..., Awaitable[Target]],
) -> None:
    """The baseline the corpus departs from: an honest envelope, notice and hello from TH, and an officer's
    enquiry, made by the same helpers, are accepted, so each refusal above is the attack's doing; and the
    tables compared after each attack do show what is stored."""
    target = await target_of(LIMITS)
    before = target.stored()
    envelope = target.fed.envelope("TH", "MY")
    accepted = await target.send(envelope)
    assert accepted.status == 200
    verify_receipt(
        Receipt.model_validate(accepted.json()["results"][0]["receipt"]), envelope, target.fed.roster()
    )
    assert target.node.count() == 1
    assert target.stored() != before  # what the corpus compares does see a stored message
    assert (await target.post(STATUS, notices())).json() == {"applied": 0}
    assert (await target.post(HELLO, canonical({"roster_version": 1}))).status == 200
    created = await target.officer("POST", "/v1/enquiries", body=enquiry())
    assert created.status == 201
    assert target.node.count() == 2


# -- memory --

FIRST_BYTES = 64 * 1024


def memory_kib(pid: int) -> dict[str, int]:
    """The resident set (``VmRSS``) and its peak (``VmHWM``) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def restart_peak(pid: int) -> None:
    """Set the peak resident set of a process back to its current one (Linux ``clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def test_forty_strangers_announcing_30_mib_each_cost_the_node_no_memory(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """``ncpx node serve`` as its own process; 40 connections at once announce 30 MiB each, send the first
    64 KiB and stall, as the uploads that once took a node from 106 MB to 1.4 GB did. Each is answered while
    its body is still to come (401, then 429 once the address has failed 20 times), and with all 40 still open
    the node's peak resident set has grown by less than 10 MB."""
    fed = Federation(tmp_path, session, ["TH", "MY"])
    config = fed.config("MY")
    path = config.data_dir / "node.toml"
    write_config(path, config)
    node = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node.cli",
        "node",
        "serve",
        "-c",
        str(path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = fed.url("MY")

    async def alive() -> bool:
        try:
            return (await http(session, "GET", url + "/livez")).status == 200
        except aiohttp.ClientConnectionError:
            return False

    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        await wait_for(alive, within=30, what="the node process to listen")
        warm = await announce(url, ENVELOPES, {}, 30 * MiB, b"{" * FIRST_BYTES)
        warm.problem("bad_signature", 401)
        before = memory_kib(node.pid)["VmRSS"]
        restart_peak(node.pid)
        connections = await asyncio.gather(
            *(start_announcing(url, ENVELOPES, {}, 30 * MiB, b"{" * FIRST_BYTES) for _ in range(40))
        )
        answers = await asyncio.gather(*(answer(reader) for reader, _ in connections))
        after = memory_kib(node.pid)
    finally:
        for _, writer in connections:
            writer.close()
        node.terminate()
        await node.wait()
    for response in answers:
        response.problem("bad_signature" if response.status == 401 else "too_many_attempts")
    assert sorted(r.status for r in answers) == [401] * 19 + [429] * 21
    assert after["VmHWM"] - before < 10 * 1000, (before, after)


async def test_one_id_twice_in_a_batch_with_other_bytes_is_stored_once(
    target_of: Callable[..., Awaitable[Target]],
) -> None:
    """Not a refusal of the whole request: the first envelope under the id is stored and receipted, the second
    is refused as ``replayed`` with a signed refusal, as if it had come in a later batch."""
    target = await target_of(LIMITS)
    header = target.header()
    first = target.reseal(header)
    second = target.reseal(header, EnquiryBody(subject="crafted enquiry", text="other text"))
    response = await target.send(first, second)
    assert response.status == 200
    stored, refused = response.json()["results"]
    assert "receipt" in stored
    assert refused["problem"]["code"] == "replayed"
    assert "refusal" in refused
    [row] = target.node.rows("SELECT envelope FROM messages")
    assert bytes(row["envelope"]) == first.canonical_bytes()
