"""Officer commands for deconfliction's own lists: ``ncpx watch add|remove|list|import|export`` and
``ncpx operation add|list|cancel``, through the officer API like every other officer command.

Operation times are typed and shown in the operation's own time zone (the officers planning a raid in
Bangkok think in Bangkok time wherever their node runs); the node keeps them in UTC.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from rich.text import Text

from node.cli_officer import JsonOpt, NodeOpt, TokenOpt, out
from node.client import Client
from protocol.codes import Handling
from protocol.errors import Malformed
from protocol.watchlist import KIND_NAMES, OperationKind

CaseOpt = Annotated[str, typer.Option("--case", help="Your case reference, shown to the other side on a hit")]
ContactOpt = Annotated[
    str, typer.Option("--contact", help="Who the other side should call: name, phone, e-mail")
]
HandlingOpt = Annotated[Handling, typer.Option("--handling")]
NoteOpt = Annotated[str | None, typer.Option("--handling-note", help="The restriction, with H3")]
LineOpt = Annotated[list[str] | None, typer.Option("--line", help="Address line (repeatable, in order)")]


def _listing(case: str, contact: str, handling: Handling, note: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"case_reference": case, "contact": contact, "handling": handling.value}
    if note:
        body["handling_note"] = note
    return body


def _local(stamp: str, zone: str) -> str:
    """A UTC time as the operation's officers read it."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def _subject(entry: dict[str, Any]) -> str:
    """An entry's subject fields on one line, for the table."""
    skip = {"kind", "case_reference", "contact", "expires_on", "handling", "handling_note"}
    parts = []
    for name, value in entry.items():
        if name not in skip:
            parts.append(" | ".join(value) if isinstance(value, list) else str(value))
    return ", ".join(parts)


def _print_entries(items: list[dict[str, Any]]) -> None:
    table = Table(title="watch list")
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("kind", "subject", "matched as", "case", "contact", "handling", "expires"):
        table.add_column(column)
    for item in items:
        entry = item["entry"]
        expires = entry["expires_on"] + (" (expired)" if item["expired"] else "")
        table.add_row(
            item["id"],
            entry["kind"],
            Text(_subject(entry)),
            Text("\n".join(item["tokens"])),
            Text(entry["case_reference"]),
            Text(entry["contact"]),
            entry["handling"],
            expires,
        )
    out.print(table)


def _print_operations(items: list[dict[str, Any]]) -> None:
    table = Table(title="planned operations (times in each operation's zone)")
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("kind", "where", "start", "end", "case", "contact", "status"):
        table.add_column(column)
    for item in items:
        operation = item["operation"]
        if "point" in operation:
            point = operation["point"]
            where = f"{point['latitude']:.5f}, {point['longitude']:.5f} ± {point['radius_m']:g} m"
        else:
            place = operation["address"]
            where = " | ".join([*place["lines"], place.get("city") or "", place["country"]])
        table.add_row(
            item["id"],
            operation["kind"],
            Text(where),
            _local(operation["start"], operation["zone"]),
            _local(operation["end"], operation["zone"]),
            Text(operation["case_reference"]),
            Text(operation["contact"]),
            item["status"],
        )
    out.print(table)


