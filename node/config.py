"""Node configuration: one TOML file per node, written by ``ncpx init`` and read by ``ncpx node serve``.

Paths in the file are relative to the file's own folder, so a node's folder can be moved or mounted into a
container as a whole.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, ValidationError

from keys.roster import parse_authority_public
from protocol.errors import ConfigError
from protocol.models import ParticipantId

MiB = 1024 * 1024


def mib(size: int) -> str:
    """A size limit as people read it in a refusal: mebibytes, to three significant digits."""
    return f"{size / MiB:.3g}"


class Limits(BaseModel):
    """Size and time limits applied to everything that arrives."""

    model_config = ConfigDict(extra="forbid")

    max_request_bytes: int = Field(default=32 * MiB, ge=64 * 1024)
    """Largest HTTP request body accepted, on every endpoint."""
    max_attachment_bytes: int = Field(default=10 * MiB, ge=0)
    """Largest total attachment size per message."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """Longest time a request body may take to arrive, on every endpoint."""
    concurrent_bodies: int = Field(default=8, ge=1, le=1024)
    """Peers' request bodies read at the same time; the rest wait their turn, so that memory held for bodies
    stays below this times ``max_request_bytes`` however many peers send at once."""
    peer_messages_per_minute: int = Field(default=10_000, ge=1)
    """Envelopes one peer may deliver per minute (more waits at the sender and is retried)."""
    peer_bytes_per_minute: int = Field(default=256 * MiB, ge=64 * 1024)
    """Bytes of envelopes one peer may deliver per minute."""
    peer_stored_bytes: int = Field(default=2048 * MiB, ge=64 * 1024)
    """Bytes of envelopes from one peer that no officer has read yet; past it, that peer's new envelopes are
    refused for now (the sender retries), so a peer cannot fill the disk with messages nobody attends to. Keep it
    above the largest message (``max_request_bytes``)."""
    clock_skew_s: int = Field(default=300, ge=1)
    """Accepted difference between a peer's clock and ours for request timestamps."""
    max_message_age_s: int = Field(default=86400, ge=60)
    """Envelopes created longer ago than this are refused as stale (one day: deadlines run from the receipt
    time, and an old envelope arriving now is more likely replayed than late)."""


class Delivery(BaseModel):
    """How the outbox worker retries."""

    model_config = ConfigDict(extra="forbid")

    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    """Longest wait between two attempts at a peer (5 minutes by default)."""
    give_up_after_s: float = Field(default=86400, gt=0)
    """After this long undelivered, a message is shown as ``undeliverable`` (one day, as long as a peer
    configured like us accepts an envelope: trying longer could only earn ``stale_timestamp``)."""
    batch_size: int = Field(default=128, ge=1, le=1000)
    request_timeout_s: float = Field(default=15.0, gt=0)
    roster_refresh_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=60.0, gt=0)
    """Country nodes: how often to tell the coordinator this node is up, traffic or not (its liveness)."""


class Matching(BaseModel):
    """Private matching of watch lists and planned operations with peers."""

    model_config = ConfigDict(extra="forbid")

    auto: list[str] = []
    """Peers this node matches with on its own, when an item is added and every ``interval_s`` (``"*"``: every
    country node). Officers can run a round with any peer at any time (``ncpx match``)."""
    interval_s: float = Field(default=3600.0, ge=10.0)

    def peers(self, nodes: list[str]) -> list[str]:
        """The opted-in peers among the roster's current country ``nodes``."""
        return list(nodes) if "*" in self.auto else [p for p in nodes if p in self.auto]


class Retention(BaseModel):
    """How long message bodies are kept (data-protection rules for police data)."""

    model_config = ConfigDict(extra="forbid")

    messages_days: int | None = Field(default=None, ge=1)
    """Bodies and attachments of messages created longer ago than this are purged (their metadata, what the
    period report counts, stays); None keeps them for ever."""
    interval_s: float = Field(default=3600.0, ge=1.0)
    """How often the node purges what has passed the limit."""


class FederationListener(BaseModel):
    """Where peers reach this node: the only listener other countries need to see."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)
    tls_cert: Path | None = None
    """This node's certificate (``keys/tls.crt``, written by ``ncpx init``), listed in the roster. With it the
    listener speaks mutual TLS and accepts only the roster's certificates; without it, plain HTTP (a closed
    test network only: signatures and sealing still protect every message, but not who may connect)."""
    tls_key: Path | None = None
    max_connections: int = Field(default=256, ge=1, le=65_536)
    """Open connections at a time; more are closed at once, so sockets cannot be exhausted."""

    def check(self) -> None:
        """Refuse half a TLS configuration rather than silently serving plain HTTP."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("[federation] needs both tls_cert and tls_key, or neither")


