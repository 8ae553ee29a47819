"""Checking the envelopes of a peer's batch, written so that it runs in a worker process as well as on a thread.

Parsing, schema, roster checks, signatures and opening are pure CPU and dominate what a node spends on a
batch: one envelope with a 64 KiB attachment takes milliseconds, a maximal batch seconds. Run in the node's
own process they hold the interpreter against its event loop, so they go to a pool of processes (the other
cores) in chunks: a peer has one chunk in the pool at a time, so a second peer's small batch waits for at most
one chunk of a noisy peer's large one, never for all of it.

A worker gets only what checking needs: the signed roster's bytes, the authority key that verifies them, and
our private *decryption* keys. Receipts and refusals are signed by the node's own process, so the signing key
never leaves it. Every argument is plain data that pickles; a worker verifies each roster version once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import ValidationError

from keys.identity import Identity
from keys.roster import Roster, parse_roster
from protocol.encoding import digest_text, parse_json
from protocol.envelope import Envelope, open_envelope
from protocol.errors import (
    KeyNotHeld,
    Malformed,
    NcpxError,
    NotANode,
    RevokedKey,
    UnknownSender,
    UnsupportedVersion,
)
from protocol.models import PROTOCOL_VERSION
from protocol.signing import OpeningKeys, ed25519_public, key_id, raw_public

log = logging.getLogger("ncpx.node")

CHUNK_BYTES = 1024 * 1024
"""Envelope bytes handed to a worker at once: about 8 envelopes with 64 KiB attachments, some 30 ms of work."""
CHUNK_ENVELOPES = 32
"""Envelopes handed to a worker at once, however small: a few tens of milliseconds of work."""

T = TypeVar("T")


@dataclass(frozen=True)
class Bounds:
    """What an envelope is checked against besides the roster and our keys, as plain data."""

    now: datetime
    skew: timedelta
    max_age: timedelta
    max_attachment_bytes: int
    max_envelope_bytes: int


@dataclass(frozen=True)
class DecryptionKeys:
    """Our participant id and private encryption keys by key id, as raw bytes: all a worker needs to open."""

    participant: str
    keys: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, identity: Identity) -> DecryptionKeys:
        """The decryption keys ``identity`` holds, in a form that pickles."""
        keys = {key_id(key.public_key()): key.private_bytes_raw() for key in identity.encryption_keys}
        return cls(identity.participant, keys)

    def decryption_key(self, kid: str) -> X25519PrivateKey | None:
        """The private key ``kid`` if given (implements :class:`protocol.signing.OpeningKeys`)."""
        raw = self.keys.get(kid)
        return X25519PrivateKey.from_private_bytes(raw) if raw is not None else None


@dataclass(frozen=True)
class Passed:
    """An envelope that passed every check: what the node needs to receipt and store it."""

    envelope: Envelope
    digest: str
    signer_key: bytes


@dataclass(frozen=True)
class Refused:
    """An envelope refused: the id it claims (when it names one) and why."""

    message_id: str | None
    error: NcpxError


Outcome = Passed | Refused


def check_envelopes(
    sender: str, envelopes: Sequence[bytes], roster: Roster, keys: OpeningKeys, bounds: Bounds
) -> list[Outcome]:
    """Check each envelope of ``sender``'s batch as it arrived; one refused envelope never refuses the others."""
    return [_check(sender, raw, roster, keys, bounds) for raw in envelopes]


