"""Node liveness on the coordinator, measured by heartbeats on the record channel, not by records: real processes.

Intervals are shortened through each node's configuration (a heartbeat every second, down after 4 s of silence);
the mechanism is the one that runs with the defaults (a minute, 90 s).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest

from node.topology import Topology, wait_until
from protocol.encoding import format_time, parse_time
from tests.coordinator.test_dashboard import fetch

pytestmark = pytest.mark.e2e

PERIOD = "jpa-live"
DOWN_AFTER_S = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = Topology(
        tmp_path_factory.mktemp("live"),
        ["TH", "MY", "XI-COORD"],
        {"delivery": {"heartbeat_s": 1.0}, "coordinator_down_after_s": DOWN_AFTER_S},
        coordinator="XI-COORD",
    )
    topology.create()
    now = datetime.now(UTC)
    topology.declare_period(
        PERIOD, format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29))
    )
    topology.start()
    yield topology
    topology.stop()


def states(topology: Topology) -> dict[str, tuple[str, str | None]]:
    nodes = topology.nodes["XI-COORD"].client().json("GET", f"/v1/period/{PERIOD}/nodes")["nodes"]
    return {n["participant"]: (n["state"], n["down_since"]) for n in nodes}


def dashboard_states(topology: Topology) -> dict[str, str]:
    coordinator = topology.nodes["XI-COORD"]
    _, headers, _ = fetch(coordinator.url + "/dashboard/login", {"token": coordinator.token})
    cookie = headers["Set-Cookie"].split(";")[0]
    _, _, page = fetch(coordinator.url + f"/dashboard/fragment?period={PERIOD}", cookie=cookie)
    return {
        node: unescape(state)
        for node, state in re.findall(
            r'<tr data-node="([A-Z]+)" data-state="[a-z]+"><td>[^<]*</td><td>[^<]*</td><td>([^<]*)', page
        )
    }


def test_idle_node_is_up_a_stopped_one_down_within_90_s_and_up_again_on_return(world: Topology) -> None:
    # No traffic at all yet: heartbeats alone make both nodes "up, idle".
    wait_until(lambda: states(world) == {"MY": ("idle", None), "TH": ("idle", None)}, 30, "both nodes idle")
    assert dashboard_states(world) == {"MY": "up, idle", "TH": "up, idle"}

    stopping = datetime.now(UTC)
    world.nodes["TH"].stop()
    down = wait_until(lambda: states(world)["TH"][0] == "down" and states(world), 90, "TH shown down")
    shown = datetime.now(UTC)
    assert shown - stopping < timedelta(seconds=90)
    since = down["TH"][1]
    assert since is not None
    # Down since its last heartbeat, which came shortly before it stopped, and shown only after the silence.
    assert stopping - timedelta(seconds=15) <= parse_time(since) <= shown - timedelta(seconds=DOWN_AFTER_S)
    assert down["MY"] == ("idle", None)  # still heard from while idle
    assert dashboard_states(world)["TH"].startswith("down since ")

    world.nodes["TH"].start()
    wait_until(lambda: states(world)["TH"] == ("idle", None), 30, "TH up again")
    assert dashboard_states(world)["TH"] == "up, idle"

    world.nodes["TH"].client().json(
        "POST",
        "/v1/enquiries",
        {"recipients": ["MY"], "area": "people_smuggling", "subject": "s", "text": "t"},
    )
    wait_until(lambda: states(world)["TH"] == ("up", None), 30, "TH up with records")
    assert dashboard_states(world)["TH"] == "up"
