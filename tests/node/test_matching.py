"""Private matching between real nodes: each side learns exactly the intersection, a third learns nothing.

Three country nodes keep watch lists with overlaps the test chooses (the same phone and the same person written
the way different officers write them). Matching runs over the real federation API through a proxy that keeps
every byte the answering node receives, so the test can prove no entry, and no plain hash of one, crossed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keys.roster import add_period, set_matching_budget
from protocol import normalise, psi
from protocol.encoding import b64e, canonical, format_time
from protocol.period import Period
from tests.coordinator.test_blindness import RecordingProxy, forms
from tests.node.support import Federation, Node, post_signed, wait_for
from tests.node.test_cli import ncpx

FUTURE = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
PHONE = "+66812345678"
PERSON = ("Nguyen Van An", "1984-03-07", "VN")


def entry(case: str, contact: str, **fields: Any) -> dict[str, Any]:
    return {"case_reference": case, "contact": contact, "expires_on": FUTURE, **fields}


TH_LIST = [
    entry("TH-TIP-7", "Pol. Lt. Somchai +66 2 205 1000", kind="phone", number=PHONE),
    entry(
        "TH-TIP-7",
        "Pol. Lt. Somchai +66 2 205 1000",
        kind="person",
        names=PERSON[0],
        date_of_birth=PERSON[1],
        nationality=PERSON[2],
    ),
    entry("TH-TIP-9", "Pol. Lt. Somchai +66 2 205 1000", kind="document", number="AA1234567"),
    entry("TH-TIP-9", "Pol. Lt. Somchai +66 2 205 1000", kind="vessel", imo="9074729"),
]
MY_LIST = [
    # The same phone as a Malaysian officer types a Thai number, and the same person in another order.
    entry("MY-ATIP-3", "Insp. Aziz +60 3 2266 0000", kind="phone", number="081-234-5678", region="TH"),
    entry(
        "MY-ATIP-3",
        "Insp. Aziz +60 3 2266 0000",
        kind="person",
        names="AN, Nguyễn Văn",
        date_of_birth=PERSON[1],
        nationality=PERSON[2],
    ),
    entry("MY-ATIP-4", "Insp. Aziz +60 3 2266 0000", kind="document", number="X9988776"),
]
PH_LIST = [entry("PH-1", "desk +63 2 000", kind="document", number="P7766554")]


@pytest.fixture
async def world(
    federation: Callable[..., Federation],
) -> AsyncIterator[tuple[Federation, dict[str, Node], RecordingProxy]]:
    fed = federation(["TH", "MY", "PH", "XI-COORD"], coordinator="XI-COORD")
    proxy = RecordingProxy()
    proxy.target = fed.ports["MY"]
    assert fed.body is not None
    fed.body = fed.body.model_copy(
        update={
            "participants": [
                p.model_copy(update={"url": f"http://127.0.0.1:{proxy.port}"}) if p.id == "MY" else p
                for p in fed.body.participants
            ]
        }
    )
    nodes = {pid: await fed.start(pid) for pid in ("TH", "MY", "PH")}
    for pid, items in (("TH", TH_LIST), ("MY", MY_LIST), ("PH", PH_LIST)):
        for item in items:
            await nodes[pid].call("POST", "/v1/watchlist", body=item)
    yield fed, nodes, proxy
    proxy.close()


async def hits(node: Node) -> list[dict[str, Any]]:
    return list((await node.call("GET", "/v1/hits"))["items"])


async def test_each_side_learns_exactly_the_intersection_and_a_third_nothing(
    world: tuple[Federation, dict[str, Node], RecordingProxy],
) -> None:
    _, nodes, proxy = world
    th, my, ph = nodes["TH"], nodes["MY"], nodes["PH"]
    [session] = (await th.call("POST", "/v1/matching", body={"peer": "MY"}))["sessions"]
    assert session == {"peer": "MY", "asked": 4, "matched": 2, "new_hits": 2}, session.get("error")

    th_hits = {h["kind"]: h for h in await hits(th)}
    assert set(th_hits) == {"phone", "person"}
    assert th_hits["phone"]["our_case"] == "TH-TIP-7"
    assert th_hits["phone"]["found_by"] == "asked"
    # MY's side: the same two items, named as MY holds them, with TH's case and contact from TH's claims.
    my_hits = {h["kind"]: h for h in await hits(my)}
    assert set(my_hits) == {"phone", "person"}
    assert my_hits["phone"]["our_case"] == "MY-ATIP-3"
    assert my_hits["phone"]["peer_case"] == "TH-TIP-7"
    assert my_hits["person"]["peer_contact"] == "Pol. Lt. Somchai +66 2 205 1000"

    # MY's own round tells TH who to call, and alerts nobody twice.
    [back] = (await my.call("POST", "/v1/matching", body={"peer": "TH"}))["sessions"]
    assert (back["matched"], back["new_hits"]) == (2, 0)
    th_hits = {h["kind"]: h for h in await hits(th)}
    assert len(await hits(th)) == 2
    assert th_hits["phone"]["peer_contact"] == "Insp. Aziz +60 3 2266 0000"

    # PH holds nothing in common: a round with it finds nothing, and PH learns nothing either way.
    [none] = (await th.call("POST", "/v1/matching", body={"peer": "PH"}))["sessions"]
    assert (none["asked"], none["matched"]) == (4, 0)
    assert await hits(ph) == []

    # The answering side's audit shows the count asked and nothing of the items.
    audit = my.rows("SELECT action, target, outcome FROM audit WHERE action = 'match_answer'")
    assert audit
    assert all("4 items" in row["target"] for row in audit)
    assert not any(PHONE[1:] in str(tuple(row)) for row in audit)

    # Every byte MY received: no entry of TH's in clear, and no plain hash of a normalised one.
    received = bytes(proxy.received)
    assert b"/federation/v1/match/blinded" in received
    secrets = [
        normalise.phone(PHONE),
        normalise.person(*PERSON[:1], datetime.fromisoformat(PERSON[1]).date(), PERSON[2]),
        normalise.document("AA1234567"),
        normalise.vessel_imo("9074729"),
    ]
    for token in secrets:
        plain = token.encode()
        candidates = [plain, *(h(plain).digest() for h in (hashlib.sha256, hashlib.sha1, hashlib.md5))]
        candidates += [h(plain).hexdigest().encode() for h in (hashlib.sha256, hashlib.sha1, hashlib.md5)]
        for value in candidates:
            for form in forms(value):
                assert form not in received, token
    for text in (b"66812345678", b"AA1234567", b"9074729", b"Nguyen"):
        assert text not in received
    # No period joins these countries to the coordinator: their sessions stay between them, unreported.
    assert not th.rows("SELECT 1 FROM outbox WHERE item = 'match'")
    assert not my.rows("SELECT 1 FROM outbox WHERE item = 'match'")


async def test_a_peer_beyond_its_daily_budget_is_refused_and_audited_on_both_sides(
    world: tuple[Federation, dict[str, Node], RecordingProxy],
) -> None:
    fed, nodes, _ = world
    th, my = nodes["TH"], nodes["MY"]
    assert fed.body is not None
    tight = set_matching_budget(fed.body, "TH", 5, datetime.now(UTC))
    for node in (th, my):
        assert await node.service.offer_roster(fed.signed(tight))
    [first] = (await th.call("POST", "/v1/matching", body={"peer": "MY"}))["sessions"]
    assert first["matched"] == 2
    [second] = (await th.call("POST", "/v1/matching", body={"peer": "MY"}))["sessions"]
    assert second["error"] is not None
    assert second["error"].startswith("budget_exhausted")
    refused = my.rows("SELECT target, outcome FROM audit WHERE action = 'match_answer' ORDER BY seq")
    assert refused[-1]["outcome"] == "budget_exhausted"
    assert "4 items" in refused[-1]["target"]
    asked = th.rows("SELECT outcome FROM audit WHERE action = 'match_ask' ORDER BY seq")
    assert asked[-1]["outcome"] == "budget_exhausted"
    assert len(await hits(th)) == 2  # nothing new, nothing lost


async def test_a_hit_drafts_a_notice_once_and_the_sent_draft_is_delivered_and_acknowledged(
    world: tuple[Federation, dict[str, Node], RecordingProxy],
) -> None:
    _, nodes, _ = world
    th, my = nodes["TH"], nodes["MY"]
    await th.call("POST", "/v1/matching", body={"peer": "MY"})
    await th.call("POST", "/v1/matching", body={"peer": "MY"})  # the same hits again: no second draft
    drafts = (await th.call("GET", "/v1/notices/drafts"))["items"]
    assert sorted(d["notice"]["subject"] for d in drafts) == [
        "Deconfliction: a person MY also holds",
        "Deconfliction: a phone MY also holds",
    ]
    phone = next(d for d in drafts if "phone" in d["notice"]["subject"])
    assert phone["recipient"] == "MY"
    assert phone["notice"]["subjects"]["phones"] == [{"number": PHONE}]
    assert phone["notice"]["case_reference"] == "TH-TIP-7"
    # MY learnt of the same two hits from TH's claims, and has its own drafts to TH.
    assert len((await my.call("GET", "/v1/notices/drafts"))["items"]) == 2

    [message] = (await th.call("POST", f"/v1/notices/drafts/{phone['id']}/send"))["messages"]
    await wait_for(lambda: my.state_is(message["id"], "inbox", "received"), what="the notice at MY")
    await my.call("POST", f"/v1/messages/{message['id']}/acknowledge")
    await wait_for(lambda: th.state_is(message["id"], "sent", "acknowledged"), what="MY's acknowledgement")


async def test_matching_refuses_the_coordinator_and_ourselves(
    world: tuple[Federation, dict[str, Node], RecordingProxy],
) -> None:
    _, nodes, _ = world
    th = nodes["TH"]
    (await th.request("POST", "/v1/matching", body={"peer": "TH"})).problem("not_a_node", 403)
    (await th.request("POST", "/v1/matching", body={"peer": "FR"})).problem("not_a_node", 403)


async def test_a_hostile_peers_session_messages_are_refused_by_name_and_change_nothing(
    world: tuple[Federation, dict[str, Node], RecordingProxy],
) -> None:
    """MY's federation API, called the way a peer that does not follow the table would."""
    fed, nodes, _ = world
    my, th = nodes["MY"], fed.identities["TH"]

    async def send(path: str, message: dict[str, Any], signer: Any = th) -> Any:
        body = canonical(message)
        return await post_signed(
            fed.session, my, f"/federation/v1/match/{path}", body, signer, now=my.clock()
        )

    def sessions() -> list[tuple[Any, ...]]:
        return [tuple(r) for r in my.rows("SELECT * FROM match_sessions ORDER BY id")]

    soon = format_time(datetime.now(UTC) + timedelta(minutes=4))
    point = psi.blind(["phone:+66800000000"], psi.secret(bytes(range(64))))[0]
    (await send("blinded", {"session": "01", "points": b64e(point)})).problem("out_of_order", 409)
    (
        await send("offer", {"session": "01", "size": 1, "expires_at": soon}, fed.identities["XI-COORD"])
    ).problem("not_a_node", 403)
    late = format_time(datetime.now(UTC) + timedelta(hours=2))
    (await send("offer", {"session": "02", "size": 1, "expires_at": late})).problem("malformed", 400)
    assert sessions() == []

    accepted = await send("offer", {"session": "01", "size": 1, "expires_at": soon})
    assert accepted.status == 200, accepted.body
    before = sessions()
    (await send("offer", {"session": "01", "size": 1, "expires_at": soon})).problem("out_of_order", 409)
    (await send("result", {"session": "01"})).problem("out_of_order", 409)  # before its answer
    (await send("blinded", {"session": "01", "points": b64e(point * 2)})).problem("malformed", 400)
    (await send("blinded", {"session": "01", "points": b64e(b"\xff" * 32)})).problem("bad_point", 400)
    (await send("blinded", {"session": "01", "points": b64e(bytes(32))})).problem("bad_point", 400)
    assert sessions() == before

    answered = await send("blinded", {"session": "01", "points": b64e(point)})
    assert answered.status == 200, answered.body
    (await send("blinded", {"session": "01", "points": b64e(point)})).problem("out_of_order", 409)  # replayed
    my.clock.offset = timedelta(minutes=5)
    (await send("result", {"session": "01"})).problem("session_expired", 410)


