"""``ncpx lab``, what the compose file's init service runs: once, and never over half a setup."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.topology import ncpx


def test_lab_refuses_a_setup_that_stopped_half_way(tmp_path: Path) -> None:
    (tmp_path / "authority").mkdir()
    (tmp_path / "authority" / "authority.key").write_text("left by a setup that was killed\n")
    with pytest.raises(RuntimeError, match=r"stopped before it\s+finished"):
        ncpx("lab", "--root", str(tmp_path), "--ids", "TH")


def test_lab_writes_passphrases_and_tokens_as_secrets_and_then_leaves_the_setup_alone(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    ncpx("lab", "--root", str(tmp_path), "--ids", "TH", "--secrets", str(secrets))
    passphrase = secrets / "TH.passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600
    assert (secrets / "TH.officer-token").read_text().startswith("ncpx_")
    assert not (tmp_path / "TH" / "officer.token").exists()
    assert 'passphrase_env = "NCPX_PASSPHRASE"' in (tmp_path / "TH" / "node.toml").read_text()
    # The key file opens with the passphrase from the secret file only.
    keys = str(tmp_path / "TH" / "keys")
    ncpx("keys", "rotate", "--dir", keys, "--passphrase-env", "NCPX_PASSPHRASE",
         env={"NCPX_PASSPHRASE_FILE": str(passphrase)})  # fmt: skip
    with pytest.raises(RuntimeError, match="key"):
        ncpx("keys", "rotate", "--dir", keys, "--passphrase-env", "NCPX_PASSPHRASE",
             env={"NCPX_PASSPHRASE": "not the passphrase"})  # fmt: skip
    before = passphrase.read_bytes()
    again = ncpx("lab", "--root", str(tmp_path), "--ids", "TH", "--secrets", str(secrets))
    assert "already set up" in " ".join(again.split())
    assert passphrase.read_bytes() == before