class OfficerListener(BaseModel):
    """Where this node's officers (API, CLI, console) and, on the coordinator, the dashboard reach it."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """Loopback by default; another address needs TLS (``tls_cert``) or ``plain_http``."""
    port: int = Field(default=8200, ge=0, le=65535)
    tls_cert: Path | None = None
    """Certificate for officers' browsers and clients (from the organisation's CA)."""
    tls_key: Path | None = None
    plain_http: bool = False
    """Allow plain HTTP on a non-loopback address: only where that address is itself private, such as inside a
    container whose port is published on the host's loopback alone."""
    trusted_proxies: list[IPvAnyAddress] = []
    """Reverse proxies (for TLS) whose ``X-Forwarded-For/-Proto/-Host`` headers are believed."""
    max_connections: int = Field(default=256, ge=1, le=65_536)

    def check(self) -> None:
        """Refuse an officer listener that would carry tokens and contents in clear off this machine."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("[officer] needs both tls_cert and tls_key, or neither")
        if self.tls_cert is None and not self.plain_http and not _loopback(self.host):
            raise ConfigError(
                f"the officer listener on {self.host} would carry tokens and message contents in clear: "
                "set [officer] tls_cert and tls_key, or listen on 127.0.0.1 behind a TLS reverse proxy"
            )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class NodeConfig(BaseModel):
    """Everything a node needs to run."""

    model_config = ConfigDict(extra="forbid")

    id: ParticipantId
    role: Literal["node", "coordinator"] = "node"
    """A country node exchanges enquiries; the coordinator only tallies metadata records."""
    coordinator_grace_s: float = Field(default=3600.0, gt=0)
    """Coordinator only: how long one side of an exchange may stay unconfirmed before it is flagged."""
    coordinator_verify_workers: int = Field(default=2, ge=0, le=64)
    """Coordinator only: processes that verify record batches in parallel (0: in the event loop)."""
    verify_workers: int = Field(default=2, ge=0, le=64)
    """Country node only: processes that check incoming envelopes (parsing, signatures, opening) beside the
    event loop, on the other cores (0: on a thread of the node's own process)."""
    coordinator_down_after_s: float = Field(default=90.0, gt=0)
    """Coordinator only: a node silent this long (no heartbeat, no records) is shown down; keep it above the
    nodes' ``delivery.heartbeat_s``."""
    federation: FederationListener = FederationListener()
    officer: OfficerListener = OfficerListener()
    data_dir: Path = Path()
    authority: str
    """The roster authority's public key, pinned at setup (``ncpx-authority:...``)."""
    roster_file: Path = Path("roster.json")
    """Where the operator drops a new signed roster; read at start and on every refresh."""
    passphrase_env: str | None = None
    """Name of the environment variable holding the key-file passphrase, if the key file has one."""
    limits: Limits = Limits()
    delivery: Delivery = Delivery()
    matching: Matching = Matching()
    retention: Retention = Retention()

    @property
    def skew(self) -> timedelta:
        """Accepted clock skew."""
        return timedelta(seconds=self.limits.clock_skew_s)

    @property
    def max_age(self) -> timedelta:
        """Oldest acceptable envelope."""
        return timedelta(seconds=self.limits.max_message_age_s)

    @property
    def database(self) -> Path:
        """The SQLite file."""
        return self.data_dir / "node.db"

    @property
    def keys_dir(self) -> Path:
        """Folder of ``identity.key`` and ``public.json``."""
        return self.data_dir / "keys"

    def passphrase(self) -> bytes | None:
        """The key-file passphrase from the named environment variable, if one is configured."""
        if not self.passphrase_env:
            return None
        value = os.environ.get(self.passphrase_env)
        if value is None:
            raise ConfigError(f"environment variable {self.passphrase_env} is not set")
        return value.encode("utf-8")


def load_config(path: Path) -> NodeConfig:
    """Read and validate a node configuration; relative paths resolve against the file's folder."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    try:
        config = NodeConfig.model_validate(raw)
        parse_authority_public(config.authority)
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"invalid configuration {path}: {exc}") from exc
    base = path.parent.resolve()
    data_dir = (base / config.data_dir).resolve()

    def resolved(listener: BaseModel) -> BaseModel:
        names = [n for n in ("tls_cert", "tls_key") if getattr(listener, n) is not None]
        return listener.model_copy(update={n: (data_dir / getattr(listener, n)).resolve() for n in names})

    config = config.model_copy(
        update={
            "data_dir": data_dir,
            "roster_file": (data_dir / config.roster_file).resolve(),
            "federation": resolved(config.federation),
            "officer": resolved(config.officer),
        }
    )
    config.federation.check()
    config.officer.check()
    return config


def write_config(path: Path, config: NodeConfig) -> None:
    """Write ``config`` as TOML (paths as given, relative ones stay relative)."""
    data = config.model_dump(mode="json", exclude_none=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
