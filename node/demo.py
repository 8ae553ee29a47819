"""``make demo``: two country nodes as separate processes on loopback exchange an enquiry and its answer.

Thailand's officer asks Malaysia about a vessel and a phone number; Malaysia's officer reads and answers. The
demo prints the exchange with its signed receipts and exits 0 only if every state and receipt checked out.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from node.client import Client
from node.topology import Topology, ncpx, wait_until

console = Console(width=150)


def _state(client: Client, message_id: str, folder: str, wanted: str) -> dict[str, Any] | None:
    page = client.json("GET", "/v1/messages", query={"folder": folder, "limit": 500})
    for item in page["items"]:
        if item["id"] == message_id and item["state"] == wanted:
            return dict(item)
    return None


def run(root: Path) -> list[str]:
    """Run the exchange; returns the list of failed checks (empty when all passed)."""
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        console.print(("[green]✓[/] " if ok else "[red]✗[/] ") + what)
        if not ok:
            failures.append(what)

    topology = Topology(root, ["TH", "MY"])
    console.rule("setting up: roster authority, two nodes (TH, MY), one officer each")
    topology.create()
    topology.start()
    th, my = topology.nodes["TH"].client(), topology.nodes["MY"].client()
    try:
        console.rule("TH asks MY about a vessel (urgent, information held directly: due in 8 hours)")
        created = th.json(
            "POST",
            "/v1/enquiries",
            {
                "recipients": ["MY"],
                "area": "people_smuggling",
                "urgency": "urgent_direct",
                "subject": "Vessel suspected of carrying 40 migrants towards Langkawi",
                "text": "Please confirm the vessel's last port of call and the registered owner.",
                "handling": "H2",
                "tlp": "TLP:AMBER",
                "evaluation": {"source": "B", "information": "2"},
                "subjects": {
                    "vessels": [{"name": "KM Harapan Jaya", "imo": "9074729", "flag": "ID"}],
                    "phones": [{"number": "+60123456789", "note": "skipper"}],
                },
                "attachments": [
                    {"name": "photo.txt", "media_type": "text/plain", "data": "dmVzc2VsIHBob3Rv"}
                ],
            },
            headers={"Idempotency-Key": "demo-enquiry-1"},
        )
        enquiry = created["messages"][0]["id"]
        check(bool(created["messages"][0]["due_at"]), f"enquiry {enquiry} queued with a deadline")
        delivered = wait_until(lambda: _state(th, enquiry, "sent", "delivered"), 30, "the signed receipt")
        check(delivered["delivered_at"] is not None, "TH holds MY's signed receipt: state delivered")

        console.rule("MY's officer opens the inbox and reads the enquiry")
        _cli(topology, "MY", "inbox")
        inbox = my.json("GET", "/v1/messages", query={"folder": "inbox"})
        check(any(i["id"] == enquiry for i in inbox["items"]), "the enquiry is in MY's inbox")
        opened = my.json("GET", f"/v1/messages/{enquiry}")["message"]
        check(
            opened["subjects"]["vessels"][0]["imo"] == "9074729",
            "MY opens the sealed body: vessel IMO intact",
        )
        check(opened["attachments"][0]["size"] == len(b"vessel photo"), "attachment intact")
        my.json("POST", f"/v1/messages/{enquiry}/read")
        wait_until(lambda: _state(th, enquiry, "sent", "read"), 30, "the read notice")
        check(True, "TH sees that MY read it: state read")

        console.rule("MY answers; the reply threads under the enquiry")
        reply = my.json(
            "POST",
            f"/v1/messages/{enquiry}/replies",
            {"text": "Last port of call: Belawan. Owner identified; details follow.", "handling": "H1"},
        )["messages"][0]["id"]
        wait_until(lambda: _state(my, reply, "sent", "delivered"), 30, "the reply's receipt")
        check(True, "MY holds TH's signed receipt for the reply")
        wait_until(lambda: _state(th, enquiry, "sent", "answered"), 30, "the enquiry to show answered")
        check(True, "TH's enquiry shows answered")
        thread = th.json("GET", f"/v1/messages/{reply}")
        check(
            [m["kind"] for m in thread["thread"]] == ["enquiry", "reply"]
            and thread["message"]["text"].startswith("Last"),
            "TH reads the reply in the enquiry's thread",
        )
        _print_exchange(thread["thread"])
        _cli(topology, "TH", "inbox", "--folder", "sent")
    finally:
        topology.stop()
    return failures


def _cli(topology: Topology, node_id: str, *args: str) -> None:
    """Show what an officer sees with the ncpx command (the same token, the same API)."""
    node = topology.nodes[node_id]
    console.print(f"[dim]$ ncpx {' '.join(args)}    # officer at {node_id}[/]")
    env = {"NCPX_NODE": node.url, "NCPX_TOKEN": node.token, "COLUMNS": "150"}
    console.print(ncpx(*args, env=env), end="", markup=False, highlight=False)


def _print_exchange(thread: list[dict[str, Any]]) -> None:
    table = Table(
        "kind", "from → to", "state", "created", "delivered", "receipt signed by", "envelope digest"
    )
    for m in thread:
        receipt = m.get("receipt") or {}
        table.add_row(
            m["kind"],
            f"{m['sender']} → {m['recipient']}",
            m["state"],
            m["created_at"],
            m.get("delivered_at") or "",
            f"{receipt.get('receiver', '')} ({receipt.get('receiver_key', '')})",
            m["envelope_digest"][:16] + "…",
        )
    console.print(table)


def main() -> None:
    """Run the demo in a fresh folder; keep the folder only when something failed."""
    root = Path(tempfile.mkdtemp(prefix="ncpx-demo-"))
    try:
        failures = run(root)
    except Exception as exc:
        console.print(f"[red]demo failed:[/] {exc}  (node folders and logs kept in {root})")
        sys.exit(1)
    if failures:
        console.print(f"[red]{len(failures)} checks failed[/]; node folders and logs kept in {root}")
        sys.exit(1)
    console.print("[bold green]all checks passed[/]: end-to-end encrypted, signed, receipted, answered")
    import shutil

    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
