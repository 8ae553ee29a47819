"""Roster distribution between real nodes: a newer roster spreads through hello and fetch; a forged, older or
forked roster is never adopted, whether a peer serves it or the operator drops it in the roster file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.identity import Identity
from keys.roster import (
    Role,
    RosterBody,
    SignedRoster,
    add_participant,
    new_roster,
    parse_roster,
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
