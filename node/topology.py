"""A local topology of real node processes on loopback: what the demo, the end-to-end tests and the benchmark run.

It drives the same commands an operator would (``ncpx roster create``, ``ncpx init``, ``ncpx roster add``,
``ncpx officer add``, ``ncpx node serve``), so the path a newcomer follows is the path that is tested.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from node.client import Client

T = TypeVar("T")
NCPX = [sys.executable, "-m", "node.cli"]
PASSPHRASE_ENV = "NCPX_PASSPHRASE"  # noqa: S105 - the name of a variable, not a passphrase
"""Where a node with encrypted key files finds their passphrase (or ``NCPX_PASSPHRASE_FILE``, a file holding it)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ncpx(*args: str, env: dict[str, str] | None = None) -> str:
    """Run one ``ncpx`` command and return its standard output; raises on a non-zero exit."""
    result = subprocess.run(
        [*NCPX, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ncpx {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns a value other than None or False; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class LocalNode:
    """One node folder and, while running, its process."""

    id: str
    folder: Path
    port: int
    """The federation listener's port."""
    officer_port: int
    token: str = ""
    process: subprocess.Popen[bytes] | None = None
    public_url: str = ""
    """How peers reach it; loopback by default, a container name in docker-compose."""
    tls: bool = True
    """Mutual TLS between nodes, as ``ncpx init`` sets up by default."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of its ``ncpx`` commands, such as the key-file passphrase."""
    command: list[str] = field(default_factory=lambda: ["node", "serve"])
    """The ``ncpx`` arguments it runs with (as a compose service's ``command``)."""
    launcher: list[str] = field(default_factory=list)
    """What it is started under, such as ``ip netns exec`` to give it a network of its own."""
    address: str = "127.0.0.1"
    """Where this machine reaches its officer listener."""

    @property
    def url(self) -> str:
        """Base URL of the officer listener (officer API, dashboard, health)."""
        return f"http://{self.address}:{self.officer_port}"

    @property
    def federation_url(self) -> str:
        """Base URL peers call, as the roster lists it."""
        return self.public_url or f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        """Its node.toml."""
        return self.folder / "node.toml"

    def client(self) -> Client:
        """An officer API client with this node's demo officer token."""
        return Client(self.url, self.token)

    def start(self, timeout: float = 30.0) -> None:
        """Start ``ncpx node serve`` and wait until ``/readyz`` answers."""
        log = (self.folder / "node.log").open("ab")
        self.process = subprocess.Popen(
            [*self.launcher, *NCPX, *self.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NCPX_CONFIG": str(self.config), **self.env},
        )
        log.close()
        wait_until(self.ready, timeout, f"node {self.id} to become ready")

    def ready(self) -> bool:
        """Whether ``/readyz`` says ready (False while the process is down)."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"node {self.id} exited with {self.process.returncode}; see {self.folder}/node.log"
            )
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:  # noqa: S310 - loopback URL
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop cleanly (SIGTERM), waiting for the process to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the crash the durability promises are about."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


class Topology:
    """An authority, a roster and several nodes in one folder."""

    def __init__(
        self,
        root: Path,
        ids: list[str],
        node_config: dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        officer_port: int | None = None,
        url_template: str | None = None,
        coordinator: str | None = None,
        tls: bool = True,
        passphrases: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.authority_key = root / "authority" / "authority.key"
        self.roster = root / "authority" / "roster.json"
        self.host = host
        self.nodes = {
            pid: LocalNode(
                pid,
                root / pid,
                port or free_port(),
                officer_port or free_port(),
                public_url=url_template.format(id=pid.lower()) if url_template else "",
                tls=tls,
                env={PASSPHRASE_ENV: passphrases[pid]} if passphrases else {},
            )
            for pid in ids
        }
        self.node_config = node_config or {}
        self.coordinator = coordinator
        """Which of ``ids`` runs as the coordinator (it gets no officer enquiries, only records)."""

    def create(self) -> None:
        """Authority key, node folders, signed roster, one officer per node."""
        (self.root / "authority").mkdir(parents=True, exist_ok=True)
        ncpx("roster", "create", "--authority-key", str(self.authority_key), "--out", str(self.roster))
        for node in self.nodes.values():
            ncpx(
                "init", "--id", node.id, "--dir", str(node.folder), "--port", str(node.port), "--host", self.host,
                "--officer-port", str(node.officer_port), "--role", self.role(node.id),
                "--authority", str(self.authority_key.with_suffix(".pub")),
                *([] if node.tls else ["--plain-federation"]),
                *(["--passphrase-env", PASSPHRASE_ENV] if node.env else []), env=node.env,
            )  # fmt: skip
            if self.node_config:
                self._extend_config(node)
            ncpx(
                "roster", "add", "--roster", str(self.roster), "--authority-key", str(self.authority_key),
                "--card", str(node.folder / "keys" / "public.json"), "--url", node.federation_url, "--name", node.id,
                "--role", self.role(node.id),
            )  # fmt: skip
        self.distribute_roster()
        for node in self.nodes.values():
            node.token = ncpx("officer", "add", f"officer-{node.id.lower()}", "-c", str(node.config)).strip()

    def role(self, participant: str) -> str:
        """``coordinator`` or ``node``."""
        return "coordinator" if participant == self.coordinator else "node"

    def declare_period(self, name: str, start: str, end: str, participants: list[str] | None = None) -> None:
        """Declare a Period of Action (every country node takes part unless ``participants`` names some), and
        hand out the new roster."""
        if self.coordinator is None:
            raise ValueError("a period needs a coordinator")
        countries = ",".join(participants or [pid for pid in self.nodes if pid != self.coordinator])
        ncpx(
            "period", "create", "--roster", str(self.roster), "--authority-key", str(self.authority_key),
            "--name", name, "--start", start, "--end", end, "--participants", countries,
            "--coordinator", self.coordinator,
        )  # fmt: skip
        self.distribute_roster()

    def _extend_config(self, node: LocalNode) -> None:
        data = tomllib.loads(node.config.read_text())
        for section, values in self.node_config.items():
            if isinstance(values, dict):
                data.setdefault(section, {}).update(values)
            else:
                data[section] = values
        node.config.write_text(tomli_w.dumps(data))

    def distribute_roster(self) -> None:
        """Copy the authority's roster into every node folder (what an operator does by hand)."""
        for node in self.nodes.values():
            shutil.copyfile(self.roster, node.folder / "roster.json")

    def start(self) -> None:
        """Start every node."""
        for node in self.nodes.values():
            node.start()

    def stop(self) -> None:
        """Stop every node that runs."""
        for node in self.nodes.values():
            node.stop()
