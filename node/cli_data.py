"""Operator commands for a node's data: ``backup``, ``restore``, ``purge``; and ``audit`` for its people.

``backup`` and ``purge`` work beside a running node (SQLite's online backup; the purge is one writer among
the node's, serialised by SQLite's lock). ``restore`` is for a stopped node, into a fresh folder; the node
then re-syncs from its peers at its next start (:mod:`node.resync`). ``audit`` reads the trail through the
officer API, like every officer command.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from node import retention
from node.backup import Manifest, restore_backup, take_backup
from node.cli_admin import ConfigOpt, _passphrase
from node.cli_officer import JsonOpt, NodeOpt, TokenOpt, _local
from node.cli_tables import WideOpt, emit, grid
from node.client import Client
from node.config import NodeConfig, load_config
from node.durations import parse_duration
from node.storage.database import Database
from node.storage.officers import Officers
from node.storage.resync import ResyncStore
from node.storage.retention import Purgeable
from protocol.encoding import format_time

out = Console()

BackupPass = Annotated[
    str,
    typer.Option(
        "--passphrase-env", help="Environment variable holding the passphrase the keys are sealed under"
    ),
]


PASSPHRASE_ENV = "NCPX_BACKUP_PASSPHRASE"  # noqa: S105 - the name of a variable, not its value
"""Where the backup passphrase is read from unless ``--passphrase-env`` names another variable."""


def _now() -> datetime:
    return datetime.now(UTC)


def _print_manifest(manifest: Manifest, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(manifest.wire()))
        return
    keys = "keys sealed under the passphrase" if manifest.keys else "no keys"
    out.print(
        f"{manifest.node}: database at schema {manifest.schema_version}, {keys}; "
        f"recovery point {format_time(manifest.taken_at)}",
        highlight=False,
    )


async def _after_restore(config: NodeConfig, manifest: Manifest) -> None:
    """Open the restored file (migrating it if it is older), plan the re-sync, and audit the restore."""
    db = await Database.open(config.database)
    try:
        # Anything the peers hold from a little before the backup: clocks differ by up to the accepted skew.
        await ResyncStore(db).plan(manifest.taken_at - config.skew)
        await Officers(db).audit(
            "operator", "restore", format_time(manifest.taken_at), "ok: re-sync planned", _now()
        )
    finally:
        await db.close()


async def _purge(config: NodeConfig, dry_run: bool) -> Purgeable:
    db = await Database.open(config.database)
    try:
        return await retention.purge(db, config.retention, _now(), "operator", dry_run)
    finally:
        await db.close()


def register_data(app: typer.Typer) -> None:
    """Attach the data commands to ``app``."""

    @app.command("backup")
    def backup(
        config: ConfigOpt,
        out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the backup")],
        with_keys: Annotated[
            bool, typer.Option("--with-keys", help="Include the key folder, sealed under a passphrase")
        ] = False,
        passphrase_env: BackupPass = PASSPHRASE_ENV,
        as_json: JsonOpt = False,
    ) -> None:
        """Back up a node's database (while it runs) with a manifest; with --with-keys, its keys sealed."""
        passphrase = _passphrase(passphrase_env) if with_keys else None
        manifest = take_backup(load_config(config), out_dir, _now(), passphrase)
        _print_manifest(manifest, as_json)

    @app.command("restore")
    def restore(
        config: ConfigOpt,
        source: Annotated[Path, typer.Option("--from", help="The backup folder")],
        force: Annotated[
            bool, typer.Option("--force", help="Replace a database (and keys) that already hold data")
        ] = False,
        passphrase_env: BackupPass = PASSPHRASE_ENV,
        as_json: JsonOpt = False,
    ) -> None:
        """Restore a backup into a stopped node's folder; the node re-syncs from its peers when it starts."""
        loaded = load_config(config)
        passphrase = _passphrase(passphrase_env) if _wants_keys(source) else None
        manifest = restore_backup(loaded, source, passphrase, force)
        asyncio.run(_after_restore(loaded, manifest))
        _print_manifest(manifest, as_json)
        if not as_json:
            out.print("start the node: it asks its peers for what they hold for it since the recovery point")

    @app.command("purge")
    def purge(
        config: ConfigOpt,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be purged")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Purge the bodies of messages older than retention.messages_days now (audited); metadata stays."""
        loaded = load_config(config)
        if loaded.retention.messages_days is None:
            out.print("no retention.messages_days in the configuration: nothing is ever purged")
            return
        done = asyncio.run(_purge(loaded, dry_run))
        if as_json:
            out.print_json(json.dumps({"dry_run": dry_run, "messages": done.messages, "bytes": done.bytes}))
            return
        verb = "would purge" if dry_run else "purged"
        out.print(
            f"{verb} the bodies of {done.messages} message(s) ({done.bytes} bytes) older than "
            f"{loaded.retention.messages_days} days"
        )

    @app.command("audit")
    def audit(
        node: NodeOpt,
        token: TokenOpt,
        officer: Annotated[str | None, typer.Option("--officer", help="Only this actor")] = None,
        action: Annotated[
            str | None, typer.Option("--action", help="Only this action, e.g. open_message")
        ] = None,
        since: Annotated[
            str | None, typer.Option("--since", help="From this time (RFC 3339) or age (7d)")
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="Before this time (RFC 3339) or age")
        ] = None,
        limit: Annotated[int, typer.Option("--limit", help="At most this many entries")] = 100,
        wide: WideOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """The node's audit trail, newest first: who did what, when (never what a message said)."""
        client = Client(node, token)
        query = {"officer": officer, "action": action, "since": _when(since), "until": _when(until)}
        entries: list[dict[str, object]] = []
        before: int | None = None
        while len(entries) < limit:
            page = client.json(
                "GET",
                "/v1/audit",
                query={**query, "limit": min(limit - len(entries), 1000), "before": before},
            )
            entries.extend(page["entries"])
            before = page["next"]
            if before is None:
                break
        if as_json:
            out.print_json(json.dumps(entries))
            return
        table = grid("at", "actor", "action", "target", "outcome")
        for entry in entries:
            table.add_row(
                _local(str(entry["at"])),
                str(entry["actor"]),
                str(entry["action"]),
                str(entry["target"] or ""),
                str(entry["outcome"]),
            )
        emit(out, table, wide)


def _wants_keys(source: Path) -> bool:
    """Whether a backup folder holds sealed keys (only then is a passphrase needed to restore it)."""
    return (source / "keys.sealed").exists()


def _when(text: str | None) -> str | None:
    """An RFC 3339 time as given, or an age such as ``7d`` or ``12h`` counted back from now."""
    if text is None or "T" in text:
        return text
    return format_time(_now() - parse_duration(text))
