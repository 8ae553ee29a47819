"""The delivery schedule of one peer, without I/O: what is due, what an answer means, and when to wake.

aioquic's connection is the model: the delivery loop in ``node/`` feeds in what happened (an answer, a
transport failure, a request from the peer) with ``now``, persists the effects this module returns, and sleeps
until :meth:`PeerSchedule.next_wakeup`. Every retry rule lives here, with one clock and one random source, both
passed in:

- a transport failure (no answer, or an answer outside the protocol) doubles the wait, from ``initial_s`` up to
  ``cap_s``, with jitter in [50 %, 100 %] so that nodes coming back together do not retry in step;
- any valid request from the peer (its hello after a restart, or anything else) is proof that it is up again:
  the wait is forgotten and the backlog goes at once;
- per item of an answer: a verified receipt delivers it; a refusal *signed by the peer* whose error is not
  retryable (:attr:`~protocol.errors.NcpxError.retryable`) ends it; anything else (a retryable refusal, an
  unsigned or unverifiable one, a receipt that does not verify, no result at all) is retried, until the item is
  older than ``give_up_s``, when the officer is told it is undeliverable.

Times are seconds on whatever clock the caller uses, as long as it always uses the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from protocol.errors import NcpxError, RevokedKey, error_for_code
from protocol.models import Receipt

GAVE_UP: Final = "gave_up"
"""The code an item ends with when the give-up age passed without a receipt."""
WITHDRAWN: Final = RevokedKey.code
"""The code an item ends with when its recipient, or the key it was sealed to, was revoked before it went."""


@dataclass(frozen=True)
class Policy:
    """How patiently one peer is retried."""

    initial_s: float
    cap_s: float
    give_up_s: float


# -- what the loop feeds in --


@dataclass(frozen=True)
class Item:
    """One queued item as the schedule sees it."""

    seq: int
    ref: str
    queued_at: float
    attempts: int = 0
    """Earlier attempts that ended in a retry of this item."""


@dataclass(frozen=True)
class Receipted:
    """The peer's receipt for the item, verified against exactly what was sent."""

    receipt: Receipt


@dataclass(frozen=True)
class Refused:
    """The peer refused the item with ``code``; ``signed`` when its refusal verified under its roster key."""

    code: str
    signed: bool


@dataclass(frozen=True)
class NoProof:
    """The answer said nothing the sender can rely on about this item (a receipt that does not verify,
    a malformed result, none at all)."""

    reason: str


Result = Receipted | Refused | NoProof

# -- what the loop persists --


@dataclass(frozen=True)
class Deliver:
    """Store the receipt, move the message to delivered and drop the outbox row, in one transaction."""

    item: Item
    receipt: Receipt


@dataclass(frozen=True)
class Done:
    """Drop the outbox row: the peer settled an item that needs no receipt (a notice, a record)."""

    item: Item


@dataclass(frozen=True)
class GiveUp:
    """End the item: the message becomes undeliverable with ``code``, and the outbox row goes."""

    item: Item
    code: str


@dataclass(frozen=True)
class Retry:
    """Keep the outbox row and count the attempt; the item waits on its own until ``not_before`` (the
    peer's other items keep going)."""

    item: Item
    code: str
    not_before: float


Effect = Deliver | Done | GiveUp | Retry


def is_final(code: str) -> bool:
    """Whether a refusal with ``code`` can never pass later (a property of the error class it names)."""
    return not error_for_code(code).retryable


