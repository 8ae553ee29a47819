"""Private matching with peers: both sides of a session, the schedule that runs them, and the hits they find.

The pure parts (group maths, session table, wire messages, claims) live in ``protocol/``; this module feeds
them: it reads this node's own matching items, sends the asker's three signed requests through the delivery
worker's client (mutual TLS, no redirects, bounded answers), answers a peer's requests, stores sessions and
hits through :class:`~node.storage.matching.MatchStore`, and audits every request with its size on both sides.
The group operations run on worker threads, two at a time: libsodium releases the interpreter, so a list of
ten thousand items uses both cores without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError

from node.delivery import DeliveryWorker, TransportError
from node.effects import Audit, Effect
from node.hit_notices import draft_notices
from node.service import NodeService
from node.storage.matching import MatchStore
from node.storage.watchlist import Watchlist
from protocol import psi
from protocol.errors import Malformed, NcpxError, OutOfOrder, error_for_code
from protocol.ids import RANDOM_BYTES, uuid7
from protocol.match_messages import (
    Accept,
    Answer,
    Blinded,
    Claim,
    Done,
    Offer,
    Result,
    claims_bytes,
    parse_claims,
)
from protocol.matching import Message, Role, Session, State, open_session, step
from protocol.models import Model
from protocol.sealing import EPHEMERAL_BYTES, decrypt_with, encrypt_to

log = logging.getLogger("ncpx.matching")
T = TypeVar("T")
M = TypeVar("M", bound=Model)

OFFER_PATH = "/federation/v1/match/offer"
BLINDED_PATH = "/federation/v1/match/blinded"
RESULT_PATH = "/federation/v1/match/result"
SESSION_LIFETIME = timedelta(minutes=5)
"""A round is seconds of work; a session left open longer only holds a secret in memory."""
CHUNK = 2_000


@dataclass(frozen=True)
class OwnItem:
    """One matching token of this node's: what holds it, and who to call about it."""

    kind: str
    """person, phone, vessel, ... for a watch-list entry; raid, arrest, ... for a planned operation."""
    case: str
    contact: str


Items = Callable[[datetime], Awaitable[dict[str, OwnItem]]]
"""This node's matching tokens now (active watch-list entries and planned operations) with their case."""


def watch_items(watchlist: Watchlist) -> Items:
    """The items of this node's watch list and planned operations; a token two items hold names both cases."""

    async def items(now: datetime) -> dict[str, OwnItem]:
        tokens = {token for token, _ in await watchlist.tokens(now)}
        held = await watchlist.entries_for(tokens, now)
        return {
            token: OwnItem(
                kind=holders[0].kind,
                case=", ".join(sorted({h.case_reference for h in holders})),
                contact=", ".join(sorted({h.contact for h in holders})),
            )
            for token, holders in held.items()
        }

    return items


@dataclass(frozen=True)
class Outcome:
    """What one session found."""

    peer: str
    asked: int
    matched: int
    new_hits: list[str]


