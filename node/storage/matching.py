"""Matching sessions and hits: the only SQL of private matching.

A session row is the table state of :mod:`protocol.matching` for one side; it moves only by compare-and-set on
the state read, so two requests racing on one session cannot both advance it. The answerer's row is also the
peer's spending: its budget is the sum of the sizes of the sessions it opened in the last day. Secrets are
never stored; a session whose process died simply expires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from node.effects import Audit, Effect
from node.storage.database import Database
from node.storage.effects import statement, statements
from protocol.encoding import format_time, parse_time
from protocol.errors import OutOfOrder
from protocol.matching import Role, Session, State, check_budget

BUDGET_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Hit:
    """An item both this node and ``peer`` hold, as this node stored it."""

    seq: int
    peer: str
    token: str
    found_at: datetime
    found_by: str
    """``asked``: our own session found it; ``claimed``: the peer's session did and told us."""
    peer_case: str
    peer_contact: str


class MatchStore:
    """Repository of matching sessions and hits."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open_answering(self, session: Session, budget: int, now: datetime, audit: Audit) -> int:
        """Store a peer's accepted offer, within its daily ``budget``; what it may still ask today. A
        replayed offer (same id) is :class:`OutOfOrder`; a refusal stores nothing but ``audit``'s twin."""
        since = format_time(now - BUDGET_WINDOW)
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT 1 FROM match_sessions WHERE peer = ? AND id = ? AND role = ?",
                (session.peer, session.id, session.role.value),
            ) as cursor:
                if await cursor.fetchone():
                    raise OutOfOrder("this matching session was offered before")
            async with conn.execute(
                "SELECT coalesce(sum(size), 0) FROM match_sessions WHERE peer = ? AND role = ? AND created_at >= ?",
                (session.peer, Role.ANSWERER.value, since),
            ) as cursor:
                row = await cursor.fetchone()
            left = check_budget(int(row[0]) if row else 0, session.size, budget)
            await self._insert(conn, session, now)
            await conn.execute(*statement(audit))
        return left

    async def audit(self, audit: Audit, effects: Sequence[Effect] = ()) -> None:
        """A request refused before any session changed, audited all the same (with what reports it)."""
        await self.db.write(statements([audit, *effects]))

    async def open_asking(self, session: Session, now: datetime) -> None:
        """Store a session this node offers."""
        async with self.db.transaction() as conn:
            await self._insert(conn, session, now)

    async def _insert(self, conn: aiosqlite.Connection, session: Session, now: datetime) -> None:
        at = format_time(now)
        await conn.execute(
            "INSERT INTO match_sessions (peer, id, role, state, size, created_at, expires_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.peer,
                session.id,
                session.role.value,
                session.state.value,
                session.size,
                at,
                format_time(session.expires_at),
                at,
            ),
        )

    async def get(self, peer: str, session_id: str, role: Role) -> Session | None:
        """One side's session, if stored."""
        row = await self.db.fetchone(
            "SELECT state, size, expires_at FROM match_sessions WHERE peer = ? AND id = ? AND role = ?",
            (peer, session_id, role.value),
        )
        if row is None:
            return None
        return Session(
            session_id, role, peer, State(row["state"]), parse_time(row["expires_at"]), row["size"]
        )

    async def move(
        self,
        before: Session,
        after: Session,
        now: datetime,
        audit: Audit,
        matched: int | None = None,
        effects: Sequence[Effect] = (),
    ) -> None:
        """``before`` -> ``after``, only if nobody moved it meanwhile; with its audit entry and ``effects``."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE match_sessions SET state = ?, updated_at = ?, matched = coalesce(?, matched) "
                "WHERE peer = ? AND id = ? AND role = ? AND state = ?",
                (
                    after.state.value,
                    format_time(now),
                    matched,
                    before.peer,
                    before.id,
                    before.role.value,
                    before.state.value,
                ),
            )
            if cursor.rowcount != 1:
                raise OutOfOrder("the matching session moved on meanwhile")
            for effect in (audit, *effects):
                await conn.execute(*statement(effect))

    async def expire(self, now: datetime) -> int:
        """Sessions past their expiry time become ``expired``; how many did."""
        open_states = [
            s.value for s in (State.NEW, State.OFFERED, State.ACCEPTED, State.BLINDED, State.ANSWERED)
        ]
        marks = ", ".join("?" for _ in open_states)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE match_sessions SET state = ?, updated_at = ? WHERE expires_at <= ? AND state IN ({marks})",  # noqa: S608 - placeholders only
                (State.EXPIRED.value, format_time(now), format_time(now), *open_states),
            )
            return cursor.rowcount

    async def record_hits(
        self,
        peer: str,
        found: list[tuple[str, str, str]],
        found_by: str,
        now: datetime,
        report: Callable[[int], Sequence[Effect]] = lambda _: (),
    ) -> list[str]:
        """Keep hits (token, the peer's case, the peer's contact) with ``peer``; the tokens that are new. A
        hit known already only gains the peer's case and contact when these arrive later. ``report`` gives, from
        the number of new hits, what to store with them (the session's matching record)."""
        new: list[str] = []
        async with self.db.transaction() as conn:
            for token, case, contact in found:
                cursor = await conn.execute(
                    "INSERT INTO hits (peer, token, found_at, found_by, peer_case, peer_contact) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (peer, token) DO NOTHING",
                    (peer, token, format_time(now), found_by, case, contact),
                )
                if cursor.rowcount == 1:
                    new.append(token)
                elif case or contact:
                    await conn.execute(
                        "UPDATE hits SET peer_case = ?, peer_contact = ? WHERE peer = ? AND token = ?",
                        (case, contact, peer, token),
                    )
            for effect in report(len(new)):
                await conn.execute(*statement(effect))
        return new

    async def hits(self) -> list[Hit]:
        """Every hit, newest first."""
        rows = await self.db.fetchall(
            "SELECT seq, peer, token, found_at, found_by, peer_case, peer_contact FROM hits ORDER BY seq DESC"
        )
        return [
            Hit(
                r["seq"],
                r["peer"],
                r["token"],
                parse_time(r["found_at"]),
                r["found_by"],
                r["peer_case"],
                r["peer_contact"],
            )
            for r in rows
        ]
