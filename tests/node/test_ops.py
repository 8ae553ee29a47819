"""``/version`` on both listeners, ``ncpx --version`` and ``ncpx health`` (the container's health check)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import aiohttp

from keys.tls import TLS_CERT_FILE, TLS_KEY_FILE, make_tls_certificate
from node.config import OfficerListener, write_config
from node.storage import database
from tests.node.support import Federation, Node, free_port
from tests.node.support import run_cli as run


def node_toml(node: Node, tmp_path: Path) -> Path:
    path = tmp_path / f"{node.id}.toml"
    write_config(path, node.config)
    return path


async def test_version_on_both_listeners(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    node = await federation(["TH", "MY"]).start("TH")
    newest = max(number for number, _ in database._migrations())
    for base in (node.url, node.api_url):
        async with session.get(base + "/version") as response:
            assert response.status == 200
            assert await response.json() == {
                "version": version("ncpx"),
                "protocol_version": 2,
                "schema_version": newest,
            }
    code, out, _ = await run("--version")
    assert code == 0
    assert out.strip() == f"ncpx {version('ncpx')} (protocol version 2)"


async def test_health_follows_the_configured_port(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    node = await federation(["TH", "MY"]).start("TH")
    path = node_toml(node, tmp_path)
    code, out, _ = await run("health", "-c", str(path))
    assert (code, out.strip()) == (0, "ready")
    code, _, err = await run("health", "-c", str(path), env={"NCPX_OFFICER__PORT": str(free_port())})
    assert code == 1
    assert "not ready" in err
    await node.stop()
    assert (await run("health", "-c", str(path)))[0] == 1


async def test_health_over_tls_pins_the_nodes_own_certificate(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    certificates = tmp_path / "officer-tls"
    make_tls_certificate(certificates, "TH", datetime.now(UTC))
    officer = OfficerListener(
        host="0.0.0.0",  # noqa: S104 - probed on loopback
        port=free_port(),
        tls_cert=certificates / TLS_CERT_FILE,
        tls_key=certificates / TLS_KEY_FILE,
    )
    node = await fed.start("TH", officer=officer)
    path = node_toml(node, tmp_path)
    code, out, err = await run("health", "-c", str(path))
    assert (code, out.strip()) == (0, "ready"), err
    other = tmp_path / "other-tls"
    make_tls_certificate(other, "TH", datetime.now(UTC))
    code, _, err = await run(
        "health", "-c", str(path), env={"NCPX_OFFICER__TLS_CERT": str(other / TLS_CERT_FILE)}
    )
    assert code == 1
    assert "does not present" in " ".join(err.split())
