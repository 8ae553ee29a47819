"""Soak: continuous exchange TH → MY with a coordinator, under repeated SIGKILLs of any of the three.

Not part of ``make test`` (``make soak`` runs it): ``SOAK_KILLS`` kills (100 by default), each at a random moment
while enquiries are submitted and delivered. At the end every enquiry an officer got a 201 for is in MY's inbox
exactly once, with the receipt TH holds, and the coordinator holds both sides' records of every exchange.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.topology import LocalNode, Topology, wait_until
from protocol.encoding import format_time
from protocol.errors import NcpxError

pytestmark = pytest.mark.soak

KILLS = int(os.environ.get("SOAK_KILLS", "100"))
FAST = {"delivery": {"batch_size": 16, "backoff_initial_s": 0.05, "backoff_cap_s": 0.5}}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Topology]:
    topology = Topology(tmp_path, ["TH", "MY", "XI-COORD"], node_config=FAST, coordinator="XI-COORD")
    topology.create()
    now = datetime.now(UTC)
    topology.declare_period(
        "soak", format_time(now - timedelta(days=1)), format_time(now + timedelta(days=2))
    )
    topology.start()
    yield topology
    topology.stop()


def rows(node: LocalNode | Path, sql: str) -> list[tuple[object, ...]]:
    path = node if isinstance(node, Path) else node.folder / "node.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return list(conn.execute(sql))


def submit(node: LocalNode, count: int, accepted: list[str]) -> None:
    """Submit ``count`` enquiries; keep the ids of those the node acknowledged (it may die meanwhile)."""
    client = node.client()
    for i in range(count):
        try:
            created = client.json(
                "POST",
                "/v1/enquiries",
                {"recipients": ["MY"], "area": "people_smuggling", "subject": f"soak {i}", "text": "x" * 500},
            )
        except (NcpxError, OSError):
            return  # killed under us: what was acknowledged before counts, nothing after
        accepted.append(str(created["messages"][0]["id"]))


def test_exactly_once_under_repeated_kills(world: Topology) -> None:
    rng = random.Random(int(os.environ.get("SOAK_SEED", "2015")))
    th, my, coordinator = world.nodes["TH"], world.nodes["MY"], world.nodes["XI-COORD"]
    accepted: list[str] = []
    for _ in range(KILLS):
        submit(th, rng.randint(1, 8), accepted)
        victim = rng.choice([th, my, coordinator])
        victim.kill()
        victim.start()
    submit(th, 5, accepted)

    def delivered() -> bool:
        done = {
            str(r[0])
            for r in rows(th, "SELECT id FROM messages WHERE folder = 'sent' AND receipt IS NOT NULL")
        }
        return done >= set(accepted)

    wait_until(delivered, 300, "every acknowledged enquiry delivered")
    received = [str(r[0]) for r in rows(my, "SELECT id FROM messages WHERE folder = 'inbox'")]
    assert sorted(received) == sorted(set(accepted))  # nothing lost, nothing twice
    sent = dict(rows(th, "SELECT id, receipt FROM messages WHERE folder = 'sent'"))
    stored = dict(rows(my, "SELECT id, receipt FROM messages WHERE folder = 'inbox'"))
    assert sent == stored

    def reconciled() -> bool:
        sides = rows(
            coordinator,
            "SELECT count(*) FROM exchanges WHERE sent_digest IS NOT NULL AND received_at IS NOT NULL",
        )
        return int(sides[0][0]) == len(set(accepted))  # type: ignore[call-overload]

    wait_until(reconciled, 300, "both sides' records of every exchange at the coordinator")