@dataclass
class PeerSchedule:
    """Backoff and reachability of one peer (kept in memory: a restart starts afresh, which is safe)."""

    policy: Policy
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None
    last_success: float | None = None
    last_seen: float | None = None
    unreachable_since: float | None = None
    """When the current run of failures began (None while the peer answers)."""
    clock_offset: float | None = None
    """Seconds the peer's clock was ahead of ours (negative: behind) at its last answer, to one second."""

    def note_clock(self, peer_time: float, now: float) -> None:
        """The peer answered at ``peer_time`` by its own clock (an HTTP ``Date``, whole seconds)."""
        self.clock_offset = peer_time - now

    def due(self, now: float) -> bool:
        """Whether the loop may send to this peer now."""
        return now >= self.next_attempt

    def next_wakeup(self, now: float) -> float:
        """Seconds until the loop may send again (0 when it may send now)."""
        return max(0.0, self.next_attempt - now)

    def expired(self, items: Sequence[Item], now: float) -> list[GiveUp]:
        """Items too old to be worth sending: they end before the request is made."""
        return [GiveUp(i, GAVE_UP) for i in items if now - i.queued_at > self.policy.give_up_s]

    def withdrawn(self, messages: Sequence[Item], others: Sequence[Item]) -> list[Effect]:
        """The recipient was revoked (or the key the messages were sealed to): messages end as undeliverable at
        once, never pushed to a URL the roster no longer vouches for; notices and records are dropped."""
        return [*(GiveUp(i, WITHDRAWN) for i in messages), *(Done(i) for i in others)]

    def on_contact(self, now: float) -> bool:
        """A valid request came from the peer: it is up. Returns whether a wait was forgotten."""
        self.last_seen = now
        waiting = self.failures > 0 or self.next_attempt > now
        self.failures = 0
        self.next_attempt = 0.0
        self.unreachable_since = None
        return waiting

    def backoff(self, failures: int, jitter: float) -> float:
        """The wait after ``failures`` failures in a row: doubling from ``initial_s``, capped, with jitter."""
        delay = min(self.policy.cap_s, self.policy.initial_s * 2.0 ** min(failures - 1, 64))
        return delay * (0.5 + jitter / 2)

    def on_failure(self, now: float, error: str, jitter: float) -> None:
        """The peer could not be reached or answered outside the protocol; ``jitter`` is uniform in [0, 1)."""
        self.failures += 1
        self.next_attempt = now + self.backoff(self.failures, jitter)
        self.last_error = error
        if self.unreachable_since is None:
            self.unreachable_since = now

    def on_success(self, now: float) -> None:
        """The peer answered within the protocol."""
        self.failures = 0
        self.next_attempt = 0.0
        self.last_error = None
        self.unreachable_since = None
        self.last_success = now

    def on_answer(self, answers: Sequence[tuple[Item, Result]], now: float, jitter: float) -> list[Effect]:
        """What each item's result means. An item to retry waits on its own; the peer as a whole is backed
        off only when nothing in its answer was settled (a roster it has not adopted yet, a clock off), so
        one item it cannot take never holds up the others.
        """
        effects = [self._meaning(item, result, now, jitter) for item, result in answers]
        self._after(effects, now, jitter)
        return effects

    def _after(self, effects: Sequence[Effect], now: float, jitter: float) -> None:
        retried = [e for e in effects if isinstance(e, Retry)]
        if retried and len(retried) == len(effects):
            self.on_failure(now, f"{len(retried)} item(s) not accepted yet: {retried[0].code}", jitter)
        else:
            self.on_success(now)

    def _retry(self, item: Item, code: str, now: float, jitter: float) -> Effect:
        if now - item.queued_at > self.policy.give_up_s:
            return GiveUp(item, GAVE_UP)
        return Retry(item, code, now + self.backoff(item.attempts + 1, jitter))

    def _meaning(self, item: Item, result: Result, now: float, jitter: float) -> Effect:
        if isinstance(result, Receipted):
            return Deliver(item, result.receipt)
        if isinstance(result, Refused) and result.signed and is_final(result.code):
            return GiveUp(item, result.code)
        code = result.code if isinstance(result, Refused) else NcpxError.code
        return self._retry(item, code, now, jitter)

    def on_items(self, answers: Sequence[tuple[Item, str | None]], now: float, jitter: float) -> list[Effect]:
        """An answer about items that carry no receipt (read notices, records, outcome returns), as the error
        code per item (None: taken). One refused for good is dropped, since sending it again cannot make it
        valid; one refused for now is retried, and counts as a failure of the peer.
        """
        effects: list[Effect] = [
            Done(item) if code is None or is_final(code) else self._retry(item, code, now, jitter)
            for item, code in answers
        ]
        self._after(effects, now, jitter)
        return effects
