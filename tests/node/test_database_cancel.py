"""A write transaction whose caller is cancelled while BEGIN is on its way leaves the connection usable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node.storage.database import Database


async def test_a_cancelled_begin_does_not_leave_the_connection_inside_a_transaction(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "node.db")
    try:

        async def write() -> None:
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO audit (at, actor, action, target, outcome) VALUES ('t', 'a', 'b', NULL, 'c')"
                )

        task = asyncio.create_task(write())
        await asyncio.sleep(0)  # the task now waits for its BEGIN, which runs on the connection's thread
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        await write()  # without the undo: "cannot start a transaction within a transaction"
        assert not db.conn.in_transaction
        row = await db.fetchone("SELECT count(*) FROM audit")
        assert row is not None
        assert row[0] == 1
    finally:
        await db.close()
