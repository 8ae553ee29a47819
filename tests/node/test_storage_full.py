"""A full disk, for real: the node's folder on a small tmpfs made by the test (as root; skipped otherwise).
An officer gets ``storage_full`` (507) and nothing half-stored, readiness turns red, and both recover by themselves
once space is freed, with the database intact."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.node.support import Federation, Node, http


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the file system holding ``folder``."""
    filler = folder / f"filler-{uuid.uuid4().hex}"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)
    return filler


async def ready(node: Node, session: aiohttp.ClientSession) -> int:
    return (await http(session, "GET", node.url + "/readyz")).status


async def test_a_full_disk_is_named_shown_and_recovered_from(
    small_disk: Path, session: aiohttp.ClientSession
) -> None:
    fed = Federation(small_disk, session, ["TH", "MY"])
    try:
        th = await fed.start("TH")
        assert await ready(th, session) == 200
        filler = fill(small_disk)
        body = {"recipients": ["MY"], "area": "other", "subject": "s", "text": "x" * 20_000}
        refused = await th.request("POST", "/v1/enquiries", body=body)
        problem = refused.problem("storage_full", 507)
        assert "free space" in problem["detail"]
        assert await ready(th, session) == 503
        assert th.count() == 0  # nothing half-stored
        filler.unlink()
        assert await ready(th, session) == 200  # recovers by itself
        accepted = await th.request("POST", "/v1/enquiries", body=body)
        assert accepted.status == 201
        assert th.count() == 1
    finally:
        await fed.stop_all()
    conn = sqlite3.connect(th.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
