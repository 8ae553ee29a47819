"""Metrics and logs of real nodes: ``/metrics`` after a scripted exchange shows the figures the databases hold
and nothing a message says; refusals and failed deliveries log a warning with their code and request id.

Real nodes on loopback (real keys, real SQLite files) and, for the logs of a real process, ``ncpx node serve``
started by :class:`node.topology.Topology`.
"""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keys.roster import add_period
from node import logs
from node.config import OfficerListener
from node.topology import Topology, wait_until
from protocol.errors import ConfigError
from protocol.period import Period
from tests.node.support import (
    ENVELOPES,
    Federation,
    Node,
    Response,
    batch,
    free_port,
    http,
    post_signed,
    wait_for,
)

COORD = "XI-COORD"
PERIOD = "jpa-observe"
SUBJECT = "Observe-subject: vessel Nusantara Dawn"
TEXT = "Observe-text: crew list attached, please check against your records."
REPLY = "Observe-reply: known to us, contact Insp. Lim."
ENQUIRY = {
    "recipients": ["MY"],
    "area": "people_smuggling",
    "urgency": "urgent_indirect",
    "subject": SUBJECT,
    "text": TEXT,
    "subjects": {"vessels": [{"name": "Nusantara Dawn", "imo": "9074729"}]},
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def request_id(response: Response) -> str:
    """The answer's ``X-Request-Id`` (header names are case-insensitive; aiohttp writes ``X-Request-ID``)."""
    return {name.lower(): v for name, v in response.headers.items()}["x-request-id"]


async def scrape(node: Node, **headers: str) -> str:
    response = await http(node.session, "GET", node.api_url + "/metrics", headers=headers)
    assert response.status == 200, response.body[:300]
    assert response.content_type == "text/plain"
    return response.body.decode()


async def start_period(federation: Callable[..., Federation], ids: list[str]) -> dict[str, Node]:
    """Countries ``ids`` and a coordinator in one period (so that records flow), coordinator first."""
    fed = federation([COORD, *ids], coordinator=COORD)
    now = datetime.now(UTC)
    period = Period(
        name=PERIOD,
        start=now - timedelta(days=1),
        end=now + timedelta(days=29),
        participants=ids,
        coordinator=COORD,
    )
    assert fed.body is not None
    fed.body = add_period(fed.body, period, fed.epoch)
    return {pid: await fed.start(pid) for pid in fed.ids}


async def test_metrics_after_an_exchange_match_the_databases_and_name_no_message(
    federation: Callable[..., Federation],
) -> None:
    nodes = await start_period(federation, ["TH", "MY"])
    th, my, coordinator = nodes["TH"], nodes["MY"], nodes[COORD]

    created = await th.call("POST", "/v1/enquiries", body=ENQUIRY)
    enquiry, thread = created["messages"][0]["id"], created["thread"]
    await wait_for(lambda: my.state_is(enquiry, "inbox", "received"), what="the enquiry at MY")
    await my.call("POST", f"/v1/messages/{enquiry}/read")
    replied = await my.call("POST", f"/v1/messages/{enquiry}/replies", body={"text": REPLY})
    reply = replied["messages"][0]["id"]
    await wait_for(lambda: th.state_is(enquiry, "sent", "answered"), what="answered at TH")
    await wait_for(lambda: my.state_is(reply, "sent", "delivered"), what="the reply's receipt at MY")
    missing = await th.request("GET", f"/v1/messages/{uuid.uuid4()}")
    missing.problem("not_found", 404)

    async def settled(node: Node) -> Samples | None:
        """The node's samples once nothing waits for anyone (records included)."""
        samples = parse(await scrape(node))
        waiting = [k for k, v in samples.items() if k[0] == "ncpx_outbox_items" and v]
        return samples if not waiting and value(samples, "ncpx_records_waiting") == 0 else None

    at_th = await wait_for(lambda: settled(th), what="TH's outbox to drain")
    at_my = await wait_for(lambda: settled(my), what="MY's outbox to drain")

    # What each node's database holds, by folder, kind and state.
    assert value(at_th, "ncpx_messages", folder="sent", kind="enquiry", state="answered") == 1
    assert value(at_th, "ncpx_messages", folder="inbox", kind="reply", state="received") == 1
    assert value(at_my, "ncpx_messages", folder="inbox", kind="enquiry", state="answered") == 1
    assert value(at_my, "ncpx_messages", folder="sent", kind="reply", state="delivered") == 1
    assert sum(v for (name, _), v in at_th.items() if name == "ncpx_messages") == th.count("messages")
    # What each did: one message delivered to the other, its latency observed once, attempts counted.
    assert value(at_th, "ncpx_delivered_total", peer="MY") == 1
    assert value(at_my, "ncpx_delivered_total", peer="TH") == 1
    assert value(at_th, "ncpx_delivery_latency_seconds_count", peer="MY") == 1
    assert value(at_th, "ncpx_delivery_latency_seconds_bucket", peer="MY", le="60.0") == 1
    assert (value(at_th, "ncpx_delivery_attempts_total", peer="MY") or 0) >= 1
    assert (value(at_th, "ncpx_delivery_attempts_total", peer=COORD) or 0) >= 1
    assert value(at_th, "ncpx_refusals_total", listener="officer", code="not_found") == 1
    assert value(at_my, "ncpx_refusals_total", listener="officer", code="not_found") is None
    assert value(at_th, "ncpx_participant_info", participant="TH", role="node") == 1
    assert value(at_th, "ncpx_roster_version") == th.service.trust.roster.version
    assert (value(at_th, "ncpx_database_bytes") or 0) >= th.db_path.stat().st_size > 0
    assert (value(at_th, "ncpx_data_free_bytes") or 0) > 0

    # The coordinator: records taken per node equal those its database holds, and no node lags.
    async def ingested() -> Samples | None:
        samples = parse(await scrape(coordinator))
        stored = {
            r["reporter"]: r["n"]
            for r in coordinator.rows("SELECT reporter, count(*) AS n FROM records GROUP BY reporter")
        }
        taken = {
            dict(labels)["node"]: v
            for (name, labels), v in samples.items()
            if name == "ncpx_coordinator_records_accepted_total"
        }
        return samples if set(stored) == {"TH", "MY"} and taken == stored else None

    at_coord = await wait_for(ingested, what="the coordinator's counters to match its records")
    for country in ("TH", "MY"):
        assert value(at_coord, "ncpx_coordinator_node_backlog", node=country) == 0
        assert value(at_coord, "ncpx_coordinator_ingest_lag_seconds", node=country) == 0
        assert value(at_coord, "ncpx_coordinator_node_silence_seconds", node=country) is not None
    assert value(at_coord, "ncpx_participant_info", participant=COORD, role="coordinator") == 1

    for node in (th, my, coordinator):
        text = await scrape(node)
        for secret in (enquiry, reply, thread, SUBJECT, TEXT, REPLY, "Nusantara", "9074729"):
            assert secret not in text, (node.id, secret)


async def test_a_peer_down_shows_as_queued_and_failed_attempts(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")  # MY never starts: its port refuses connections
    await th.call("POST", "/v1/enquiries", body=ENQUIRY)

    async def failing() -> Samples | None:
        samples = parse(await scrape(th))
        failed = value(samples, "ncpx_delivery_failures_total", peer="MY", code="unreachable") or 0
        return samples if failed >= 2 else None

    samples = await wait_for(failing, what="two failed attempts at MY")
    assert value(samples, "ncpx_outbox_items", peer="MY", item="envelope") == 1
    assert (value(samples, "ncpx_outbox_oldest_age_seconds", peer="MY") or 0) > 0
    assert value(samples, "ncpx_messages", folder="sent", kind="enquiry", state="queued") == 1
    assert value(samples, "ncpx_delivered_total", peer="MY") is None


async def test_envelopes_refused_by_a_node_are_counted_by_peer_and_code(
    federation: Callable[..., Federation], json_logs: io.StringIO
) -> None:
    fed = federation(["TH", "MY"])
    my = await fed.start("MY")
    stale = fed.envelope("TH", "MY", now=datetime.now(UTC) - timedelta(days=2))
    fresh = fed.envelope("TH", "MY")
    answer = await post_signed(my.session, my, ENVELOPES, batch(stale, fresh), fed.identities["TH"])
    assert answer.status == 200
    [refused, taken] = answer.json()["results"]
    assert (refused["problem"]["code"], "receipt" in taken) == ("stale_timestamp", True)
    alone = await post_signed(my.session, my, ENVELOPES, batch(stale), fed.identities["TH"])
    alone.problem("stale_timestamp")

    samples = parse(await scrape(my))
    assert value(samples, "ncpx_envelopes_refused_total", peer="TH", code="stale_timestamp") == 2
    assert value(samples, "ncpx_refusals_total", listener="federation", code="stale_timestamp") == 1
    assert value(samples, "ncpx_messages", folder="inbox", kind="enquiry", state="received") == 1
    warned = [e for e in lines(json_logs) if e["event"] == "envelopes refused"]
    assert [(e["level"], e["peer"], e["code"], e["count"]) for e in warned] == [
        ("warning", "TH", "stale_timestamp", 1),
        ("warning", "TH", "stale_timestamp", 1),
    ]
    # A refused envelope leaves no trace, not even its id in the log.
    assert stale.header.id not in json_logs.getvalue()


async def test_metrics_are_local_only_or_need_the_metrics_token(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    proxied = OfficerListener(port=free_port(), trusted_proxies=["127.0.0.1"])  # type: ignore[list-item]
    th = await fed.start("TH", officer=proxied)
    # Through the trusted proxy, the client is the forwarded address: not this machine.
    remote = await th.request("GET", "/metrics", token=None, headers={"X-Forwarded-For": "203.0.113.7"})
    assert "scrape from 127.0.0.1" in remote.problem("unauthorized", 401)["detail"]
    assert "ncpx_messages" in await scrape(th, **{"X-Forwarded-For": "127.0.0.1"})  # the proxy's own machine

    await th.stop()
    secret = "metrics-token-0123456789abcdef"
    guarded = OfficerListener(port=free_port(), metrics_token=secret)  # type: ignore[arg-type]
    th = await fed.start("TH", officer=guarded)
    for headers in ({}, {"Authorization": f"Bearer {th.token}"}, {"Authorization": "Bearer wrong-token"}):
        refused = await http(th.session, "GET", th.api_url + "/metrics", headers=headers)
        refused.problem("unauthorized", 401)
    assert "ncpx_messages" in await scrape(th, Authorization=f"Bearer {secret}")
    # The metrics token opens nothing else.
    (await th.request("GET", "/v1/messages", token=secret)).problem("unauthorized", 401)


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-ncpx.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def expressions(node: Any) -> Iterator[str]:
    """Every PromQL expression of a Grafana dashboard: panel targets and template variable queries."""
    if isinstance(node, dict):
        for key, item in node.items():
            if key in ("expr", "definition") and isinstance(item, str):
                yield item
            else:
                yield from expressions(item)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


async def test_the_grafana_dashboard_graphs_only_metrics_that_participants_expose(
    federation: Callable[..., Federation],
) -> None:
    nodes = await start_period(federation, ["TH"])
    exposed: set[str] = set()
    for node in nodes.values():
        for family in text_string_to_metric_families(await scrape(node)):
            exposed |= {family.name, *(family.name + s for s in SUFFIXES.get(family.type, ()))}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = list(expressions(dashboard))
    named = {name for expr in found for name in re.findall(r"\bncpx_[a-z_]+", expr)}
    assert len(found) >= 20
    assert named - exposed == set()
    # Every metric of a participant is on the dashboard (the _created series are Prometheus' own).
    graphed = {n for n in exposed if not n.endswith("_created")}
    assert {n.removesuffix("_total") for n in graphed} - {n.removesuffix("_total") for n in named} <= {
        "ncpx_delivery_latency_seconds",  # graphed through its _bucket series
        "ncpx_delivery_latency_seconds_sum",
        "ncpx_delivery_latency_seconds_count",
    }


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The node's log configuration writing to a buffer (not a terminal: JSON), undone afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    logs.configure("INFO", buffer)
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_refusals_and_failed_deliveries_log_a_warning_with_code_and_request_id(
    federation: Callable[..., Federation], json_logs: io.StringIO
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")  # MY is down
    await th.call("POST", "/v1/enquiries", body=ENQUIRY)
    missing = str(uuid.uuid4())
    refused = await th.request("GET", f"/v1/messages/{missing}", headers={"X-Request-Id": "trace-4711-abc"})
    refused.problem("not_found", 404)
    assert request_id(refused) == "trace-4711-abc"

    def failed() -> dict[str, Any] | None:
        return next((e for e in lines(json_logs) if e["event"].startswith("delivery attempt failed")), None)

    attempt = await wait_for(failed, what="a failed delivery attempt logged")
    assert (attempt["level"], attempt["peer"], attempt["code"]) == ("warning", "MY", "unreachable")
    assert "request_id" not in attempt  # the worker's loop is not the request that woke it
    [refusal] = [e for e in lines(json_logs) if e["event"] == "request refused"]
    assert refusal["level"] == "warning"
    assert (refusal["code"], refusal["status"], refusal["request_id"]) == ("not_found", 404, "trace-4711-abc")
    assert refusal["route"] == "/v1/messages/{id}"
    assert refusal["message_id"] == missing
    assert refusal["logger"] == "ncpx.http"
    assert "timestamp" in refusal
    everything = json_logs.getvalue()
    for secret in (SUBJECT, TEXT, "Nusantara", th.token):
        assert secret not in everything


async def test_request_ids_are_echoed_and_insane_ones_replaced(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    given = "0af7651916cd43dd8448eb211c80319c"
    for url in (th.api_url + "/readyz", th.url + "/livez", th.url + "/federation/v1/hello"):
        response = await http(th.session, "GET", url, headers={"X-Request-Id": given})
        assert request_id(response) == given
    made = set()
    for insane in ("short", "x" * 65, "has space in it", "new\tline-injection", ""):
        response = await http(th.session, "GET", th.api_url + "/livez", headers={"X-Request-Id": insane})
        echoed = request_id(response)
        assert echoed != insane
        assert len(echoed) == 32
        assert int(echoed, 16) >= 0
        made.add(echoed)
    assert len(made) == 5  # a new id each time


@pytest.mark.e2e
def test_ncpx_node_serve_logs_json_lines_with_request_ids(tmp_path: Path) -> None:
    topology = Topology(
        tmp_path,
        ["TH", "MY"],
        {"verify_workers": 0, "delivery": {"backoff_initial_s": 0.05, "backoff_cap_s": 0.5}},
        tls=False,
    )
    topology.create()
    th = topology.nodes["TH"]
    th.start()  # MY stays down
    try:
        client = th.client()
        client.json("POST", "/v1/enquiries", ENQUIRY)
        missing = str(uuid.uuid4())
        asked = urllib.request.Request(  # noqa: S310 - loopback URL
            th.url + f"/v1/messages/{missing}",
            headers={"X-Request-Id": "serve-req-0042", "Authorization": f"Bearer {th.token}"},
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(asked, timeout=10)  # noqa: S310 - loopback URL
        assert answer.value.code == 404
        assert answer.value.headers["X-Request-Id"] == "serve-req-0042"
        log = th.folder / "node.log"
        wait_until(
            lambda: "delivery attempt failed" in log.read_text() or None, 20, "a failed attempt in the log"
        )
    finally:
        th.stop()
    entries = [json.loads(line) for line in log.read_text().splitlines()]  # every line is one JSON object
    [refusal] = [e for e in entries if e["event"] == "request refused"]
    assert (refusal["level"], refusal["code"], refusal["request_id"]) == (
        "warning",
        "not_found",
        "serve-req-0042",
    )
    attempt = next(e for e in entries if e["event"].startswith("delivery attempt failed"))
    assert (attempt["level"], attempt["peer"], attempt["code"]) == ("warning", "MY", "unreachable")
    assert any(e["event"].startswith("listening on") and e["logger"] == "ncpx.node" for e in entries)
    assert not [e for e in entries if e["level"] == "debug"]  # INFO by default
    for secret in (SUBJECT, TEXT, "Nusantara", th.token):
        assert secret not in log.read_text()


class Terminal(io.StringIO):
    """A buffer that says it is a terminal, as standard error is when an operator runs the node by hand."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_console_layout_and_the_level_is_configurable(
    monkeypatch: pytest.MonkeyPatch, json_logs: io.StringIO
) -> None:
    screen = Terminal()
    logs.configure("WARNING", screen)
    logging.getLogger("ncpx.delivery").info("hidden below the level")
    logging.getLogger("ncpx.delivery").warning("delivery attempt failed", extra={"code": "timeout"})
    shown = screen.getvalue()
    assert "hidden" not in shown
    assert "delivery attempt failed" in shown
    assert "timeout" in shown
    with pytest.raises(json.JSONDecodeError):
        json.loads(shown.splitlines()[0])

    monkeypatch.delenv(logs.LEVEL_ENV, raising=False)
    assert logs.level_of("info") == "INFO"
    monkeypatch.setenv(logs.LEVEL_ENV, "debug")
    assert logs.level_of("INFO") == "DEBUG"
    monkeypatch.setenv(logs.LEVEL_ENV, "chatty")
    with pytest.raises(ConfigError, match="NCPX_LOG_LEVEL"):
        logs.level_of("INFO")
