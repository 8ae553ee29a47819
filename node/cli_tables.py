"""Tables of the ``ncpx`` commands: a cell is wrapped, never cut, so an id or a URL can always be read whole.

rich's default cuts what does not fit with an ellipsis; an officer who copies a message id out of
``ncpx inbox`` or ``ncpx tally --view outstanding`` then has half an id. Every column here folds instead, and
``--wide`` prints each row on one line however wide the terminal is (for copying, or for ``less -S``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

WideOpt = Annotated[
    bool, typer.Option("--wide", help="One line per row, however wide (nothing is cut either way)")
]

UUID_LENGTH = 36
WIDE_COLUMNS = 1000
"""The console width that ``--wide`` prints at: wider than any row, so nothing wraps."""


def grid(*columns: str, title: str | None = None, ids: tuple[str, ...] = ()) -> Table:
    """A table whose cells fold instead of being cut; the columns named in ``ids`` hold message ids (UUIDs),
    kept on one line as long as the terminal leaves room for them."""
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold", min_width=UUID_LENGTH if name in ids else None)
    return table


def emit(console: Console, table: Table, wide: bool) -> None:
    """Print ``table``; with ``wide``, at a width where nothing wraps."""
    console.print(table, width=WIDE_COLUMNS if wide else None)
