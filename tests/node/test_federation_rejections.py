"""The rejection corpus of ``/federation/v1``: one crafted request per refusal, each answered with its stable
code as ``application/problem+json``, and none of them leaving anything stored on the receiving node.

MY is the node under test; TH, ID and outsiders are played by this test with real keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys.identity import Identity
from keys.roster import revoke
from node.config import Limits
from node.federation_api import BODIES
from protocol.codes import CrimeArea, due_at
from protocol.encoding import b64e, canonical, format_time, sha256
from protocol.envelope import Envelope, header_digest, seal_body
from protocol.models import Attachment, EnquiryBody, Header, Receipt, ReplyBody
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

LIMITS = Limits(max_request_bytes=65536, max_attachment_bytes=4096)
BODY = EnquiryBody(subject="crafted enquiry", text="crafted text")


@dataclass
class Bench:
    fed: Federation
    my: Node
    session: aiohttp.ClientSession

    @property
    def th(self) -> Identity:
        return self.fed.identities["TH"]

    async def send(
        self, *envelopes: Envelope | dict[str, Any], signer: Any = None, **kwargs: Any
    ) -> Response:
        return await post_signed(
            self.session, self.my, ENVELOPES, batch(*envelopes), signer or self.th, **kwargs
        )

    async def refused(self, response: Response, code: str, status: int | None = None) -> dict[str, Any]:
        problem = response.problem(code, status)
        assert self.my.count("messages") == 0
        assert self.my.count("outbox") == 0
        return problem

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

    def header(self, **changes: Any) -> Header:
        """A valid header from TH to MY, with ``changes`` applied (due_at follows created_at)."""
        header = self.fed.envelope("TH", "MY").header
        if "created_at" in changes:
            changes.setdefault("due_at", due_at(header.urgency, changes["created_at"]))
        return header.model_copy(update=changes)


@pytest.fixture
async def bench(federation: Callable[..., Federation], session: aiohttp.ClientSession) -> Bench:
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY", limits=LIMITS)
    return Bench(fed, my, session)


async def test_well_formed_envelope_is_accepted(bench: Bench) -> None:
    """The baseline the refusals below depart from: a crafted but honest envelope is stored and receipted."""
    envelope = bench.fed.envelope("TH", "MY")
    response = await bench.send(envelope)
    assert response.status == 200
    [result] = response.json()["results"]
    receipt = Receipt.model_validate(result["receipt"])
    verify_receipt(receipt, envelope, bench.fed.roster())
    assert bench.my.count() == 1


# -- bad_signature --


async def test_bad_request_signature(bench: Bench) -> None:
    forged = b64e(Ed25519PrivateKey.generate().sign(b"not the request"))
    response = await bench.send(
        bench.fed.envelope("TH", "MY"), tweak=lambda h: h.__setitem__("Ncpx-Signature", forged)
    )
    await bench.refused(response, "bad_signature", 401)


async def test_non_ascii_content_digest_is_a_bad_signature_not_a_crash(bench: Bench) -> None:
    response = await bench.send(
        bench.fed.envelope("TH", "MY"), tweak=lambda h: h.__setitem__("Content-Digest", "sha-256=:é:")
    )
    await bench.refused(response, "bad_signature", 401)


async def test_request_body_changed_after_signing(bench: Bench) -> None:
    other = content_digest(batch(bench.fed.envelope("TH", "MY")))
    response = await bench.send(
        bench.fed.envelope("TH", "MY"), tweak=lambda h: h.__setitem__("Content-Digest", other)
    )
    await bench.refused(response, "bad_signature", 401)


async def test_request_without_signature_headers(bench: Bench) -> None:
    response = await bench.send(bench.fed.envelope("TH", "MY"), tweak=lambda h: h.pop("Ncpx-Signature"))
    await bench.refused(response, "bad_signature", 401)


async def test_envelope_with_wrong_outer_signature(bench: Bench) -> None:
    envelope = bench.fed.envelope("TH", "MY")
    wrong = envelope.model_copy(update={"sig": sign(bench.th.signing, "outer", b"something else")})
    response = await bench.send(wrong)
    problem = await bench.refused(response, "bad_signature")
    assert problem["results"][0]["id"] == envelope.header.id


async def test_envelope_with_altered_sealed_part(bench: Bench) -> None:
    envelope = bench.fed.envelope("TH", "MY")
    flipped = envelope.sealed[:-1] + bytes([envelope.sealed[-1] ^ 1])
    response = await bench.send(envelope.model_copy(update={"sealed": flipped}))
    await bench.refused(response, "bad_signature")


# -- not_for_us --


async def test_envelope_addressed_to_another_country(bench: Bench) -> None:
    response = await bench.send(bench.fed.envelope("TH", "ID"))
    await bench.refused(response, "not_for_us", 421)


async def test_request_header_names_another_recipient(bench: Bench) -> None:
    response = await bench.send(bench.fed.envelope("TH", "MY"), recipient="ID")
    await bench.refused(response, "not_for_us", 421)


# -- unknown_sender, unknown_key, revoked_key, expired_key --


async def test_request_signed_by_participant_outside_roster(bench: Bench) -> None:
    outsider = Identity.generate("FR")
    response = await bench.send(bench.fed.envelope("TH", "MY"), signer=outsider)
    await bench.refused(response, "unknown_sender", 403)


async def test_envelope_from_another_participant_than_the_request_signer(bench: Bench) -> None:
    response = await bench.send(bench.fed.envelope("TH", "MY"), signer=bench.fed.identities["ID"])
    await bench.refused(response, "unknown_sender", 403)


async def test_request_signed_with_key_not_in_roster(bench: Bench) -> None:
    impostor = Identity("TH", [Ed25519PrivateKey.generate()], [X25519PrivateKey.generate()])
    response = await bench.send(bench.fed.envelope("TH", "MY"), signer=impostor)
    await bench.refused(response, "unknown_key", 403)


async def test_envelope_naming_signing_key_not_in_roster(bench: Bench) -> None:
    header = bench.header(sender_key=key_id(Ed25519PrivateKey.generate().public_key()))
    response = await bench.send(bench.reseal(header))
    await bench.refused(response, "unknown_key", 403)


async def test_revoked_key_is_refused_at_once(bench: Bench) -> None:
    accepted = await bench.send(bench.fed.envelope("TH", "MY"))
    assert accepted.status == 200
    assert bench.my.count() == 1

    assert bench.fed.body is not None
    revoked = revoke(bench.fed.body, "TH", bench.th.signing_kid, datetime.now(UTC))
    assert await bench.my.service.offer_roster(bench.fed.signed(revoked))
    response = await bench.send(bench.fed.envelope("TH", "MY"))
    response.problem("revoked_key", 403)
    assert bench.my.count() == 1


async def test_revoked_participant_is_refused(bench: Bench) -> None:
    assert bench.fed.body is not None
    revoked = revoke(bench.fed.body, "TH", None, datetime.now(UTC))
    assert await bench.my.service.offer_roster(bench.fed.signed(revoked))
    response = await bench.send(bench.fed.envelope("TH", "MY"))
    await bench.refused(response, "revoked_key", 403)


async def test_envelope_older_than_its_signing_key(bench: Bench) -> None:
    header = bench.header(created_at=bench.fed.epoch - timedelta(days=1))
    response = await bench.send(bench.reseal(header))
    await bench.refused(response, "expired_key", 403)


# -- replayed, and idempotent redelivery --


async def test_same_id_different_bytes_is_replayed(bench: Bench) -> None:
    header = bench.header()
    first = bench.reseal(header)
    accepted = await bench.send(first)
    assert accepted.status == 200

    second = bench.reseal(header, EnquiryBody(subject="crafted enquiry", text="other text"))
    assert second.canonical_bytes() != first.canonical_bytes()
    response = await bench.send(second)
    response.problem("replayed", 409)
    [row] = bench.my.rows("SELECT envelope FROM messages")
    assert bytes(row["envelope"]) == first.canonical_bytes()


async def test_identical_copy_returns_the_original_receipt(bench: Bench) -> None:
    envelope = bench.fed.envelope("TH", "MY")
    first = await bench.send(envelope)
    assert first.status == 200
    again = await bench.send(envelope)
    assert again.status == 200
    assert again.json()["results"][0]["receipt"] == first.json()["results"][0]["receipt"]
    # and inside one batch, the repeat is acknowledged with the same receipt too
    both = await bench.send(envelope, envelope)
    receipts = [r["receipt"] for r in both.json()["results"]]
    assert receipts == [first.json()["results"][0]["receipt"]] * 2
    assert bench.my.count() == 1


# -- stale_timestamp --


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), timedelta(minutes=10)])
async def test_request_timestamp_outside_skew(bench: Bench, offset: timedelta) -> None:
    response = await bench.send(bench.fed.envelope("TH", "MY"), now=datetime.now(UTC) + offset)
    await bench.refused(response, "stale_timestamp")


async def test_envelope_created_in_the_future(bench: Bench) -> None:
    envelope = bench.fed.envelope("TH", "MY", now=datetime.now(UTC) + timedelta(hours=1))
    response = await bench.send(envelope)
    await bench.refused(response, "stale_timestamp")


async def test_envelope_older_than_the_accepted_age(bench: Bench) -> None:
    envelope = bench.fed.envelope("TH", "MY", now=datetime.now(UTC) - timedelta(days=31))
    response = await bench.send(envelope)
    await bench.refused(response, "stale_timestamp")


# -- malformed --


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not JSON\n",
        b"[1, 2, 3]\n",
        b"",
        b"\n",
        b'{"header": {"id": "x"}, "sealed": "", "sig": ""}\n',
        b'{"header": {"v": 2}, "header": {"v": 2}}\n',
        b"1e999\n",
        b"{}\n" * 1001,
    ],
    ids=[
        "not-json",
        "not-an-object",
        "empty-body",
        "empty-line",
        "not-an-envelope",
        "duplicate-keys",
        "non-finite",
        "too-many",
    ],
)
async def test_malformed_bodies(bench: Bench, raw: bytes) -> None:
    response = await post_signed(bench.session, bench.my, ENVELOPES, raw, bench.th)
    await bench.refused(response, "malformed", 400)


async def test_envelope_with_duplicate_key_inside(bench: Bench) -> None:
    wire = json.dumps(bench.fed.envelope("TH", "MY").wire())
    raw = wire.replace('"sealed":', '"sig": "AAAA", "sealed":', 1).encode() + b"\n"
    response = await post_signed(bench.session, bench.my, ENVELOPES, raw, bench.th)
    await bench.refused(response, "malformed", 400)


async def test_envelope_with_unknown_field(bench: Bench) -> None:
    wire = bench.fed.envelope("TH", "MY").wire()
    wire["header"]["note"] = "smuggled"
    response = await bench.send(wire)
    await bench.refused(response, "malformed", 400)


async def test_non_canonical_request_timestamp(bench: Bench) -> None:
    def loosen(headers: dict[str, str]) -> None:
        headers["Ncpx-Timestamp"] = headers["Ncpx-Timestamp"].replace("Z", "+00:00")

    response = await bench.send(bench.fed.envelope("TH", "MY"), tweak=loosen)
    await bench.refused(response, "malformed", 400)


# -- too_large --


async def test_request_body_above_limit(bench: Bench) -> None:
    padding = {"header": {"pad": "x" * 100_000}}
    response = await bench.send(padding)
    await bench.refused(response, "too_large", 413)


async def test_attachments_above_limit(bench: Bench) -> None:
    body = EnquiryBody(
        subject="crafted enquiry",
        text="crafted text",
        attachments=[
            Attachment(name="big.bin", media_type="application/octet-stream", data=os.urandom(5000))
        ],
    )
    response = await bench.send(bench.fed.envelope("TH", "MY", body=body))
    await bench.refused(response, "too_large", 413)


# -- tampered_header --


async def test_sealed_part_made_for_another_header(bench: Bench) -> None:
    original = bench.header()
    relabelled = original.model_copy(update={"area": CrimeArea.MONEY_LAUNDERING})
    response = await bench.send(bench.reseal(relabelled, seal_header=original))
    await bench.refused(response, "tampered_header", 400)


async def test_sealed_part_lifted_from_another_message(bench: Bench) -> None:
    donor = bench.fed.envelope("TH", "MY")
    header = bench.header()
    assert header.id != donor.header.id
    response = await bench.send(bench.reseal(header, sealed=donor.sealed))
    await bench.refused(response, "tampered_header", 400)


async def test_body_kind_differs_from_header_kind(bench: Bench) -> None:
    header = bench.header()
    response = await bench.send(bench.reseal(header, ReplyBody(text="a reply dressed as an enquiry")))
    await bench.refused(response, "tampered_header", 400)


# -- cannot_open --


async def test_sealed_to_a_key_we_do_not_hold(bench: Bench) -> None:
    """Refused for now, not for good: the operator may not have given the node its rotated keys yet."""
    stranger = X25519PrivateKey.generate().public_key()
    header = bench.header(recipient_key=key_id(stranger))
    response = await bench.send(bench.reseal(header, to=stranger))
    problem = await bench.refused(response, "key_not_held", 409)
    assert "retried" in problem["detail"]


async def test_garbage_sealed_bytes_with_valid_outer_signature(bench: Bench) -> None:
    response = await bench.send(bench.reseal(bench.header(), sealed=os.urandom(200)))
    await bench.refused(response, "cannot_open", 400)


async def test_sealed_to_another_key_under_our_key_id(bench: Bench) -> None:
    header = bench.header()
    response = await bench.send(bench.reseal(header, to=X25519PrivateKey.generate().public_key()))
    await bench.refused(response, "cannot_open", 400)


# -- batches and the other federation routes --


async def test_mixed_batch_stores_only_the_good_envelope(bench: Bench) -> None:
    good = bench.fed.envelope("TH", "MY")
    bad = bench.fed.envelope("TH", "ID")
    response = await bench.send(bad, good)
    assert response.status == 200
    bad_result, good_result = response.json()["results"]
    assert bad_result["id"] == bad.header.id
    assert bad_result["problem"]["code"] == "not_for_us"
    assert good_result["id"] == good.header.id
    assert "receipt" in good_result
    assert [r["id"] for r in bench.my.rows("SELECT id FROM messages")] == [good.header.id]


async def test_status_notices_are_checked_and_bound_to_their_peer(bench: Bench) -> None:
    response = await post_signed(
        bench.session, bench.my, STATUS, canonical({"statuses": [{"state": "answered"}]}), bench.th
    )
    response.problem("malformed", 400)

    # MY sends TH an enquiry (TH is down, so it stays in MY's outbox). ID cannot mark it read.
    created = await bench.my.call(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    message_id = created["messages"][0]["id"]
    notice = {"message_id": message_id, "state": "read", "at": format_time(datetime.now(UTC))}
    await post_signed(
        bench.session, bench.my, STATUS, canonical({"statuses": [notice]}), bench.fed.identities["ID"]
    )
    [row] = bench.my.rows("SELECT state, read_at FROM messages WHERE id = ?", (message_id,))
    assert row["state"] in ("queued", "sent")
    assert row["read_at"] is None
    # A read notice dated in the future is refused, even from the recipient.
    future = {**notice, "at": "2030-01-01T00:00:00.000Z"}
    refused = await post_signed(bench.session, bench.my, STATUS, canonical({"statuses": [future]}), bench.th)
    refused.problem("stale_timestamp", 400)
    [row] = bench.my.rows("SELECT read_at FROM messages WHERE id = ?", (message_id,))
    assert row["read_at"] is None
    # TH (the actual recipient) can.
    ok = await post_signed(bench.session, bench.my, STATUS, canonical({"statuses": [notice]}), bench.th)
    assert ok.status == 200
    assert ok.json() == {"applied": 1}
    [row] = bench.my.rows("SELECT state FROM messages WHERE id = ?", (message_id,))
    assert row["state"] == "read"


async def test_unknown_route_and_method_are_problems(bench: Bench) -> None:
    missing = await post_signed(bench.session, bench.my, "/federation/v1/nothing", b"{}", bench.th)
    missing.problem("not_found", 404)
    async with bench.session.get(bench.my.url + ENVELOPES) as response:
        assert response.status == 405
        assert response.content_type == "application/problem+json"
    assert bench.my.count() == 0


async def test_chunked_body_above_limit(bench: Bench) -> None:
    """Without a Content-Length the limit still holds while reading, for a peer that signed the request."""
    body = b"x" * 8192 * 20

    async def chunks() -> Any:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    headers = sign_request("POST", ENVELOPES, "MY", body, bench.th, datetime.now(UTC))
    async with bench.session.post(bench.my.url + ENVELOPES, data=chunks(), headers=headers) as raw:
        response = Response(raw.status, raw.content_type, await raw.read(), dict(raw.headers))
    await bench.refused(response, "too_large", 413)


async def test_an_unsigned_body_is_refused_before_it_is_read(bench: Bench) -> None:
    """A 30 MiB body announced by nobody the roster names: the answer comes before a byte of it is sent."""
    host, port = "127.0.0.1", bench.my.config.federation.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"POST {ENVELOPES} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {30 * 1024 * 1024}\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 401")
    assert bench.my.count() == 0


async def test_a_body_trickling_in_is_cut_off(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["TH", "MY"])
    my = await fed.start("MY", limits=Limits(body_timeout_s=0.5))
    body = batch(fed.envelope("TH", "MY"))
    headers = sign_request("POST", ENVELOPES, "MY", body, fed.identities["TH"], datetime.now(UTC))
    stalled = asyncio.Event()

    async def trickle() -> Any:
        yield body[:10]
        await stalled.wait()  # the rest never comes while the node waits
        yield body[10:]

    try:
        async with (
            asyncio.timeout(10),
            session.post(my.url + ENVELOPES, data=trickle(), headers=headers) as raw,
        ):
            response = Response(raw.status, raw.content_type, await raw.read(), dict(raw.headers))
    finally:
        stalled.set()
    response.problem("request_timeout", 408)
    assert my.count() == 0


@pytest.mark.parametrize("path", [STATUS, HELLO])
async def test_other_federation_routes_require_a_valid_signature(bench: Bench, path: str) -> None:
    body = canonical({"statuses": []} if path == STATUS else {"roster_version": 1})
    unsigned = await http(bench.session, "POST", bench.my.url + path, data=body)
    unsigned.problem("bad_signature", 401)
    forged = b64e(Ed25519PrivateKey.generate().sign(b"x"))
    tweaked = await post_signed(
        bench.session, bench.my, path, body, bench.th, tweak=lambda h: h.__setitem__("Ncpx-Signature", forged)
    )
    tweaked.problem("bad_signature", 401)
    outsider = await post_signed(bench.session, bench.my, path, body, Identity.generate("FR"))
    outsider.problem("unknown_sender", 403)
    ok = await post_signed(bench.session, bench.my, path, body, bench.th)
    assert ok.status == 200


async def test_an_envelope_of_protocol_version_1_is_refused_by_name(bench: Bench) -> None:
    wire = bench.fed.envelope("TH", "MY").wire()
    wire["header"]["v"] = 1
    response = await bench.send(wire)
    problem = await bench.refused(response, "unsupported_version", 400)
    assert "upgraded" in problem["detail"]


async def test_a_status_batch_is_checked_whole_and_applied_at_once(bench: Bench) -> None:
    created = await bench.my.call(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    message_id = created["messages"][0]["id"]
    ahead = format_time(datetime.now(UTC) + timedelta(minutes=2))  # within the skew: taken as now
    good = {"message_id": message_id, "state": "read", "at": ahead}
    refused = await post_signed(
        bench.session, bench.my, STATUS, canonical({"statuses": [good, {"state": "read"}]}), bench.th
    )
    refused.problem("malformed", 400)
    [row] = bench.my.rows("SELECT read_at FROM messages WHERE id = ?", (message_id,))
    assert row["read_at"] is None  # the good notice in front of the bad one was not applied either
    ok = await post_signed(bench.session, bench.my, STATUS, canonical({"statuses": [good]}), bench.th)
    assert ok.json() == {"applied": 1}
    [row] = bench.my.rows("SELECT read_at FROM messages WHERE id = ?", (message_id,))
    assert row["read_at"] < ahead


async def test_bodies_are_read_a_few_at_a_time(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    """With one turn for bodies, a member trickling its body makes the next one wait its turn (memory held for
    bodies stays bounded however many send at once); the turn passes on when the trickle is cut off."""
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY", limits=Limits(concurrent_bodies=1, body_timeout_s=1.0))
    body = batch(fed.envelope("TH", "MY"))
    headers = sign_request("POST", ENVELOPES, "MY", body, fed.identities["TH"], datetime.now(UTC))
    stalled = asyncio.Event()

    async def trickle() -> Any:
        yield body[:10]
        await stalled.wait()
        yield body[10:]

    async def slow() -> int:
        async with session.post(my.url + ENVELOPES, data=trickle(), headers=headers) as raw:
            return raw.status

    slow_task = asyncio.create_task(slow())
    try:
        await wait_for(lambda: my.app[BODIES].locked(), what="TH's body to take the only turn")
        started = time.perf_counter()
        waited = await post_signed(
            session, my, ENVELOPES, batch(fed.envelope("ID", "MY")), fed.identities["ID"]
        )
        assert time.perf_counter() - started >= 0.5  # it waited for the turn
        assert waited.status == 200
    finally:
        stalled.set()
    assert await asyncio.wait_for(slow_task, 10) == 408
    assert my.count() == 1
