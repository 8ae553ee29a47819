"""Officers, their tokens, the audit trail and the idempotency record.

Tokens are shown once and stored only as SHA-256 digests: a copied database does not let anyone act as an
officer. Tokens carry 256 bits of randomness, so a plain digest (no salt, no stretching) is enough, and the
lookup by digest leaks nothing useful through timing; the final comparison is constant-time all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import aiosqlite

from node.effects import Audit
from node.storage.database import Database
from node.storage.effects import statement
from protocol.encoding import format_time, parse_time
from protocol.errors import Conflict, Malformed, NotFound

TOKEN_PREFIX = "ncpx_"  # noqa: S105 - a prefix that makes leaked tokens easy to scan for, not a secret


def token_digest(token: str) -> str:
    """What is stored for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


ANSWERS_KEPT = timedelta(hours=24)
"""How long the answer to a request with an Idempotency-Key is given again for a repeat of it."""


class AuditEntry(NamedTuple):
    """One line of the audit trail: who did what to which target, when, and how it ended."""

    seq: int
    at: str
    actor: str
    action: str
    target: str | None
    outcome: str


class Officers:
    """Repository of officers, audit entries and idempotent responses."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, name: str, now: datetime) -> str:
        """Create an officer and return its token (the only time it is ever available)."""
        name = name.strip()
        if not name or len(name) > 100 or any(ch.isspace() and ch != " " for ch in name):
            raise Malformed("officer name must be 1 to 100 characters on one line")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT revoked_at FROM officers WHERE name = ?", (name,)) as cursor:
                existing = await cursor.fetchone()
            if existing is not None and existing[0] is None:
                raise Conflict(
                    f"officer {name!r} already holds a token; revoke it first (ncpx officer revoke {name!r}), "
                    "then add the officer again for a new one"
                )
            # A revoked officer gets a new token under the same name (a lost token, a return from leave); the
            # new issue time ends every session begun before it (see :meth:`issued_at`).
            await conn.execute(
                "INSERT INTO officers (name, token_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at, revoked_at = NULL",
                (name, token_digest(token), format_time(now)),
            )
            action = "officer_add" if existing is None else "officer_reissue"
            await self._audit(conn, now, "operator", action, name, "ok")
        return token

    async def revoke(self, name: str, now: datetime) -> None:
        """Withdraw an officer's token at once."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE officers SET revoked_at = ?, token_hash = 'revoked:' || name "
                "WHERE name = ? AND revoked_at IS NULL",
                (format_time(now), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no active officer {name!r}")
            await self._audit(conn, now, "operator", "officer_revoke", name, "ok")

    async def issued_at(self, name: str) -> datetime | None:
        """When ``name``'s current token was issued, or None when it has none (revoked, or no such officer): a
        browser session begun before that time belongs to an earlier token and is over."""
        row = await self.db.fetchone(
            "SELECT created_at FROM officers WHERE name = ? AND revoked_at IS NULL", (name,)
        )
        return parse_time(row[0]) if row is not None else None

    async def names(self) -> list[tuple[str, str, str | None]]:
        """(name, created_at, revoked_at) of every officer."""
        rows = await self.db.fetchall("SELECT name, created_at, revoked_at FROM officers ORDER BY name")
        return [(r[0], r[1], r[2]) for r in rows]

    async def authenticate(self, token: str) -> str | None:
        """The officer a token belongs to, or None."""
        digest = token_digest(token)
        row = await self.db.fetchone(
            "SELECT name, token_hash FROM officers WHERE token_hash = ? AND revoked_at IS NULL", (digest,)
        )
        if row is None or not hmac.compare_digest(row[1], digest):
            return None
        name: str = row[0]
        return name

    async def audit(self, actor: str, action: str, target: str | None, outcome: str, now: datetime) -> None:
        """Append one audit entry."""
        async with self.db.transaction() as conn:
            await self._audit(conn, now, actor, action, target, outcome)

    @staticmethod
    async def _audit(
        conn: aiosqlite.Connection, now: datetime, actor: str, action: str, target: str | None, outcome: str
    ) -> None:
        await conn.execute(*statement(Audit(now, actor, action, target, outcome)))

    async def audit_trail(self, limit: int = 100) -> list[tuple[str, str, str, str | None, str]]:
        """The newest audit entries."""
        return [(e.at, e.actor, e.action, e.target, e.outcome) for e in await self.search_audit(limit=limit)]

    async def search_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first, filtered (times are RFC 3339 texts; ``since`` inclusive, ``until``
        exclusive); ``before``: only entries older than that sequence number (the next page)."""
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("actor = ?", actor),
            ("action = ?", action),
            ("at >= ?", since),
            ("at < ?", until),
            ("seq < ?", before),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = await self.db.fetchall(
            "SELECT seq, at, actor, action, target, outcome FROM audit "  # noqa: S608 - fixed fragments
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [AuditEntry._make(tuple(r)) for r in rows]

    async def idempotent_response(
        self, officer: str, key: str, now: datetime
    ) -> tuple[str, int, bytes] | None:
        """The stored answer to an earlier request with this Idempotency-Key, for a day after it was given."""
        row = await self.db.fetchone(
            "SELECT request_hash, status, response FROM idempotency WHERE officer = ? AND key = ? "
            "AND created_at >= ?",
            (officer, key, format_time(now - ANSWERS_KEPT)),
        )
        return (row[0], row[1], row[2]) if row else None

    async def forget_answers(self, now: datetime) -> None:
        """Drop answers kept for Idempotency-Keys older than a day (a key may then be used afresh)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM idempotency WHERE created_at < ?", (format_time(now - ANSWERS_KEPT),)
            )
