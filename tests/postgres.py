"""A throw-away PostgreSQL cluster for the tests of the coordinator's PostgreSQL store.

Debian's ``postgresql`` package (installed by ``make test``) provides the binaries; the cluster lives in a
temporary folder, listens on a unix socket there only, trusts its local user, and is stopped and deleted when
the session ends. PostgreSQL refuses to run as root, so when the tests do it runs as ``nobody``. Durability is
off (``fsync``), since nothing outlives the session. Each test gets a database of its own.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

SKIP_ENV = "NCPX_SKIP_POSTGRES"
SUPERUSER = "ncpx"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` folder (Debian: /usr/lib/postgresql/<version>/bin)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


@dataclass
class Cluster:
    """A running cluster: databases are made on it by :meth:`database`."""

    bin_dir: Path
    socket: Path
    names: Iterator[int]

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket}"

    def database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{next(self.names)}"
        subprocess.run(
            [str(self.bin_dir / "createdb"), "-h", str(self.socket), "-U", SUPERUSER, name],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop the database of ``url`` (its open connections are ended): as if the server had gone away."""
        name = urlsplit(url).path.lstrip("/")
        subprocess.run(
            [str(self.bin_dir / "dropdb"), "-h", str(self.socket), "-U", SUPERUSER, "--force", name],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """Start the session's cluster (once, for the first test that asks for PostgreSQL)."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the PostgreSQL variants are skipped (make test runs them)")
    bin_dir = binaries()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): run `make test`, which installs "
            f"Debian's postgresql, or set {SKIP_ENV}=1 to skip the PostgreSQL variants locally"
        )
    owner = "nobody" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="ncpx-pg-"))
    data = folder / "data"
    if owner:
        shutil.chown(folder, owner)
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        _as_owner(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            owner,
        ),
        **run,
    )  # fmt: skip
    options = (
        f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        _as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-o",
                options,
                "start",
            ],
            owner,
        ),
        **run,
    )
    try:
        yield Cluster(bin_dir, folder, itertools.count(1))
    finally:
        subprocess.run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], owner),
            **run,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """The URL of a fresh, empty database on the session's cluster."""
    return postgres_cluster.database()
