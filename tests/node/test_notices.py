"""Deconfliction notices between real nodes: sent to one country or to all, acknowledged by each recipient, the
acknowledgement seen by the sender per recipient and counted by the coordinator; drafts wait for an officer.

Real nodes on loopback with real keys and SQLite files; a period is declared in the roster so that the nodes
report to the coordinator, as in a Period of Action.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from keys.roster import add_period
from protocol.encoding import canonical, format_time
from protocol.errors import UnknownRecipient
from protocol.models import NoticeBody, NoticeOperation, Subjects, Vessel
from protocol.period import Period
from tests.node.support import STATUS, Federation, Node, http, post_signed, wait_for
from tests.node.test_cli import ncpx

COORD = "XI-COORD"
PERIOD = "jpa-notices"
CASE = "MY-2015-0042"


def notice(recipients: list[str] | str, **extra: Any) -> dict[str, Any]:
    return {
        "recipients": recipients,
        "area": "people_smuggling",
        "subject": "Active on the MV Sea Star",
        "case_reference": CASE,
        "contact": "Insp. Aziz, +60 3 1234 5678",
        "subjects": {"vessels": [{"name": "Sea Star", "imo": "9074729"}]},
        "text": "Boarding planned this week: contact us before acting.",
        **extra,
    }


async def start(federation: Callable[..., Federation], ids: list[str]) -> dict[str, Node]:
    """The countries ``ids`` and a coordinator, all in one period, started."""
    fed = federation([*ids, COORD], coordinator=COORD)
    now = datetime.now(UTC)
    period = Period(
        name=PERIOD,
        start=now - timedelta(days=1),
        end=now + timedelta(days=29),
        participants=ids,
        coordinator=COORD,
    )
    assert fed.body is not None
    fed.body = add_period(fed.body, period, fed.epoch)
    return {pid: await fed.start(pid) for pid in fed.ids}


async def test_a_notice_to_all_reaches_each_country_and_each_acknowledgement_reaches_the_sender(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    nodes = await start(federation, ["MY", "TH", "PH"])
    my, coordinator = nodes["MY"], nodes[COORD]
    created = await my.call("POST", "/v1/notices", body=notice("all"))
    sent = {m["recipient"]: m["id"] for m in created["messages"]}
    assert set(sent) == {"TH", "PH"}  # every active country node but us; never the coordinator
    assert all(m.get("due_at") is None for m in created["messages"])  # a notice has no deadline
    assert coordinator.count() == 0

    for country, message_id in sent.items():
        node = nodes[country]
        await wait_for(lambda n=node, i=message_id: n.state_is(i, "inbox", "received"), what=f"at {country}")
        opened = (await node.call("GET", f"/v1/messages/{message_id}"))["message"]
        assert (opened["kind"], opened["case_reference"], opened["contact"]) == (
            "notice",
            CASE,
            "Insp. Aziz, +60 3 1234 5678",
        )
        assert opened["subjects"]["vessels"][0]["imo"] == "9074729"
        assert "due_at" not in opened
        acknowledged = await node.call("POST", f"/v1/messages/{message_id}/acknowledge")
        assert acknowledged["state"] == "acknowledged"
        assert acknowledged["acknowledged_at"] is not None

    for country, message_id in sent.items():
        await wait_for(
            lambda i=message_id: my.state_is(i, "sent", "acknowledged"), what=f"{country}'s acknowledgement"
        )
    listed = await my.listing(folder="sent", kind="notice")
    assert {(m["recipient"], m["state"]) for m in listed} == {("TH", "acknowledged"), ("PH", "acknowledged")}
    assert all(m["acknowledged_at"] is not None for m in listed)
    assert await my.listing(folder="sent", kind="enquiry") == []

    async def counted() -> dict[str, Any] | None:
        tallies = await coordinator.call("GET", f"/v1/period/{PERIOD}/tallies")
        totals = tallies["totals"]
        done = (totals["notices"], totals["notices_acknowledged"]) == (2, 2)
        return tallies if done else None

    tallies = await wait_for(counted, within=20, what="the coordinator to count both notices acknowledged")
    assert tallies["totals"]["enquiries"] == 0  # notices are not enquiries
    today = format_time(datetime.now(UTC))[:10]
    assert sorted(
        (n["sender"], n["recipient"], n["day"], n["sent"], n["acknowledged"]) for n in tallies["notices"]
    ) == [
        ("MY", "PH", today, 1, 1),
        ("MY", "TH", today, 1, 1),
    ]
    report = await coordinator.request("GET", f"/v1/period/{PERIOD}/report", params={"format": "md"})
    assert "2 deconfliction notices (one per recipient), 2 acknowledged" in report.body.decode()
    by_cli = (await ncpx(coordinator, "tally", "--period", PERIOD, "--view", "notices", "--json")).json()
    assert by_cli == tallies["notices"]
    async with session.post(
        coordinator.api_url + "/dashboard/login", data={"token": coordinator.token}, allow_redirects=False
    ) as login:
        cookie = login.headers["Set-Cookie"].split(";")[0]
    dashboard = coordinator.api_url + f"/dashboard/fragment?period={PERIOD}"
    fragment = (await http(session, "GET", dashboard, headers={"Cookie": cookie})).body.decode()
    assert "<b>2</b><span>Deconfliction notices</span>" in fragment
    assert "<b>2</b><span>Notices acknowledged</span>" in fragment


async def test_a_notice_is_never_answered_and_an_enquiry_never_acknowledged(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["MY", "TH"])
    my, th = await fed.start("MY"), await fed.start("TH")
    [notice_id] = [m["id"] for m in (await my.call("POST", "/v1/notices", body=notice(["TH"])))["messages"]]
    enquiry = {"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    [enquiry_id] = [m["id"] for m in (await my.call("POST", "/v1/enquiries", body=enquiry))["messages"]]
    for message_id in (notice_id, enquiry_id):
        await wait_for(lambda i=message_id: th.state_is(i, "inbox", "received"), what="both at TH")
        await wait_for(lambda i=message_id: my.state_is(i, "sent", "delivered"), what="both receipted")

    reply = await th.request("POST", f"/v1/messages/{notice_id}/replies", body={"text": "noted"})
    reply.problem("invalid_state", 409)
    refused = await th.request("POST", f"/v1/messages/{enquiry_id}/acknowledge")
    assert "notice" in refused.problem("invalid_state", 409)["detail"]
    own = await my.request("POST", f"/v1/messages/{notice_id}/acknowledge")
    own.problem("invalid_state", 409)  # the sender cannot acknowledge for its recipient
    assert (await th.summary(enquiry_id, "inbox") or {})["state"] == "received"
    assert (await th.summary(notice_id, "inbox") or {})["state"] == "received"
    assert th.count("outbox") == 0  # nothing was queued for MY by the refusals

    # A peer claiming its officer acknowledged an enquiry changes nothing at the sender.
    claim = {"message_id": enquiry_id, "state": "acknowledged", "at": format_time(datetime.now(UTC))}
    answer = await post_signed(session, my, STATUS, canonical({"statuses": [claim]}), fed.identities["TH"])
    assert answer.json() == {"applied": 0}
    assert (await my.summary(enquiry_id, "sent") or {})["state"] == "delivered"

    # Acknowledging twice tells the sender once (MY is down meanwhile, so what TH queued stays to be counted).
    await my.stop()
    first = await th.call("POST", f"/v1/messages/{notice_id}/acknowledge")
    again = await th.call("POST", f"/v1/messages/{notice_id}/acknowledge")
    assert again == first
    assert th.rows("SELECT count(*) FROM outbox WHERE item = 'status'")[0][0] == 1
    my = await fed.start("MY")
    delivered = await wait_for(
        lambda: my.state_is(notice_id, "sent", "acknowledged"), what="the acknowledgement"
    )
    assert delivered["acknowledged_at"] is not None
    audit = th.rows("SELECT count(*) FROM audit WHERE action = 'acknowledge_notice'")[0][0]
    assert audit == 2


async def test_a_draft_notice_waits_for_an_officer_and_is_sent_once(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["MY", "TH"])
    my, th = await fed.start("MY"), await fed.start("TH")
    body = NoticeBody(
        subject="Match on a watch-list entry",
        case_reference=CASE,
        contact="Insp. Aziz",
        text="Both sides work this vessel: contact us before acting.",
        subjects=Subjects(vessels=[Vessel(name="Sea Star", imo="9074729")]),
        operation=NoticeOperation(what="boarding", place="Port Klang", window="2015-10-03 06:00-12:00 MYT"),
    )
    draft = await my.service.draft_notice("TH", body, origin="hit 7")
    assert (my.count("outbox"), my.count()) == (0, 0)  # a draft is local: nothing queued, no message
    [stored] = my.rows("SELECT sealed FROM drafts")
    assert CASE.encode() not in stored["sealed"]  # kept sealed, like every stored body

    listed = (await my.call("GET", "/v1/notices/drafts"))["items"]
    assert [(d["id"], d["recipient"], d["origin"]) for d in listed] == [(draft.id, "TH", "hit 7")]
    assert listed[0]["notice"]["operation"]["place"] == "Port Klang"

    sent = await my.call("POST", f"/v1/notices/drafts/{draft.id}/send")
    [message] = sent["messages"]
    again = await my.request("POST", f"/v1/notices/drafts/{draft.id}/send")
    again.problem("invalid_state", 409)
    assert (await my.call("GET", "/v1/notices/drafts"))["items"] == []
    (await my.request("DELETE", f"/v1/notices/drafts/{draft.id}")).problem("not_found", 404)

    await wait_for(lambda: th.state_is(message["id"], "inbox", "received"), what="the notice at TH")
    opened = (await th.call("GET", f"/v1/messages/{message['id']}"))["message"]
    assert opened["operation"]["what"] == "boarding"
    await th.call("POST", f"/v1/messages/{message['id']}/acknowledge")
    await wait_for(lambda: my.state_is(message["id"], "sent", "acknowledged"), what="TH's acknowledgement")
    assert my.rows("SELECT sent_as FROM drafts")[0]["sent_as"] == message["id"]


async def test_drafts_are_discarded_and_name_only_active_peers(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["MY", "TH"])
    my = await fed.start("MY")
    body = NoticeBody(
        subject="s",
        case_reference=CASE,
        contact="c",
        text="t",
        subjects=Subjects(vessels=[Vessel(name="Sea Star")]),
    )
    for nobody in ("MY", "VN"):
        with pytest.raises(UnknownRecipient):
            await my.service.draft_notice(nobody, body)
    assert my.count("drafts") == 0
    draft = await my.service.draft_notice("TH", body)
    gone = await my.request("DELETE", f"/v1/notices/drafts/{draft.id}")
    assert gone.status == 204
    assert (await my.call("GET", "/v1/notices/drafts"))["items"] == []
    (await my.request("POST", f"/v1/notices/drafts/{draft.id}/send")).problem("not_found", 404)
    assert my.count("outbox") == 0


async def test_a_notice_names_a_target_or_an_operation_and_its_recipients(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["MY", "TH"])
    my = await fed.start("MY")
    empty = await my.request("POST", "/v1/notices", body=notice(["TH"], subjects={}))
    assert empty.problem("malformed", 400)["detail"] == "invalid fields: (body)"
    operation = {"place": "Port Klang", "window": "2015-10-03 06:00-12:00 MYT"}
    only_operation = await my.request(
        "POST", "/v1/notices", body=notice(["TH"], subjects={}, operation=operation)
    )
    assert only_operation.status == 201
    (await my.request("POST", "/v1/notices", body=notice("everyone"))).problem("malformed", 400)
    (await my.request("POST", "/v1/notices", body=notice(["VN"]))).problem("unknown_recipient")
    (await my.request("GET", "/v1/messages", params={"kind": "memo"})).problem("malformed", 400)
    assert my.count() == 1


async def test_the_notice_commands(federation: Callable[..., Federation], tmp_path: Path) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"phones": [{"number": "+60123456789"}]}))
    sent = (
        await ncpx(
            th, "notice", "send", "--to", "all", "--subject", "Active on a phone", "--case-ref", "TH-77",
            "--contact", "Pol. Maj. Somchai", "--targets", str(targets), "--operation-place", "Sadao",
            "--operation-window", "3-5 Oct 2015, ICT", "--text", "Surveillance running.", "--json",
        )
    ).json()  # fmt: skip
    [message] = sent["messages"]
    assert message["recipient"] == "MY"
    await wait_for(lambda: my.state_is(message["id"], "inbox", "received"), what="the notice at MY")
    inbox = (await ncpx(my, "inbox", "--kind", "notice", "--json")).json()["items"]
    assert [(i["id"], i["kind"], i["state"]) for i in inbox] == [(message["id"], "notice", "received")]
    shown = await ncpx(my, "show", message["id"], "--no-mark-read")
    assert "contact before acting: Pol. Maj. Somchai" in shown.out
    assert "operation: at Sadao, 3-5 Oct 2015, ICT" in shown.out
    assert f"ncpx notice ack {message['id']}" in shown.out
    acknowledged = (await ncpx(my, "notice", "ack", message["id"], "--json")).json()
    assert acknowledged["state"] == "acknowledged"
    await wait_for(
        lambda: th.state_is(message["id"], "sent", "acknowledged"), what="the acknowledgement at TH"
    )
    listed = (await ncpx(th, "sent", "--kind", "notice", "--json")).json()["items"]
    assert [(i["id"], i["state"]) for i in listed] == [(message["id"], "acknowledged")]
    assert (await ncpx(th, "sent", "--kind", "enquiry", "--json")).json()["items"] == []
    refused = await ncpx(th, "notice", "ack", message["id"])  # TH sent it: only MY acknowledges
    assert refused.code != 0
    assert "[invalid_state]" in refused.err

    body = NoticeBody(
        subject="From a hit",
        case_reference="TH-78",
        contact="c",
        text="t",
        subjects=Subjects(phones=[]),
        operation=NoticeOperation(place="Sadao", window="now"),
    )
    kept, dropped = (
        await th.service.draft_notice("MY", body, origin="hit 1"),
        await th.service.draft_notice("MY", body),
    )
    listed = await ncpx(th, "notice", "drafts")
    assert kept.id in listed.out
    assert dropped.id in listed.out
    assert "discarded" in (await ncpx(th, "notice", "discard", dropped.id)).out
    from_draft = (await ncpx(th, "notice", "send-draft", kept.id, "--json")).json()
    await wait_for(
        lambda: my.state_is(from_draft["messages"][0]["id"], "inbox", "received"), what="the draft sent"
    )
    assert (await ncpx(th, "notice", "drafts", "--json")).json()["items"] == []
