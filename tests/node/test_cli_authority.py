"""The roster authority's editing commands as real processes: they re-sign only a roster their key signed."""

from __future__ import annotations

import json
import os
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
        "period create --name jpa-2015 --start 2015-09-28T00:00:00+07:00 --end 2015-10-29T00:00:00+07:00"
        " --participants TH,MY --coordinator XI-COORD --timezone Asia/Bangkok --historical",
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


PERIOD_2015 = (
    "period create --name jpa-2015 --start 2015-09-28T00:00:00+07:00 --end 2015-10-29T00:00:00+07:00"
    " --participants TH,MY --coordinator XI-COORD --timezone Asia/Bangkok --historical"
)

#: Each refused declaration (after PERIOD_2015 was declared), the named error and exit code it must give.
REFUSED = {
    "the same name again": (PERIOD_2015.replace("TH,MY", "TH"), "period_exists", 5),
    "an end before the start": (
        PERIOD_2015.replace("jpa-2015", "jpa-x").replace("2015-10-29", "2015-09-01"),
        "invalid_period",
        2,
    ),
    "a country as coordinator": (
        PERIOD_2015.replace("jpa-2015", "jpa-x").replace("--coordinator XI-COORD", "--coordinator TH"),
        "not_a_coordinator",
        2,
    ),
    "a past window without --historical": (
        PERIOD_2015.replace("jpa-2015", "jpa-x").replace(" --historical", ""),
        "period_over",
        2,
    ),
    "an unknown zone": (
        PERIOD_2015.replace("jpa-2015", "jpa-x").replace("Asia/Bangkok", "Asia/Atlantis"),
        "invalid_period",
        2,
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_declaration_is_named_and_changes_nothing(authority: Authority, case: str) -> None:
    assert authority.ncpx(PERIOD_2015).returncode == 0
    before = authority.roster.read_bytes()
    history = authority.roster.with_name("roster.json.history").read_bytes()
    args, code, exit_code = REFUSED[case]

    result = authority.ncpx(args)

    assert result.returncode == exit_code, result.stderr
    assert f"[{code}]" in result.stderr
    assert "Traceback" not in result.stderr
    assert authority.roster.read_bytes() == before
    assert authority.roster.with_name("roster.json.history").read_bytes() == history
    assert authority.verified().period("jpa-2015").participants == ["TH", "MY"]


def test_a_historical_declaration_warns_and_lists_in_local_time(authority: Authority) -> None:
    result = authority.ncpx(PERIOD_2015)
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    assert "historical" in result.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "node.cli", "period", "list", "--roster", str(authority.roster)],
        capture_output=True, text=True, timeout=60, check=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert "2015-09-28 00:00 +0700" in listed.stdout
    assert "2015-10-29 00:00 +0700" in listed.stdout
    assert "Asia/Bangkok" in listed.stdout
    assert "over" in listed.stdout


def test_period_list_says_none_when_empty(authority: Authority) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "node.cli", "period", "list", "--roster", str(authority.roster)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert listed.stdout.strip() == "none"


def test_amend_and_close_are_new_versions_with_a_history(authority: Authority) -> None:
    now = datetime.now(UTC)
    start, end = (now - timedelta(days=1)).isoformat(), (now + timedelta(days=29)).isoformat()
    created = authority.ncpx(
        f"period create --name jpa-now --start {start} --end {end} --participants TH,MY --coordinator XI-COORD"
    )
    assert created.returncode == 0, created.stderr
    assert "warning" not in created.stderr

    amended = authority.ncpx("period amend --name jpa-now --participants TH --title Renamed")
    assert amended.returncode == 0, amended.stderr
    assert "jpa-now: participants ['TH', 'MY'] -> ['TH']" in amended.stdout
    assert authority.verified().version == 6
    assert authority.verified().period("jpa-now").participants == ["TH"]

    closed = authority.ncpx("period close --name jpa-now")
    assert closed.returncode == 0, closed.stderr
    roster = authority.verified()
    assert roster.version == 7
    assert roster.period("jpa-now").end <= datetime.now(UTC)

    lines = authority.roster.with_name("roster.json.history").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert [(h["version"], h["action"]) for h in history] == [(5, "create"), (6, "amend"), (7, "close")]
    assert history[1]["changes"] == {"participants": ["TH"], "title": "Renamed"}
    assert set(history[2]["changes"]) == {"end"}

    again = authority.ncpx("period close --name jpa-now")
    assert again.returncode == 2
    assert "[period_over]" in again.stderr
