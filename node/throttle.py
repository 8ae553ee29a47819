"""Failed sign-ins counted per address, and what each peer delivers per minute: past a limit within a window,
the address or the peer is refused for a while.

Guessing tokens, or hammering a node with requests it must refuse, costs the caller nothing else; this makes it
slow. Counted in memory (a restart forgets it, which is safe), with the node's clock passed in.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from protocol.errors import QuotaExceeded, TooManyAttempts

FAILURES_ALLOWED = 20
"""Failed attempts an address may make within :data:`WINDOW` before it is refused."""
WINDOW = timedelta(minutes=1)
MAX_ADDRESSES = 10_000
"""Addresses remembered at most (the oldest are forgotten first), so the counter itself stays small."""


class FailureLimiter:
    """Failed attempts per address within a sliding window."""

    def __init__(self, allowed: int = FAILURES_ALLOWED, window: timedelta = WINDOW) -> None:
        self.allowed = allowed
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def check(self, address: str, now: datetime) -> None:
        """Raise :class:`TooManyAttempts` while ``address`` is over its limit."""
        recent = self._recent(address, now)
        if recent is not None and len(recent) >= self.allowed:
            raise TooManyAttempts(
                f"too many failed attempts from this address: wait {int(self.window.total_seconds())} s and check "
                "the token or key you are using"
            )

    def failed(self, address: str, now: datetime) -> None:
        """Count one failed attempt from ``address``."""
        recent = self._recent(address, now)
        if recent is None:
            if len(self._failures) >= MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]
            recent = self._failures[address] = deque()
        recent.append(now)

    def _recent(self, address: str, now: datetime) -> deque[datetime] | None:
        recent = self._failures.get(address)
        if recent is None:
            return None
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            del self._failures[address]
            return None
        return recent


class PeerQuota:
    """Messages and bytes each peer may deliver per window: one noisy member cannot crowd out the others."""

    def __init__(self, messages: int, size: int, window: timedelta = WINDOW) -> None:
        self.messages = messages
        self.size = size
        self.window = window
        self._spent: dict[str, deque[tuple[datetime, int, int]]] = {}

    def take(self, peer: str, messages: int, size: int, now: datetime) -> None:
        """Count a batch of ``messages`` envelopes of ``size`` bytes from ``peer``, or raise
        :class:`QuotaExceeded` (counting nothing) if it would go over either quota."""
        spent = self._spent.setdefault(peer, deque())
        while spent and spent[0][0] <= now - self.window:
            spent.popleft()
        used_messages = sum(m for _, m, _ in spent)
        used_size = sum(s for _, _, s in spent)
        if used_messages + messages > self.messages or used_size + size > self.size:
            raise QuotaExceeded(
                f"this peer may deliver {self.messages} messages and {self.size} bytes per "
                f"{int(self.window.total_seconds())} s: the rest waits and is retried"
            )
        spent.append((now, messages, size))
