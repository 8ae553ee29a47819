"""The coordinator is never in the way: while it is down, countries exchange as usual and records wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.topology import Topology, wait_until
from protocol.encoding import format_time
from tests.e2e.test_crash_safety import delivered_ids, rows, submit

pytestmark = pytest.mark.e2e

PERIOD = "jpa-resilience"


def test_exchange_goes_on_while_the_coordinator_is_down_and_records_catch_up(tmp_path: Path) -> None:
    topology = Topology(
        tmp_path,
        ["TH", "MY", "XI-COORD"],
        node_config={"delivery": {"backoff_initial_s": 0.2, "backoff_cap_s": 1.0}},
        coordinator="XI-COORD",
    )
    topology.create()
    now = datetime.now(UTC)
    topology.declare_period(
        PERIOD, format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29))
    )
    th, my, coordinator = (topology.nodes[i] for i in ("TH", "MY", "XI-COORD"))
    th.start()
    my.start()
    try:
        accepted = submit(th.client(), 50)
        wait_until(lambda: len(delivered_ids(th)) == 50, 15, "delivery with the coordinator down")
        waiting = rows(th, "SELECT count(*) FROM outbox WHERE item = 'record' AND peer = 'XI-COORD'")[0][0]
        assert waiting == 50  # one 'sent' record per delivered enquiry, queued for later
        assert rows(my, "SELECT count(*) FROM outbox WHERE item = 'record'")[0][0] == 50

        coordinator.start()
        client = coordinator.client()

        def caught_up() -> bool:
            totals = client.json("GET", f"/v1/period/{PERIOD}/tallies")["totals"]
            return bool(totals["enquiries"] == 50)

        wait_until(caught_up, 30, "the records to reach the coordinator")
        wait_until(
            lambda: rows(th, "SELECT count(*) FROM outbox WHERE item = 'record'")[0][0] == 0,
            30,
            "TH's queue to empty",
        )
        assert rows(coordinator, "SELECT count(*) FROM records")[0][0] == 100  # sent + received, once each
        flows = {f["country"]: f for f in client.json("GET", f"/v1/period/{PERIOD}/tallies")["countries"]}
        assert (flows["TH"]["sent"], flows["MY"]["received"]) == (50, 50)
        nodes = {n["participant"]: n for n in client.json("GET", f"/v1/period/{PERIOD}/nodes")["nodes"]}
        assert nodes["TH"]["last_record_at"] is not None
        assert nodes["MY"]["last_record_at"] is not None
        assert set(accepted) == delivered_ids(th)
    finally:
        topology.stop()