def register_watch(app: typer.Typer) -> None:
    """Attach ``watch`` and ``operation`` to ``app``."""
    watch_app = typer.Typer(help="This country's watch list (target deconfliction).", no_args_is_help=True)
    operation_app = typer.Typer(help="Planned operations (event deconfliction).", no_args_is_help=True)
    app.add_typer(watch_app, name="watch")
    app.add_typer(operation_app, name="operation")

    @watch_app.command("add")
    def watch_add(
        node: NodeOpt,
        token: TokenOpt,
        kind: Annotated[str, typer.Argument(help=" | ".join(KIND_NAMES))],
        case: CaseOpt,
        contact: ContactOpt,
        expires: Annotated[str, typer.Option("--expires", help="Last day it is matched, YYYY-MM-DD")],
        names: Annotated[str | None, typer.Option("--names", help="person: every name, any order")] = None,
        date_of_birth: Annotated[
            str | None, typer.Option("--date-of-birth", help="person: YYYY-MM-DD")
        ] = None,
        nationality: Annotated[str | None, typer.Option("--nationality", help="person: ISO country")] = None,
        number: Annotated[
            str | None, typer.Option("--number", help="document, phone or account number")
        ] = None,
        region: Annotated[
            str | None, typer.Option("--region", help="phone: country of a number without +")
        ] = None,
        name: Annotated[str | None, typer.Option("--name", help="vessel: its name")] = None,
        imo: Annotated[str | None, typer.Option("--imo", help="vessel: IMO number")] = None,
        flag: Annotated[str | None, typer.Option("--flag", help="vessel: flag state")] = None,
        line: LineOpt = None,
        city: Annotated[str | None, typer.Option("--city", help="address: city")] = None,
        country: Annotated[
            str | None, typer.Option("--country", help="address country, or national account's")
        ] = None,
        handling: HandlingOpt = Handling.H0,
        handling_note: NoteOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Add one entry; it is refused, and nothing stored, unless it can be matched."""
        given = {
            "names": names,
            "date_of_birth": date_of_birth,
            "nationality": nationality,
            "number": number,
            "region": region,
            "name": name,
            "imo": imo,
            "flag": flag,
            "lines": line,
            "city": city,
            "country": country,
        }
        body = {
            "kind": kind,
            **{k: v for k, v in given.items() if v},
            "expires_on": expires,
            **_listing(case, contact, handling, handling_note),
        }
        added = Client(node, token).json("POST", "/v1/watchlist", body)
        if as_json:
            out.print_json(json.dumps(added))
            return
        _print_entries([added])

    @watch_app.command("remove")
    def watch_remove(
        node: NodeOpt, token: TokenOpt, entry_id: Annotated[str, typer.Argument(help="Entry id")]
    ) -> None:
        """Take an entry off the list; it is matched no more."""
        removed = Client(node, token).json("DELETE", f"/v1/watchlist/{entry_id}")
        out.print(f"removed {removed['id']}")

    @watch_app.command("list")
    def watch_list(node: NodeOpt, token: TokenOpt, as_json: JsonOpt = False) -> None:
        """Every entry on the list, expired ones marked."""
        listed = Client(node, token).json("GET", "/v1/watchlist")
        if as_json:
            out.print_json(json.dumps(listed))
            return
        _print_entries(listed["items"])

    @watch_app.command("import")
    def watch_import(
        node: NodeOpt,
        token: TokenOpt,
        file: Annotated[Path, typer.Argument(help="CSV file (UTF-8), columns as in docs/examples")],
        as_json: JsonOpt = False,
    ) -> None:
        """Import a CSV file: every row, or none (each bad row is named with what is wrong)."""
        result = Client(node, token).json(
            "POST", "/v1/watchlist/import", file.read_bytes(), content_type="text/csv"
        )
        if as_json:
            out.print_json(json.dumps(result))
            return
        out.print(f"imported {result['imported']} entries")

    @watch_app.command("export")
    def watch_export(
        node: NodeOpt,
        token: TokenOpt,
        output: Annotated[
            Path | None, typer.Option("--output", help="File to write (default: print)")
        ] = None,
    ) -> None:
        """The entries still matched, as CSV that ``watch import`` reads back."""
        _, raw, _ = Client(node, token).request("GET", "/v1/watchlist/export")
        if output is None:
            typer.echo(raw.decode("utf-8"), nl=False)
            return
        with output.open("xb") as handle:  # never over an existing file
            handle.write(raw)

    @operation_app.command("add")
    def operation_add(
        node: NodeOpt,
        token: TokenOpt,
        kind: Annotated[OperationKind, typer.Argument()],
        start: Annotated[str, typer.Option("--start", help="Local time in --zone, e.g. '2015-10-05 06:00'")],
        end: Annotated[str, typer.Option("--end", help="Local time in --zone")],
        zone: Annotated[str, typer.Option("--zone", help="IANA time zone, e.g. Asia/Bangkok")],
        case: CaseOpt,
        contact: ContactOpt,
        latitude: Annotated[float | None, typer.Option("--lat", help="Point, WGS 84 degrees")] = None,
        longitude: Annotated[float | None, typer.Option("--lon")] = None,
        radius: Annotated[float, typer.Option("--radius", help="Metres around the point")] = 0.0,
        line: LineOpt = None,
        city: Annotated[str | None, typer.Option("--city")] = None,
        country: Annotated[str | None, typer.Option("--country")] = None,
        handling: HandlingOpt = Handling.H0,
        handling_note: NoteOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Plan an operation at a point (--lat, --lon, --radius) or an address (--line, --city, --country)."""
        body: dict[str, Any] = {
            "kind": kind.value,
            "zone": zone,
            "start": start.replace(" ", "T"),
            "end": end.replace(" ", "T"),
            **_listing(case, contact, handling, handling_note),
        }
        if latitude is not None and longitude is not None:
            body["point"] = {"latitude": latitude, "longitude": longitude, "radius_m": radius}
        elif line:
            body["address"] = {"lines": line, "country": country, **({"city": city} if city else {})}
        else:
            raise Malformed("give the place as --lat and --lon (with --radius), or as --line and --country")
        added = Client(node, token).json("POST", "/v1/operations", body)
        if as_json:
            out.print_json(json.dumps(added))
            return
        _print_operations([added])

    @operation_app.command("list")
    def operation_list(node: NodeOpt, token: TokenOpt, as_json: JsonOpt = False) -> None:
        """Every planned operation, times in its own zone."""
        listed = Client(node, token).json("GET", "/v1/operations")
        if as_json:
            out.print_json(json.dumps(listed))
            return
        _print_operations(listed["items"])

    @operation_app.command("cancel")
    def operation_cancel(
        node: NodeOpt,
        token: TokenOpt,
        operation_id: Annotated[str, typer.Argument(help="Operation id")],
        as_json: JsonOpt = False,
    ) -> None:
        """Call off a planned operation; it is matched no more."""
        cancelled = Client(node, token).json("POST", f"/v1/operations/{operation_id}/cancel")
        if as_json:
            out.print_json(json.dumps(cancelled))
            return
        _print_operations([cancelled])
