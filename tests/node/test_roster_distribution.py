"""Roster distribution between real nodes: a newer roster spreads through hello and fetch; a forged, older or
forked roster is never adopted, whether a peer serves it or the operator drops it in the roster file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys.identity import Identity
from keys.roster import (
    Role,
    RosterBody,
    SignedRoster,
    add_participant,
    new_roster,
    parse_roster,
    rotate,
    sign_roster,
)
from node.config import Delivery
from protocol.encoding import canonical
from protocol.errors import BadSignature, RosterRollback, UnknownKey
from tests.node.support import HELLO, Federation, free_port, post_signed, wait_for


def with_id(fed: Federation) -> RosterBody:
    """The next roster version: ``ID`` joins."""
    assert fed.body is not None
    newcomer = Identity.generate("ID")
    return add_participant(
        fed.body, newcomer.card(), f"http://127.0.0.1:{free_port()}", Role.NODE, "ID", datetime.now(UTC)
    )


@pytest.mark.parametrize("first", ["TH", "MY"])
async def test_newer_roster_spreads_through_hello(federation: Callable[..., Federation], first: str) -> None:
    """Whoever starts first, the node holding the older roster adopts the newer one from its peer."""
    fed = federation(["TH", "MY"])
    old = fed.signed()
    new = fed.signed(with_id(fed))
    assert new.roster.version == old.roster.version + 1
    rosters = {"TH": old, "MY": new}
    nodes = {
        pid: await fed.start(pid, roster=rosters[pid]) for pid in (first, "MY" if first == "TH" else "TH")
    }
    th = nodes["TH"]
    assert nodes["MY"].service.trust.roster.version == new.roster.version

    await wait_for(lambda: th.service.trust.roster.version == new.roster.version, what="TH to adopt")
    assert "ID" in th.service.trust.peers()
    assert th.rows("SELECT max(version) AS v FROM rosters")[0]["v"] == new.roster.version
    served = await (await fed.session.get(th.url + "/federation/v1/roster")).read()
    assert served == new.to_bytes()
    # The new member is now a valid recipient on TH (it was unknown before).
    created = await th.call(
        "POST", "/v1/enquiries", body={"recipients": ["ID"], "area": "other", "subject": "s", "text": "t"}
    )
    assert created["messages"][0]["recipient"] == "ID"
    # A restart with the old roster file still in place does not roll TH back.
    await th.stop()
    th = await fed.start("TH", roster=old)
    assert th.service.trust.roster.version == new.roster.version


class HostilePeer:
    """A server at MY's address that serves whatever roster bytes the test sets, and counts fetches."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.roster = b""
        self.fetches = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def roster(request: web.Request) -> web.Response:
            self.fetches += 1
            return web.Response(body=self.roster, content_type="application/json")

        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"participant": "MY", "roster_version": 999})

        app = web.Application()
        app.add_routes([web.get("/federation/v1/roster", roster), web.post(HELLO, hello)])
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def hostile(federation: Callable[..., Federation]) -> AsyncIterator[tuple[Federation, HostilePeer]]:
    fed = federation(["TH", "MY"])
    peer = HostilePeer(fed.ports["MY"])
    await peer.start()
    yield fed, peer
    await peer.stop()


def forgeries(fed: Federation) -> dict[str, bytes]:
    assert fed.body is not None
    other = Ed25519PrivateKey.generate()
    newer = with_id(fed)
    other_body = newer.model_copy(
        update={"authority_key": new_roster(other.public_key(), fed.epoch).authority_key}
    )
    fork = fed.body.model_copy(update={"issued_at": datetime.now(UTC)})
    older = fed.body.model_copy(
        update={"version": fed.body.version - 1, "participants": fed.body.participants}
    )
    return {
        "other-authority": sign_roster(other_body, other).to_bytes(),
        "forged-signature": SignedRoster(roster=newer, sig=other.sign(canonical(newer.wire()))).to_bytes(),
        "lower-version": fed.signed(older).to_bytes(),
        "same-version-fork": fed.signed(fork).to_bytes(),
        "garbage": b'{"roster": "not a roster"}',
    }


