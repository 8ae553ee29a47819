"""Node configuration: one TOML file per node, written by ``ncpx init`` and read by ``ncpx node serve``.

Paths in the file are relative to the file's own folder, so a node's folder can be moved or mounted into a
container as a whole.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keys.roster import parse_authority_public
from protocol.errors import ConfigError
from protocol.models import ParticipantId

MiB = 1024 * 1024


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
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8100, ge=0, le=65535)
    data_dir: Path = Path()
    authority: str
    """The roster authority's public key, pinned at setup (``ncpx-authority:...``)."""
    roster_file: Path = Path("roster.json")
    """Where the operator drops a new signed roster; read at start and on every refresh."""
    passphrase_env: str | None = None
    """Name of the environment variable holding the key-file passphrase, if the key file has one."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    peer_ca_file: Path | None = None
    """CA bundle to verify peers' TLS certificates with (system CAs when unset)."""
    limits: Limits = Limits()
    delivery: Delivery = Delivery()

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
    updates: dict[str, Any] = {"data_dir": (base / config.data_dir).resolve()}
    for name in ("roster_file", "tls_cert", "tls_key", "peer_ca_file"):
        value = getattr(config, name)
        if value is not None:
            updates[name] = (updates["data_dir"] / value).resolve()
    return config.model_copy(update=updates)


def write_config(path: Path, config: NodeConfig) -> None:
    """Write ``config`` as TOML (paths as given, relative ones stay relative)."""
    data = config.model_dump(mode="json", exclude_none=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
