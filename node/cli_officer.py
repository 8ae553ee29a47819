"""Officer commands: ``send``, ``inbox``, ``show``, ``reply``, ``peers``; tables for people, ``--json`` for scripts.

They talk to the node's officer API with the officer's token (``NCPX_NODE`` and ``NCPX_TOKEN``), exactly as
any other client would: the CLI has no back door into the node.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from node.client import Client
from protocol.codes import CrimeArea, Handling, Tlp, Urgency
from protocol.errors import Malformed

out = Console()

NodeOpt = Annotated[str, typer.Option("--node", envvar="NCPX_NODE", help="Base URL of your node")]
TokenOpt = Annotated[str, typer.Option("--token", envvar="NCPX_TOKEN", help="Your officer token")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
AttachOpt = Annotated[list[Path] | None, typer.Option("--attach", help="File to attach (repeatable)")]


def _attachments(paths: list[Path] | None) -> list[dict[str, str]]:
    result = []
    for path in paths or []:
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = base64.urlsafe_b64encode(path.read_bytes()).rstrip(b"=").decode()
        result.append({"name": path.name, "media_type": media, "data": data})
    return result


def _text(text: str | None, text_file: Path | None) -> str:
    if text_file is not None:
        return text_file.read_text(encoding="utf-8")
    if text is None:
        raise Malformed("give the message with --text or --text-file")
    return text


def _local(stamp: str | None) -> str:
    """An RFC 3339 UTC time shown in the officer's local time zone."""
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M %Z")


FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from", help="The sending country, needed only when two countries used the same message id"
    ),
]


