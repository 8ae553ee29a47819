"""Operating a node: ``ncpx config show`` and ``ncpx health`` (the container's health check)."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keys.tls import load_certificate
from node.config import OfficerListener, load_config, load_settings
from protocol.errors import NcpxError

out = Console()
_err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The node's node.toml", envvar="NCPX_CONFIG")]
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped away from, not bound
"""A listener on every address is probed on loopback."""


def register_ops(app: typer.Typer) -> None:
    """Attach ``config`` and ``health`` to ``app``."""
    config_app = typer.Typer(help="This node's effective configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("show")
    def config_show(
        config: ConfigOpt, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable")] = False
    ) -> None:
        """The configuration the node would run with (node.toml, secret files, NCPX_* variables), secrets
        masked, and where each value came from."""
        shown = load_settings(config).shown()
        if as_json:
            out.print_json(json.dumps({name: {"value": v, "source": s} for name, (v, s) in shown.items()}))
            return
        for name, (value, source) in shown.items():
            out.print(f"{name} = {json.dumps(value)}  # {source}", highlight=False, soft_wrap=True)

    @app.command("health")
    def health(
        config: ConfigOpt,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the answer")] = 5.0,
    ) -> None:
        """Exit 0 if this node's officer listener says it is ready (/readyz), else 1: the container's health
        check, which follows the configured address, port and TLS."""
        try:
            status, reason = _probe(load_config(config).officer, timeout)
        except (NcpxError, OSError, http.client.HTTPException) as exc:
            status, reason = 0, getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        if status == 200:
            out.print("ready")
            return
        _err.print(f"not ready: {reason}", highlight=False)
        raise typer.Exit(1)


def _probe(listener: OfficerListener, timeout: float) -> tuple[int, str]:
    """``GET /readyz`` on the officer listener; over TLS the listener must present this node's own certificate
    (pinned, so neither a CA nor the host name matters, and nothing else can answer in its place)."""
    host = WILDCARDS.get(listener.host, listener.host)
    connection: http.client.HTTPConnection
    if listener.tls_cert is None:
        connection = http.client.HTTPConnection(host, listener.port, timeout=timeout)
    else:
        own = load_certificate(listener.tls_cert)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # pinned below instead
        connection = http.client.HTTPSConnection(host, listener.port, timeout=timeout, context=context)
        connection.connect()
        assert isinstance(connection.sock, ssl.SSLSocket)
        if connection.sock.getpeercert(binary_form=True) != own:
            connection.close()
            return 0, f"the listener at {host}:{listener.port} does not present {listener.tls_cert}"
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    try:
        reason = str(json.loads(body).get("reason") or "")
    except (ValueError, AttributeError):
        reason = ""
    return response.status, reason or f"/readyz answered {response.status}"
