"""Node configuration: one TOML file per node, written by ``ncpx init`` and read by ``ncpx node serve``,
overridden by ``NCPX_*`` environment variables and secret files (twelve-factor, for containers).

Paths are relative to the TOML file's own folder (also paths given in the environment), so a node's folder can
be moved or mounted into a container as a whole. Precedence: environment variable, then secret file
(``NCPX_<NAME>_FILE``), then ``node.toml``, then the default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal, get_args

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, SecretStr, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from keys.roster import parse_authority_public
from protocol.errors import ConfigError, Malformed
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
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    """Bearer token a Prometheus scrape of ``/metrics`` must present; without one only this machine may scrape."""

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
    coordinator_database_url: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    """Coordinator only: keep the coordinator's tables in this PostgreSQL database (a libpq URL,
    ``postgresql://user:password@host:5432/ncpx``) instead of the node's SQLite file; the environment variable
    ``NCPX_COORDINATOR_DATABASE_URL`` overrides it, so the password need not be written in the file."""
    federation: FederationListener = FederationListener()
    officer: OfficerListener = OfficerListener()
    data_dir: Path = Path()
    authority: str
    """The roster authority's public key, pinned at setup (``ncpx-authority:...``)."""
    roster_file: Path = Path("roster.json")
    """Where the operator drops a new signed roster; read at start and on every refresh."""
    passphrase_env: str | None = None
    """Name of the environment variable holding the key-file passphrase, if the key file has one."""
    passphrase: SecretStr | None = None
    """The key-file passphrase itself: from ``NCPX_PASSPHRASE`` or, better (``docker inspect`` does not show
    it), from the file ``NCPX_PASSPHRASE_FILE`` names, such as a Docker secret in ``/run/secrets``. Never in
    ``node.toml``, which sits beside the key file it would unlock."""
    limits: Limits = Limits()
    delivery: Delivery = Delivery()
    matching: Matching = Matching()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """How much ``ncpx node serve`` logs (``NCPX_LOG_LEVEL`` overrides it for one run)."""
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

    def key_passphrase(self) -> bytes | None:
        """The key-file passphrase: ``passphrase`` (environment or secret file) first, else the environment
        variable ``passphrase_env`` names, else none."""
        if self.passphrase is not None:
            return self.passphrase.get_secret_value().encode("utf-8")
        if not self.passphrase_env:
            return None
        return secret_from_environment(self.passphrase_env).encode("utf-8")


def secret_from_environment(name: str) -> str:
    """The value of environment variable ``name``, or else the contents of the file ``{name}_FILE`` names: how
    Docker and Kubernetes hand over secrets, as files that ``docker inspect`` does not show."""
    value = os.environ.get(name)
    if value is not None:
        return value
    file = os.environ.get(f"{name}_FILE")
    if file is None:
        raise ConfigError(
            f"environment variable {name} is not set, nor {name}_FILE naming a file that holds it"
        )
    try:
        return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {name}_FILE {file}: {exc.strerror}; check the path and its owner"
        ) from exc


DATABASE_URL_ENV = "NCPX_COORDINATOR_DATABASE_URL"
"""Overrides ``coordinator_database_url`` (a URL with a password belongs in the environment, not the file)."""


ENV_PREFIX = "NCPX_"
NESTED = "__"
SECRET_FILE_SUFFIX = "_FILE"  # noqa: S105 - the suffix of a variable naming a file, not a secret

RELOADABLE = frozenset(
    {
        "log_level",
        "limits.max_attachment_bytes",
        "limits.body_timeout_s",
        "limits.peer_stored_bytes",
        "limits.clock_skew_s",
        "limits.max_message_age_s",
    }
)
"""Settings a running node takes up on SIGHUP: read from its configuration at each request. The others are
built into listeners, sockets, pools and schedules when the node starts, and change at its next restart."""


class _Environment(BaseSettings, NodeConfig):
    """NodeConfig as pydantic-settings sees it, only to read ``NCPX_*`` variables (never instantiated)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, case_sensitive=False, extra="forbid"
    )


Setting = tuple[str, ...]
"""A setting's place in the configuration, e.g. ``("federation", "port")``."""


@dataclass(frozen=True)
class Settings:
    """An effective configuration and, for each setting not left at its default, where its value came from."""

    config: NodeConfig
    sources: dict[str, str]

    def shown(self) -> dict[str, tuple[Any, str]]:
        """Each setting's value as JSON (secrets masked) and where it came from: an ``NCPX_*`` variable, the
        TOML file, or ``default``."""
        values = _leaves(self.config.model_dump(mode="json"))
        return {".".join(s): (v, self.sources.get(".".join(s), "default")) for s, v in values.items()}


def _secret_settings(model: type[BaseModel], prefix: Setting = ()) -> list[Setting]:
    """Every secret setting (a ``SecretStr``), which may come from a file and never from ``node.toml``."""
    found: list[Setting] = []
    for name, field in model.model_fields.items():
        kinds = get_args(field.annotation) or (field.annotation,)
        if SecretStr in kinds:
            found.append((*prefix, name))
        found += [
            setting
            for kind in kinds
            if isinstance(kind, type) and issubclass(kind, BaseModel)
            for setting in _secret_settings(kind, (*prefix, name))
        ]
    return found


def env_name(setting: Setting) -> str:
    """The environment variable of a setting: ``NCPX_FEDERATION__PORT``."""
    return ENV_PREFIX + NESTED.join(setting).upper()


def _leaves(values: dict[str, Any], prefix: Setting = ()) -> dict[Setting, Any]:
    flat: dict[Setting, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_leaves(value, (*prefix, key)))
        else:
            flat[(*prefix, key)] = value
    return flat


