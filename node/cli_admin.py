"""Operator and roster-authority commands: ``init``, ``keys``, ``roster``, ``officer``, ``node serve``."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from keys.authority import generate_authority, load_authority
from keys.identity import Identity, read_card
from keys.keyfile import write_secret_bytes
from keys.roster import (
    Role,
    Roster,
    RosterBody,
    add_participant,
    add_period,
    amend_period,
    authority_public_text,
    authority_roster,
    close_period,
    find_period,
    new_roster,
    parse_authority_public,
    parse_roster,
    revoke,
    rotate,
    set_matching_budget,
    sign_roster,
)
from keys.tls import TLS_CERT_FILE, TLS_KEY_FILE, make_tls_certificate
from node.cli_tables import grid
from node.config import (
    FederationListener,
    NodeConfig,
    OfficerListener,
    load_config,
    secret_from_environment,
    write_config,
)
from node.durations import parse_duration
from protocol.encoding import format_time, parse_time
from protocol.errors import ConfigError, KeyFileError, Malformed
from protocol.period import Period, period_from

LAB_DONE = "lab.done"
"""Written last by ``ncpx lab``: a setup without it stopped half way."""

out = Console()
_err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The node's node.toml", envvar="NCPX_CONFIG")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
PassEnv = Annotated[
    str | None, typer.Option("--passphrase-env", help="Environment variable holding the key-file passphrase")
]
AuthorityKey = Annotated[
    Path, typer.Option("--authority-key", help="The roster authority's private key file")
]
RosterOpt = Annotated[Path, typer.Option("--roster", help="Signed roster file to read and update")]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA zone the period is run in, e.g. Asia/Bangkok (default UTC)"),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _passphrase(env: str | None) -> bytes | None:
    if env is None:
        return None
    return secret_from_environment(env).encode()


def _authority_text(value: str) -> str:
    """An authority key given inline (``ncpx-authority:...``) or as the path of its ``.pub`` file."""
    if value.startswith("ncpx-authority:"):
        return value
    try:
        return Path(value).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read authority public key {value}") from exc


def register_admin(app: typer.Typer) -> None:
    """Attach the operator commands to ``app``."""
    keys_app = typer.Typer(help="A participant's own key material.", no_args_is_help=True)
    roster_app = typer.Typer(help="The roster authority's signed list of participants.", no_args_is_help=True)
    officer_app = typer.Typer(help="Officers of this node and their tokens.", no_args_is_help=True)
    node_app = typer.Typer(help="Run the node.", no_args_is_help=True)
    period_app = typer.Typer(help="Periods of Action, declared in the roster.", no_args_is_help=True)
    app.add_typer(period_app, name="period")
    app.add_typer(keys_app, name="keys")
    app.add_typer(roster_app, name="roster")
    app.add_typer(officer_app, name="officer")
    app.add_typer(node_app, name="node")

    @app.command("init")
    def init(
        participant: Annotated[str, typer.Option("--id", help="ISO 3166-1 alpha-2 code, or XI-ORG")],
        directory: Annotated[Path, typer.Option("--dir", help="Folder of the new node")],
        authority: Annotated[str, typer.Option("--authority", help="Authority public key or its .pub file")],
        port: Annotated[int, typer.Option("--port", help="Federation port (what peers call)")] = 8100,
        host: Annotated[str, typer.Option("--host", help="Federation address")] = "127.0.0.1",
        officer_port: Annotated[
            int, typer.Option("--officer-port", help="Officer API/dashboard port")
        ] = 8200,
        plain_federation: Annotated[
            bool, typer.Option("--plain-federation", help="No TLS between nodes (closed test networks only)")
        ] = False,
        role: Annotated[Role, typer.Option("--role", help="node (a country) or coordinator")] = Role.NODE,
        passphrase_env: PassEnv = None,
    ) -> None:
        """Create a node folder: identity keys (0600), node.toml, and the public card for the authority."""
        config_path = directory / "node.toml"
        if config_path.exists():
            raise ConfigError(f"{config_path} exists; refusing to overwrite a node")
        pinned = _authority_text(authority)
        parse_authority_public(pinned)
        identity = Identity.generate(participant)
        passphrase = _passphrase(passphrase_env)
        federation = FederationListener(host=host, port=port)
        if not plain_federation:
            make_tls_certificate(directory / "keys", identity.participant, _now(), passphrase)
            federation = federation.model_copy(
                update={"tls_cert": Path("keys") / TLS_CERT_FILE, "tls_key": Path("keys") / TLS_KEY_FILE}
            )
        identity.save(directory / "keys", passphrase)
        config = NodeConfig(
            id=identity.participant,
            federation=federation,
            officer=OfficerListener(port=officer_port),
            role=role.value,
            authority=pinned,
            passphrase_env=passphrase_env,
        )
        write_config(config_path, config)
        scheme = "http" if plain_federation else "https"
        out.print(f"node {identity.participant} created in {directory}")
        out.print(
            f"peers reach it at {scheme}://<this host>:{port}; officers at http://127.0.0.1:{officer_port}"
        )
        out.print(f"send {directory / 'keys' / 'public.json'} to the roster authority;")
        out.print(
            f"put the signed roster it returns at {directory / 'roster.json'}, then: ncpx node serve -c {config_path}"
        )

    @keys_app.command("generate")
    def keys_generate(
        participant: Annotated[str, typer.Option("--id", help="Participant id")],
        directory: Annotated[Path, typer.Option("--dir", help="Folder for identity.key and public.json")],
        passphrase_env: PassEnv = None,
    ) -> None:
        """Generate an identity: Ed25519 signing and X25519 encryption keys, file mode 0600."""
        if (directory / "identity.key").exists():
            raise KeyFileError(f"{directory / 'identity.key'} exists; use 'ncpx keys rotate'")
        identity = Identity.generate(participant)
        passphrase = _passphrase(passphrase_env)
        make_tls_certificate(directory, identity.participant, _now(), passphrase)
        identity.save(directory, passphrase)
        out.print(f"identity of {identity.participant} written to {directory} (public card: public.json)")

    @keys_app.command("rotate")
    def keys_rotate(
        directory: Annotated[Path, typer.Option("--dir", help="Folder holding identity.key")],
        passphrase_env: PassEnv = None,
        certificate: Annotated[
            bool,
            typer.Option("--certificate", help="Replace the TLS certificate instead of the message keys"),
        ] = False,
    ) -> None:
        """Add new keys (old ones are kept for the overlap); hand the new public.json to the authority."""
        passphrase = _passphrase(passphrase_env)
        identity = Identity.load(directory, passphrase)
        if certificate:
            make_tls_certificate(directory, identity.participant, _now(), passphrase)
            identity.write_card(directory)
            out.print(
                "new TLS certificate written; send public.json to the roster authority for 'ncpx roster rotate'. "
                "The running node presents it once it adopts the roster that lists it"
            )
            return
        identity.rotate()
        identity.save(directory, passphrase)
        out.print("new keys added; send public.json to the roster authority for 'ncpx roster rotate'")

    @roster_app.command("create")
    def roster_create(
        authority_key: AuthorityKey,
        out_path: Annotated[Path, typer.Option("--out", help="Where to write the signed roster")],
        passphrase_env: PassEnv = None,
    ) -> None:
        """Create the authority key (when missing) and version 1 of an empty roster."""
        passphrase = _passphrase(passphrase_env)
        if authority_key.exists():
            key = load_authority(authority_key, passphrase)
        else:
            key = generate_authority(authority_key, passphrase)
            out.print(f"authority key created: {authority_key} (keep it offline)")
        _write_roster(out_path, new_roster(key.public_key(), _now()), key)
        out.print(f"pin this on every node: {authority_public_text(key.public_key())}")

    @roster_app.command("add")
    def roster_add(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        card: Annotated[Path, typer.Option("--card", help="The participant's public.json")],
        url: Annotated[str, typer.Option("--url", help="Base URL peers reach it at")],
        role: Annotated[Role, typer.Option("--role")] = Role.NODE,
        name: Annotated[str, typer.Option("--name", help="Display name")] = "",
        passphrase_env: PassEnv = None,
    ) -> None:
        """Add a participant from its public card; bumps the version and re-signs."""
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        _write_roster(roster, add_participant(body, read_card(card), url, role, name, _now()), key)

    @roster_app.command("revoke")
    def roster_revoke(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        participant: Annotated[str, typer.Option("--participant")],
        kid: Annotated[str | None, typer.Option("--kid", help="Revoke one key only")] = None,
        passphrase_env: PassEnv = None,
    ) -> None:
        """Revoke a participant, or one of its keys; effective at once on every node that adopts it."""
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        _write_roster(roster, revoke(body, participant.upper(), kid, _now()), key)

    @roster_app.command("budget")
    def roster_budget(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        participant: Annotated[str, typer.Option("--participant")],
        items: Annotated[int, typer.Option("--items", help="Items it may ask about per day of each peer")],
        passphrase_env: PassEnv = None,
    ) -> None:
        """Set a participant's daily budget for private matching (what stops dictionary probing)."""
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        _write_roster(roster, set_matching_budget(body, participant.upper(), items, _now()), key)

    @roster_app.command("rotate")
    def roster_rotate(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        card: Annotated[Path, typer.Option("--card", help="The participant's new public.json")],
        overlap: Annotated[str, typer.Option("--overlap", help="How long old keys stay valid")] = "7d",
        url: Annotated[str | None, typer.Option("--url", help="New base URL, if it changes")] = None,
        passphrase_env: PassEnv = None,
    ) -> None:
        """Replace a participant's keys; the old ones stay valid for the overlap."""
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        _write_roster(roster, rotate(body, read_card(card), parse_duration(overlap), _now(), url), key)

    @roster_app.command("verify")
    def roster_verify(
        roster: RosterOpt,
        authority: Annotated[str, typer.Option("--authority", help="Pinned public key or its .pub file")],
    ) -> None:
        """Check the authority's signature on a roster file."""
        verified = Roster(
            parse_roster(roster.read_bytes()), parse_authority_public(_authority_text(authority))
        )
        out.print(
            f"roster version {verified.version}: signature valid, {len(verified.participants)} participants"
        )

    @roster_app.command("show")
    def roster_show(roster: RosterOpt, as_json: JsonOpt = False) -> None:
        """List the participants of a roster file (not verified: use 'verify' for that)."""
        signed = parse_roster(roster.read_bytes())
        if as_json:
            out.print_json(json.dumps(signed.roster.wire()))
            return
        table = grid(
            "id",
            "role",
            "name",
            "url",
            "status",
            "signing keys",
            "encryption keys",
            title=f"roster version {signed.roster.version}, issued {signed.roster.issued_at:%Y-%m-%d %H:%M}Z",
        )
        for p in signed.roster.participants:
            table.add_row(
                p.id,
                p.role.value,
                p.name,
                p.url,
                p.status.value,
                "\n".join(f"{k.kid} ({k.status.value})" for k in p.signing_keys),
                "\n".join(f"{k.kid} ({k.status.value})" for k in p.encryption_keys),
            )
        out.print(table)

    @period_app.command("create")
    def period_create(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        name: Annotated[str, typer.Option("--name", help="Short name, e.g. jpa-2015")],
        start: Annotated[str, typer.Option("--start", help="RFC 3339, e.g. 2015-09-28T00:00:00+07:00")],
        end: Annotated[
            str, typer.Option("--end", help="RFC 3339, exclusive: the first moment after the period")
        ],
        participants: Annotated[
            str, typer.Option("--participants", help="Comma-separated ids, e.g. AU,ID,MY")
        ],
        coordinator: Annotated[str, typer.Option("--coordinator", help="The coordinator's participant id")],
        title: Annotated[str, typer.Option("--title", help="Display title")] = "",
        timezone: TimezoneOpt = None,
        historical: Annotated[
            bool, typer.Option("--historical", help="Declare a period that is already over, to replay it")
        ] = False,
        passphrase_env: PassEnv = None,
    ) -> None:
        """Declare a new Period of Action in the roster (signed by the authority, distributed with it)."""
        period = period_from(
            {
                "name": name,
                "title": title,
                "start": parse_time(start),
                "end": parse_time(end),
                "participants": _ids(participants),
                "coordinator": coordinator,
                "timezone": timezone,
            }
        )
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        now = _now()
        updated = add_period(body, period, now, historical)
        if period.end <= now:
            _err.print(
                f"warning: {period.name} ended on {_when(period, period.end)}; declared as historical, it shows "
                "only what is imported for it (returns and records), for replaying a past period"
            )
        _write_roster(roster, updated, key)
        _log_period(roster, updated, "create", None, period)

    @period_app.command("amend")
    def period_amend(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        name: Annotated[str, typer.Option("--name", help="The period to change")],
        start: Annotated[str | None, typer.Option("--start", help="New start, RFC 3339")] = None,
        end: Annotated[str | None, typer.Option("--end", help="New end, RFC 3339 (exclusive)")] = None,
        participants: Annotated[
            str | None, typer.Option("--participants", help="The new full list, comma-separated")
        ] = None,
        title: Annotated[str | None, typer.Option("--title", help="New display title")] = None,
        timezone: TimezoneOpt = None,
        passphrase_env: PassEnv = None,
    ) -> None:
        """Change a period's dates, participants, zone or title: a new roster version, logged beside the roster."""
        changes: dict[str, Any] = {
            field: value
            for field, value in (
                ("start", parse_time(start) if start else None),
                ("end", parse_time(end) if end else None),
                ("participants", _ids(participants) if participants else None),
                ("title", title),
                ("timezone", timezone),
            )
            if value is not None
        }
        if not changes:
            raise Malformed(
                "nothing to amend: give at least one of --start, --end, --participants, --title, --timezone"
            )
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        before = find_period(body, name)
        updated = amend_period(body, name, changes, _now())
        _write_roster(roster, updated, key)
        _log_period(roster, updated, "amend", before, find_period(updated, name))

    @period_app.command("close")
    def period_close(
        roster: RosterOpt,
        authority_key: AuthorityKey,
        name: Annotated[str, typer.Option("--name", help="The period to end now")],
        passphrase_env: PassEnv = None,
    ) -> None:
        """End a running period now, before its declared end."""
        key, body = _authority_and_roster(authority_key, passphrase_env, roster)
        before = find_period(body, name)
        updated = close_period(body, name, _now())
        _write_roster(roster, updated, key)
        _log_period(roster, updated, "close", before, find_period(updated, name))

    @period_app.command("list")
    def period_list(roster: RosterOpt, as_json: JsonOpt = False) -> None:
        """The periods a roster file declares, with their dates in their own zone (not verified: see 'roster verify')."""
        periods = parse_roster(roster.read_bytes()).roster.periods or []
        if as_json:
            out.print_json(json.dumps([p.wire() for p in periods]))
            return
        if not periods:
            out.print("none")
            return
        now = _now()
        table = grid(
            "name", "title", "from", "until (exclusive)", "zone", "participants", "coordinator", "state"
        )
        for p in periods:
            state = "upcoming" if now < p.start else "over" if now >= p.end else "running"
            table.add_row(
                p.name,
                p.title,
                _when(p, p.start),
                _when(p, p.end),
                p.zone_name,
                ",".join(p.participants),
                p.coordinator,
                state,
            )
        out.print(table)

    @officer_app.command("add")
    def officer_add(name: Annotated[str, typer.Argument(help="Officer's name")], config: ConfigOpt) -> None:
        """Create an officer and print its token (shown once, stored hashed)."""
        token = asyncio.run(_officers(load_config(config), "add", name))
        out.print(token, highlight=False, soft_wrap=True)

    @officer_app.command("revoke")
    def officer_revoke(name: Annotated[str, typer.Argument()], config: ConfigOpt) -> None:
        """Withdraw an officer's token at once."""
        asyncio.run(_officers(load_config(config), "revoke", name))
        out.print(f"officer {name} revoked")

    @officer_app.command("list")
    def officer_list(config: ConfigOpt) -> None:
        """Officers of this node."""
        asyncio.run(_officers(load_config(config), "list", ""))

    @app.command("lab")
    def lab(
        root: Annotated[Path, typer.Option("--root", help="Folder for the authority and every node folder")],
        ids: Annotated[str, typer.Option("--ids", help="Comma-separated participant ids, e.g. TH,MY,ID")],
        url_template: Annotated[
            str, typer.Option("--url-template", help="Peer URL of each node; {id} is its lower-case id")
        ] = "https://ncpx-{id}:8100",
        host: Annotated[str, typer.Option("--host", help="Address each node listens on")] = "0.0.0.0",  # noqa: S104 - containers
        port: Annotated[int, typer.Option("--port", help="Federation port of each node")] = 8100,
        officer_port: Annotated[int, typer.Option("--officer-port", help="Officer port of each node")] = 8200,
        coordinator: Annotated[
            str | None, typer.Option("--coordinator", help="Also set up this participant as the coordinator")
        ] = None,
        period: Annotated[
            str | None, typer.Option("--period", help="Declare a 30-day Period of Action starting yesterday")
        ] = None,
        secrets_dir: Annotated[
            Path | None,
            typer.Option(
                "--secrets",
                help="Write each node's key passphrase (its keys are then encrypted) and officer token here, "
                "as <id>.passphrase and <id>.officer-token, instead of the token in the node folder",
            ),
        ] = None,
        owner: Annotated[
            str | None,
            typer.Option("--owner", help="uid:gid to hand every file to when run as root (containers' user)"),
        ] = None,
    ) -> None:
        """Set up a whole multi-country exchange in one folder (authority, nodes, roster, officer tokens).

        For trying ncpx out with docker-compose; a real deployment has one authority and one operator per
        country, each running 'ncpx init' on its own machine. Run again, it leaves a finished setup as it is.
        """
        from node.topology import PASSPHRASE_ENV, Topology

        done = root / "authority" / LAB_DONE
        if done.exists():
            out.print(f"{root} is already set up; leaving it as it is")
            return
        if any((root / "authority").glob("*")):
            raise ConfigError(
                f"an earlier setup of {root} stopped before it finished; remove {root / 'authority'} and the "
                "node folders (or the compose volumes) and run it again"
            )
        members = [i.strip().upper() for i in ids.split(",") if i.strip()]
        chosen = coordinator.upper() if coordinator else None
        if chosen:
            members.append(chosen)
        passphrases = {pid: secrets.token_urlsafe(32) for pid in members} if secrets_dir else None
        # Inside a container the officer listener must bind every address for the published port to reach it;
        # compose publishes it on the host's loopback alone, which is what makes plain HTTP acceptable here.
        officer = {"officer": {"host": host, "plain_http": True}}
        topology = Topology(
            root,
            members,
            officer,
            host=host,
            port=port,
            officer_port=officer_port,
            url_template=url_template,
            coordinator=chosen,
            passphrases=passphrases,
        )
        topology.create()
        if period:
            if not chosen:
                raise ConfigError("a period needs --coordinator")
            now = _now()
            topology.declare_period(
                period, format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29))
            )
        written = [root / "authority"]
        for node in topology.nodes.values():
            if secrets_dir is None:
                token_file = node.folder / "officer.token"
            else:
                token_file = secrets_dir / f"{node.id}.officer-token"
                write_secret_bytes(secrets_dir / f"{node.id}.passphrase", node.env[PASSPHRASE_ENV].encode())
            write_secret_bytes(token_file, node.token.encode() + b"\n")
            written.append(node.folder)
            out.print(f"{node.id}: {node.url}  officer token in {token_file}")
        if secrets_dir is not None:
            written.append(secrets_dir)
        done.write_text(format_time(_now()) + "\n", encoding="utf-8")
        if owner is not None and os.geteuid() == 0:
            _hand_over(written, owner)

    @node_app.command("serve")
    def node_serve(config: ConfigOpt) -> None:
        """Run the node (federation and officer API) until interrupted."""
        from node import logs
        from node.server import serve

        loaded = load_config(config)
        logs.configure(logs.level_of(loaded.log_level))
        serve(loaded, lambda: load_config(config))


