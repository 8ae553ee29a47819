"""The roster authority's editing commands as real processes: they re-sign only a roster their key signed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keys import (
    Identity,
    Role,
    Roster,
    Status,
    add_participant,
    generate_authority,
    new_roster,
    parse_authority_public,
    parse_roster,
    sign_roster,
)
from node.config import load_config
from protocol.encoding import b64e


@dataclass
class Authority:
    key: Path
    roster: Path
    folder: Path

    def ncpx(self, command: str) -> subprocess.CompletedProcess[str]:
        args = [*command.format(folder=self.folder).split(), "--roster", str(self.roster)]
        return subprocess.run(
            [sys.executable, "-m", "node.cli", *args, "--authority-key", str(self.key)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def verified(self) -> Roster:
        pinned = self.key.with_suffix(".pub").read_text()
        return Roster(parse_roster(self.roster.read_bytes()), parse_authority_public(pinned))


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    """An authority key, roster version 4 (TH, MY, coordinator XI-COORD), and cards for ID and MY's new keys."""
    key = generate_authority(tmp_path / "authority.key")
    since = datetime.now(UTC) - timedelta(days=1)
    body = new_roster(key.public_key(), since)
    for participant, role in (("TH", Role.NODE), ("MY", Role.NODE), ("XI-COORD", Role.COORDINATOR)):
        card = Identity.generate(participant).card()
        url = f"https://ncpx.{participant.lower()}.example:8100"
        body = add_participant(body, card, url, role, "", since)
    roster = tmp_path / "roster.json"
    roster.write_bytes(sign_roster(body, key).to_bytes())
    Identity.generate("ID").save(tmp_path / "ID")
    Identity.generate("MY").save(tmp_path / "MY-new")
    return Authority(tmp_path / "authority.key", roster, tmp_path)


#: Each editing command ({folder} is the fixture's folder) and what the roster it writes must show.
COMMANDS: dict[str, tuple[str, Callable[[Roster], bool]]] = {
    "roster add": (
        "roster add --card {folder}/ID/public.json --url https://ncpx.id.example",
        lambda r: r.get("ID").url == "https://ncpx.id.example",
    ),
    "roster revoke": (
        "roster revoke --participant MY",
        lambda r: r.get("MY").status is Status.REVOKED,
    ),
    "roster rotate": (
        "roster rotate --card {folder}/MY-new/public.json",
        lambda r: len(r.get("MY").signing_keys) == 2,
    ),
    "period create": (
        "period create --name jpa-2015 --start 2015-09-28T00:00:00+07:00 --end 2015-10-28T00:00:00+07:00"
        " --participants TH,MY --coordinator XI-COORD",
        lambda r: r.period("jpa-2015").participants == ["TH", "MY"],
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_roster_edited_on_disk_is_refused_and_left_as_it_is(authority: Authority, command: str) -> None:
    args, _ = COMMANDS[command]
    wire = json.loads(authority.roster.read_bytes())
    wire["roster"]["participants"][0]["url"] = "https://attacker.example"  # the signature is left as it was
    tampered = json.dumps(wire).encode()
    authority.roster.write_bytes(tampered)

    result = authority.ncpx(args)

    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert "[unverified_roster]" in message
    assert "restore the last roster this authority signed" in message
    assert "attacker" not in message
    assert result.stdout == ""
    assert authority.roster.read_bytes() == tampered


@pytest.mark.parametrize("command", COMMANDS)
def test_a_roster_the_authority_signed_is_edited_and_re_signed(authority: Authority, command: str) -> None:
    args, check = COMMANDS[command]
    result = authority.ncpx(args)
    assert result.returncode == 0, result.stderr
    roster = authority.verified()
    assert roster.version == 5
    assert check(roster)


def test_init_is_safe_by_default_and_a_certificate_renewal_reaches_the_roster(tmp_path: Path) -> None:
    """``ncpx init`` makes a TLS key (0600) and certificate, configures mutual TLS and a loopback officer
    listener, and puts the certificate on the card; ``keys rotate --certificate`` makes a new one that
    ``roster rotate`` lists first."""
    key = generate_authority(tmp_path / "authority.key")
    roster = tmp_path / "roster.json"
    roster.write_bytes(sign_roster(new_roster(key.public_key(), datetime.now(UTC)), key).to_bytes())
    folder = tmp_path / "th"

    def ncpx(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr

    ncpx("init", "--id", "TH", "--dir", str(folder), "--authority", str(tmp_path / "authority.pub"))
    config = load_config(folder / "node.toml")
    assert config.federation.tls_cert == folder / "keys" / "tls.crt"
    assert config.officer.host == "127.0.0.1"
    assert (folder / "keys" / "tls.key").stat().st_mode & 0o777 == 0o600
    first = json.loads((folder / "keys" / "public.json").read_text())["tls_certificate"]
    card = str(folder / "keys" / "public.json")
    auth = ["--roster", str(roster), "--authority-key", str(key_path := tmp_path / "authority.key")]
    ncpx("roster", "add", *auth, "--card", card, "--url", "https://ncpx.th.example:8100", "--name", "TH")
    ncpx("keys", "rotate", "--certificate", "--dir", str(folder / "keys"))
    second = json.loads((folder / "keys" / "public.json").read_text())["tls_certificate"]
    assert second != first
    ncpx("roster", "rotate", *auth, "--card", card)
    verified = Roster(
        parse_roster(roster.read_bytes()), parse_authority_public(key_path.with_suffix(".pub").read_text())
    )
    [th] = verified.participants
    assert [b64e(c) for c in th.tls_certificates or []] == [second, first]
    assert len(th.signing_keys) == 1  # the message keys did not change
