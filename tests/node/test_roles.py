"""Each role serves only its own surfaces, and messages pass only between country nodes.

A federation of two countries and a coordinator, all with real keys in one signed roster; the coordinator is the
real application started with ``role = "coordinator"``. Requests the tests craft are signed with the real keys
of the participant they claim to come from, so every refusal here is about roles, not about signatures.
A country node's refusals by role (an enquiry from or to the coordinator, a reply to a participant that is no
longer a node, the coordinator's surfaces asked of a node) are cases of ``test_attack_corpus.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

import pytest

from node.config import write_config
from node.server import NodeServer
from protocol.encoding import canonical
from protocol.errors import ConfigError
from tests.node.support import (
    ENVELOPES,
    HELLO,
    PROBLEM_JSON,
    ROSTER,
    STATUS,
    Federation,
    batch,
    http,
    post_signed,
)

COORD = "XI-COORD"
RECORDS = "/federation/v1/records"


@pytest.fixture
def fed(federation: Callable[..., Federation]) -> Federation:
    return federation(["TH", "MY", COORD], coordinator=COORD)


async def test_the_coordinator_has_no_envelope_endpoint_and_stores_nothing(fed: Federation) -> None:
    coordinator = await fed.start(COORD)
    th = fed.identities["TH"]
    envelope = fed.envelope("TH", COORD)  # sealed to the coordinator's real key, signed by TH
    for path, body in ((ENVELOPES, batch(envelope)), (STATUS, canonical({"statuses": []}))):
        response = await post_signed(fed.session, coordinator, path, body, th)
        response.problem("not_found", 404)
    assert coordinator.count("messages") == 0
    assert coordinator.count("outbox") == 0
    # What nodes do call on the coordinator is still there: hello, the roster and record intake.
    hello = await post_signed(fed.session, coordinator, HELLO, canonical({"roster_version": 1}), th)
    assert hello.status == 200, hello.body
    assert hello.json()["participant"] == COORD
    roster = await http(fed.session, "GET", coordinator.url + ROSTER)
    assert roster.status == 200
    assert roster.json()["roster"]["version"] == fed.roster().version
    records = await post_signed(fed.session, coordinator, RECORDS, canonical({"records": []}), th)
    assert records.status == 200, records.body
    # The officer API of a country is not mounted either, whatever the token.
    (await coordinator.request("GET", "/v1/messages")).problem("not_found", 404)
    assert (await coordinator.request("GET", "/v1/period")).status == 200


@pytest.mark.parametrize("pid", ["MY", COORD])
async def test_each_listener_serves_only_its_own_surfaces(fed: Federation, pid: str) -> None:
    node = await fed.start(pid)
    officer_paths = ["/v1/openapi.json", "/v1/period", "/v1/messages", "/dashboard", "/dashboard/login"]
    for path in officer_paths:
        # Peers see the federation listener only: nothing of the officers' side answers there, token or not.
        response = await http(
            fed.session, "GET", node.url + path, headers={"Authorization": f"Bearer {node.token}"}
        )
        response.problem("not_found", 404)
    for path in (HELLO, ROSTER, ENVELOPES, RECORDS):
        (await node.request("POST", path, data=b"{}")).problem("not_found", 404)
        (await node.request("GET", path)).problem("not_found", 404)
    for url in (node.url, node.api_url):
        assert (await http(fed.session, "GET", url + "/livez")).status == 200


async def test_each_surface_has_its_own_middlewares(fed: Federation) -> None:
    coordinator, my = await fed.start(COORD), await fed.start("MY")
    for node in (coordinator, my):
        # Officer tokens guard the API sub-application only: health and the OpenAPI document stay open.
        (await node.request("GET", "/v1/period", token=None)).problem("unauthorized", 401)
        for path in ("/livez", "/readyz", "/v1/openapi.json"):
            assert (await node.request("GET", path, token=None)).status == 200, path
        # Problem+json everywhere, also where no surface answers.
        for url in (node.url, node.api_url):
            (await http(fed.session, "GET", url + "/nowhere")).problem("not_found", 404)
        (await http(fed.session, "GET", node.url + "/federation/v1/nowhere")).problem("not_found", 404)
        wrong_method = await http(fed.session, "GET", node.url + HELLO)
        assert (wrong_method.status, wrong_method.content_type) == (405, PROBLEM_JSON)
    # The dashboard's security headers are the dashboard's own.
    page = await http(fed.session, "GET", coordinator.api_url + "/dashboard")
    assert page.status == 200
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    for path in ("/livez", "/v1/openapi.json"):
        assert "Content-Security-Policy" not in (await coordinator.request("GET", path)).headers
    assert "Content-Security-Policy" not in (await coordinator.request("GET", "/v1/period")).headers


@pytest.mark.parametrize(("pid", "configured"), [("MY", "coordinator"), (COORD, "node")])
async def test_a_role_other_than_the_rosters_refuses_to_start(
    fed: Federation, pid: str, configured: str
) -> None:
    config = fed.config(pid).model_copy(update={"role": configured})
    server = NodeServer(config, access_log=False)
    try:
        with pytest.raises(ConfigError) as refused:
            await server.start()
    finally:
        await server.stop()
    listed = "node" if configured == "coordinator" else "coordinator"
    assert f"the roster lists {pid} as {listed}" in refused.value.detail
    assert f'set role = "{listed}"' in refused.value.detail


async def test_ncpx_node_serve_refuses_a_role_other_than_the_rosters(fed: Federation) -> None:
    config = fed.config("MY").model_copy(update={"role": "coordinator"})
    path = config.data_dir / "node.toml"
    write_config(path, config)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node.cli",
        "node",
        "serve",
        "-c",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "400"},
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2, err.decode()
    assert (
        "error [config]: the configuration gives role coordinator but the roster lists MY as node"
        in err.decode()
    )
