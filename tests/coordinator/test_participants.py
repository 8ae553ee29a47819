"""Only exchanges between participants of a period reach the coordinator; the rest stays between two countries.

NZ is a node of the roster but takes part in no period. TH exchanges with NZ and with MY (a participant) while
every byte sent to the coordinator passes through a recording proxy; once every node's queue for the coordinator
is empty, nothing about the TH-NZ exchange (neither message id nor thread) was sent to the coordinator, and its
store holds no record or exchange that names NZ.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.topology import Topology, wait_until
from protocol.encoding import format_time
from tests.coordinator.test_blindness import RecordingProxy
from tests.e2e.test_crash_safety import rows

pytestmark = pytest.mark.e2e

PERIOD = "jpa-participants"


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[tuple[Topology, RecordingProxy]]:
    proxy = RecordingProxy()
    # Plain HTTP between the nodes, so that the proxy can read what reaches the coordinator.
    topo = Topology(tmp_path, ["TH", "MY", "NZ", "XI-COORD"], coordinator="XI-COORD", tls=False)
    coordinator = topo.nodes["XI-COORD"]
    proxy.target = coordinator.port
    coordinator.public_url = f"http://127.0.0.1:{proxy.port}"
    topo.create()
    now = datetime.now(UTC)
    start, end = format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29))
    topo.declare_period(PERIOD, start, end, participants=["TH", "MY"])
    topo.start()
    yield topo, proxy
    topo.stop()
    proxy.close()


def test_an_exchange_with_a_non_participant_never_reaches_the_coordinator(
    topology: tuple[Topology, RecordingProxy],
) -> None:
    topo, proxy = topology
    th, my, nz = (topo.nodes[c].client() for c in ("TH", "MY", "NZ"))
    ids: dict[str, list[str]] = {}
    for recipient, client in (("NZ", nz), ("MY", my)):
        created = th.json(
            "POST", "/v1/enquiries", {"recipients": [recipient], "area": "other", "subject": "s", "text": "t"}
        )
        [message] = created["messages"]
        wait_until(lambda: _state(topo, "TH", message["id"]) == "delivered", 30, "delivery")  # noqa: B023
        client.json("POST", f"/v1/messages/{message['id']}/read")
        reply = client.json("POST", f"/v1/messages/{message['id']}/replies", {"text": "checked"})
        wait_until(lambda: _state(topo, "TH", message["id"]) == "answered", 30, "the reply")  # noqa: B023
        ids[recipient] = [message["id"], created["thread"], reply["messages"][0]["id"]]
    coordinator = topo.nodes["XI-COORD"].client()

    def tallied() -> bool:
        totals = coordinator.json("GET", f"/v1/period/{PERIOD}/tallies")["totals"]
        return bool(totals["enquiries"] == totals["answered"] == totals["replies"] == 1)

    wait_until(tallied, 30, "the TH-MY exchange at the coordinator")
    for country in ("TH", "MY", "NZ"):
        wait_until(
            lambda: rows(topo.nodes[country], "SELECT count(*) FROM outbox WHERE item = 'record'")[0][0] == 0,  # noqa: B023
            30,
            f"{country}'s records to leave",
        )
    received = bytes(proxy.received)
    for value in ids["MY"]:
        assert value.encode() in received  # the proxy does see what participants report
    for value in ids["NZ"]:
        assert value.encode() not in received
    topo.stop()
    with sqlite3.connect(topo.nodes["XI-COORD"].folder / "node.db") as db:
        assert db.execute("SELECT count(*) FROM records WHERE reporter = 'NZ'").fetchone() == (0,)
        named = "SELECT count(*) FROM exchanges WHERE sender = 'NZ' OR recipient = 'NZ'"
        assert db.execute(named).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM exchanges").fetchone() == (2,)  # TH → MY and its reply


def _state(topo: Topology, node: str, message_id: str) -> str | None:
    found = rows(topo.nodes[node], f"SELECT state FROM messages WHERE id = '{message_id}'")  # noqa: S608 - test id
    return str(found[0][0]) if found else None
