"""Prometheus metrics of one participant: what it holds and owes (read from its database at each scrape) and
what it did (counted as it happens).

Each node has its own :class:`~prometheus_client.CollectorRegistry`, never the library's global one: tests and
``ncpx demo`` run several nodes in one process, and each must report only its own figures.

Labels are participant ids (``peer``, ``node``), error codes, and the fixed names of folders, kinds, states and
listeners: never a message id, a subject or anything a message says, so the exposition can go to a monitoring
system that is not cleared for case data. Codes a peer sends back are mapped onto the codes this release knows
(:func:`protocol.errors.error_for_code`), so a hostile peer cannot invent label values without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.storage.gauges import Queued
from protocol.errors import error_for_code

LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
"""Seconds from an officer's submission to the peer's signed receipt: well under a second between nodes that
are up, hours when a peer was down (the backoff caps at five minutes, the give-up age is a day)."""


def known_code(code: str) -> str:
    """A code a peer sent, if this release names such an error, else the base code (what a label may carry)."""
    return error_for_code(code).code


@dataclass(frozen=True)
class NodeLag:
    """What the coordinator last heard from one node about its record queue."""

    backlog: int
    lag_s: float
    """How long the oldest record the node still holds for us has waited (0 when it holds none)."""
    silent_s: float
    """Since the node was last heard from (records or heartbeat)."""


@dataclass(frozen=True)
class Snapshot:
    """The figures read from storage for one scrape."""

    participant: str
    role: str
    roster_version: int
    messages: dict[tuple[str, str, str], int]
    queued: Sequence[Queued]
    now: float
    coordinator: str | None
    """Where this node's records go (None on the coordinator, or with no coordinator in the roster)."""
    clock_offsets: dict[str, float]
    database_bytes: int
    free_bytes: int
    nodes: dict[str, NodeLag] = field(default_factory=dict)
    """Coordinator only: each node's record queue, as it last reported it."""


class StateCollector(Collector):
    """Gauges from the latest :class:`Snapshot` (refreshed by the scrape handler just before it renders)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        if s is None:
            return
        info = GaugeMetricFamily(
            "ncpx_participant_info", "This participant (value 1).", labels=["participant", "role"]
        )
        info.add_metric([s.participant, s.role], 1)
        yield info
        yield GaugeMetricFamily(
            "ncpx_roster_version", "Version of the signed roster in force.", value=s.roster_version
        )
        messages = GaugeMetricFamily(
            "ncpx_messages", "Stored messages by folder, kind and state.", labels=["folder", "kind", "state"]
        )
        for (folder, kind, state), count in sorted(s.messages.items()):
            messages.add_metric([folder, kind, state], count)
        yield messages
        depth = GaugeMetricFamily(
            "ncpx_outbox_items", "Items waiting to go to a peer, by kind.", labels=["peer", "item"]
        )
        oldest: dict[str, float] = {}
        for q in s.queued:
            depth.add_metric([q.peer, q.item], q.count)
            oldest[q.peer] = min(oldest.get(q.peer, q.oldest), q.oldest)
        yield depth
        age = GaugeMetricFamily(
            "ncpx_outbox_oldest_age_seconds",
            "How long the oldest item waiting for a peer has waited.",
            labels=["peer"],
        )
        for peer, since in sorted(oldest.items()):
            age.add_metric([peer], max(0.0, s.now - since))
        yield age
        records = [q for q in s.queued if q.item == "record" and q.peer == s.coordinator]
        yield GaugeMetricFamily(
            "ncpx_records_waiting",
            "Metadata records not yet taken by the coordinator.",
            value=sum(q.count for q in records),
        )
        yield GaugeMetricFamily(
            "ncpx_records_oldest_age_seconds",
            "How long the oldest record not yet taken by the coordinator has waited (0: none waits).",
            value=max((s.now - q.oldest for q in records), default=0.0),
        )
        offsets = GaugeMetricFamily(
            "ncpx_peer_clock_offset_seconds",
            "How far a peer's clock is ahead of ours (negative: behind), from its last answer's Date.",
            labels=["peer"],
        )
        for peer, offset in sorted(s.clock_offsets.items()):
            offsets.add_metric([peer], offset)
        yield offsets
        yield GaugeMetricFamily(
            "ncpx_database_bytes", "Size of the database with its write-ahead log.", value=s.database_bytes
        )
        yield GaugeMetricFamily(
            "ncpx_data_free_bytes", "Free space on the file system of the data folder.", value=s.free_bytes
        )
        if s.role == "coordinator":
            yield from _coordinator_gauges(s.nodes)


def _coordinator_gauges(nodes: dict[str, NodeLag]) -> Iterator[Metric]:
    backlog = GaugeMetricFamily(
        "ncpx_coordinator_node_backlog", "Records a node says it still holds for us.", labels=["node"]
    )
    lag = GaugeMetricFamily(
        "ncpx_coordinator_ingest_lag_seconds",
        "How long the oldest record a node still holds for us has waited, as it last said.",
        labels=["node"],
    )
    silent = GaugeMetricFamily(
        "ncpx_coordinator_node_silence_seconds",
        "Since a node was last heard from (records or heartbeat).",
        labels=["node"],
    )
    for node, figures in sorted(nodes.items()):
        backlog.add_metric([node], figures.backlog)
        lag.add_metric([node], figures.lag_s)
        silent.add_metric([node], figures.silent_s)
    yield from (backlog, lag, silent)


class NodeMetrics:
    """The registry of one participant and the metrics its code updates as things happen."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.attempts = Counter(
            "ncpx_delivery_attempts",
            "Requests that carried queued items to a peer.",
            ["peer"],
            registry=registry,
        )
        self.failures = Counter(
            "ncpx_delivery_failures",
            "Failed delivery attempts (the peer unreachable) and items a peer refused, by error code.",
            ["peer", "code"],
            registry=registry,
        )
        self.delivered = Counter(
            "ncpx_delivered",
            "Messages a peer took, proven by its signed receipt.",
            ["peer"],
            registry=registry,
        )
        self.latency = Histogram(
            "ncpx_delivery_latency_seconds",
            "From an officer's submission to the peer's signed receipt.",
            ["peer"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "ncpx_refusals",
            "Problem responses this participant answered, by listener and error code.",
            ["listener", "code"],
            registry=registry,
        )
        self.envelopes_refused = Counter(
            "ncpx_envelopes_refused",
            "Envelopes from a peer refused one by one (the rest of their batch taken), by error code.",
            ["peer", "code"],
            registry=registry,
        )
        self.records_accepted = Counter(
            "ncpx_coordinator_records_accepted",
            "Coordinator: metadata records accepted from a node (repeats included).",
            ["node"],
            registry=registry,
        )
        self.records_refused = Counter(
            "ncpx_coordinator_records_refused",
            "Coordinator: metadata records refused, by node and error code.",
            ["node", "code"],
            registry=registry,
        )
        self.state = StateCollector()
        registry.register(self.state)
        self.scraping = asyncio.Lock()


METRICS = web.AppKey("metrics", NodeMetrics)
"""The participant's metrics, on both of its applications."""
