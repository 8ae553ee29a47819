"""Key files, identities and the signed roster: permissions, passphrases, versions, rotation and revocation."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import (
    Identity,
    Roster,
    add_participant,
    generate_authority,
    load_authority,
    revoke,
    rotate,
    sign_roster,
)
from keys.roster import (
    Role,
    SignedRoster,
    authority_roster,
    parse_authority_public,
    parse_roster,
)
from protocol.encoding import canonical
from protocol.errors import (
    BadSignature,
    ExpiredKey,
    KeyFileError,
    Malformed,
    NoUsableKey,
    RevokedKey,
    RosterRollback,
    UnknownKey,
    UnknownSender,
    UnverifiedRoster,
)
from protocol.signing import key_id, sign
from tests.protocol.helpers import NOW, World, world


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_identity_round_trip_with_0600_key_file(tmp_path: Path) -> None:
    identity = Identity.generate("th")
    identity.save(tmp_path)
    assert mode(tmp_path / "identity.key") == 0o600
    loaded = Identity.load(tmp_path)
    assert loaded.participant == "TH"
    assert loaded.signing_kid == identity.signing_kid
    assert loaded.card() == identity.card()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    Identity.generate("TH").save(tmp_path)
    os.chmod(tmp_path / "identity.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        Identity.load(tmp_path)


def test_passphrase_protected_key_file(tmp_path: Path) -> None:
    identity = Identity.generate("TH")
    identity.save(tmp_path, b"correct horse")
    assert b"signing" not in (tmp_path / "identity.key").read_bytes()
    assert Identity.load(tmp_path, b"correct horse").signing_kid == identity.signing_kid
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        Identity.load(tmp_path, b"wrong")
    with pytest.raises(KeyFileError, match="passphrase"):
        Identity.load(tmp_path)


def test_an_empty_passphrase_is_refused_instead_of_writing_the_key_in_clear(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="empty"):
        Identity.generate("TH").save(tmp_path, b"")
    assert not (tmp_path / "identity.key").exists()


def test_authority_key_file(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    key = generate_authority(path)
    assert mode(path) == 0o600
    assert load_authority(path).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    pinned = path.with_suffix(".pub").read_text().strip()
    assert parse_authority_public(pinned).public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(KeyFileError):
        generate_authority(path)
    with pytest.raises(Malformed):
        parse_authority_public("not-a-key")


def test_every_edit_bumps_the_version_and_is_signed() -> None:
    w = world()
    assert w.roster.version == 3  # created, TH added, MY added
    edited = revoke(w.body, "MY", None, NOW)
    assert edited.version == 4
    signed = sign_roster(edited, w.authority)
    assert Roster(signed, w.authority.public_key()).version == 4
    assert parse_roster(signed.to_bytes()) == signed
    with pytest.raises(Malformed):
        add_participant(w.body, w.th.card(), "http://x", Role.NODE, "", NOW)


def test_roster_from_another_authority_or_tampered_is_refused() -> None:
    w = world()
    other = Ed25519PrivateKey.generate()
    with pytest.raises(UnknownKey):
        Roster(w.roster.signed, other.public_key())
    tampered = w.roster.signed.model_copy(
        update={"roster": w.roster.signed.roster.model_copy(update={"version": 99})}
    )
    with pytest.raises(BadSignature):
        Roster(tampered, w.authority.public_key())


def _edited_on_disk(w: World, _: Ed25519PrivateKey) -> SignedRoster:
    moved = w.body.participants[0].model_copy(update={"url": "https://elsewhere.example"})
    body = w.body.model_copy(update={"participants": [moved, *w.body.participants[1:]]})
    return w.roster.signed.model_copy(update={"roster": body})


def _another_authoritys(w: World, other: Ed25519PrivateKey) -> SignedRoster:
    return sign_roster(w.body.model_copy(update={"authority_key": key_id(other.public_key())}), other)


def _signed_in_our_name(w: World, other: Ed25519PrivateKey) -> SignedRoster:
    return SignedRoster(roster=w.body, sig=sign(other, "roster", canonical(w.body.wire())))


@pytest.mark.parametrize("forge", [_edited_on_disk, _another_authoritys, _signed_in_our_name])
def test_the_authority_edits_only_a_roster_it_signed(
    forge: Callable[[World, Ed25519PrivateKey], SignedRoster],
) -> None:
    w = world()
    assert authority_roster(w.roster.signed.to_bytes(), w.authority) == w.body
    other = Ed25519PrivateKey.generate()
    with pytest.raises(UnverifiedRoster, match="restore the last roster this authority signed"):
        authority_roster(forge(w, other).to_bytes(), w.authority)
    with pytest.raises(UnverifiedRoster):  # the right file, the wrong authority key
        authority_roster(w.roster.signed.to_bytes(), other)


def test_rollback_and_forks_are_refused() -> None:
    w = world()
    older = w.roster
    newer = Roster(sign_roster(revoke(w.body, "MY", None, NOW), w.authority), w.authority.public_key())
    assert older.newer(newer.signed).version == newer.version
    with pytest.raises(RosterRollback):
        newer.newer(older.signed)
    fork = sign_roster(revoke(w.body, "TH", None, NOW), w.authority)  # same version, other content
    with pytest.raises(RosterRollback):
        newer.newer(fork)
    assert newer.newer(newer.signed).version == newer.version  # the same roster again is not a rollback


def test_revocation_is_effective_at_once_even_for_past_times() -> None:
    w = world()
    assert w.roster.signing_key("TH", w.th.signing_kid, NOW - timedelta(hours=1))
    w.resign(revoke(w.body, "TH", w.th.signing_kid, NOW))
    with pytest.raises(RevokedKey):
        w.roster.signing_key("TH", w.th.signing_kid, NOW - timedelta(hours=1))
    w.resign(revoke(w.body, "MY", None, NOW))
    with pytest.raises(RevokedKey):
        w.roster.signing_key("MY", w.my.signing_kid, NOW)
    with pytest.raises(NoUsableKey):
        w.roster.encryption_key("MY", NOW)
    with pytest.raises(UnknownSender):
        w.roster.signing_key("ID", "x" * 20, NOW)


def test_rotation_keeps_old_keys_valid_for_the_overlap() -> None:
    w = world()
    old_signing, old_encryption = w.th.signing_kid, w.th.encryption_kid
    w.th.rotate()
    w.resign(rotate(w.body, w.th.card(), timedelta(days=7), NOW))
    kid, _ = w.roster.encryption_key("TH", NOW + timedelta(seconds=1))
    assert kid == w.th.encryption_kid != old_encryption
    assert w.roster.signing_key("TH", old_signing, NOW + timedelta(days=6))
    with pytest.raises(ExpiredKey):
        w.roster.signing_key("TH", old_signing, NOW + timedelta(days=8))
    assert (
        w.th.decryption_key(old_encryption) is not None
    )  # in-flight messages sealed to the old key still open
