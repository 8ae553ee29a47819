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

WIDE_COLUMNS = 1000
"""The console width that ``--wide`` prints at: wider than any row, so nothing wraps."""


def grid(*columns: str, title: str | None = None, ids: tuple[str, ...] = ()) -> Table:
    """A table whose cells fold instead of being cut; the columns named in ``ids`` hold message ids, kept on
    one line while the terminal leaves room (the other columns give way first)."""
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in ids)
    return table


def emit(console: Console, table: Table, wide: bool) -> None:
    """Print ``table``; with ``wide``, at a width where nothing wraps. Never cropped at the terminal's edge."""
    if not wide:
        console.print(table, crop=False)
        return
    previous = console.width
    console.width = WIDE_COLUMNS  # print(width=...) is capped at the terminal's width
    try:
        console.print(table, crop=False)
    finally:
        console.width = previous