class Matcher:
    """Runs sessions as the asker and answers peers' sessions."""

    def __init__(
        self,
        service: NodeService,
        worker: DeliveryWorker,
        store: MatchStore,
        watchlist: Watchlist,
        threads: int = 2,
    ) -> None:
        self.service = service
        self.worker = worker
        self.store = store
        self.watchlist = watchlist
        self.items = watch_items(watchlist)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ncpx-psi")
        self._threads = threads
        self._soon = asyncio.Event()

    def close(self) -> None:
        """Stop the worker threads (a session under way is abandoned; it expires at both ends)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _spread(
        self, work: Callable[[Sequence[T], psi.Secret], list[bytes]], items: Sequence[T], own: psi.Secret
    ) -> list[bytes]:
        """``work`` over ``items`` in chunks on the worker threads; results in order."""
        loop = asyncio.get_running_loop()
        size = max(CHUNK, -(-len(items) // self._threads))
        parts = await asyncio.gather(
            *(loop.run_in_executor(self._pool, work, part, own) for part in psi.chunks(items, size))
        )
        return [value for part in parts for value in part]

    def _report(
        self, session: Session, opened: datetime, counts: tuple[int, int, int], code: str | None = None
    ) -> list[Effect]:
        """This side's matching record of ``session`` for the coordinator (counts only, never an item)."""
        me = self.service.me
        parties = (me, session.peer) if session.role is Role.ASKER else (session.peer, me)
        return self.service.match_record_rows(session.id, parties, opened, counts, code)

    def _audit(self, action: str, peer: str, session: str, size: int, outcome: str) -> Audit:
        return Audit(self.service.clock(), peer, action, f"{peer} session {session}: {size} items", outcome)

    # -- asking --

    async def ask(self, peer: str) -> Outcome:
        """One session with ``peer``: which of our items it holds. Raises a named error when it refuses."""
        service = self.service
        now = service.clock()
        items = await self.items(now)
        tokens = sorted(items)
        if not tokens:
            return Outcome(peer, 0, 0, [])
        session_id = uuid7(now, os.urandom(RANDOM_BYTES))
        session = step(
            open_session(session_id, Role.ASKER, peer, len(tokens), now, now + SESSION_LIFETIME),
            Message.OFFER,
            Role.ASKER,
            now,
        )
        await self.store.open_asking(session, now)
        try:
            outcome = await self._rounds(session, now, tokens, items)
        except (NcpxError, TransportError) as exc:
            code = exc.code if isinstance(exc, NcpxError) else "unreachable"
            # A peer that cannot be reached held no session; one that refused or failed it is counted.
            failed = (
                self._report(session, now, (session.size, 0, 0), code) if isinstance(exc, NcpxError) else []
            )
            with contextlib.suppress(OutOfOrder):
                aborted = step(session, Message.ABORT, Role.ASKER, service.clock())
                await self.store.move(
                    session,
                    aborted,
                    service.clock(),
                    self._audit("match_ask", peer, session_id, len(tokens), code),
                    effects=failed,
                )
            self.service.wake_coordinator()
            raise
        return outcome

    async def _rounds(
        self, offered: Session, opened: datetime, tokens: list[str], items: dict[str, OwnItem]
    ) -> Outcome:
        peer, clock = offered.peer, self.service.clock
        offer = Offer(session=offered.id, size=offered.size, expires_at=offered.expires_at)
        await self._call(peer, OFFER_PATH, offer, Accept)
        session = step(offered, Message.ACCEPT, Role.ANSWERER, clock())
        own = psi.secret(os.urandom(psi.SECRET_RANDOM_BYTES))
        blinded = await self._spread(psi.blind, tokens, own)
        blinded_message = Blinded(session=session.id, points=psi.pack_points(blinded))
        answer = await self._call(peer, BLINDED_PATH, blinded_message, Answer)
        session = step(session, Message.BLINDED, Role.ASKER, clock(), count=len(blinded))
        points, digests = psi.unpack_points(answer.points), psi.unpack_digests(answer.digests)
        session = step(session, Message.ANSWER, Role.ANSWERER, clock(), count=len(points))
        found = psi.intersect(tokens, await self._spread(psi.unblind, points, own), digests)
        result = Result(session=session.id)
        if found:
            kid, key = self.service.trust.roster.encryption_key(peer, clock())
            claims = [Claim(token=t, case=items[t].case, contact=items[t].contact) for t in found]
            sealed = encrypt_to(claims_bytes(claims), key, os.urandom(EPHEMERAL_BYTES))
            result = Result(session=session.id, kid=kid, claims=sealed)
        await self._call(peer, RESULT_PATH, result, Done)
        done = step(session, Message.RESULT, Role.ASKER, clock())
        audit = self._audit("match_ask", peer, session.id, len(tokens), f"ok: {len(found)} matched")
        await self.store.move(offered, done, clock(), audit, matched=len(found))
        new = await self.store.record_hits(
            peer,
            [(t, "", "") for t in found],
            "asked",
            clock(),
            lambda fresh: self._report(offered, opened, (len(tokens), len(found), fresh)),
        )
        self.service.wake_coordinator()
        if new:
            log.info("matching with %s: %d new hit(s)", peer, len(new))
            await draft_notices(self.service, self.watchlist, peer, new)
        return Outcome(peer, len(tokens), len(found), new)

    async def _call(self, peer: str, path: str, message: Model, answer: type[M]) -> M:
        """One signed request of the session; the peer's answer parsed, or its refusal raised by name."""
        status, data = await self.worker.post(peer, path, message.wire())
        if status != 200:
            code = data.get("code", "") if isinstance(data, dict) else ""
            detail = data.get("detail", "") if isinstance(data, dict) else ""
            raise error_for_code(code)(detail or f"{peer} answered {status}")
        try:
            return answer.model_validate(data)
        except ValidationError as exc:
            raise Malformed(f"{peer} answered the matching request with something else") from exc

    # -- answering --

    async def on_offer(self, peer: str, offer: Offer) -> Accept:
        """A peer's offer: accepted within its daily budget, audited either way."""
        now = self.service.clock()
        audit = self._audit("match_answer", peer, offer.session, offer.size, "ok")
        try:
            session = open_session(offer.session, Role.ANSWERER, peer, offer.size, now, offer.expires_at)
            session = step(step(session, Message.OFFER, Role.ASKER, now), Message.ACCEPT, Role.ANSWERER, now)
            budget = self.service.trust.roster.matching_budget(peer)
            left = await self.store.open_answering(session, budget, now, audit)
        except NcpxError as exc:
            refused = Session(offer.session, Role.ANSWERER, peer, State.NEW, offer.expires_at, offer.size)
            await self._refused(refused, exc)
            raise
        return Accept(session=offer.session, budget_left=left)

    async def _refused(self, session: Session, error: NcpxError) -> None:
        """Audited, and counted as failed at the coordinator, with the size asked and the error's code."""
        audit = self._audit("match_answer", session.peer, session.id, session.size, error.code)
        now = self.service.clock()
        await self.store.audit(audit, self._report(session, now, (session.size, 0, 0), error.code))
        self.service.wake_coordinator()

    async def _answering(self, peer: str, session_id: str) -> Session:
        session = await self.store.get(peer, session_id, Role.ANSWERER)
        if session is None:
            raise OutOfOrder("no matching session with that id was offered")
        return session

    async def on_blinded(self, peer: str, blinded: Blinded) -> Answer:
        """The asker's blinded items: raised to a fresh secret, with our own list's digests; the secret is
        forgotten when this returns."""
        session = await self._answering(peer, blinded.session)
        points = psi.unpack_points(blinded.points)
        now = self.service.clock()
        try:
            moved = step(session, Message.BLINDED, Role.ASKER, now, count=len(points))
            own = psi.secret(os.urandom(psi.SECRET_RANDOM_BYTES))
            answered = await self._spread(psi.answer, points, own)
            mine = sorted(await self.items(now))
            digests = await self._spread(psi.digests, mine, own) if mine else []
            moved = step(moved, Message.ANSWER, Role.ANSWERER, self.service.clock(), count=len(answered))
        except NcpxError as exc:
            await self._refused(session, exc)
            raise
        audit = self._audit("match_answer", peer, session.id, session.size, f"answered against {len(mine)}")
        await self.store.move(session, moved, self.service.clock(), audit)
        return Answer(session=session.id, points=psi.pack_points(answered), digests=psi.pack_digests(digests))

    async def on_result(self, peer: str, result: Result) -> int:
        """The session is over; the asker's claims about items we hold become hits, with its contact. How
        many of its claims were items of ours."""
        session = await self._answering(peer, result.session)
        now = self.service.clock()
        done = step(session, Message.RESULT, Role.ASKER, now)
        claims: list[Claim] = []
        if result.claims is not None:
            if result.kid is None:
                raise Malformed("sealed claims must name the key they are sealed to")
            key = self.service.trust.identity.decryption_key(result.kid)
            if key is None:
                raise Malformed("the claims are sealed to a key this node does not hold")
            claims = parse_claims(decrypt_with(result.claims, key), session.size)
        mine = await self.items(now)
        held = [(c.token, c.case, c.contact) for c in claims if c.token in mine]
        audit = self._audit("match_answer", peer, session.id, session.size, "done")
        await self.store.move(session, done, now, audit)
        new = await self.store.record_hits(
            peer,
            held,
            "claimed",
            now,
            lambda fresh: self._report(session, now, (session.size, len(held), fresh)),
        )
        self.service.wake_coordinator()
        if new:
            log.info("%s reports %d new hit(s) on our items", peer, len(new))
            await draft_notices(self.service, self.watchlist, peer, new)
        return len(held)

    # -- schedule --

    def soon(self) -> None:
        """Run a round with every opted-in peer now (an item was added)."""
        self._soon.set()

    async def run(self, peers: Callable[[], list[str]], interval_s: float) -> None:
        """Forever: a round with each of ``peers()`` every ``interval_s`` or when :meth:`soon` is called;
        expired sessions are closed. Failures are logged and the next round comes anyway."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), interval_s)
            self._soon.clear()
            await self.store.expire(self.service.clock())
            for peer in peers():
                try:
                    await self.ask(peer)
                except (NcpxError, TransportError, ValidationError) as exc:
                    log.warning("matching with %s failed: %s", peer, getattr(exc, "code", type(exc).__name__))
