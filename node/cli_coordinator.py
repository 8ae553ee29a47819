"""Coordinator commands: ``ncpx tally`` and ``ncpx report``, against the coordinator's API with a coordinator token."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from node.cli_officer import JsonOpt, NodeOpt, TokenOpt
from node.cli_tables import WideOpt, emit, grid
from node.client import Client
from node.coordinator.report import FORMATS, duration
from protocol.errors import Malformed

out = Console()

VIEWS = (
    "totals", "countries", "pairs", "days", "areas", "urgencies", "response", "outstanding", "overdue", "flags", "nodes",
    "notices", "matching",
)  # fmt: skip


def _rows(client: Client, period: str, view: str) -> list[dict[str, Any]]:
    """The rows of one view, as plain dicts (the same for tables, JSON and CSV)."""
    base = f"/v1/period/{period}"
    if view in ("outstanding", "overdue"):
        query = {"overdue": "true"} if view == "overdue" else None
        items: list[dict[str, Any]] = client.json("GET", base + "/outstanding", query=query)["items"]
        return items
    if view == "flags":
        flagged: list[dict[str, Any]] = client.json("GET", base + "/flags")["items"]
        return flagged
    if view == "nodes":
        nodes: list[dict[str, Any]] = client.json("GET", base + "/nodes")["nodes"]
        return nodes
    tallies = client.json("GET", base + "/tallies")
    if view == "totals":
        return [tallies["totals"]]
    if view == "response":
        return [{"by": "country", **r} for r in tallies["response_by_country"]] + [
            {"by": "pair", **r} for r in tallies["response_by_pair"]
        ]
    key = {
        "countries": "countries",
        "pairs": "pairs",
        "days": "days",
        "areas": "areas",
        "urgencies": "urgencies",
        "notices": "notices",
        "matching": "matching",
    }
    rows: list[dict[str, Any]] = tallies[key[view]]
    return rows


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name.endswith("_s") and isinstance(value, int | float):
        return duration(float(value))
    return str(value)


def register_coordinator(app: typer.Typer) -> None:
    """Attach the coordinator commands to ``app``."""

    @app.command("tally")
    def tally(
        node: NodeOpt,
        token: TokenOpt,
        period: Annotated[str, typer.Option("--period", help="Period name, e.g. jpa-2015")],
        view: Annotated[str, typer.Option("--view", help=", ".join(VIEWS))] = "countries",
        as_json: JsonOpt = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="CSV output")] = False,
        wide: WideOpt = False,
    ) -> None:
        """The Period of Action's figures from the exchange: counts, pairs, days, response times, overdue."""
        if view not in VIEWS:
            raise Malformed(f"view must be one of {', '.join(VIEWS)}")
        rows = _rows(Client(node, token), period, view)
        if as_json:
            out.print_json(json.dumps(rows))
            return
        columns = list(dict.fromkeys(k for row in rows for k in row))
        if as_csv:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            sys.stdout.write(buffer.getvalue())
            return
        if not rows:
            out.print(f"{period}: {view}: none")
            return
        table = grid(
            *columns,
            title=f"{period}: {view}",
            ids=tuple(c for c in columns if c.endswith("id") or c == "thread"),
        )
        for row in rows:
            table.add_row(*(_cell(c, row.get(c)) for c in columns))
        emit(out, table, wide)

    @app.command("report")
    def report(
        node: NodeOpt,
        token: TokenOpt,
        period: Annotated[str, typer.Option("--period", help="Period name")],
        fmt: Annotated[str, typer.Option("--format", help="md, html, csv or json")] = "md",
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Write to this file instead of the terminal")
        ] = None,
        own_copy: Annotated[
            bool,
            typer.Option(
                "--own-copy",
                help="The coordinator's own copy, with the countries' highlights: not for sharing",
            ),
        ] = False,
    ) -> None:
        """The co-chairs' period report: per-country and total figures, busiest pairs, response times."""
        if fmt not in FORMATS:
            raise Malformed(f"format must be one of {', '.join(FORMATS)}")
        query = {"format": fmt, "copy": "own" if own_copy else "shared"}
        _, raw, _ = Client(node, token).request("GET", f"/v1/period/{period}/report", query=query)
        if out_file is not None:
            out_file.write_bytes(raw)
            out.print(f"report written to {out_file}")
        else:
            sys.stdout.write(raw.decode("utf-8"))
