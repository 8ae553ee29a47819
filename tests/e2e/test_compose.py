"""docker-compose.yml without a Docker engine: every service's command, environment, volumes and secrets, as the
real compose binary resolves them, run as local processes, each node in a network namespace of its own where the
service names resolve (on loopback, with the names in /etc/hosts for the test's duration, where namespaces cannot
be made), as uid 10001 like the containers; then an enquiry crosses it: TH sends it, MY's officer reads it with
the token compose hands MY as a secret, and the coordinator's tally counts it.

Needs root (namespaces or /etc/hosts, ``setpriv``); elsewhere it is skipped, and the compose file is still
checked by ``tests/test_deploy.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from node.client import Client
from node.topology import NCPX, LocalNode, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("setpriv") is None,
        reason="network namespaces and another uid need root, ip and setpriv",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(sys.executable).parent / "docker-compose"
SUBNET = "10.251.12"
"""Addresses inside the namespaces this test makes (and removes); nothing outside them is reached."""


def compose_config() -> dict[str, Any]:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    config: dict[str, Any] = json.loads(result.stdout)
    return config


class Host:
    """A service's file system view on this machine: its named volumes, bind mounts and secrets become folders
    and files under one temporary folder, linked into a root of its own at the paths the container sees."""

    def __init__(self, base: Path, config: dict[str, Any]) -> None:
        self.base = base
        self.config = config

    def source(self, path: str) -> Path:
        """A host path the compose file names (all of them under the project folder) moved under ``base``."""
        return self.base / "host" / Path(path).relative_to(ROOT)

    def mounts(self, service: dict[str, Any]) -> dict[str, Path]:
        """Container path -> host path of each volume, bind mount and secret of ``service``."""
        table: dict[str, Path] = {}
        for volume in service.get("volumes", []):
            if volume["type"] == "volume":
                table[volume["target"]] = self.base / "volumes" / volume["source"]
            else:
                table[volume["target"]] = self.source(volume["source"])
            table[volume["target"]].mkdir(parents=True, exist_ok=True)
        for secret in service.get("secrets", []):
            target = secret.get("target", secret["source"])
            table[f"/run/secrets/{target}"] = self.source(self.config["secrets"][secret["source"]]["file"])
        return table

    def root(self, name: str, service: dict[str, Any]) -> Path:
        """The service's root: a link at each mount point, so that its paths work as they are written."""
        root = self.base / "roots" / name
        for inside, outside in self.mounts(service).items():
            link = root / inside.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(outside)
        return root

    @staticmethod
    def translate(value: str, root: Path) -> str:
        """``value`` (an argument or an environment value) with its container path moved under ``root``."""
        option, sep, path = value.partition("=") if value.startswith("--") else ("", "", value)
        if not path.startswith("/"):
            return value
        return option + sep + str(root) + path


