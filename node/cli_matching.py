"""Officer commands for private matching: ``ncpx match`` runs a round, ``ncpx hits`` shows what it found."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from node.cli_officer import JsonOpt, NodeOpt, TokenOpt, out
from node.client import Client


def _print_hits(items: list[dict[str, Any]]) -> None:
    if not items:
        out.print("no hits: none of your items is held by a country you matched with")
        return
    table = Table(title="hits: items another country also holds")
    for column in ("found", "peer", "kind", "item", "our case", "their case", "their contact"):
        table.add_column(column, overflow="fold")
    for hit in items:
        table.add_row(
            hit["found_at"][:16].replace("T", " "),
            hit["peer"],
            hit["kind"],
            hit["item"],
            hit["our_case"],
            hit["peer_case"] or "(not told yet)",
            hit["peer_contact"] or "(not told yet)",
        )
    out.print(table)


def register_matching(app: typer.Typer) -> None:
    """Attach ``match`` and ``hits`` to ``app``."""

    @app.command("match")
    def match(
        node: NodeOpt,
        token: TokenOpt,
        peer: Annotated[
            str | None, typer.Option("--with", help="One country; every country node when left out")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Match your watch list and planned operations with another country's, privately: each side learns
        only the items both hold."""
        answer = Client(node, token).json("POST", "/v1/matching", {"peer": peer} if peer else {})
        if as_json:
            out.print_json(json.dumps(answer))
            return
        for session in answer["sessions"]:
            if session.get("error"):
                out.print(f"{session['peer']}: not matched ({session['error']})", highlight=False)
            else:
                out.print(
                    f"{session['peer']}: {session['asked']} items compared, {session['matched']} held by both, "
                    f"{session['new_hits']} new hit(s)",
                    highlight=False,
                )

    @app.command("hits")
    def hits(node: NodeOpt, token: TokenOpt, as_json: JsonOpt = False) -> None:
        """Items another country also holds, with your case and, once they tell, theirs (newest first)."""
        answer = Client(node, token).json("GET", "/v1/hits")
        if as_json:
            out.print_json(json.dumps(answer))
        else:
            _print_hits(answer["items"])