@pytest.mark.parametrize(
    "kind", ["other-authority", "forged-signature", "lower-version", "same-version-fork", "garbage"]
)
async def test_peer_cannot_push_a_bad_roster(hostile: tuple[Federation, HostilePeer], kind: str) -> None:
    fed, peer = hostile
    peer.roster = forgeries(fed)[kind]
    th = await fed.start("TH")
    held = th.service.trust.roster.signed.to_bytes()

    # TH's own hello gets "roster_version 999" back and fetches; so does a signed hello claiming it.
    claim = await post_signed(
        fed.session, th, HELLO, canonical({"roster_version": 999}), fed.identities["MY"]
    )
    assert claim.status == 200
    await wait_for(lambda: peer.fetches >= 2, what="TH to fetch the hostile roster")
    # A direct fetch over the same path reports the refusal; nothing changed.
    assert await th.worker.fetch_roster("MY") is False
    assert th.service.trust.roster.signed.to_bytes() == held
    assert th.rows("SELECT count(*) AS n FROM rosters")[0]["n"] == 1
    assert "ID" not in th.service.trust.peers()


async def test_offer_refuses_forgeries_with_named_errors(hostile: tuple[Federation, HostilePeer]) -> None:
    fed, _ = hostile
    th = await fed.start("TH")
    bad = forgeries(fed)
    with pytest.raises(UnknownKey):
        await th.service.offer_roster(parse_roster(bad["other-authority"]))
    with pytest.raises(BadSignature):
        await th.service.offer_roster(parse_roster(bad["forged-signature"]))
    with pytest.raises(RosterRollback):
        await th.service.offer_roster(parse_roster(bad["lower-version"]))
    assert await th.service.offer_roster(parse_roster(bad["same-version-fork"])) is False
    assert await th.service.offer_roster(fed.signed()) is False  # the one held: nothing to do
    assert th.service.trust.roster.signed.to_bytes() == fed.signed().to_bytes()


async def test_operator_drops_a_roster_file(
    federation: Callable[..., Federation], session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    fed = federation(["TH", "MY"])
    fast_refresh = Delivery(backoff_initial_s=0.05, backoff_cap_s=0.5, roster_refresh_s=0.05)
    th = await fed.start("TH", delivery=fast_refresh)
    version = th.service.trust.roster.version

    # A forged newer roster in the file is refused on refresh...
    th.config.roster_file.write_bytes(forgeries(fed)["forged-signature"])
    await wait_for(
        lambda: any("roster file not adopted: bad_signature" in r.getMessage() for r in caplog.records),
        what="a refresh to refuse the forged file",
    )
    assert th.service.trust.roster.version == version
    # ...and a genuine newer one is adopted.
    th.config.roster_file.write_bytes(fed.signed(with_id(fed)).to_bytes())
    await wait_for(lambda: th.service.trust.roster.version == version + 1, what="the file's roster")
    ready = await (await session.get(th.url + "/readyz")).json()
    assert ready["roster_version"] == version + 1


async def test_key_rotation_spreads_without_stalling_delivery(federation: Callable[..., Federation]) -> None:
    """MY rotates its keys while TH holds an enquiry sealed to MY's old key. When MY comes back signing with its
    new key, TH (still on the old roster) learns the new roster from MY at once instead of at its next
    periodic refresh; the old message still opens, new ones are sealed to the new key."""
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")  # roster refresh at its default: once a minute
    assert th.config.delivery.roster_refresh_s >= 60
    body = {"recipients": ["MY"], "area": "other", "subject": "s", "text": "sealed to the old key"}
    old_message = (await th.call("POST", "/v1/enquiries", body=body))["messages"][0]["id"]
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="a failed attempt at MY")

    identity = fed.identities["MY"]
    old_kid = identity.encryption_kid
    fed.config("MY")  # the node folder with the current keys, then rotate them in place
    identity.rotate()
    identity.save(fed.root / "MY" / "keys")
    assert fed.body is not None
    fed.body = rotate(fed.body, identity.card(), timedelta(days=7), datetime.now(UTC))
    my = await fed.start("MY")
    assert my.service.trust.identity.signing_kid == identity.signing_kids()[-1]  # MY signs with its new key

    await wait_for(lambda: th.service.trust.roster.version == fed.body.version, within=5, what="TH to adopt")
    await wait_for(lambda: th.state_is(old_message, "sent", "delivered"), within=5, what="the old message")
    opened = await my.call("GET", f"/v1/messages/{old_message}")
    assert opened["message"]["text"] == "sealed to the old key"
    # Sealed to the old key, or sealed again to the new one if TH adopted the roster before it sent: once.
    [row] = my.rows("SELECT envelope FROM messages WHERE id = ?", (old_message,))
    assert json.loads(row["envelope"])["header"]["recipient_key"] in (old_kid, identity.encryption_kid)

    new_message = (await th.call("POST", "/v1/enquiries", body=body | {"text": "new key"}))["messages"][0][
        "id"
    ]
    await wait_for(lambda: th.state_is(new_message, "sent", "delivered"), what="the new message")
    [row] = my.rows("SELECT envelope FROM messages WHERE id = ?", (new_message,))
    assert json.loads(row["envelope"])["header"]["recipient_key"] == identity.encryption_kid != old_kid
    await my.call("POST", f"/v1/messages/{new_message}/replies", body={"text": "signed with the new key"})
    await wait_for(lambda: th.state_is(new_message, "sent", "answered"), what="MY's answer")


