"""The ``ncpx`` command: one typer app, errors turned into messages and exit codes in :func:`main` only.

Exit codes: 0 ok; 1 unexpected; 2 invalid input or configuration; 3 not authorised; 4 not found;
5 refused by the node for another reason; 6 node unreachable.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from node.cli_admin import register_admin
from node.cli_coordinator import register_coordinator
from node.cli_data import register_data
from node.cli_matching import register_matching
from node.cli_officer import register_officer
from node.cli_ops import register_ops
from node.cli_watch import register_watch
from node.client import RemoteError
from node.demo import register_demo
from node.version import VERSION
from protocol.errors import (
    ConfigError,
    KeyFileError,
    Malformed,
    NcpxError,
    NotFound,
    Unauthorized,
    UnverifiedRoster,
)
from protocol.models import PROTOCOL_VERSION

app = typer.Typer(
    name="ncpx",
    help="National Contact Point eXchange: signed, end-to-end encrypted enquiries between contact points.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_admin(app)
register_officer(app)
register_watch(app)
register_matching(app)
register_coordinator(app)
register_demo(app)
register_ops(app)
register_data(app)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"ncpx {VERSION} (protocol version {PROTOCOL_VERSION})")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit"),
    ] = False,
) -> None:
    """National Contact Point eXchange: signed, end-to-end encrypted enquiries between contact points."""


_err = Console(stderr=True)


def exit_code(error: BaseException) -> int:
    """The exit code for a failure."""
    code = error.code if isinstance(error, RemoteError | NcpxError) else ""
    if isinstance(error, ConfigError) and "cannot reach" in str(error):
        return 6
    invalid_input = Malformed | ConfigError | KeyFileError | UnverifiedRoster
    if isinstance(error, invalid_input) or code in ("malformed", "too_large"):
        return 2
    if isinstance(error, Unauthorized) or code == "unauthorized":
        return 3
    if isinstance(error, NotFound) or code == "not_found":
        return 4
    if isinstance(error, RemoteError | NcpxError):
        return 5
    return 1


def main() -> None:
    """Entry point of the ``ncpx`` console script (typer itself reports usage errors, with exit code 2)."""
    try:
        app()
    except (NcpxError, RemoteError) as exc:
        _err.print(Text.assemble(("error", "bold red"), f" [{exc.code}]: {exc.detail}"), highlight=False)
        sys.exit(exit_code(exc))
    except OSError as exc:  # a file named on the command line that cannot be read or written
        _err.print(
            Text.assemble(("error", "bold red"), f" [file]: {exc.strerror}: {exc.filename}"), highlight=False
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
