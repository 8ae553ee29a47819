"""The SQL for each kind of :mod:`node.effects` effect, run inside the transaction of the decision it belongs to."""

from __future__ import annotations

from collections.abc import Iterable

from node.effects import Audit, Effect, Enqueue
from node.storage.database import Statement
from protocol.encoding import format_time


def statement(effect: Effect) -> Statement:
    """The one statement that stores ``effect``."""
    if isinstance(effect, Enqueue):
        return (
            "INSERT INTO outbox (peer, item, ref, payload, queued_at) VALUES (?, ?, ?, ?, ?)",
            (effect.peer, effect.item, effect.ref, effect.payload, effect.at.timestamp()),
        )
    if isinstance(effect, Audit):
        return (
            "INSERT INTO audit (at, actor, action, target, outcome) VALUES (?, ?, ?, ?, ?)",
            (format_time(effect.at), effect.actor, effect.action, effect.target, effect.outcome),
        )
    return (
        # A key kept longer than a day may be used afresh: the new answer replaces the forgotten one.
        "INSERT OR REPLACE INTO idempotency (officer, key, request_hash, status, response, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            effect.officer,
            effect.key,
            effect.request_hash,
            effect.status,
            effect.response,
            format_time(effect.at),
        ),
    )


def statements(effects: Iterable[Effect]) -> list[Statement]:
    """The statements that store ``effects``, in order."""
    return [statement(effect) for effect in effects]