def _nest(flat: dict[Setting, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for setting, value in flat.items():
        branch = nested
        for key in setting[:-1]:
            branch = branch.setdefault(key, {})
        branch[setting[-1]] = value
    return nested


def _secret_files(environ: dict[str, str]) -> dict[Setting, tuple[str, str]]:
    """Secrets read from the files ``NCPX_<NAME>_FILE`` names, with that variable's name."""
    found: dict[Setting, tuple[str, str]] = {}
    for setting in _secret_settings(NodeConfig):
        variable = env_name(setting) + SECRET_FILE_SUFFIX
        file = environ.get(variable)
        if file is None:
            continue
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable text"
            raise ConfigError(f"cannot read the secret file {file} named by {variable} ({reason})") from exc
        found[setting] = (text.removesuffix("\n").removesuffix("\r"), variable)
    return found


def _from_environment(environ: dict[str, str]) -> dict[Setting, tuple[Any, str]]:
    """``NCPX_*`` variables, nested with ``__`` (a whole section may also be given as JSON)."""
    try:
        values = EnvSettingsSource(
            _Environment,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=NESTED,
            case_sensitive=False,
            env_ignore_empty=True,  # compose passes a variable the operator left unset as empty
        )()
    except SettingsError as exc:
        section = str(exc).split('"')[1] if '"' in str(exc) else ""
        raise ConfigError(
            f"environment variable {env_name((section,))} is not valid JSON: correct or unset it"
        ) from exc
    upper = {name.upper() for name in environ}
    found: dict[Setting, tuple[Any, str]] = {}
    for setting, value in _leaves(values).items():
        given = next(
            (env_name(setting[:n]) for n in range(len(setting), 0, -1) if env_name(setting[:n]) in upper),
            env_name(setting),
        )
        found[setting] = (value, given)
    return found


def _sentence(error: ErrorDetails, path: Path, sources: dict[str, str]) -> str:
    """One pydantic error as one sentence that names the setting and where it was given."""
    setting = tuple(str(part) for part in error["loc"])
    name = ".".join(setting)
    origin = next(
        (
            sources[".".join(setting[:n])]
            for n in range(len(setting), 0, -1)
            if ".".join(setting[:n]) in sources
        ),
        str(path),
    )
    where = f"environment variable {origin}" if origin.startswith(ENV_PREFIX) else origin
    reason = error["msg"].removeprefix("Value error, ")
    reason = reason[:1].lower() + reason[1:]
    if error["type"] == "missing":
        return f"the setting {name} is missing: set it in {path} or in {env_name(setting)}"
    if error["type"] == "extra_forbidden":
        return f"{where} sets {name}, which is not a setting of ncpx: remove it or correct its name"
    return f"{where} gives {name} an invalid value ({reason}): correct it"


def load_settings(path: Path) -> Settings:
    """Read ``node.toml``, apply secret files and ``NCPX_*`` variables over it, and validate the result;
    relative paths resolve against the TOML file's folder. Every refusal is one sentence naming the setting
    and where it was given, never a dump of the validator's report."""
    env = dict(os.environ)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    toml = _leaves(raw)
    for setting in _secret_settings(NodeConfig):
        if setting in toml:
            raise ConfigError(
                f"{path} must not hold {'.'.join(setting)}, since it sits beside what it protects: "
                f"give it in the file {env_name(setting)}{SECRET_FILE_SUFFIX} names (a Docker secret)"
            )
    merged = dict(toml)
    sources = {".".join(setting): str(path) for setting in toml}
    for layer in (_secret_files(env), _from_environment(env)):
        for setting, (value, origin) in layer.items():
            merged = {s: v for s, v in merged.items() if s[: len(setting)] != setting}
            merged[setting] = value
            sources = {k: v for k, v in sources.items() if not k.startswith(".".join(setting) + ".")}
            sources[".".join(setting)] = origin
    try:
        config = NodeConfig.model_validate(_nest(merged))
    except ValidationError as exc:
        raise ConfigError(_sentence(exc.errors()[0], path, sources)) from exc
    except Malformed as exc:  # the participant id's own check, which pydantic lets through unwrapped
        raise ConfigError(f"the id in {sources.get('id', path)} is not valid: {exc.detail}") from exc
    try:
        parse_authority_public(config.authority)
    except ValueError as exc:
        raise ConfigError(
            f"the authority key in {sources.get('authority', path)} is not a valid ncpx-authority key: "
            "copy it again from the roster authority's .pub file"
        ) from exc
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
    return Settings(config, sources)


def load_config(path: Path) -> NodeConfig:
    """The effective configuration of the node whose ``node.toml`` is ``path`` (see :func:`load_settings`)."""
    return load_settings(path).config


def reloaded(current: NodeConfig, new: NodeConfig) -> tuple[NodeConfig, list[str], list[str]]:
    """What a running node adopts from ``new``: the configuration to run with, the settings taken up, and the
    settings that changed but wait for a restart."""
    before, after = _leaves(current.model_dump()), _leaves(new.model_dump())
    changed = sorted(".".join(s) for s in before.keys() | after.keys() if before.get(s) != after.get(s))
    live = [name for name in changed if name in RELOADABLE]
    adopted = {**before, **{s: after[s] for s in after if ".".join(s) in live}}
    return (
        NodeConfig.model_validate(_nest(adopted)),
        live,
        [name for name in changed if name not in RELOADABLE],
    )


def write_config(path: Path, config: NodeConfig) -> None:
    """Write ``config`` as TOML (paths as given, relative ones stay relative)."""
    data = config.model_dump(
        mode="json", exclude_none=True, exclude=_nest(dict.fromkeys(_secret_settings(NodeConfig), True))
    )
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
