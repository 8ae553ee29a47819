"""A local topology of real node processes on loopback: what the demo, the end-to-end tests and the benchmark run.

It drives the same commands an operator would (``ncpx roster create``, ``ncpx init``, ``ncpx roster add``,
``ncpx officer add``, ``ncpx node serve``), so the path a newcomer follows is the path that is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import secrets
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from node.client import Client

T = TypeVar("T")
NCPX = [sys.executable, "-m", "node.cli"]
PASSPHRASE_ENV = "NCPX_PASSPHRASE"  # noqa: S105 - the name of a variable, not a passphrase
"""Where a node with encrypted key files finds their passphrase (or ``NCPX_PASSPHRASE_FILE``, a file holding it)."""


FIRST_PORT = 20_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, below the kernel's ephemeral range.

    A port the kernel hands out for port 0 is also one it may give any outgoing connection as its local port in
    the moment between this check and the node's bind, which then fails; ports below the ephemeral range are
    never handed out that way. Chosen at random so that parallel runs rarely try the same one.
    """
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32_768
    for _ in range(100):
        port = FIRST_PORT + secrets.randbelow(max(ephemeral - FIRST_PORT, 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def ncpx(*args: str, env: dict[str, str] | None = None) -> str:
    """Run one ``ncpx`` command and return its standard output; raises on a non-zero exit."""
    result = subprocess.run(
        [*NCPX, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ncpx {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


@functools.cache
def _cli_main() -> Callable[..., object]:
    """The ``ncpx`` command's entry, built once (typer takes a quarter of a second to build it)."""
    import typer.main

    from node.cli import app

    return typer.main.get_command(app).main


def command(*args: str, env: dict[str, str] | None = None) -> str:
    """Run one ``ncpx`` command inside this process and return its standard output; raises what the command
    raises, or RuntimeError on another non-zero exit.

    The same code as :func:`ncpx` without starting an interpreter each time (about a second of CPU per command):
    what lets :meth:`Topology.create` set up ten participants in a few seconds. Not for concurrent use: it
    sets the environment and captures standard output of the whole process while the command runs. Called from
    a coroutine, it runs on a thread of its own, as commands that use asyncio must.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _command(args, env)
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(_command, args, env).result()


def _command(args: tuple[str, ...], env: dict[str, str] | None) -> str:
    saved = {name: os.environ.get(name) for name in env or {}}
    output = io.StringIO()
    try:
        os.environ.update(env or {})
        with contextlib.redirect_stdout(output):
            code = _cli_main()(list(args), prog_name="ncpx", standalone_mode=False)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if isinstance(code, int) and code != 0:
        raise RuntimeError(f"ncpx {' '.join(args[:2])} failed ({code})")
    return output.getvalue()


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
    python: str = sys.executable
    """The interpreter it runs under: one the launcher's user may execute, as its own processes (the checking
    pool, multiprocessing's resource tracker) start that interpreter again."""

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
        self.launch()
        wait_until(self.ready, timeout, f"node {self.id} to become ready")

    def launch(self, env: dict[str, str] | None = None) -> None:
        """Start ``ncpx node serve`` without waiting for it (``env`` added to this process's environment)."""
        log = (self.folder / "node.log").open("ab")
        self.process = subprocess.Popen(
            [*self.launcher, self.python, *NCPX[1:], *self.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NCPX_CONFIG": str(self.config), **self.env, **(env or {})},
        )
        log.close()

    def ready(self) -> bool:
        """Whether ``/readyz`` says ready (False while the process is down)."""
        if self.process is not None and self.process.poll() is not None:
            lines = (self.folder / "node.log").read_text(errors="replace").splitlines()[-3:]
            raise RuntimeError(
                f"node {self.id} exited with {self.process.returncode}; see {self.folder}/node.log, "
                f"which ends: {' | '.join(lines)}"
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
        command("roster", "create", "--authority-key", str(self.authority_key), "--out", str(self.roster))
        for node in self.nodes.values():
            command(
                "init", "--id", node.id, "--dir", str(node.folder), "--port", str(node.port), "--host", self.host,
                "--officer-port", str(node.officer_port), "--role", self.role(node.id),
                "--authority", str(self.authority_key.with_suffix(".pub")),
                *([] if node.tls else ["--plain-federation"]),
                *(["--passphrase-env", PASSPHRASE_ENV] if node.env else []), env=node.env,
            )  # fmt: skip
            if self.node_config:
                self._extend_config(node)
            command(
                "roster", "add", "--roster", str(self.roster), "--authority-key", str(self.authority_key),
                "--card", str(node.folder / "keys" / "public.json"), "--url", node.federation_url, "--name", node.id,
                "--role", self.role(node.id),
            )  # fmt: skip
        self.distribute_roster()
        for node in self.nodes.values():
            node.token = command(
                "officer", "add", f"officer-{node.id.lower()}", "-c", str(node.config)
            ).strip()

    def role(self, participant: str) -> str:
        """``coordinator`` or ``node``."""
        return "coordinator" if participant == self.coordinator else "node"

    def declare_period(self, name: str, start: str, end: str, participants: list[str] | None = None) -> None:
        """Declare a Period of Action (every country node takes part unless ``participants`` names some), and
        hand out the new roster."""
        if self.coordinator is None:
            raise ValueError("a period needs a coordinator")
        countries = ",".join(participants or [pid for pid in self.nodes if pid != self.coordinator])
        command(
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

    def start(self, timeout: float = 60.0, env: dict[str, str] | None = None) -> None:
        """Start every node at once and wait until all are ready (their start-ups overlap)."""
        for node in self.nodes.values():
            node.launch(env)
        for node in self.nodes.values():
            wait_until(node.ready, timeout, f"node {node.id} to become ready")

    def stop(self) -> None:
        """Stop every node that runs: all are told at once, so their shutdowns overlap."""
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            node.stop()
