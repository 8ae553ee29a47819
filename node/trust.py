"""The node's view of who to trust: its own identity and the newest verified roster it has seen.

A roster is accepted from three places (the operator's roster file, the database after a restart, a peer's
``/federation/v1/roster``) and only ever through :meth:`Trust.offer`, which verifies the authority's signature
and refuses anything not newer. The accepted version is stored before it is used, so a restart cannot roll back,
and written back to the roster file, so that the file never lags behind (and is never refused as a rollback).
A roster file that is corrupt or older at start is set aside with a warning when the database holds a verified
roster: a bad file never keeps a node down that could run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from keys.identity import Identity
from keys.roster import Role, Roster, SignedRoster, Status, parse_roster
from node.storage.database import Database
from node.storage.rosters import RosterStore
from protocol.errors import ConfigError, NcpxError, RosterRollback

log = logging.getLogger("ncpx.trust")

KEY_RELOAD_INTERVAL_S = 5.0
"""Least time between two reads of the key folder."""


def _read(path: Path | None) -> bytes | None:
    try:
        return path.read_bytes() if path is not None else None
    except FileNotFoundError:
        return None


class Trust:
    """Identity plus current roster, shared by every part of a node."""

    def __init__(
        self,
        identity: Identity,
        roster: Roster,
        db: Database,
        roster_file: Path | None = None,
        key_folder: Callable[[], Identity] | None = None,
    ) -> None:
        self.identity = identity
        self.roster = roster
        self._rosters = RosterStore(db)
        self._file = roster_file
        self._key_folder = key_folder
        """Reads this node's key folder again: keys rotated on disk are taken up without a restart."""
        self._keys_read_at = float("-inf")
        self._pick_signing_key()

    @classmethod
    async def load(
        cls,
        identity: Identity,
        authority: Ed25519PublicKey,
        db: Database,
        roster_file: Path | None,
        key_folder: Callable[[], Identity] | None = None,
    ) -> Trust:
        """Start from the newest of the stored roster and the roster file, each verified."""
        candidates: list[Roster] = []
        stored = await RosterStore(db).newest()
        if stored is not None:
            candidates.append(Roster(parse_roster(stored), authority))
        raw = _read(roster_file)
        if raw is not None:
            try:
                candidates.append(Roster(parse_roster(raw), authority))
            except NcpxError as exc:
                if not candidates:
                    raise ConfigError(
                        f"the roster file {roster_file} cannot be used ({exc.code}): put the authority's signed "
                        "roster.json there"
                    ) from exc
                log.warning(
                    "roster file %s not used (%s); starting from the verified roster version %d kept in the "
                    "database, and writing it back",
                    roster_file,
                    exc.code,
                    candidates[0].version,
                )
        if not candidates:
            raise ConfigError("no roster: put the authority's signed roster.json in the node folder")
        best = max(candidates, key=lambda r: r.version)
        trust = cls(identity, best, db, roster_file, key_folder)
        await trust._store(best)
        trust._write_back(raw)
        return trust

    async def offer(self, candidate: SignedRoster, now: datetime) -> bool:
        """Adopt ``candidate`` if it verifies and is newer; returns whether it was adopted."""
        try:
            newer = self.roster.newer(candidate)
        except RosterRollback:
            if candidate.roster.version == self.roster.version:
                return False
            raise
        if newer.version == self.roster.version:
            return False
        await self._store(newer, now)
        self.roster = newer
        if self._lists_keys_we_lack():
            self.reload_keys()
        self._pick_signing_key()
        log.info("roster version %d adopted", newer.version)
        self._write_back(_read(self._file))
        return True

    def _write_back(self, current: bytes | None) -> None:
        """Make the roster file hold the roster in use (atomically: a reader sees the old file or the new)."""
        signed = self.roster.signed.to_bytes()
        if self._file is None or current == signed:
            return
        temporary = self._file.with_name(f".{self._file.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(signed)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._file)
        except OSError as exc:  # a read-only mount: the database still holds the roster
            temporary.unlink(missing_ok=True)
            log.warning(
                "roster file %s not updated (%s); the database holds version %d",
                self._file,
                exc,
                self.roster.version,
            )

    async def _store(self, roster: Roster, now: datetime | None = None) -> None:
        accepted_at = now or roster.signed.roster.issued_at
        await self._rosters.keep(roster.version, roster.signed.to_bytes(), accepted_at)

    def _lists_keys_we_lack(self) -> bool:
        me = self.roster.get(self.identity.participant)
        held = {*self.identity.signing_kids(), *self.identity.encryption_kids()}
        return any(k.kid not in held for k in [*me.signing_keys, *me.encryption_keys])

    def reload_keys(self) -> bool:
        """Read the key folder again (at most every few seconds: a passphrase makes it slow); returns whether
        a key we did not hold before was found."""
        now = time.monotonic()
        if self._key_folder is None or now - self._keys_read_at < KEY_RELOAD_INTERVAL_S:
            return False
        self._keys_read_at = now
        try:
            loaded = self._key_folder()
        except NcpxError as exc:
            log.warning("key folder not read again: %s", exc.code)
            return False
        if loaded.participant != self.identity.participant:
            log.warning("key folder now holds the identity of %s: ignored", loaded.participant)
            return False
        before = {*self.identity.signing_kids(), *self.identity.encryption_kids()}
        after = {*loaded.signing_kids(), *loaded.encryption_kids()}
        if after <= before:
            return False
        self.identity = loaded
        self._pick_signing_key()
        log.info("new keys taken up from the key folder")
        return True

    def _pick_signing_key(self) -> None:
        """Sign with the newest of our keys that the roster lists as active (rotation takes effect here)."""
        me = self.roster.get(self.identity.participant)
        listed = {k.kid for k in me.signing_keys if k.status is Status.ACTIVE}
        for kid in reversed(self.identity.signing_kids()):
            if kid in listed:
                self.identity.use_signing_key(kid)
                return
        raise ConfigError("the roster lists none of this node's signing keys")

    def peers(self, role: Role | None = Role.NODE) -> list[str]:
        """Ids of the other active participants of ``role`` (nodes by default: a coordinator gets no envelopes)."""
        return [
            p.id
            for p in self.roster.participants
            if p.id != self.identity.participant
            and p.status is Status.ACTIVE
            and (role is None or p.role is role)
        ]

    def url_of(self, participant: str) -> str:
        """Base URL of a roster member."""
        return self.roster.get(participant).url
