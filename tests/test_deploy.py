"""The deployment files are valid: docker-compose.yml passes a real compose binary's checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = Path(sys.executable).parent / "docker-compose"


def test_compose_file_is_valid_and_names_every_country_node() -> None:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"setup", "ncpx-th", "ncpx-my", "ncpx-id", "ncpx-xi-coord"}


def test_compose_nodes_serve_their_own_config_and_expose_loopback_only() -> None:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    services = json.loads(result.stdout)["services"]
    for name in ("ncpx-th", "ncpx-my", "ncpx-id", "ncpx-xi-coord"):
        country = name.removeprefix("ncpx-").upper()
        assert services[name]["command"][-1] == f"/deploy/{country}/node.toml"
        assert all(port["host_ip"] == "127.0.0.1" for port in services[name]["ports"])
        assert services[name]["read_only"] is True
