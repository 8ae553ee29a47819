"""The deployment files: docker-compose.yml as a real Compose v2 binary reads it, the Dockerfile as hadolint
reads it, and the lock files the image is built from. (Running the compose services: tests/e2e/test_compose.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COUNTRIES = ["AU", "ID", "LK", "MV", "MY", "NZ", "PH", "TH"]
"""The contact points of the 2015 Period of Action."""
NODES = [f"ncpx-{pid.lower()}" for pid in [*COUNTRIES, "XI-COORD"]]


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)["services"]
    return found


def test_compose_file_is_valid_and_names_the_coordinator_and_every_2015_country() -> None:
    result = compose("config", "--services")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"init", *NODES}
    with_interpol = compose("--profile", "interpol", "config", "--services")
    assert set(with_interpol.stdout.split()) == {"init", *NODES, "ncpx-xi-interpol"}


def test_init_sets_up_every_node_once_into_its_own_volume(services: dict[str, Any]) -> None:
    init = services["init"]
    ids = next(a for a in init["command"] if a.startswith("--ids=")).removeprefix("--ids=").split(",")
    assert set(ids) == {*COUNTRIES, "XI-INTERPOL"}
    assert "--coordinator=XI-COORD" in init["command"]
    assert init["cap_add"] == ["CHOWN"]
    targets = {v["target"]: v["source"] for v in init["volumes"]}
    for pid in [*ids, "XI-COORD"]:
        assert targets[f"/lab/{pid}"] == f"{pid.lower()}-data"


def test_every_node_is_confined_and_waits_for_init_and_the_coordinator(services: dict[str, Any]) -> None:
    for name in NODES:
        node = services[name]
        assert node["user"] == "10001:10001"
        assert node["read_only"] is True
        assert node["cap_drop"] == ["ALL"]
        assert "cap_add" not in node
        assert node["security_opt"] == ["no-new-privileges:true"]
        assert node["logging"]["options"] == {"max-size": "10m", "max-file": "3"}
        assert node["healthcheck"]["test"] == ["CMD", "ncpx", "health"]
        assert node["depends_on"]["init"]["condition"] == "service_completed_successfully"
        if name != "ncpx-xi-coord":
            assert node["depends_on"]["ncpx-xi-coord"]["condition"] == "service_healthy"
        assert [v["source"] for v in node["volumes"] if v["target"] == "/data"] == [
            f"{name.removeprefix('ncpx-')}-data"
        ]
        assert all(port["host_ip"] == "127.0.0.1" for port in node["ports"])


def test_secrets_reach_nodes_as_files_never_as_environment(services: dict[str, Any]) -> None:
    for name in NODES:
        node = services[name]
        pid = name.removeprefix("ncpx-")
        assert {s["source"] for s in node["secrets"]} == {f"{pid}-passphrase", f"{pid}-officer-token"}
        assert node["environment"]["NCPX_PASSPHRASE_FILE"] == "/run/secrets/passphrase"
        assert "NCPX_PASSPHRASE" not in node["environment"]


def test_dockerfile_is_clean_under_hadolint() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_root_user() -> None:
    """The lint step can fail: the same check on a Dockerfile that runs as root and pins nothing."""
    bad = "FROM python:3.11-slim\nRUN pip install ncpx\nUSER root\n"
    result = subprocess.run(
        [str(BIN / "hadolint"), "-"], input=bad, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # last USER should not be root


def test_dockerfile_base_is_pinned_by_digest_and_user_is_numeric() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"python:3\.11-slim@sha256:[0-9a-f]{64}", text)
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert (
        'HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["ncpx", "health"]'
        in text
    )


def locked(path: Path) -> dict[str, str]:
    """Package -> pinned version of a pip-compile lock file, each pin followed by its hashes."""
    text = path.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.MULTILINE))
    assert len(pins) == len(re.findall(r"^\S+==\S+ \\\n    --hash=sha256:", text, re.MULTILINE))
    return {canonicalize_name(name): version for name, version in pins.items()}


def test_lock_files_pin_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = locked(ROOT / "requirements.lock")
    for line in project["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} is missing from requirements.lock: run `make lock`"
        assert requirement.specifier.contains(runtime[name]), f"{name} {runtime[name]} is outside {line}"
    build = locked(ROOT / "requirements-build.lock")
    for line in project["build-system"]["requires"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(build[canonicalize_name(requirement.name)])
