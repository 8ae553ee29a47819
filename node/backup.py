"""Backups of a node's folder: an online copy of its database, a manifest, and optionally its keys, sealed.

The database is copied with SQLite's online backup, from a connection of its own: it reads one consistent
snapshot of the file and its write-ahead log while the node goes on writing (a plain file copy of ``node.db``
misses every commit still in the WAL). The manifest says whose it is, when it was taken (the recovery point)
and which schema it has, with the copy's digest so that a damaged or altered copy is not restored.

Keys are only included when asked, sealed under a passphrase by :func:`keys.keyfile.write_private` (Argon2id
and SecretBox, as a key file is): a backup store then never holds a usable identity.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from keys.keyfile import read_private, write_private, write_secret_bytes
from node.config import NodeConfig
from node.storage.database import copy_database, holds_data
from protocol.encoding import b64d, b64e, format_time, parse_time
from protocol.errors import BackupUnusable, ConfigError, RestoreRefused

FORMAT = "ncpx-backup-1"
DATABASE = "node.db"
MANIFEST = "manifest.json"
KEYS = "keys.sealed"


@dataclass(frozen=True)
class Manifest:
    """What a backup folder holds."""

    node: str
    role: str
    taken_at: datetime
    """Every commit made before this time is in the copy: the recovery point."""
    schema_version: int
    sha256: str
    keys: bool

    def wire(self) -> dict[str, Any]:
        """The manifest as written (and printed by the commands)."""
        return {
            "format": FORMAT,
            "node": self.node,
            "role": self.role,
            "taken_at": format_time(self.taken_at),
            "schema_version": self.schema_version,
            "database": DATABASE,
            "sha256": self.sha256,
            "keys": KEYS if self.keys else None,
        }


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def take_backup(config: NodeConfig, out: Path, now: datetime, passphrase: bytes | None) -> Manifest:
    """Back up the node of ``config`` into the new or empty folder ``out``; its keys too when a passphrase is
    given to seal them under."""
    if not config.database.exists():
        raise ConfigError(f"there is no database at {config.database}: check --config")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty: back up into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    version = copy_database(config.database, out / DATABASE)
    if passphrase is not None:
        files = {p.name: b64e(p.read_bytes()) for p in sorted(config.keys_dir.iterdir()) if p.is_file()}
        write_private(out / KEYS, {"node": config.id, "files": files}, passphrase)
    manifest = Manifest(config.id, config.role, now, version, _digest(out / DATABASE), passphrase is not None)
    (out / MANIFEST).write_text(json.dumps(manifest.wire(), indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a backup folder, checked against the database beside it."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(data.get("format"))
        manifest = Manifest(
            str(data["node"]),
            str(data["role"]),
            parse_time(data["taken_at"]),
            int(data["schema_version"]),
            str(data["sha256"]),
            data.get("keys") is not None,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupUnusable(
            f"{folder} has no readable ncpx backup manifest: name the folder a backup made"
        ) from exc
    if not (folder / DATABASE).is_file() or _digest(folder / DATABASE) != manifest.sha256:
        raise BackupUnusable(
            f"the database in {folder} is missing or differs from what its manifest records: use another backup"
        )
    return manifest


def restore_backup(config: NodeConfig, folder: Path, passphrase: bytes | None, force: bool) -> Manifest:
    """Put the backup in ``folder`` in place for the node of ``config`` (which must not be running).

    Refused when the backup is another node's, or when the database (or, for the keys, the key folder) in place
    already holds data, unless ``force``. The keys are restored when the backup has them and ``passphrase``
    opens them; they are unsealed before anything is replaced, so a wrong passphrase changes nothing.
    """
    manifest = read_manifest(folder)
    if manifest.node != config.id or manifest.role != config.role:
        raise RestoreRefused(
            f"this backup is of {manifest.node} ({manifest.role}), not of {config.id} ({config.role}): "
            "restore it with that node's configuration"
        )
    if holds_data(config.database) and not force:
        raise RestoreRefused(
            f"{config.database} already holds data: restore into a fresh folder, or add --force to replace it"
        )
    files: dict[str, bytes] = {}
    if manifest.keys and passphrase is not None:
        sealed = read_private(folder / KEYS, passphrase)
        files = {name: b64d(text) for name, text in sealed["files"].items()}
        if (config.keys_dir / "identity.key").exists() and not force:
            raise RestoreRefused(
                f"{config.keys_dir} already holds keys: restore into a fresh folder, or add --force to replace them"
            )
    config.database.parent.mkdir(parents=True, exist_ok=True)
    for stale in ("-wal", "-shm"):
        config.database.with_name(config.database.name + stale).unlink(missing_ok=True)
    partial = config.database.with_name(config.database.name + ".partial")
    shutil.copyfile(folder / DATABASE, partial)
    partial.chmod(0o600)
    partial.replace(config.database)
    if files:
        config.keys_dir.mkdir(parents=True, exist_ok=True)
        config.keys_dir.chmod(0o700)
        for name, data in files.items():
            target = config.keys_dir / Path(name).name
            write_secret_bytes(target, data)
            if not name.endswith(".key"):  # public.json and the certificate are public
                target.chmod(0o644)
    return manifest
