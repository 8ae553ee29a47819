"""This node's watch list and planned operations, with their matching tokens, and what matching asks of them.

Entries are removed and operations cancelled by marking them, never by deleting rows: a hit found earlier
still names the entry it was about. What matching sees is only what is *active*: an entry not removed whose
expiry date has not passed (UTC), an operation not cancelled whose window has not ended.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiosqlite

from node.effects import Audit
from node.storage.database import Database, Row, Statement, run_grouped
from node.storage.effects import statement
from protocol.encoding import format_time, parse_time
from protocol.errors import InvalidState, NotFound
from protocol.ids import RANDOM_BYTES, uuid7
from protocol.watchlist import (
    SHARED,
    SUBJECT_FIELDS,
    NewEntry,
    NewOperation,
    Place,
    Point,
    entry_from_parts,
)

Source = Literal["entry", "operation"]


@dataclass(frozen=True)
class Ref:
    """Which of this node's items holds a token: a watch-list entry or a planned operation, by id."""

    source: Source
    id: str


@dataclass(frozen=True)
class Held:
    """An active item holding a token, as a hit must name it to the officers of this node."""

    ref: Ref
    kind: str
    """person, phone, … for an entry; raid, arrest, … for an operation."""
    case_reference: str
    contact: str
    handling: str
    handling_note: str | None


@dataclass(frozen=True)
class StoredEntry:
    """A watch-list entry as stored, with its tokens."""

    id: str
    entry: NewEntry
    tokens: list[str]
    officer: str
    created_at: str
    removed_at: str | None


@dataclass(frozen=True)
class StoredOperation:
    """A planned operation as stored; its tokens can number thousands, so only their count is read."""

    id: str
    operation: NewOperation
    token_count: int
    status: str
    officer: str
    created_at: str
    cancelled_at: str | None