async def test_requests_naming_unknown_keys_cannot_make_a_node_hammer_a_peer(
    hostile: tuple[Federation, HostilePeer],
) -> None:
    fed, peer = hostile
    peer.roster = fed.signed().to_bytes()
    th = await fed.start("TH")
    await wait_for(lambda: peer.fetches >= 1, what="TH's hello to be answered")  # TH's own hello: 999 > ours
    before = peer.fetches
    impostor = Identity("MY", [Ed25519PrivateKey.generate()], [X25519PrivateKey.generate()])
    for _ in range(20):
        response = await post_signed(fed.session, th, HELLO, canonical({"roster_version": 1}), impostor)
        response.problem("unknown_key", 403)
    await wait_for(lambda: peer.fetches > before, what="one fetch prompted by the unknown key")
    assert peer.fetches == before + 1


async def test_keys_rotated_on_a_running_node_lose_nothing(federation: Callable[..., Federation]) -> None:
    """The README's rotation steps on running nodes, in the worst order: the authority's new roster reaches TH
    before MY's operator has even put the new keys in MY's folder. MY refuses for now (never for good), takes
    up the new keys from its folder without a restart, and the message is delivered and opens."""
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    identity = fed.identities["MY"]
    rotated = Identity(identity.participant, [*identity.signing_keys], [*identity.encryption_keys])
    rotated.rotate()
    assert fed.body is not None
    fed.body = rotate(fed.body, rotated.card(), timedelta(days=7), datetime.now(UTC))
    assert await th.service.offer_roster(fed.signed())  # TH seals to MY's new key from now on
    created = await th.call(
        "POST",
        "/v1/enquiries",
        body={"recipients": ["MY"], "area": "other", "subject": "s", "text": "new key"},
    )
    message_id = created["messages"][0]["id"]

    async def refused_for_now() -> bool:
        item = await th.summary(message_id, "sent")
        return (
            item is not None
            and item["state"] == "sent"
            and item.get("last_error") == "key_not_held; will retry"
        )

    await wait_for(refused_for_now, what="MY to refuse for now, naming why")
    rotated.save(fed.root / "MY" / "keys")  # the operator puts the new keys in place; MY keeps running
    th.worker.peer_alive("MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery with the new key")
    opened = await my.call("GET", f"/v1/messages/{message_id}")
    assert opened["message"]["text"] == "new key"
