"""The roster file at start and after adoption: a bad or older file never keeps a node down that holds a
verified roster, and the file is rewritten (atomically) to the roster in use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.storage.database import Database
from node.trust import Trust
from protocol.errors import ConfigError
from tests.node.support import Federation


async def load(fed: Federation, db: Database, path: Path) -> Trust:
    return await Trust.load(fed.identities["TH"], fed.authority.public_key(), db, path)


@pytest.mark.parametrize("bad", [b"{not json", b'{"roster": {}, "sig": "AAAA"}'])
async def test_a_corrupt_file_falls_back_to_the_stored_roster_and_is_rewritten(
    federation: Callable[..., Federation], tmp_path: Path, bad: bytes
) -> None:
    fed = federation(["TH", "MY"])
    path = tmp_path / "roster.json"
    path.write_bytes(fed.signed().to_bytes())
    db = await Database.open(tmp_path / "node.db")
    try:
        first = await load(fed, db, path)
        path.write_bytes(bad)
        again = await load(fed, db, path)
        assert again.roster.version == first.roster.version
        assert path.read_bytes() == first.roster.signed.to_bytes()
    finally:
        await db.close()


async def test_an_older_file_is_replaced_by_the_newer_stored_roster(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    path = tmp_path / "roster.json"
    old = fed.signed()
    assert fed.body is not None
    path.write_bytes(old.to_bytes())
    db = await Database.open(tmp_path / "node.db")
    try:
        trust = await load(fed, db, path)
        fed.body = fed.body.model_copy(update={"version": fed.body.version + 1})
        newer = fed.signed()
        assert await trust.offer(newer, datetime.now(UTC))
        assert path.read_bytes() == newer.to_bytes()  # written back when adopted
        path.write_bytes(old.to_bytes())  # the operator restores an old file by mistake
        restarted = await load(fed, db, path)
        assert restarted.roster.version == newer.roster.version
        assert path.read_bytes() == newer.to_bytes()
        assert not list(tmp_path.glob(".roster.json.*"))  # noqa: ASYNC240 - no temporary file left behind
    finally:
        await db.close()


async def test_a_corrupt_file_and_nothing_stored_is_a_clear_configuration_error(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    path = tmp_path / "roster.json"
    path.write_bytes(b"{not json")
    db = await Database.open(tmp_path / "node.db")
    try:
        with pytest.raises(ConfigError, match="cannot be used"):
            await load(fed, db, path)
    finally:
        await db.close()
