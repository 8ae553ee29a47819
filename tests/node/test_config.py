"""Configuration: node.toml, NCPX_* variables and secret files, and the checks a node makes before it listens.

Each refusal is checked for its class and for being one sentence that names what to fix: never the validator's
report, never a secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.roster import sign_roster
from node.config import FederationListener, NodeConfig, load_config, load_settings, reloaded, write_config
from node.server import NodeServer
from protocol.errors import ConfigError, KeyFileError
from protocol.signing import key_id
from tests.node.support import Federation

PASSPHRASE = "correct horse battery staple"


def one_sentence(error: Exception) -> str:
    """The refusal's text, checked to be a single line with none of pydantic's report in it."""
    text = str(error)
    assert "\n" not in text
    assert "validation error" not in text
    assert "pydantic" not in text
    assert "Input should" not in text
    return text


def toml(tmp_path: Path, config: NodeConfig) -> Path:
    path = tmp_path / "node.toml"
    write_config(path, config)
    return path


@pytest.fixture
def fed(federation: Callable[..., Federation]) -> Federation:
    return federation(["TH", "MY"])


async def refused(config: NodeConfig) -> Exception:
    """What a node with ``config`` raises instead of starting (and it listens on nothing)."""
    server = NodeServer(config, access_log=False)
    with pytest.raises((ConfigError, KeyFileError)) as caught:
        await server.start()
    assert server.sites == []
    return caught.value


# -- precedence and secrets --


def test_environment_over_secret_file_over_toml(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, fed.config("TH"))
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("NCPX_FEDERATION__PORT", "9101")
    monkeypatch.setenv("NCPX_LIMITS__CLOCK_SKEW_S", "42")
    monkeypatch.setenv("NCPX_PASSPHRASE_FILE", str(secret))
    settings = load_settings(path)
    assert settings.config.federation.port == 9101
    assert settings.config.limits.clock_skew_s == 42
    assert settings.config.limits.body_timeout_s == 30.0
    assert (
        settings.config.key_passphrase() == PASSPHRASE.encode()
    )  # the file's final newline is not part of it
    assert settings.sources["federation.port"] == "NCPX_FEDERATION__PORT"
    assert settings.sources["passphrase"] == "NCPX_PASSPHRASE_FILE"
    assert settings.sources["federation.host"] == str(path)
    monkeypatch.setenv("NCPX_PASSPHRASE", "from the environment")
    assert load_config(path).key_passphrase() == b"from the environment"


def test_a_whole_section_as_json_and_relative_paths_from_the_environment(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, fed.config("TH"))
    monkeypatch.setenv("NCPX_MATCHING", '{"auto": ["*"], "interval_s": 60}')
    monkeypatch.setenv("NCPX_ROSTER_FILE", "elsewhere/roster.json")
    config = load_config(path)
    assert config.matching.auto == ["*"]
    assert config.roster_file == (config.data_dir / "elsewhere" / "roster.json").resolve()


def test_the_passphrase_named_by_passphrase_env_still_works(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, fed.config("TH").model_copy(update={"passphrase_env": "TH_KEY_PASSPHRASE"}))
    monkeypatch.setenv("TH_KEY_PASSPHRASE", PASSPHRASE)
    assert load_config(path).key_passphrase() == PASSPHRASE.encode()
    monkeypatch.delenv("TH_KEY_PASSPHRASE")
    with pytest.raises(ConfigError, match="TH_KEY_PASSPHRASE is not set"):
        load_config(path).key_passphrase()


async def test_an_encrypted_key_opens_with_the_passphrase_from_a_secret_file(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = fed.config("TH")
    fed.identities["TH"].save(config.keys_dir, PASSPHRASE.encode())
    path = toml(tmp_path, config)
    with pytest.raises(KeyFileError):
        await NodeServer(load_config(path), access_log=False).start()
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE)
    monkeypatch.setenv("NCPX_PASSPHRASE_FILE", str(secret))
    server = NodeServer(load_config(path), access_log=False)
    await server.start()
    try:
        assert server.service.me == "TH"
    finally:
        await server.stop()


def test_the_passphrase_is_never_written_to_node_toml(fed: Federation, tmp_path: Path) -> None:
    path = toml(tmp_path, fed.config("TH").model_copy(update={"passphrase": PASSPHRASE}))
    assert PASSPHRASE not in path.read_text()
    assert "passphrase =" not in path.read_text()
    path.write_text(f'passphrase = "{PASSPHRASE}"\n' + path.read_text())
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "NCPX_PASSPHRASE_FILE" in one_sentence(caught.value)
    assert PASSPHRASE not in str(caught.value)


def test_an_unreadable_secret_file(fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = toml(tmp_path, fed.config("TH"))
    monkeypatch.setenv("NCPX_PASSPHRASE_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "NCPX_PASSPHRASE_FILE" in one_sentence(caught.value)


# -- malformed values --


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("NCPX_FEDERATION__PORT", "eighty", "NCPX_FEDERATION__PORT"),
        ("NCPX_LIMITS__BODY_TIMEOUT_S", "-1", "NCPX_LIMITS__BODY_TIMEOUT_S"),
        ("NCPX_ROLE", "country", "NCPX_ROLE"),
        ("NCPX_LIMITS", "{not json", "NCPX_LIMITS"),
        ("NCPX_ID", "Thailand", "NCPX_ID"),
    ],
)
def test_a_malformed_environment_value(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    path = toml(tmp_path, fed.config("TH"))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert named in one_sentence(caught.value)


def test_an_unknown_setting_in_node_toml(fed: Federation, tmp_path: Path) -> None:
    path = toml(tmp_path, fed.config("TH"))
    path.write_text(path.read_text().replace("[federation]\n", "[federation]\nprot = 8100\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "federation.prot" in one_sentence(caught.value)
    assert str(path) in str(caught.value)


def test_serve_reports_a_malformed_variable_in_one_line(fed: Federation, tmp_path: Path) -> None:
    path = toml(tmp_path, fed.config("TH"))
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", "node", "serve", "-c", str(path)],
        env={**os.environ, "NCPX_OFFICER__PORT": "http"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert " ".join(result.stderr.split()) == (
        "error [config]: environment variable NCPX_OFFICER__PORT gives officer.port an invalid value (input "
        "should be a valid integer, unable to parse string as an integer): correct it"
    )


# -- what the node checks before it listens --


async def test_missing_key_file(fed: Federation) -> None:
    config = fed.config("TH")
    (config.keys_dir / "identity.key").unlink()
    assert "cannot read key file" in one_sentence(await refused(config))


async def test_unreadable_key_file(fed: Federation) -> None:
    config = fed.config("TH")
    (config.keys_dir / "identity.key").write_bytes(b"\x00not a key\xff")
    assert "is not an ncpx key file" in one_sentence(await refused(config))


async def test_key_file_readable_by_others(fed: Federation) -> None:
    config = fed.config("TH")
    (config.keys_dir / "identity.key").chmod(0o644)
    assert "chmod 600" in one_sentence(await refused(config))


async def test_roster_not_signed_by_the_pinned_authority(fed: Federation) -> None:
    impostor = Ed25519PrivateKey.generate()
    body = fed.body.model_copy(update={"authority_key": key_id(impostor.public_key())})
    config = fed.config("TH", roster=sign_roster(body, impostor))
    text = one_sentence(await refused(config))
    assert "roster file" in text
    assert "cannot be used" in text


async def test_roster_url_scheme_disagrees_with_the_listener(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    fed = Federation(tmp_path / "tls", session, ["TH", "MY"], tls=True)
    plain = FederationListener(port=fed.ports["TH"])  # the roster lists https://, the listener has no TLS
    text = one_sentence(await refused(fed.config("TH", federation=plain)))
    assert "https://127.0.0.1" in text
    assert "plain HTTP" in text


async def test_role_in_the_configuration_differs_from_the_roster(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "XI-UNODC"], coordinator="XI-UNODC")
    as_coordinator = fed.config("TH").model_copy(update={"role": "coordinator"})
    assert 'set role = "node"' in one_sentence(await refused(as_coordinator))
    as_country = fed.config("XI-UNODC").model_copy(update={"role": "node"})
    assert 'set role = "coordinator"' in one_sentence(await refused(as_country))


# -- reloading --


def test_reload_adopts_live_settings_and_names_the_others(fed: Federation) -> None:
    current = fed.config("TH")
    changed = current.model_copy(
        update={
            "limits": current.limits.model_copy(update={"body_timeout_s": 2.0, "concurrent_bodies": 3}),
            "federation": current.federation.model_copy(update={"port": 1}),
        }
    )
    effective, adopted, waiting = reloaded(current, changed)
    assert adopted == ["limits.body_timeout_s"]
    assert waiting == ["federation.port", "limits.concurrent_bodies"]
    assert effective.limits.body_timeout_s == 2.0
    assert effective.limits.concurrent_bodies == current.limits.concurrent_bodies
    assert effective.federation.port == current.federation.port


# -- ncpx config show --


def test_config_show_masks_secrets_and_names_sources(fed: Federation, tmp_path: Path) -> None:
    path = toml(tmp_path, fed.config("TH"))
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE)
    env = {**os.environ, "NCPX_PASSPHRASE_FILE": str(secret), "NCPX_DELIVERY__HEARTBEAT_S": "15"}
    env.pop("NCPX_CONFIG", None)

    def show(*extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "node.cli", "config", "show", "-c", str(path), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert PASSPHRASE not in result.stdout
        return result.stdout

    shown = json.loads(show("--json"))
    assert shown["passphrase"] == {"value": "**********", "source": "NCPX_PASSPHRASE_FILE"}
    assert shown["delivery.heartbeat_s"] == {"value": 15.0, "source": "NCPX_DELIVERY__HEARTBEAT_S"}
    assert shown["id"] == {"value": "TH", "source": str(path)}
    assert shown["coordinator_grace_s"]["source"] in ("default", str(path))
    assert "delivery.heartbeat_s = 15.0  # NCPX_DELIVERY__HEARTBEAT_S" in show().splitlines()


def test_node_toml_written_by_write_config_loads_back(fed: Federation, tmp_path: Path) -> None:
    config = fed.config("TH")
    assert load_config(toml(tmp_path, config)) == config