def _today(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def _new_id(now: datetime) -> str:
    return uuid7(now, os.urandom(RANDOM_BYTES))


_ENTRY_ROWS = (
    "SELECT e.*, (SELECT json_group_array(token) FROM watch_tokens WHERE entry = e.id) AS tokens "
    "FROM watch_entries e"
)
_OPERATION_ROWS = (
    "SELECT o.*, (SELECT count(*) FROM operation_tokens WHERE operation = o.id) AS token_count "
    "FROM operations o"
)
_ACTIVE_ENTRY = "e.removed_at IS NULL AND e.expires_on >= ?"
"""An entry matched today (the parameter): not removed, its last day not passed."""
_ACTIVE_OPERATION = "o.status = 'active' AND o.ends_at > ?"
"""An operation matched now (the parameter): not cancelled, its window not ended."""


class Watchlist:
    """Repository of watch-list entries and planned operations; every change is audited in its transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- watch-list entries --

    async def add(
        self, items: Sequence[tuple[NewEntry, frozenset[str]]], officer: str, action: str, now: datetime
    ) -> list[str]:
        """Store entries with their tokens, all or none, and return their ids in order."""
        ids = [_new_id(now) for _ in items]
        rows: list[Statement] = []
        tokens: list[Statement] = []
        audits: list[Statement] = []
        for entry_id, (entry, held) in zip(ids, items, strict=True):
            data = entry.model_dump(mode="json")
            subject = {name: data[name] for name in SUBJECT_FIELDS[entry.kind] if data[name] is not None}
            rows.append(
                (
                    "INSERT INTO watch_entries (id, kind, subject, case_reference, contact, handling, "
                    "handling_note, expires_on, officer, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry_id,
                        entry.kind,
                        json.dumps(subject, ensure_ascii=False),
                        entry.case_reference,
                        entry.contact,
                        entry.handling.value,
                        entry.handling_note,
                        entry.expires_on.isoformat(),
                        officer,
                        format_time(now),
                    ),
                )
            )
            tokens.extend(
                ("INSERT INTO watch_tokens (entry, token) VALUES (?, ?)", (entry_id, token))
                for token in sorted(held)
            )
            audits.append(statement(Audit(now, officer, action, entry_id, "ok")))
        async with self.db.transaction() as conn:
            await run_grouped(conn, [*rows, *tokens, *audits])  # one call per statement kind
        return ids

    async def remove(self, entry_id: str, officer: str, now: datetime) -> str:
        """Take an entry off the list (it is matched no more); returns when that was."""
        removed_at = format_time(now)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE watch_entries SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                (removed_at, entry_id),
            )
            if cursor.rowcount == 0:
                raise NotFound("no watch-list entry with this id is on the list")
            await conn.execute(*statement(Audit(now, officer, "watch_remove", entry_id, "ok")))
        return removed_at

    async def entries(self, now: datetime, *, include_expired: bool = True) -> list[StoredEntry]:
        """Entries not removed, oldest first (and, unless ``include_expired``, not expired either)."""
        condition = "e.removed_at IS NULL" if include_expired else _ACTIVE_ENTRY
        rows = await self.db.fetchall(
            f"{_ENTRY_ROWS} WHERE {condition} ORDER BY e.rowid",
            () if include_expired else (_today(now),),
        )
        return [self._entry(row) for row in rows]

    async def entry(self, entry_id: str) -> StoredEntry:
        """One entry, removed or not."""
        row = await self.db.fetchone(f"{_ENTRY_ROWS} WHERE e.id = ?", (entry_id,))
        if row is None:
            raise NotFound("no watch-list entry with this id")
        return self._entry(row)

    @staticmethod
    def _entry(row: Row) -> StoredEntry:
        shared = {name: row[name] for name in SHARED if row[name] is not None}
        return StoredEntry(
            id=row["id"],
            entry=entry_from_parts(row["kind"], json.loads(row["subject"]), shared),
            tokens=sorted(json.loads(row["tokens"])),
            officer=row["officer"],
            created_at=row["created_at"],
            removed_at=row["removed_at"],
        )

    # -- planned operations --

    async def add_operation(
        self, operation: NewOperation, tokens: frozenset[str], officer: str, now: datetime
    ) -> str:
        """Store a planned operation with its tokens and return its id."""
        operation_id = _new_id(now)
        point, place = operation.point, operation.address
        batch = [
            (
                "INSERT INTO operations (id, kind, latitude, longitude, radius_m, address, starts_at, ends_at, "
                "zone, case_reference, contact, handling, handling_note, status, officer, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                (
                    operation_id,
                    operation.kind.value,
                    point.latitude if point else None,
                    point.longitude if point else None,
                    point.radius_m if point else None,
                    place.model_dump_json(exclude_none=True) if place else None,
                    format_time(operation.start),
                    format_time(operation.end),
                    operation.zone,
                    operation.case_reference,
                    operation.contact,
                    operation.handling.value,
                    operation.handling_note,
                    officer,
                    format_time(now),
                ),
            ),
            *(
                ("INSERT INTO operation_tokens (operation, token) VALUES (?, ?)", (operation_id, token))
                for token in sorted(tokens)
            ),
            statement(Audit(now, officer, "operation_add", operation_id, "ok")),
        ]
        async with self.db.transaction() as conn:
            await run_grouped(conn, batch)
        return operation_id

    async def cancel_operation(self, operation_id: str, officer: str, now: datetime) -> str:
        """Call off a planned operation (it is matched no more); returns when that was."""
        cancelled_at = format_time(now)
        async with self.db.transaction() as conn:
            status = await self._status(conn, operation_id)
            if status is None:
                raise NotFound("no planned operation with this id")
            if status != "active":
                raise InvalidState("the operation is already cancelled")
            await conn.execute(
                "UPDATE operations SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
                (cancelled_at, operation_id),
            )
            await conn.execute(*statement(Audit(now, officer, "operation_cancel", operation_id, "ok")))
        return cancelled_at

    @staticmethod
    async def _status(conn: aiosqlite.Connection, operation_id: str) -> str | None:
        async with conn.execute("SELECT status FROM operations WHERE id = ?", (operation_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def operations(self) -> list[StoredOperation]:
        """Every planned operation, cancelled and past ones included, oldest first."""
        rows = await self.db.fetchall(f"{_OPERATION_ROWS} ORDER BY o.rowid")
        return [self._operation(row) for row in rows]

    async def operation(self, operation_id: str) -> StoredOperation:
        """One planned operation, whatever its status."""
        row = await self.db.fetchone(f"{_OPERATION_ROWS} WHERE o.id = ?", (operation_id,))
        if row is None:
            raise NotFound("no planned operation with this id")
        return self._operation(row)

    @staticmethod
    def _operation(row: Row) -> StoredOperation:
        data: dict[str, Any] = {name: row[name] for name in SHARED if name != "expires_on"}
        data = {k: v for k, v in data.items() if v is not None}
        if row["address"] is not None:
            data["address"] = Place.model_validate_json(row["address"])
        else:
            data["point"] = Point(
                latitude=row["latitude"], longitude=row["longitude"], radius_m=row["radius_m"]
            )
        operation = NewOperation.model_validate(
            {
                **data,
                "kind": row["kind"],
                "zone": row["zone"],
                "start": parse_time(row["starts_at"]),
                "end": parse_time(row["ends_at"]),
            }
        )
        return StoredOperation(
            id=row["id"],
            operation=operation,
            token_count=row["token_count"],
            status=row["status"],
            officer=row["officer"],
            created_at=row["created_at"],
            cancelled_at=row["cancelled_at"],
        )

    # -- what private matching asks --

    async def tokens(self, now: datetime) -> list[tuple[str, Ref]]:
        """Every token of every active entry and operation, with the item holding it.

        A token two items hold appears once for each; callers matching a set deduplicate.
        """
        rows = await self.db.fetchall(
            "SELECT t.token, 'entry', t.entry FROM watch_tokens t JOIN watch_entries e ON e.id = t.entry "  # noqa: S608 - fixed fragments
            f"WHERE {_ACTIVE_ENTRY} UNION ALL "
            "SELECT t.token, 'operation', t.operation FROM operation_tokens t "
            f"JOIN operations o ON o.id = t.operation WHERE {_ACTIVE_OPERATION}",
            (_today(now), format_time(now)),
        )
        return [(row[0], Ref(row[1], row[2])) for row in rows]

    async def entries_for(self, tokens: Iterable[str], now: datetime) -> dict[str, list[Held]]:
        """For each of ``tokens`` held by an active entry or operation, the items holding it (a hit names
        them with their case reference, contact and handling code); tokens nobody holds are left out."""
        rows = await self.db.fetchall(
            "WITH asked(token) AS (SELECT DISTINCT value FROM json_each(?)) "  # noqa: S608 - fixed fragments
            "SELECT a.token, 'entry' AS source, e.id, e.kind, e.case_reference, e.contact, e.handling, "
            "e.handling_note FROM asked a JOIN watch_tokens t ON t.token = a.token "
            f"JOIN watch_entries e ON e.id = t.entry WHERE {_ACTIVE_ENTRY} UNION ALL "
            "SELECT a.token, 'operation', o.id, o.kind, o.case_reference, o.contact, o.handling, "
            "o.handling_note FROM asked a JOIN operation_tokens t ON t.token = a.token "
            f"JOIN operations o ON o.id = t.operation WHERE {_ACTIVE_OPERATION} ORDER BY 1, 2, 3",
            (json.dumps(list(tokens)), _today(now), format_time(now)),
        )
        found: dict[str, list[Held]] = {}
        for row in rows:
            held = Held(Ref(row[1], row[2]), row[3], row[4], row[5], row[6], row[7])
            found.setdefault(row[0], []).append(held)
        return found