def _check(sender: str, raw: bytes, roster: Roster, keys: OpeningKeys, bounds: Bounds) -> Outcome:
    message_id: Any = None
    try:
        data = parse_json(raw, bounds.max_envelope_bytes)
        header = data.get("header") if isinstance(data, dict) else None
        message_id = header.get("id") if isinstance(header, dict) else None
        if isinstance(header, dict) and header.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            raise UnsupportedVersion(
                f"this node speaks protocol version {PROTOCOL_VERSION}; the sending node must be upgraded"
            )
        try:
            envelope = Envelope.model_validate(data)
        except ValidationError as exc:
            raise Malformed("envelope does not match its schema") from exc
        if envelope.header.sender != sender:
            raise UnknownSender("envelope sender differs from the request signer")
        if not (roster.is_node(sender) and roster.is_node(envelope.header.recipient)):
            raise NotANode(
                "the envelope's sender or recipient is not a country node in the roster: "
                "send messages only between country nodes"
            )
        if envelope.header.recipient == keys.participant:
            if envelope.header.recipient_key in roster.revoked_encryption_kids(keys.participant):
                # The key may be in other hands: refused for good, as the sender withdraws what it queued for
                # that key once it holds our current roster.
                raise RevokedKey(
                    "the message was sealed to a revoked key of this node: seal it to the current one"
                )
            if keys.decryption_key(envelope.header.recipient_key) is None:
                raise KeyNotHeld(
                    "this node does not hold the key the message was sealed to yet; it will be retried"
                )
        open_envelope(
            envelope,
            roster,
            keys,
            bounds.now,
            skew=bounds.skew,
            max_age=bounds.max_age,
            max_attachment_bytes=bounds.max_attachment_bytes,
        )
        signer = roster.signing_key(sender, envelope.header.sender_key, envelope.header.created_at)
        return Passed(envelope, digest_text(raw), raw_public(signer))
    except NcpxError as exc:
        return Refused(message_id if isinstance(message_id, str) else None, exc)


_rosters: dict[bytes, Roster] = {}
"""Per worker process: the verified roster, by its bytes (a new version replaces it)."""


def roster_in_worker(roster: bytes, authority: bytes) -> Roster:
    """The roster ``roster`` (bytes) verified with the pinned ``authority`` key, once per version per process."""
    verified = _rosters.get(roster)
    if verified is None:
        _rosters.clear()
        verified = _rosters[roster] = Roster(parse_roster(roster), ed25519_public(authority))
    return verified


def check_in_worker(
    sender: str,
    envelopes: Sequence[bytes],
    roster: bytes,
    authority: bytes,
    keys: DecryptionKeys,
    bounds: Bounds,
) -> list[Outcome]:
    """:func:`check_envelopes` in a worker process, from the roster's bytes and the pinned authority key."""
    return check_envelopes(sender, envelopes, roster_in_worker(roster, authority), keys, bounds)


def chunks(envelopes: Sequence[bytes]) -> Iterator[range]:
    """Consecutive index ranges of ``envelopes`` within :data:`CHUNK_BYTES` and :data:`CHUNK_ENVELOPES` (an
    envelope larger than the byte bound is a chunk of its own)."""
    start, size = 0, 0
    for index, raw in enumerate(envelopes):
        if index > start and (size + len(raw) > CHUNK_BYTES or index - start >= CHUNK_ENVELOPES):
            yield range(start, index)
            start, size = index, 0
        size += len(raw)
    if start < len(envelopes):
        yield range(start, len(envelopes))


class CheckPool:
    """Processes that check envelopes, all started with the first batch (an operator command never starts them).

    A worker that dies (killed, out of memory) breaks a process pool for good; the pool is then replaced and
    the work tried once more on the new one, so one lost process never stops a node taking envelopes.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _current(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(self.workers):  # each call starts a process: all of them now, not one by one later
                self._pool.submit(int)
        return self._pool

    async def run(self, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` in a worker (``call`` and ``args`` must pickle); once more on a new pool if a worker
        died."""
        loop = asyncio.get_running_loop()
        pool = self._current()
        try:
            return await loop.run_in_executor(pool, call, *args)
        except BrokenProcessPool:
            if pool is self._pool:  # not replaced yet by another batch that met the same death
                log.warning("a checking process died: starting new ones")
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        return await loop.run_in_executor(self._current(), call, *args)

    def shutdown(self) -> None:
        """Stop the workers (the node is stopping)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
