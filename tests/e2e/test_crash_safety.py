"""Real ``ncpx node serve`` processes: SIGKILL in the middle of delivery loses nothing and duplicates nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from node.client import Client
from node.topology import LocalNode, Topology, wait_until

pytestmark = pytest.mark.e2e

TEXT = "Please check the crew list of the vessel against your records. " * 32  # about 2 KiB
SLOW_DELIVERY = {"delivery": {"batch_size": 5, "backoff_initial_s": 0.1, "backoff_cap_s": 1.0}}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Topology]:
    topology = Topology(tmp_path, ["TH", "MY"], node_config=SLOW_DELIVERY)
    topology.create()
    topology.start()
    yield topology
    topology.stop()


def rows(node: LocalNode, sql: str) -> list[tuple[object, ...]]:
    """Read a node's database while it runs (WAL allows a concurrent reader)."""
    with sqlite3.connect(f"file:{node.folder / 'node.db'}?mode=ro", uri=True) as conn:
        return list(conn.execute(sql))


def inbox_ids(node: LocalNode) -> list[str]:
    return [str(r[0]) for r in rows(node, "SELECT id FROM messages WHERE folder = 'inbox'")]


def delivered_ids(node: LocalNode) -> set[str]:
    return {
        str(r[0])
        for r in rows(
            node,
            "SELECT id FROM messages WHERE folder = 'sent' AND state = 'delivered' AND receipt IS NOT NULL",
        )
    }


def submit(client: Client, count: int) -> list[str]:
    """Submit ``count`` enquiries TH → MY concurrently; returns the ids the node accepted (201)."""

    def one(i: int) -> str:
        created = client.json(
            "POST",
            "/v1/enquiries",
            {
                "recipients": ["MY"],
                "area": "people_smuggling",
                "urgency": "normal",
                "subject": f"Crew list {i}",
                "text": TEXT,
            },
        )
        return str(created["messages"][0]["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def assert_exactly_once(accepted: list[str], sender: LocalNode, receiver: LocalNode) -> None:
    received = inbox_ids(receiver)
    assert len(received) == len(set(received)) == len(accepted)
    assert set(received) == set(accepted)
    assert delivered_ids(sender) == set(accepted)
    # Each receipt the sender holds is the one the receiver stored: one delivery per message, not two.
    sent_receipts = dict(rows(sender, "SELECT id, receipt FROM messages WHERE folder = 'sent'"))
    stored_receipts = dict(rows(receiver, "SELECT id, receipt FROM messages WHERE folder = 'inbox'"))
    assert sent_receipts == stored_receipts


def test_sender_killed_during_delivery_of_500(pair: Topology) -> None:
    th, my = pair.nodes["TH"], pair.nodes["MY"]
    accepted = submit(th.client(), 500)
    assert len(set(accepted)) == 500
    wait_until(lambda: len(inbox_ids(my)) >= 50, 60, "the first deliveries")
    th.kill()
    at_kill = len(inbox_ids(my))
    assert at_kill < 500, "delivery finished before the kill; the test proves nothing"
    th.start()
    wait_until(lambda: len(delivered_ids(th)) == 500, 120, "every enquiry delivered after the restart")
    assert_exactly_once(accepted, th, my)


def test_receiver_killed_during_delivery_of_500(pair: Topology) -> None:
    th, my = pair.nodes["TH"], pair.nodes["MY"]
    accepted = submit(th.client(), 500)
    wait_until(lambda: len(inbox_ids(my)) >= 50, 60, "the first deliveries")
    my.kill()
    assert len(inbox_ids(my)) < 500, "delivery finished before the kill; the test proves nothing"
    my.start()
    wait_until(lambda: len(delivered_ids(th)) == 500, 120, "every enquiry delivered after the restart")
    assert_exactly_once(accepted, th, my)


def test_peer_down_then_back_drains_backlog(pair: Topology) -> None:
    th, my = pair.nodes["TH"], pair.nodes["MY"]
    my.stop()
    accepted = submit(th.client(), 100)
    states = {str(r[0]) for r in rows(th, "SELECT DISTINCT state FROM messages WHERE folder = 'sent'")}
    assert states <= {"queued", "sent"}
    outbox = th.client().json("GET", "/v1/messages", query={"folder": "outbox", "limit": 500})
    assert len(outbox["items"]) == 100
    my.start()
    wait_until(lambda: len(delivered_ids(th)) == 100, 60, "the backlog to drain")
    assert_exactly_once(accepted, th, my)
    sent = th.client().json("GET", "/v1/messages", query={"folder": "sent", "limit": 500})
    assert {item["state"] for item in sent["items"]} == {"delivered"}


def test_returning_peer_gets_backlog_within_seconds_despite_long_backoff(tmp_path: Path) -> None:
    """A long backoff (30 s first wait, 5 min cap) is cut short by the returning peer's hello."""
    topology = Topology(
        tmp_path, ["TH", "MY"], node_config={"delivery": {"backoff_initial_s": 30.0, "backoff_cap_s": 300.0}}
    )
    topology.create()
    th, my = topology.nodes["TH"], topology.nodes["MY"]
    th.start()
    try:
        accepted = submit(th.client(), 20)
        # The first attempt fails (MY never started), so TH now waits 15 to 30 s before trying MY again.
        wait_until(
            lambda: th.client().json("GET", "/v1/peers")["peers"][0]["failures"] >= 1, 30, "a failed attempt"
        )
        my.start()
        wait_until(lambda: len(delivered_ids(th)) == 20, 10, "the backlog, well inside the backoff")
        assert_exactly_once(accepted, th, my)
    finally:
        topology.stop()
