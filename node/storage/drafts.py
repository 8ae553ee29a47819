"""Draft deconfliction notices in SQLite: written by the node (from a hit, say), sent only by an officer.

A draft is local: nothing is queued for anyone until an officer sends it, and then the draft and the message it
becomes are stored in one transaction, so a draft is sent at most once however often the button is pressed.
Its body is kept sealed to this node's own key, like every stored body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from node.effects import Effect
from node.storage.database import Database
from node.storage.effects import statements
from node.storage.mailbox import outgoing_rows
from protocol.compose import Outgoing
from protocol.encoding import format_time
from protocol.errors import InvalidState, NotFound

_COLUMNS = "id, recipient, area, urgency, sealed, origin, created_at"


@dataclass(frozen=True)
class Draft:
    """A draft notice as stored: its body still sealed to our own key."""

    id: str
    recipient: str
    area: str
    urgency: str
    sealed: bytes
    origin: str | None
    """What made it (a hit's reference, say), for the officer deciding whether to send it."""
    created_at: str


class Drafts:
    """Repository of draft notices."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, draft: Draft) -> None:
        """Keep a new draft."""
        async with self.db.transaction() as conn:
            await conn.execute(
                f"INSERT INTO drafts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - fixed columns
                (
                    draft.id,
                    draft.recipient,
                    draft.area,
                    draft.urgency,
                    draft.sealed,
                    draft.origin,
                    draft.created_at,
                ),
            )

    async def unsent(self) -> list[Draft]:
        """Every draft not sent yet, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM drafts WHERE sent_as IS NULL ORDER BY created_at, id"  # noqa: S608 - fixed columns
        )
        return [Draft(*row) for row in rows]

    async def get(self, draft_id: str) -> Draft:
        """A draft, sent or not (sending it is what refuses a second send), or NotFound once discarded."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM drafts WHERE id = ?",  # noqa: S608 - fixed columns
            (draft_id,),
        )
        if row is None:
            raise NotFound
        return Draft(*row)

    async def send(
        self,
        draft_id: str,
        item: Outgoing,
        officer: str,
        signer_key: bytes,
        now: datetime,
        extra: Sequence[Effect] = (),
    ) -> None:
        """Mark the draft sent as ``item`` and queue ``item``, atomically with ``extra``.

        Raises :class:`InvalidState` (storing nothing) when the draft was sent or discarded meanwhile.
        """
        async with self.db.transaction() as conn:
            async with conn.execute(
                "UPDATE drafts SET sent_as = ?, sent_by = ?, sent_at = ? WHERE id = ? AND sent_as IS NULL",
                (item.envelope.header.id, officer, format_time(now), draft_id),
            ) as cursor:
                claimed = cursor.rowcount == 1
            if not claimed:
                raise InvalidState("this draft was already sent or discarded: list the drafts again")
            for sql, params in [*outgoing_rows([item], officer, signer_key, now), *statements(extra)]:
                await conn.execute(sql, params)

    async def discard(self, draft_id: str) -> None:
        """Forget an unsent draft, or NotFound."""
        async with (
            self.db.transaction() as conn,
            conn.execute("DELETE FROM drafts WHERE id = ? AND sent_as IS NULL", (draft_id,)) as cursor,
        ):
            if cursor.rowcount != 1:
                raise NotFound
