"""A real ``ncpx node serve`` process and its signals: SIGTERM stops it within 8 s even while a slow client holds
a request open, and SIGHUP reloads configuration and roster while it keeps running."""

from __future__ import annotations

import json
import signal
import socket
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from node.topology import LocalNode, Topology, ncpx, wait_until

pytestmark = pytest.mark.e2e

PATIENT = {"limits": {"body_timeout_s": 120.0}, "delivery": {"roster_refresh_s": 3600.0}}
"""A body may take two minutes to arrive, and the roster file is read again only on SIGHUP."""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LocalNode]:
    topology = Topology(tmp_path, ["TH"], node_config=PATIENT, tls=False)
    topology.create()
    only = topology.nodes["TH"]
    only.start()
    yield only
    only.stop()


def slow_request(node: LocalNode) -> socket.socket:
    """An officer's POST whose body never finishes arriving, in its handler once this returns."""
    slow = socket.create_connection(("127.0.0.1", node.officer_port))
    slow.sendall(
        b"POST /v1/enquiries HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {node.token}\r\n".encode()
        + b"Content-Length: 100000\r\n\r\n{"
    )
    # Sockets are read in the order data arrives: once a later request is answered, the slow one is being handled.
    assert node.ready()
    return slow


def readyz(node: LocalNode) -> dict[str, object]:
    with urllib.request.urlopen(node.url + "/readyz", timeout=5) as response:  # noqa: S310 - loopback URL
        return dict(json.loads(response.read()))


def log_has(node: LocalNode, text: str) -> bool:
    return text in (node.folder / "node.log").read_text()


def edit(node: LocalNode, section: str, key: str, value: object) -> None:
    data = tomllib.loads(node.config.read_text())
    data[section][key] = value
    node.config.write_text(tomli_w.dumps(data))


def test_sigterm_stops_within_8_seconds_despite_a_slow_client(node: LocalNode) -> None:
    slow = slow_request(node)
    process = node.process
    assert process is not None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    elapsed = time.monotonic() - started
    slow.close()
    node.process = None
    assert code == 0
    assert elapsed < 8.0, f"stopping took {elapsed:.1f} s"


def test_sighup_reloads_roster_and_limits_and_keeps_the_connections(node: LocalNode, tmp_path: Path) -> None:
    process = node.process
    assert process is not None
    version = readyz(node)["roster_version"]
    assert isinstance(version, int)
    roster, authority = tmp_path / "authority" / "roster.json", tmp_path / "authority" / "authority.key"
    ncpx("roster", "budget", "--roster", str(roster), "--authority-key", str(authority), "--participant", "TH",
         "--items", "50")  # fmt: skip
    (node.folder / "roster.json").write_bytes(roster.read_bytes())
    edit(node, "limits", "body_timeout_s", 1.0)
    edit(node, "federation", "port", node.port + 1)
    held = slow_request(node)  # started under the old limit; must survive the reload

    process.send_signal(signal.SIGHUP)
    wait_until(lambda: readyz(node)["roster_version"] == version + 1, 10, "the new roster")
    wait_until(lambda: log_has(node, "configuration reloaded: limits.body_timeout_s"), 10, "the reload")
    assert log_has(
        node, "federation.port changed in the configuration; it takes effect when the node restarts"
    )
    assert process.poll() is None

    # The new limit applies to the next request: a body that stops arriving is refused after 1 s, not 120 s.
    slow = slow_request(node)
    slow.settimeout(10)
    assert slow.recv(100).startswith(b"HTTP/1.1 408")
    slow.close()
    held.sendall(b"}")  # not the declared length: still waiting, the connection was never dropped
    held.settimeout(0.2)
    with pytest.raises(TimeoutError):
        held.recv(100)
    held.close()

    node.config.write_text("this is not toml")
    process.send_signal(signal.SIGHUP)
    wait_until(lambda: log_has(node, "configuration not reloaded, the node runs on as before"), 10, "refusal")
    assert process.poll() is None
    assert readyz(node)["status"] == "ready"


def test_a_port_already_taken_stops_the_node_at_once_with_a_sentence(tmp_path: Path) -> None:
    """The listener cannot bind: the node says so and exits, instead of hanging on the storage it had opened."""
    topology = Topology(tmp_path, ["TH"], tls=False)
    topology.create()
    node = topology.nodes["TH"]
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", node.officer_port))
        taken.listen()
        node.launch()
        assert node.process is not None
        assert node.process.wait(timeout=30) == 2
    log = " ".join((node.folder / "node.log").read_text().split())  # the sentence is wrapped for a terminal
    assert "cannot listen on" in log
    assert "choose another host or port in node.toml" in log
    assert "Traceback" not in log