def _authority_and_roster(
    authority_key: Path, passphrase_env: str | None, path: Path
) -> tuple[Ed25519PrivateKey, RosterBody]:
    """The key an edit signs with and the roster body it edits, refused unless that key signed the file."""
    key = load_authority(authority_key, _passphrase(passphrase_env))
    return key, authority_roster(path.read_bytes(), key)


def _hand_over(folders: list[Path], owner: str) -> None:
    """Give every file under ``folders`` to ``owner`` (uid:gid): the lab runs as root only to write into fresh
    volumes, which the engine creates owned by root, while the nodes run as an unprivileged user."""
    try:
        uid, gid = (int(part) for part in owner.split(":"))
    except ValueError as exc:
        raise ConfigError(f"--owner {owner} is not uid:gid, e.g. 10001:10001") from exc
    for folder in folders:
        os.chown(folder, uid, gid)
        for path in folder.rglob("*"):
            os.chown(path, uid, gid, follow_symlinks=False)


def _ids(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _when(period: Period, moment: datetime) -> str:
    """A period's instant as its secretariat reads it: local time in the period's zone, with the offset."""
    return period.local(moment).strftime("%Y-%m-%d %H:%M %z")


def _log_period(path: Path, body: RosterBody, action: str, before: Period | None, after: Period) -> None:
    """Print what changed and append it to the roster's history file, so that every change to a period's dates
    or participants can be traced to a roster version after the roster itself has been overwritten."""
    changed = {
        field: [before.wire().get(field) if before else None, value]
        for field, value in after.wire().items()
        if before is None or before.wire().get(field) != value
    }
    for field, (old, new) in changed.items():
        if before is not None:
            out.print(f"{after.name}: {field} {old} -> {new}", highlight=False)
    entry = {
        "version": body.version,
        "at": format_time(body.issued_at),
        "action": action,
        "period": after.name,
    }
    entry["changes"] = {field: new for field, (_, new) in changed.items()}
    with path.with_name(path.name + ".history").open("a", encoding="utf-8") as history:
        history.write(json.dumps(entry, sort_keys=True) + "\n")


def _write_roster(path: Path, body: RosterBody, key: Ed25519PrivateKey) -> None:
    signed = sign_roster(body, key)
    write_secret_bytes(path, signed.to_bytes())
    path.chmod(0o644)  # a roster is public: every node and operator reads it
    out.print(f"roster version {body.version} written to {path}")


async def _officers(config: NodeConfig, action: str, name: str) -> str:
    from node.storage.database import Database
    from node.storage.officers import Officers

    db = await Database.open(config.database)
    try:
        officers = Officers(db)
        if action == "add":
            return await officers.add(name, _now())
        if action == "revoke":
            await officers.revoke(name, _now())
        else:
            table = grid("officer", "created", "revoked")
            for officer, created, revoked in await officers.names():
                table.add_row(officer, created, revoked or "")
            out.print(table)
        return ""
    finally:
        await db.close()