async def test_ncpx_match_and_ncpx_hits(
    world: tuple[Federation, dict[str, Node], RecordingProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    _, nodes, _ = world
    th = nodes["TH"]
    empty = await ncpx(th, "hits")
    assert "no hits" in empty.out
    ran = await ncpx(th, "match", "--with", "MY")
    assert ran.code == 0, ran.err
    assert "MY: 4 items compared, 2 held by both, 2 new hit(s)" in ran.out
    shown = await ncpx(th, "hits")
    assert "phone:+66812345678" in shown.out
    assert "TH-TIP-7" in shown.out
    assert "(not told yet)" in shown.out  # MY's own round has not run
    refused = await ncpx(th, "match", "--with", "TH")
    assert refused.code == 5
    assert "[not_a_node]" in refused.err


async def test_real_nodes_report_their_sessions_and_the_coordinator_counts_them(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY", "XI-COORD"], coordinator="XI-COORD")
    now = datetime.now(UTC)
    period = Period(
        name="jpa-match",
        start=now - timedelta(days=1),
        end=now + timedelta(days=29),
        participants=["TH", "MY"],
        coordinator="XI-COORD",
    )
    assert fed.body is not None
    fed.body = add_period(fed.body, period, fed.epoch)
    nodes: dict[str, Node] = {pid: await fed.start(pid) for pid in fed.ids}
    th, my, coordinator = nodes["TH"], nodes["MY"], nodes["XI-COORD"]
    for node, items in ((th, TH_LIST), (my, MY_LIST)):
        for item in items:
            await node.call("POST", "/v1/watchlist", body=item)
    [session] = (await th.call("POST", "/v1/matching", body={"peer": "MY"}))["sessions"]
    assert (session["matched"], session["new_hits"]) == (2, 2)

    async def counted() -> dict[str, Any] | None:
        tallies: dict[str, Any] = await coordinator.call("GET", "/v1/period/jpa-match/tallies")
        return tallies if tallies["matching"] and tallies["matching"][0]["confirmed"] == 1 else None

    tallies = await wait_for(counted, within=20, what="both sides' session records at the coordinator")
    assert tallies["matching"] == [
        {
            "asker": "TH",
            "answerer": "MY",
            "day": format_time(now)[:10],
            "sessions": 1,
            "done": 1,
            "failed": 0,
            "items": 4,
            "hits": 2,
            "confirmed": 1,
        }
    ]
    assert (tallies["totals"]["matching_sessions"], tallies["totals"]["matching_hits"]) == (1, 2)
    # What the coordinator holds is counts: no entry, case or contact of either list.
    raw = b"".join(r["raw"] for r in coordinator.rows("SELECT raw FROM match_reports"))
    for text in (b"66812345678", b"TH-TIP-7", b"MY-ATIP-3", b"Somchai", b"Aziz", b"Nguyen"):
        assert text not in raw
    by_cli = (
        await ncpx(coordinator, "tally", "--period", "jpa-match", "--view", "matching", "--json")
    ).json()
    assert by_cli == tallies["matching"]
