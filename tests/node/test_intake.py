"""The checking pool: envelopes checked in a worker process get exactly the outcomes they get on a thread of the
node (the same named refusals, digests and signers); a worker that dies is replaced without a batch lost; and a
noisy peer's batches never queue ahead of another peer's, since a peer has one chunk in the pool at a time."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from keys.identity import Identity
from keys.roster import Roster, revoke
from node.intake import (
    Bounds,
    CheckPool,
    DecryptionKeys,
    Outcome,
    Passed,
    Refused,
    check_envelopes,
    check_in_worker,
    chunks,
)
from protocol.codes import CrimeArea, Urgency
from protocol.compose import compose_notice
from protocol.encoding import b64e, canonical
from protocol.models import Attachment, EnquiryBody, NoticeBody, Subjects, Vessel
from protocol.signing import raw_public
from tests.node.support import ENVELOPES, Federation, batch, post_signed, wait_for


def _summary(outcome: Outcome) -> tuple[Any, ...]:
    """What must be identical whichever way an envelope was checked."""
    if isinstance(outcome, Refused):
        return ("refused", outcome.message_id, type(outcome.error), outcome.error.detail)
    return ("passed", outcome.envelope.wire(), outcome.digest, outcome.signer_key)


def _notice(fed: Federation) -> dict[str, Any]:
    """A deconfliction notice from TH to MY, as TH's node seals it."""
    th = fed.identities["TH"]
    body = NoticeBody(
        subject="Active on this vessel",
        case_reference="TH-2024-7",
        contact="Pol. Lt. Somchai",
        text="Contact us before acting.",
        subjects=Subjects(vessels=[Vessel(name="Sea Star", imo="9074729")]),
    )
    [item] = compose_notice(
        body,
        ["MY"],
        CrimeArea.PEOPLE_SMUGGLING,
        Urgency.NORMAL,
        th,
        fed.roster(),
        th.encryption_keys[-1].public_key(),
        datetime.now(UTC),
        os.urandom,
    )
    return item.envelope.wire()


def _corpus(fed: Federation) -> list[bytes]:
    """A valid enquiry, a valid notice and one of each kind of refusal the checks make, as a peer's bytes."""
    valid = fed.envelope("TH", "MY").wire()
    forged = valid | {"sig": b64e(os.urandom(64))}
    altered = valid | {"header": valid["header"] | {"area": "money_laundering"}}
    newer = valid | {"header": valid["header"] | {"v": 99}}
    shapeless = {"header": valid["header"]}
    from_id = fed.envelope("ID", "MY").wire()
    envelopes = (valid, forged, altered, _notice(fed), newer, shapeless, from_id)
    return [canonical(e) for e in envelopes] + [b"not json", b"[1]"]


async def test_worker_outcomes_equal_those_on_a_thread(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY", "ID"])
    roster, identity = fed.roster(), fed.identities["MY"]
    raws = _corpus(fed)
    now = datetime.now(UTC)
    limits = (timedelta(minutes=5), timedelta(days=1), 1 << 20, 1 << 22)
    common: list[str | None] = [
        "unsupported_version",
        "malformed",
        "unknown_sender",
        "malformed",
        "malformed",
    ]
    assert fed.body is not None
    revoked = Roster(
        fed.signed(revoke(fed.body, "MY", identity.encryption_kid, now)), fed.authority.public_key()
    )
    cases: list[tuple[Roster, Bounds, Identity | DecryptionKeys, list[str | None]]] = [
        (roster, Bounds(now, *limits), identity, [None, "bad_signature", "bad_signature", None, *common]),
        # every envelope is stale by then: refused once its signature is found good
        (
            roster,
            Bounds(now + timedelta(days=2), *limits),
            identity,
            ["stale_timestamp", "bad_signature", "bad_signature", "stale_timestamp", *common],
        ),
        # sealed to a key this node does not hold (yet): refused before anything else is looked at
        (roster, Bounds(now, *limits), DecryptionKeys("MY"), [*["key_not_held"] * 4, *common]),
        # sealed to a key of ours the roster has since revoked: refused for good, even though we hold it
        (revoked, Bounds(now, *limits), identity, [*["revoked_key"] * 4, *common]),
    ]
    pool = CheckPool(1)
    try:
        for directory, bounds, keys, codes in cases:
            on_thread = check_envelopes("TH", raws, directory, keys, bounds)
            in_worker = await pool.run(
                check_in_worker,
                "TH",
                raws,
                directory.signed.to_bytes(),
                raw_public(directory.authority),
                keys if isinstance(keys, DecryptionKeys) else DecryptionKeys.of(keys),
                bounds,
            )
            assert [_summary(o) for o in in_worker] == [_summary(o) for o in on_thread]
            assert [o.error.code if isinstance(o, Refused) else None for o in on_thread] == codes
    finally:
        pool.shutdown()
    passed = check_envelopes("TH", raws[:1], roster, identity, cases[0][1])[0]
    assert isinstance(passed, Passed)
    assert passed.signer_key == raw_public(fed.identities["TH"].signing.public_key())


def test_chunks_bound_bytes_and_count() -> None:
    assert [list(r) for r in chunks([b"x" * 600_000] * 3)] == [[0], [1], [2]]
    assert [len(r) for r in chunks([b"x"] * 70)] == [32, 32, 6]
    assert [list(r) for r in chunks([b"x" * 2_000_000, b"y"])] == [[0], [1]]


async def test_a_dead_checking_process_is_replaced(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["TH", "MY"])
    my = await fed.start("MY", verify_workers=2)
    th = fed.identities["TH"]
    first = await post_signed(session, my, ENVELOPES, batch(fed.envelope("TH", "MY")), th)
    assert first.status == 200
    workers = multiprocessing.active_children()  # the node runs in this process: its pool's are our children
    assert workers
    for worker in workers:
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
    await wait_for(lambda: not any(w.is_alive() for w in workers), what="the killed workers to be gone")
    forged = fed.envelope("TH", "MY").wire() | {"sig": b64e(os.urandom(64))}
    refused = await post_signed(session, my, ENVELOPES, batch(forged), th)
    refused.problem("bad_signature", 401)
    again = await post_signed(session, my, ENVELOPES, batch(fed.envelope("TH", "MY")), th)
    assert again.status == 200
    assert my.count() == 2


async def test_a_noisy_peer_does_not_queue_ahead_of_another(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    """ID sends 16 batches of large envelopes at once; once its first is answered, TH sends one small batch.
    TH's is checked as soon as a worker is free, not after every ID chunk that arrived before it."""
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY", verify_workers=2)
    large = EnquiryBody(
        subject="large",
        text="noise",
        attachments=[
            Attachment(name="n.bin", media_type="application/octet-stream", data=os.urandom(64 * 1024))
        ],
    )
    noisy = [batch(*(fed.envelope("ID", "MY", body=large) for _ in range(8))) for _ in range(16)]
    answered: list[str] = []

    async def send(sender: str, body: bytes) -> int:
        response = await post_signed(session, my, ENVELOPES, body, fed.identities[sender])
        answered.append(sender)
        return response.status

    flood = [asyncio.create_task(send("ID", body)) for body in noisy]
    await asyncio.wait(flood, return_when=asyncio.FIRST_COMPLETED)
    before = len(answered)
    assert await send("TH", batch(fed.envelope("TH", "MY"))) == 200
    overtaken_by = answered[before:].count("ID")
    assert await asyncio.gather(*flood) == [200] * 16
    assert my.count() == 16 * 8 + 1
    # One ID chunk may be in a worker when TH's arrives, and its answer may come back meanwhile.
    assert overtaken_by <= 3, answered
