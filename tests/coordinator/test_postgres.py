"""What only the PostgreSQL store has: its own database and schema, replicas writing side by side, readiness
that follows the database, and the URL taken from the configuration or the environment."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from node.config import DATABASE_URL_ENV, ConfigError, load_config, write_config
from node.coordinator.api import COORDINATOR
from node.coordinator.store import PostgresStore
from node.storage.postgres import PostgresDatabase
from tests.coordinator.support import START, open_coordinator
from tests.node.support import Federation, http, wait_for
from tests.postgres import Cluster

ROOT = Path(__file__).resolve().parents[2]


async def test_the_coordinators_tables_are_in_postgres_and_migrated_once(
    tmp_path: Path, postgres_url: str
) -> None:
    async with open_coordinator(tmp_path, postgres_url) as c:
        [enquiry] = c.enquiry("TH", "MY", START + timedelta(days=1))
        await c.deliver(enquiry)
        assert await c.count("records") == 2
        assert (await c.tallies()).totals.enquiries == 1
    with sqlite3.connect(tmp_path / "coordinator.db") as local:  # the node's own file holds none of them
        assert local.execute("SELECT count(*) FROM records").fetchone() == (0,)
    again = await PostgresDatabase.open(postgres_url)  # a restart (or a second replica) finds it migrated
    try:
        assert [tuple(r) for r in await again.fetchall("SELECT version FROM schema_version")] == [(1,), (2,)]
        assert (await again.fetchall("SELECT count(*) FROM records"))[0][0] == 2
    finally:
        await again.close()


async def test_replicas_write_one_at_a_time(tmp_path: Path, postgres_url: str) -> None:
    """Folding reads what other records left (an answer pairs with its reply whichever arrives first, a thread's
    first message is counted once): with two replicas ingesting into one database, a batch must wait for the
    other replica's write transaction to end, as it would on SQLite's single writer."""
    async with open_coordinator(tmp_path, postgres_url) as c:
        [enquiry] = c.enquiry("ID", "TH", START + timedelta(days=1))
        await c.deliver(enquiry)
        reply = c.reply(enquiry, enquiry.header.created_at + timedelta(hours=1))
        back = c.receipt(reply, reply.header.created_at + timedelta(minutes=1))
        replica = await PostgresDatabase.open(postgres_url)
        try:
            async with replica.transaction():  # the other replica, in the middle of a batch
                answered = asyncio.create_task(
                    c.send("TH", c.record(enquiry, "answered", reply.header.created_at, reply=reply))
                )
                await wait_for(
                    lambda: _waiting_writers(replica), what="the batch waiting for the other writer"
                )
                assert not answered.done()
            assert await answered == [None]
            assert await c.send("TH", c.record(reply, "sent", back.received_at, back)) == [None]
            totals = (await c.tallies()).totals
            assert (totals.enquiries, totals.replies, totals.answered) == (1, 1, 1)
        finally:
            await replica.close()


async def _waiting_writers(db: PostgresDatabase) -> bool:
    rows = await db.fetchall("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    return bool(rows[0][0])


async def test_a_coordinator_is_not_ready_while_its_database_is_gone(
    tmp_path: Path, postgres_cluster: Cluster, postgres_url: str
) -> None:
    async with aiohttp.ClientSession() as session:
        fed = Federation(
            tmp_path,
            session,
            ["TH", "XI-COORD"],
            coordinator="XI-COORD",
            coordinator_database_url=postgres_url,
        )
        try:
            node = await fed.start("XI-COORD")
            assert isinstance(node.app[COORDINATOR].store, PostgresStore)
            assert (await http(session, "GET", node.url + "/readyz")).status == 200
            postgres_cluster.drop(postgres_url)
            assert (await http(session, "GET", node.url + "/readyz")).status == 503
        finally:
            await fed.stop_all()


def test_the_database_url_comes_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def configure() -> Path:
        async with aiohttp.ClientSession() as session:
            fed = Federation(tmp_path, session, ["XI-COORD"], coordinator="XI-COORD")
            config = fed.config("XI-COORD").model_copy(
                update={"coordinator_database_url": "postgresql://ncpx@db.example/ncpx"}
            )
        path = tmp_path / "node.toml"
        write_config(path, config)
        return path

    path = asyncio.run(configure())
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert load_config(path).coordinator_database_url == "postgresql://ncpx@db.example/ncpx"
    monkeypatch.setenv(DATABASE_URL_ENV, "")  # what compose passes for a variable the operator left unset
    assert load_config(path).coordinator_database_url == "postgresql://ncpx@db.example/ncpx"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://ncpx:secret@db.internal:5432/ncpx")
    assert load_config(path).coordinator_database_url == "postgresql://ncpx:secret@db.internal:5432/ncpx"
    monkeypatch.setenv(DATABASE_URL_ENV, "mysql://ncpx@db.internal/ncpx")
    with pytest.raises(ConfigError, match="coordinator_database_url"):
        load_config(path)


def test_compose_offers_postgres_as_a_profile_for_the_coordinator() -> None:
    compose = [str(Path(sys.executable).parent / "docker-compose"), "-f", str(ROOT / "docker-compose.yml")]
    plain = subprocess.run([*compose, "config", "--services"], capture_output=True, text=True, check=True)
    assert "postgres" not in plain.stdout.split()
    url = "postgresql://ncpx:pw@postgres:5432/ncpx"
    env = {**os.environ, "NCPX_COORDINATOR_DATABASE_URL": url, "NCPX_POSTGRES_PASSWORD": "pw"}
    profiled = subprocess.run(
        [*compose, "--profile", "postgres", "config", "--format", "json"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    services = json.loads(profiled.stdout)["services"]
    coordinator = services["ncpx-xi-coord"]
    assert coordinator["environment"]["NCPX_COORDINATOR_DATABASE_URL"] == url
    assert coordinator["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["read_only"] is True
    assert "ports" not in services["postgres"]  # inside the compose network only
