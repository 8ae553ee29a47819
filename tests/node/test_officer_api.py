"""The officer API (``/v1``) of a real node: idempotency, validation without echo, listings, downloads, peers,
health, audit and the OpenAPI document. Its refusals of tokens, sizes, recipients and attachment names are cases
of ``test_attack_corpus.py``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from node.officer_api import OFFICERS
from tests.node.support import Federation, Node, wait_for

MARKER = "ZQX-marker-7f3a9c"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def enquiry(to: str | list[str] = "MY", **extra: Any) -> dict[str, Any]:
    return {
        "recipients": [to] if isinstance(to, str) else to,
        "area": "people_smuggling",
        "subject": "Vessel enquiry",
        "text": "Please check the vessel.",
        **extra,
    }


@dataclass
class Pair:
    fed: Federation
    th: Node
    my: Node


@pytest.fixture
async def pair(federation: Callable[..., Federation]) -> Pair:
    fed = federation(["TH", "MY", "ID"])
    return Pair(fed, await fed.start("TH"), await fed.start("MY"))


async def send(node: Node, body: dict[str, Any]) -> str:
    created = await node.call("POST", "/v1/enquiries", body=body)
    return str(created["messages"][0]["id"])


async def test_idempotency_key(pair: Pair) -> None:
    headers = {"Idempotency-Key": "enquiry-0001"}
    first = await pair.th.request("POST", "/v1/enquiries", body=enquiry(), headers=headers)
    second = await pair.th.request("POST", "/v1/enquiries", body=enquiry(), headers=headers)
    assert first.status == second.status == 201
    assert first.body == second.body
    assert pair.th.count() == 1
    assert pair.th.count("idempotency") == 1

    changed = await pair.th.request(
        "POST", "/v1/enquiries", body=enquiry(text="Another question."), headers=headers
    )
    changed.problem("conflict", 409)
    assert pair.th.count() == 1

    other_key = await pair.th.request(
        "POST", "/v1/enquiries", body=enquiry(), headers={"Idempotency-Key": "enquiry-0002"}
    )
    assert other_key.status == 201
    assert other_key.json()["thread"] != first.json()["thread"]
    assert pair.th.count() == 2
    # The receiving side got each message exactly once.
    ids = {first.json()["messages"][0]["id"], other_key.json()["messages"][0]["id"]}

    async def both_received() -> bool:
        return {i["id"] for i in await pair.my.listing(folder="inbox")} == ids

    await wait_for(both_received, what="both messages at MY")
    assert pair.my.count() == 2


@pytest.mark.parametrize(
    "body",
    [
        enquiry(area=MARKER),
        enquiry(urgency=MARKER),
        enquiry(to=MARKER),
        enquiry(handling=MARKER),
        enquiry(subjects={"phones": [{"number": MARKER}]}),
        enquiry(subjects={"vessels": [{"name": "KM", "imo": "9074720", "note": MARKER}]}),
        enquiry(attachments=[{"name": "a.txt", "media_type": "text/plain", "data": MARKER + "==="}]),
        enquiry(handling="H3", handling_note="", text=MARKER),
        enquiry(subject="", text=MARKER),
        enquiry(text=MARKER * 2000),
        {**enquiry(), MARKER: "an unknown field"},
        {"recipients": ["MY"], "text": MARKER},
    ],
    ids=[
        "area",
        "urgency",
        "recipient",
        "handling",
        "phone",
        "unknown-nested-field",
        "attachment-base64",
        "h3-without-note",
        "empty-subject",
        "text-too-long",
        "unknown-field-name",
        "missing-fields",
    ],
)
async def test_validation_error_does_not_echo_content(pair: Pair, body: dict[str, Any]) -> None:
    response = await pair.th.request("POST", "/v1/enquiries", body=body)
    response.problem("malformed", 400)
    assert MARKER not in response.body.decode()
    assert MARKER.lower() not in response.body.decode().lower()
    assert pair.th.count() == 0


async def test_invalid_json_does_not_echo_content(pair: Pair) -> None:
    raw = ('{"recipients": ["MY"], "text": "' + MARKER + '"').encode()
    response = await pair.th.request(
        "POST", "/v1/enquiries", data=raw, headers={"Content-Type": "application/json"}
    )
    response.problem("malformed", 400)
    assert MARKER not in response.body.decode()


async def test_listing_filters_and_pagination(pair: Pair) -> None:
    id_ = await pair.fed.start("ID")
    to_my = [await send(pair.th, enquiry("MY")) for _ in range(3)]
    to_id = [await send(pair.th, enquiry("ID", area="money_laundering")) for _ in range(2)]
    for message_id in to_my + to_id:
        await wait_for(lambda m=message_id: pair.th.state_is(m, "sent", "delivered"), what="delivery")

    def ids(items: list[dict[str, Any]]) -> set[str]:
        return {i["id"] for i in items}

    assert ids(await pair.th.listing(folder="sent")) == set(to_my + to_id)
    assert ids(await pair.th.listing(folder="sent", peer="MY")) == set(to_my)
    assert ids(await pair.th.listing(folder="sent", peer="id")) == set(to_id)
    assert ids(await pair.th.listing(folder="sent", area="money_laundering")) == set(to_id)
    assert ids(await pair.th.listing(folder="sent", state="delivered")) == set(to_my + to_id)
    assert await pair.th.listing(folder="sent", state="read") == []
    assert await pair.th.listing(folder="outbox") == []
    assert await pair.th.listing(folder="inbox") == []
    assert ids(await pair.my.listing(folder="inbox")) == set(to_my)
    assert ids(await pair.my.listing()) == set(to_my)  # inbox is the default folder
    assert ids(await id_.listing(folder="inbox", area="money_laundering")) == set(to_id)
    assert ids(await pair.my.listing(folder="inbox", state="received")) == set(to_my)
    listed = await pair.th.listing(folder="sent")
    assert all(set(item) >= {"id", "thread", "state", "overdue", "envelope_digest"} for item in listed)
    assert not any("text" in item or "subject" in item for item in listed)

    # Read one: the state filter follows.
    await pair.my.call("POST", f"/v1/messages/{to_my[0]}/read")
    assert ids(await pair.my.listing(folder="inbox", state="read")) == {to_my[0]}

    # Pagination: newest first, two per page, every message exactly once.
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"folder": "sent", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await pair.th.call("GET", "/v1/messages", params=params)
        assert len(page["items"]) <= 2
        seen.extend(i["id"] for i in page["items"])
        pages += 1
        cursor = page.get("next")
        if not cursor:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert seen == [i["id"] for i in listed]
    created = [i["created_at"] for i in listed]
    assert created == sorted(created, reverse=True)

    # A peer that is down: its messages wait in the outbox folder.
    await id_.stop()
    waiting = await send(pair.th, enquiry("ID"))
    await wait_for(lambda: pair.th.worker.peers["ID"].failures > 0, what="a failed attempt")
    assert ids(await pair.th.listing(folder="outbox")) == {waiting}

    # Bad parameters are problems.
    for params in ({"folder": "trash"}, {"state": "lost"}, {"limit": "many"}, {"cursor": "!!"}):
        (await pair.th.request("GET", "/v1/messages", params=params)).problem("malformed", 400)


async def test_overdue_filter(pair: Pair) -> None:
    urgent = await send(pair.th, enquiry(urgency="urgent_direct"))
    normal = await send(pair.th, enquiry(urgency="normal"))
    for message_id in (urgent, normal):
        await wait_for(lambda m=message_id: pair.th.state_is(m, "sent", "delivered"), what="delivery")
    assert await pair.th.listing(folder="sent", overdue="true") == []

    # Nine hours later on both sides: the 8-hour deadline has passed, the 7-day one has not.
    pair.th.clock.offset = pair.my.clock.offset = timedelta(hours=9)
    for node, folder in ((pair.th, "sent"), (pair.my, "inbox")):
        overdue = await node.listing(folder=folder, overdue="true")
        assert [i["id"] for i in overdue] == [urgent]
        assert overdue[0]["overdue"] is True
        assert [i["id"] for i in await node.listing(folder=folder, state="overdue")] == [urgent]
        flags = {i["id"]: i["overdue"] for i in await node.listing(folder=folder)}
        assert flags == {urgent: True, normal: False}

    # Answering it ends the overdue state on both sides.
    await pair.my.call("POST", f"/v1/messages/{urgent}/replies", body={"text": "Done."})
    await wait_for(lambda: pair.th.state_is(urgent, "sent", "answered"), what="the answer")
    assert await pair.th.listing(folder="sent", overdue="true") == []
    assert await pair.my.listing(folder="inbox", overdue="true") == []


async def test_attachments_download_exact_bytes(pair: Pair) -> None:
    files = [bytes(range(256)) * 4, os.urandom(5000), b""]
    attachments = [
        {"name": f'file "{i}".bin', "media_type": "application/octet-stream", "data": b64(data)}
        for i, data in enumerate(files)
    ]
    message_id = await send(pair.th, enquiry(attachments=attachments))
    await wait_for(lambda: pair.th.state_is(message_id, "sent", "delivered"), what="delivery")
    for node in (pair.my, pair.th):
        detail = (await node.call("GET", f"/v1/messages/{message_id}"))["message"]
        assert [a["size"] for a in detail["attachments"]] == [len(f) for f in files]
        for info, data in zip(detail["attachments"], files, strict=True):
            response = await node.request("GET", info["url"])
            assert response.status == 200
            assert response.body == data
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Disposition"].startswith("attachment;")
            disposition = response.headers["Content-Disposition"]
            ascii_name, encoded = disposition.split('filename="', 1)[1].split("\"; filename*=UTF-8''")
            assert '"' not in ascii_name
            assert unquote(encoded) == info["name"]  # the exact name, percent-encoded (RFC 6266)
    missing = await pair.my.request("GET", f"/v1/messages/{message_id}/attachments/3")
    missing.problem("not_found", 404)
    (await pair.my.request("GET", f"/v1/messages/{message_id}/attachments/x")).problem("not_found", 404)
    (await pair.my.request("GET", "/v1/messages/not-a-uuid")).problem("not_found", 404)
    unknown = "01900000-0000-7000-8000-000000000000"
    (await pair.my.request("GET", f"/v1/messages/{unknown}")).problem("not_found", 404)


async def test_peers_view(pair: Pair) -> None:
    message_id = await send(pair.th, enquiry("MY"))
    waiting = await send(pair.th, enquiry("ID"))  # ID is in the roster but never started
    await wait_for(lambda: pair.th.state_is(message_id, "sent", "delivered"), what="delivery")
    await wait_for(lambda: pair.th.worker.peers["ID"].failures > 0, what="a failed attempt at ID")
    view = await pair.th.call("GET", "/v1/peers")
    assert view["me"] == "TH"
    assert view["roster_version"] == pair.fed.roster().version
    peers = {p["id"]: p for p in view["peers"]}
    assert set(peers) == {"MY", "ID"}
    assert peers["MY"]["url"] == pair.my.url
    assert peers["MY"]["status"] == "active"
    assert peers["MY"]["reachable"] is True
    assert peers["MY"]["backlog"] == 0
    assert peers["MY"]["last_success_at"]
    assert peers["ID"]["reachable"] is False
    assert peers["ID"]["backlog"] == 1
    assert peers["ID"]["failures"] >= 1
    assert peers["ID"]["last_error"]
    [row] = pair.th.rows("SELECT state, last_error FROM messages WHERE id = ?", (waiting,))
    assert row["state"] in ("queued", "sent")
    assert row["last_error"]


async def test_health_endpoints(pair: Pair) -> None:
    live = await pair.th.request("GET", "/livez", token=None)
    assert live.status == 200
    assert live.json() == {"status": "ok"}
    ready = await pair.th.request("GET", "/readyz", token=None)
    assert ready.status == 200
    assert ready.json() == {
        "status": "ready",
        "participant": "TH",
        "roster_version": pair.fed.roster().version,
    }


async def test_audit_records_actions_never_content(pair: Pair) -> None:
    secret_subject = "Subject " + MARKER
    secret_text = "Text " + MARKER
    secret_name = MARKER + ".pdf"
    body = enquiry(
        subject=secret_subject,
        text=secret_text,
        subjects={"persons": [{"family_name": "Name" + MARKER}]},
        attachments=[{"name": secret_name, "media_type": "application/pdf", "data": b64(b"%PDF")}],
    )
    message_id = await send(pair.th, body)
    await wait_for(lambda: pair.my.summary(message_id, "inbox"), what="delivery")
    detail = await pair.my.call("GET", f"/v1/messages/{message_id}")
    assert detail["message"]["subject"] == secret_subject
    await pair.my.call("POST", f"/v1/messages/{message_id}/read")
    download = await pair.my.request("GET", detail["message"]["attachments"][0]["url"])
    assert download.body == b"%PDF"
    reply = await pair.my.call("POST", f"/v1/messages/{message_id}/replies", body={"text": "Reply " + MARKER})
    await wait_for(lambda: pair.th.state_is(message_id, "sent", "answered"), what="the answer reaching TH")
    await pair.th.call("GET", f"/v1/messages/{reply['messages'][0]['id']}")

    th_audit = [dict(r) for r in pair.th.rows("SELECT * FROM audit ORDER BY seq")]
    my_audit = [dict(r) for r in pair.my.rows("SELECT * FROM audit ORDER BY seq")]
    th_actions = {(r["actor"], r["action"], r["target"]) for r in th_audit}
    my_actions = {(r["actor"], r["action"], r["target"]) for r in my_audit}
    assert ("officer-th", "send_enquiry", message_id) in th_actions
    assert ("officer-th", "open_message", reply["messages"][0]["id"]) in th_actions
    assert ("officer-my", "open_message", message_id) in my_actions
    assert ("officer-my", "mark_read", message_id) in my_actions
    assert ("officer-my", "download_attachment", message_id) in my_actions
    assert ("officer-my", "send_reply", reply["messages"][0]["id"]) in my_actions
    assert all(r["outcome"] == "ok" and r["at"] for r in th_audit + my_audit)
    # Nothing an officer wrote is in the audit trail (nor in the idempotency table, nor in clear anywhere).
    for node in (pair.th, pair.my):
        assert MARKER not in json.dumps([dict(r) for r in node.rows("SELECT * FROM audit")])
        raw = node.db_path.read_bytes()
        for wal in node.db_path.parent.glob("node.db-wal"):
            raw += wal.read_bytes()
        assert MARKER.encode() not in raw


async def test_openapi_document_is_valid(pair: Pair) -> None:
    response = await pair.th.request("GET", "/v1/openapi.json", token=None)
    assert response.status == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    validate(document)
    assert {"/v1/enquiries", "/v1/messages", "/v1/messages/{id}", "/v1/peers"} <= set(document["paths"])


async def test_concurrent_requests_with_one_idempotency_key(pair: Pair) -> None:
    headers = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(pair.th.request("POST", "/v1/enquiries", body=enquiry(), headers=headers) for _ in range(5))
    )
    assert {r.status for r in responses} == {201}
    assert len({r.body for r in responses}) == 1
    assert pair.th.count() == 1


async def test_an_idempotency_key_is_kept_for_a_day(pair: Pair) -> None:
    headers = {"Idempotency-Key": "daily-0001"}
    first = await pair.th.request("POST", "/v1/enquiries", body=enquiry(), headers=headers)
    pair.th.clock.offset = timedelta(hours=23)
    repeat = await pair.th.request("POST", "/v1/enquiries", body=enquiry(), headers=headers)
    assert repeat.body == first.body  # within the day: the same answer, nothing new sent
    pair.th.clock.offset = timedelta(hours=25)
    later = await pair.th.request(
        "POST", "/v1/enquiries", body=enquiry(text="Next week's question."), headers=headers
    )
    assert later.status == 201  # after the day: the key is free again
    assert later.json()["thread"] != first.json()["thread"]
    assert pair.th.count() == 2
    pair.th.clock.offset = timedelta(hours=50)
    await pair.th.app[OFFICERS].forget_answers(pair.th.clock())
    assert pair.th.count("idempotency") == 0