class Namespaces:
    """A bridge and one network namespace per service, with a hosts file naming every service."""

    kind = "network namespaces"

    def __init__(self, base: Path, names: list[str]) -> None:
        tag = str(os.getpid() % 100000)
        self.bridge = f"ncpxb{tag}"
        self.addresses = {name: f"{SUBNET}.{10 + i}" for i, name in enumerate(names)}
        self.namespaces = {name: f"ncpx{tag}-{i}" for i, name in enumerate(names)}
        self.hosts = base / "hosts"
        lines = ["127.0.0.1 localhost", *(f"{ip} {name}" for name, ip in self.addresses.items())]
        self.hosts.write_text("\n".join(lines) + "\n")
        self.hosts.chmod(0o644)

    def up(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.1/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, (name, ns) in enumerate(self.namespaces.items()):
            veth = f"{self.bridge}v{i}"
            ip("netns", "add", ns)
            ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", veth, "master", self.bridge, "up")
            ip("-n", ns, "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        for ns in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)

    def place(self, name: str, config: Path) -> None:
        """Nothing to change: each node has its namespace's addresses to itself, as in its container."""

    def launcher(self, name: str, user: str) -> list[str]:
        """Run in ``name``'s namespace, with the hosts file in place and as the service's ``user``."""
        uid, gid = user.split(":")
        script = (
            'mount --bind "$0" /etc/hosts && exec setpriv --reuid="$1" --regid="$2" --clear-groups "${@:3}"'
        )
        return ["ip", "netns", "exec", self.namespaces[name], "bash", "-c", script, str(self.hosts), uid, gid]


class Loopback:
    """Where namespaces cannot be made (no CAP_NET_ADMIN, say): every service on this machine's loopback at an
    address of its own, its name in /etc/hosts while the test runs, its listeners bound to that address."""

    kind = "loopback"
    HOSTS = Path("/etc/hosts")

    def __init__(self, base: Path, names: list[str]) -> None:
        self.addresses = {name: f"127.0.12.{10 + i}" for i, name in enumerate(names)}
        self.saved: bytes | None = None

    def up(self) -> None:
        self.saved = self.HOSTS.read_bytes()
        lines = "".join(f"{ip} {name}\n" for name, ip in self.addresses.items())
        # In place, not replaced: /etc/hosts may be a bind mount (as in a container), which a rename would break.
        self.HOSTS.write_bytes(self.saved.rstrip(b"\n") + b"\n" + lines.encode())

    def down(self) -> None:
        if self.saved is not None:
            self.HOSTS.write_bytes(self.saved)
            self.saved = None

    def place(self, name: str, config: Path) -> None:
        """Bind both of the node's listeners to its own address rather than every address of the machine, where
        the nine nodes' equal ports would collide (the copied node.toml in its volume; the service's is kept)."""
        settings = tomllib.loads(config.read_text())
        for listener in ("federation", "officer"):
            settings[listener]["host"] = self.addresses[name]
        config.write_text(tomli_w.dumps(settings))

    def launcher(self, name: str, user: str) -> list[str]:
        """Run as the service's ``user``."""
        uid, gid = user.split(":")
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


def network_up(base: Path, names: list[str]) -> Namespaces | Loopback:
    """Namespaces when they can be made here, loopback otherwise (or when ``NCPX_COMPOSE_NETWORK=loopback``
    asks for it, to run that variant on a machine where namespaces work)."""
    if os.environ.get("NCPX_COMPOSE_NETWORK") != "loopback":
        namespaces = Namespaces(base, names)
        try:
            namespaces.up()
        except subprocess.CalledProcessError:
            namespaces.down()
        else:
            return namespaces
    loopback = Loopback(base, names)
    loopback.up()
    return loopback


def interpreter(base: Path) -> str:
    """This test's Python and packages, at a path uid 10001 may execute, as the image's interpreter is.

    The nodes start their interpreter again (multiprocessing's resource tracker, the checking pool's spawned
    workers); a virtualenv whose base interpreter sits under a folder only root may enter (pyenv under /root)
    lets ``setpriv`` start the node, which keeps its capabilities until that exec, but refuses every one of
    those later starts: the node then hangs or never checks an envelope. So the nodes run from a virtualenv of
    their own under ``base``: a base interpreter of the same version that everyone may execute, with this
    virtualenv's packages.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        str(Path(sys.base_prefix, "bin", version)),
        *(shutil.which(version, path=p) for p in ("/usr/local/bin", "/usr/bin")),
    ]
    usable = [c for c in candidates if c and Path(c).exists() and open_to_all(Path(c).resolve())]
    if not usable:
        pytest.skip(f"no {version} that uid 10001 may execute")
    venv = base / "python"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(usable[0])
    (venv / "lib" / version).mkdir(parents=True)
    (venv / "lib" / version / "site-packages").symlink_to(sysconfig.get_path("purelib"))
    (venv / "pyvenv.cfg").write_text(
        f"home = {Path(usable[0]).parent}\ninclude-system-site-packages = false\n"
    )
    return str(venv / "bin" / "python")


def open_to_all(path: Path) -> bool:
    """Whether any user may execute ``path``: every folder above it searchable by others, and the file too."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def after(service: dict[str, Any], condition: str) -> set[str]:
    return {name for name, dep in (service.get("depends_on") or {}).items() if dep["condition"] == condition}


@pytest.fixture
def base() -> Iterator[Path]:
    # Not pytest's tmp_path: its folders are private to root, and the nodes run as uid 10001.
    folder = Path(tempfile.mkdtemp(prefix="ncpx-compose-"))
    folder.chmod(0o755)
    with searchable(ROOT / "node", Path(sysconfig.get_path("purelib"))):
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def searchable(*paths: Path) -> Iterator[None]:
    """Let other users pass through the folders above ``paths`` (the checkout and its packages, which uid 10001
    imports) for the duration of the test: a clean clone may sit in a folder private to root, as CI's does.
    Only the search bit of the folders lacking it is added, and each is given back its mode afterwards."""
    changed: dict[Path, int] = {}
    for path in paths:
        for folder in (path, *path.parents):
            mode = folder.stat().st_mode
            if folder not in changed and not mode & stat.S_IXOTH:
                changed[folder] = stat.S_IMODE(mode)
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


@pytest.mark.timeout(600)
def test_compose_services_as_processes_exchange_an_enquiry(base: Path) -> None:
    config = compose_config()
    services = config["services"]
    host = Host(base, config)
    init = services["init"]
    nodes = {name: s for name, s in services.items() if name != "init"}
    assert all(after(s, "service_completed_successfully") == {"init"} for s in nodes.values())
    assert all(s["healthcheck"]["test"] == ["CMD", "ncpx", "health"] for s in nodes.values())

    # The one-shot init, as root (its compose user) with its volumes and bind mount; twice, as `up` may run it.
    root = host.root("init", init)
    argv = [*NCPX, *(host.translate(a, root) for a in init["command"])]
    env = {**os.environ, **{k: host.translate(v, root) for k, v in (init.get("environment") or {}).items()}}
    first = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "already set up" in " ".join(again.stdout.split())

    python = interpreter(base)
    network = network_up(base, list(nodes))
    print(f"the services run on {network.kind}")  # shown with -rP, and with a failure's captured output
    running: dict[str, LocalNode] = {}
    try:
        for name, service in nodes.items():
            root = host.root(name, service)
            assert service["user"] == "10001:10001"
            assert all(path.stat().st_uid == 10001 for path in host.mounts(service).values())
            network.place(name, root / "data" / "node.toml")
            running[name] = LocalNode(
                name,
                root / "data",
                8100,
                service["ports"][0]["target"],
                env={k: host.translate(v, root) for k, v in service["environment"].items()},
                command=[host.translate(a, root) for a in service["command"]],
                launcher=network.launcher(name, service["user"]),
                address=network.addresses[name],
                python=python,
            )
        # Compose's order: what others wait to be healthy first, then the rest together (the coordinator's
        # optional postgres is in a profile this run leaves off, as a plain `docker compose up` does).
        first_wave = set().union(*(after(s, "service_healthy") for s in nodes.values())) & set(nodes)
        assert first_wave == {"ncpx-xi-coord"}
        for name in first_wave:
            running[name].start(timeout=120)
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            list(
                pool.map(lambda n: n.start(timeout=120), [running[n] for n in running if n not in first_wave])
            )

        def officer(name: str) -> Client:
            """The service's officer API, with the token compose hands it as a secret."""
            token = host.mounts(nodes[name])["/run/secrets/officer_token"].read_text().strip()
            return Client(running[name].url, token)

        created = officer("ncpx-th").json(
            "POST",
            "/v1/enquiries",
            {
                "recipients": ["MY"],
                "area": "people_smuggling",
                "urgency": "normal",
                "subject": "Crew list",
                "text": "Please check the crew list against your records.",
            },
        )
        message = str(created["messages"][0]["id"])
        sender = running["ncpx-th"].folder / "node.db"
        wait_until(
            lambda: select(sender, "SELECT 1 FROM messages WHERE id = ? AND state = 'delivered'", message),
            30,
            "TH's enquiry to be delivered to MY",
        )
        opened = officer("ncpx-my").json("GET", f"/v1/messages/{message}")["message"]
        assert (opened["sender"], opened["subject"]) == ("TH", "Crew list")
        assert opened["text"] == "Please check the crew list against your records."
        assert opened["receipt"] is not None

        coordinator = officer("ncpx-xi-coord")

        def counted() -> dict[str, Any] | None:
            tallies: dict[str, Any] = coordinator.json("GET", "/v1/period/jpa-lab/tallies")
            return tallies if tallies["totals"]["enquiries"] == 1 else None

        tallies = wait_until(counted, 30, "the coordinator to count the enquiry")
        assert tallies["totals"]["unproven"] == 0  # TH's side reached it, not MY's report alone
        assert [(p["sender"], p["recipient"], p["count"]) for p in tallies["pairs"]] == [("TH", "MY", 1)]
    finally:
        for node in running.values():
            node.stop()
        network.down()


def select(database: Path, sql: str, value: str) -> bool:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return conn.execute(sql, (value,)).fetchone() is not None