def printable(text: str) -> str:
    """A peer's text as it may reach a terminal: never read as markup (callers print it as ``Text``), and
    without control or formatting characters (escape sequences, bidi overrides), line breaks and tabs kept."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf"))


def _save_new(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``name`` in ``folder``, never over an existing file (``name (1).ext`` and so on)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for number in range(10_000):
        target = folder / (name if number == 0 else f"{stem} ({number}){suffix}")
        try:
            with target.open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            continue
        return target
    raise FileExistsError(f"{folder} already holds 10,000 files named like {name}")


def _message_path(message_id: str, sender: str | None, action: str = "") -> str:
    """The API path of a message (and of an action on it), naming its sender when one is given."""
    return f"/v1/messages/{message_id}{action}" + (f"?from={sender}" if sender else "")


def _state(item: dict[str, Any]) -> str:
    state = str(item["state"])
    return f"{state} [bold red](overdue)[/]" if item.get("overdue") else state


def _print_created(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table("message", "to", "state", "due", title=f"thread {result['thread']}")
    for m in result["messages"]:
        table.add_row(m["id"], m["recipient"], m["state"], _local(m.get("due_at")))
    out.print(table)


def register_officer(app: typer.Typer) -> None:
    """Attach the officer commands to ``app``."""

    @app.command("send")
    def send(
        node: NodeOpt,
        token: TokenOpt,
        to: Annotated[list[str], typer.Option("--to", help="Recipient country (repeatable)")],
        area: Annotated[CrimeArea, typer.Option("--area")],
        subject: Annotated[str, typer.Option("--subject")],
        urgency: Annotated[Urgency, typer.Option("--urgency")] = Urgency.NORMAL,
        text: Annotated[str | None, typer.Option("--text")] = None,
        text_file: Annotated[Path | None, typer.Option("--text-file")] = None,
        handling: Annotated[Handling, typer.Option("--handling")] = Handling.H0,
        handling_note: Annotated[str | None, typer.Option("--handling-note")] = None,
        tlp: Annotated[Tlp, typer.Option("--tlp")] = Tlp.AMBER,
        subjects: Annotated[
            Path | None, typer.Option("--subjects", help="JSON file of structured subjects of interest")
        ] = None,
        attach: AttachOpt = None,
        idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Send an enquiry to one or more countries (one sealed message each, one thread)."""
        body: dict[str, Any] = {
            "recipients": to,
            "area": area.value,
            "urgency": urgency.value,
            "subject": subject,
            "text": _text(text, text_file),
            "handling": handling.value,
            "tlp": tlp.value,
            "attachments": _attachments(attach),
        }
        if handling_note:
            body["handling_note"] = handling_note
        if subjects is not None:
            body["subjects"] = json.loads(subjects.read_text(encoding="utf-8"))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        _print_created(Client(node, token).json("POST", "/v1/enquiries", body, headers=headers), as_json)

    @app.command("inbox")
    def inbox(
        node: NodeOpt,
        token: TokenOpt,
        folder: Annotated[str, typer.Option("--folder", help="inbox, sent or outbox")] = "inbox",
        peer: Annotated[str | None, typer.Option("--peer")] = None,
        state: Annotated[str | None, typer.Option("--state")] = None,
        area: Annotated[str | None, typer.Option("--area")] = None,
        overdue: Annotated[
            bool, typer.Option("--overdue", help="Only unanswered past their deadline")
        ] = False,
        limit: Annotated[int, typer.Option("--limit")] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """List a folder, newest first."""
        query = {
            "folder": folder,
            "peer": peer,
            "state": state,
            "area": area,
            "overdue": "true" if overdue else None,
            "limit": limit,
        }
        page = Client(node, token).json("GET", "/v1/messages", query=query)
        if as_json:
            out.print_json(json.dumps(page))
            return
        table = Table(title=folder)
        table.add_column("id", no_wrap=True, min_width=36)
        for column in ("kind", "from", "to", "area", "urgency", "created", "due", "state"):
            table.add_column(column)
        for item in page["items"]:
            table.add_row(
                item["id"],
                item["kind"],
                item["sender"],
                item["recipient"],
                item["area"],
                item["urgency"],
                _local(item["created_at"]),
                _local(item.get("due_at")),
                _state(item),
            )
        out.print(table)
        if page.get("next"):
            out.print("more: repeat with a higher --limit")

    @app.command("show")
    def show(
        node: NodeOpt,
        token: TokenOpt,
        message_id: Annotated[str, typer.Argument(help="Message id")],
        mark_read: Annotated[bool, typer.Option("--mark-read/--no-mark-read")] = True,
        save_attachments: Annotated[Path | None, typer.Option("--save-attachments", help="Folder")] = None,
        sender: FromOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Open a message with its thread; a received one is marked read (the sender is told)."""
        client = Client(node, token)
        path = _message_path(message_id, sender)
        thread = client.json("GET", path)
        if mark_read and thread["message"]["folder"] == "inbox" and not thread["message"].get("read_at"):
            client.json("POST", _message_path(message_id, sender, "/read"))
            thread = client.json("GET", path)
        if save_attachments is not None:
            save_attachments.mkdir(parents=True, exist_ok=True)
            for item in thread["message"]["attachments"]:
                _, raw, _ = client.request("GET", item["url"])
                _save_new(save_attachments, Path(item["name"]).name, raw)
        if as_json:
            out.print_json(json.dumps(thread))
            return
        opened = thread["message"]
        for message in thread["thread"]:
            here = message["id"] == opened["id"] and message["sender"] == opened["sender"]
            out.rule(
                f"{'>' if here else ' '} {message['kind']} {message['sender']} → {message['recipient']}  "
                f"{message['id']}"
            )
            out.print(
                f"state: {_state(message)}   area: {message['area']}   urgency: {message['urgency']}",
                highlight=False,
            )
            out.print(f"created: {_local(message['created_at'])}   due: {_local(message.get('due_at'))}")
            if message.get("receipt"):
                receipt = message["receipt"]
                out.print(f"receipt: signed by {receipt['receiver']} at {_local(receipt['received_at'])}")
            if not here:
                out.print(Text(f"(ncpx show {message['id']} opens it)", style="dim"))
                continue
            out.print(f"handling: {opened['handling']}   {opened['tlp']}", highlight=False)
            if opened.get("subject"):
                out.print(Text(printable(opened["subject"]), style="bold"))
            out.print(Text(printable(opened["text"])))
            for item in opened["attachments"]:
                out.print(
                    Text(
                        f"attachment {item['index']}: {printable(item['name'])} "
                        f"({item['media_type']}, {item['size']} bytes)"
                    )
                )

    @app.command("reply")
    def reply(
        node: NodeOpt,
        token: TokenOpt,
        message_id: Annotated[str, typer.Argument(help="The enquiry to answer")],
        text: Annotated[str | None, typer.Option("--text")] = None,
        text_file: Annotated[Path | None, typer.Option("--text-file")] = None,
        handling: Annotated[Handling, typer.Option("--handling")] = Handling.H0,
        tlp: Annotated[Tlp, typer.Option("--tlp")] = Tlp.AMBER,
        attach: AttachOpt = None,
        sender: FromOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Answer a received enquiry."""
        body = {
            "text": _text(text, text_file),
            "handling": handling.value,
            "tlp": tlp.value,
            "attachments": _attachments(attach),
        }
        result = Client(node, token).json("POST", _message_path(message_id, sender, "/replies"), body)
        _print_created(result, as_json)

    outcome_app = typer.Typer(
        help="This country's outcome return for a Period of Action.", no_args_is_help=True
    )
    app.add_typer(outcome_app, name="outcome")

    @outcome_app.command("submit")
    def outcome_submit(
        node: NodeOpt,
        token: TokenOpt,
        period: Annotated[str, typer.Option("--period", help="Period name, e.g. jpa-2015")],
        persons_assisted: Annotated[int | None, typer.Option("--persons-assisted")] = None,
        search_warrants: Annotated[int | None, typer.Option("--search-warrants")] = None,
        suspects_identified: Annotated[int | None, typer.Option("--suspects-identified")] = None,
        arrests: Annotated[int | None, typer.Option("--arrests")] = None,
        new_investigations: Annotated[int | None, typer.Option("--new-investigations")] = None,
        awareness_activities: Annotated[int | None, typer.Option("--awareness-activities")] = None,
        trainings_held: Annotated[int | None, typer.Option("--trainings-held")] = None,
        officers_trained: Annotated[int | None, typer.Option("--officers-trained")] = None,
        highlights_file: Annotated[
            Path | None,
            typer.Option("--highlights-file", help="Free text, sealed so only the coordinator reads it"),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Sign and send this country's figures (a later submission replaces an earlier one). A figure left out
        is sent as not reported, never as 0."""
        given = {
            "persons_assisted": persons_assisted,
            "search_warrants": search_warrants,
            "suspects_identified": suspects_identified,
            "arrests": arrests,
            "new_investigations": new_investigations,
            "awareness_activities": awareness_activities,
            "trainings_held": trainings_held,
            "officers_trained": officers_trained,
        }
        body: dict[str, Any] = {
            "period": period,
            "figures": {k: v for k, v in given.items() if v is not None},
        }
        if highlights_file is not None:
            body["highlights"] = highlights_file.read_text(encoding="utf-8")
        result = Client(node, token).json("POST", "/v1/outcomes", body)
        if as_json:
            out.print_json(json.dumps(result))
            return
        table = Table(
            "figure", "count", title=f"{result['participant']} return for {result['period']} (queued)"
        )
        for key, value in result["figures"].items():
            table.add_row(key.replace("_", " "), str(value))
        out.print(table)
        if result["highlights_sealed"]:
            out.print("highlights sealed to the coordinator")

    @app.command("peers")
    def peers(node: NodeOpt, token: TokenOpt, as_json: JsonOpt = False) -> None:
        """Roster members with reachability and backlog."""
        view = Client(node, token).json("GET", "/v1/peers")
        if as_json:
            out.print_json(json.dumps(view))
            return
        table = Table(
            "id",
            "name",
            "role",
            "status",
            "reachable",
            "backlog",
            "last seen",
            "last error",
            title=f"{view['me']}: roster version {view['roster_version']}",
        )
        for p in view["peers"]:
            reachable = {True: "yes", False: "no", None: "unknown"}[p.get("reachable")]
            table.add_row(
                p["id"],
                p["name"],
                p["role"],
                p["status"],
                reachable,
                str(p["backlog"]),
                _local(p.get("last_seen_at")),
                p.get("last_error") or "",
            )
        out.print(table)
