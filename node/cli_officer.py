"""Officer commands: ``send``, ``inbox``, ``sent``, ``show``, ``reply``, ``notice``, ``peers``; tables for people,
``--json`` for scripts.

They talk to the node's officer API with the officer's token (``NCPX_NODE`` and ``NCPX_TOKEN``), exactly as
any other client would: the CLI has no back door into the node.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from node.cli_tables import WideOpt, emit, grid
from node.client import Client
from protocol.codes import (
    EVALUATION_MEANINGS,
    HANDLING_MEANINGS,
    CrimeArea,
    Handling,
    InformationAccuracy,
    LabourSector,
    SourceReliability,
    Tlp,
    Urgency,
)
from protocol.errors import Malformed, NcpxError, error_for_code
from protocol.schedule import GAVE_UP

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


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"the {what} {path} is not UTF-8 text: save it as UTF-8 and try again") from exc


def _text(text: str | None, text_file: Path | None) -> str:
    if text_file is not None:
        return _read_text(text_file, "text file")
    if text is None:
        raise Malformed("give the message with --text or --text-file")
    return text


def _subjects(path: Path) -> Any:
    """The ``--subjects`` file: one JSON object of lists (see docs/examples/subjects.json). Its fields are
    checked by the node, which names the subject and the rule when one is wrong."""
    try:
        data = json.loads(_read_text(path, "subjects file"))
    except json.JSONDecodeError as exc:
        raise Malformed(
            f"the subjects file {path} is not valid JSON: {exc.msg[:1].lower()}{exc.msg[1:]} at line "
            f"{exc.lineno}, column {exc.colno}"
        ) from exc
    if not isinstance(data, dict):
        raise Malformed(
            f"the subjects file {path} must hold one JSON object of lists, such as "
            '{"phones": [{"number": "+66812345678"}]}; see docs/examples/subjects.json'
        )
    return data


_EVALUATION = re.compile(r"^([ABCX])([1-4])$", re.IGNORECASE)


def _evaluation(grade: str) -> dict[str, str]:
    """``B2`` as the 4x4 evaluation it stands for (source reliability, then information accuracy)."""
    match = _EVALUATION.match(grade.strip())
    if match is None:
        raise Malformed(
            "--evaluation is the 4x4 grade: a source letter (A, B, C or X) then an information digit "
            "(1 to 4), e.g. B2"
        )
    return {"source": match.group(1).upper(), "information": match.group(2)}


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


def reason(last_error: str) -> str:
    """Why a message waits or was not delivered, as a sentence: the node stores either a sentence or the
    code the peer gave (``too_large``, ``too_large; will retry``), which is told by its error's title."""
    code, retry, _ = last_error.partition("; will retry")
    if not re.fullmatch(r"[a-z_]+", code):
        return last_error
    if code == GAVE_UP:
        told = "no receipt came back before the give-up age"
    elif code == NcpxError.code:
        told = "the peer's answer proved nothing about it"
    else:
        title = error_for_code(code).title
        told = f"the peer refused it: {title[:1].lower()}{title[1:]}"
    return told + ("; will retry" if retry else "")


Peers = dict[str, dict[str, Any]]


def _peers(client: Client, items: list[dict[str, Any]]) -> Peers:
    """The peers' reachability, fetched only when a message waits (it explains why)."""
    if not any(i["state"] in ("queued", "sent") and i.get("last_error") for i in items):
        return {}
    return {p["id"]: p for p in client.json("GET", "/v1/peers")["peers"]}


def _state(item: dict[str, Any], peers: Peers) -> Text:
    """A message's state as people need it: a message nothing was handed over for is waiting, not sent."""
    state, error = str(item["state"]), item.get("last_error")
    shown = state
    if state in ("queued", "sent") and error:
        peer = peers.get(item["peer"], {})
        if peer.get("reachable") is False and error.startswith("peer unreachable"):
            since = peer.get("unreachable_since")
            shown = (
                f"waiting (peer unreachable since {_local(since)})" if since else "waiting (peer unreachable)"
            )
        else:
            shown = f"waiting ({reason(error)})"
    elif state == "undeliverable" and error:
        shown = f"undeliverable ({reason(error)})"
    text = Text(shown)
    if item.get("overdue"):
        text.append(" (overdue)", style="bold red")
    return text


def _print_created(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = grid("message", "to", "state", "due", title=f"thread {result['thread']}", ids=("message",))
    for m in result["messages"]:
        table.add_row(m["id"], m["recipient"], m["state"], _local(m.get("due_at")))
    emit(out, table, wide=False)


def _cell(value: Any) -> Text:
    """A value a peer wrote, for a table cell: never read as markup, nothing that drives the terminal."""
    return Text(printable("" if value is None else str(value)))


def _subject_tables(subjects: dict[str, Any]) -> list[Table]:
    """One table per kind of structured subject the sender gave (none for kinds left empty)."""
    tables = []
    persons = subjects.get("persons") or []
    if persons:
        table = grid(
            "family name", "given names", "born", "nationality", "aliases", "documents", title="persons"
        )
        for p in persons:
            table.add_row(
                *map(
                    _cell,
                    (p["family_name"], p.get("given_names"), p.get("date_of_birth"), p.get("nationality")),
                ),
                _cell(", ".join(p.get("aliases") or [])),
                _cell("\n".join(_document(d) for d in p.get("travel_documents") or [])),
            )
        tables.append(table)
    layouts: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
        ("phones", ("number", "note"), ("number", "note")),
        (
            "travel_documents",
            ("number", "type", "issued by", "expires"),
            ("number", "type", "issuing_country", "expires_on"),
        ),
        ("vessels", ("name", "IMO number", "flag"), ("name", "imo", "flag")),
        ("bank_accounts", ("account", "bank", "country", "holder"), ("account", "bank", "country", "holder")),
    ]
    for kind, headings, keys in layouts:
        if subjects.get(kind):
            table = grid(*headings, title=kind.replace("_", " "))
            for entry in subjects[kind]:
                table.add_row(*(_cell(entry.get(key)) for key in keys))
            tables.append(table)
    if subjects.get("addresses"):
        table = grid("address", "city", "country", title="addresses")
        for a in subjects["addresses"]:
            table.add_row(_cell("\n".join(a["lines"])), _cell(a.get("city")), _cell(a.get("country")))
        tables.append(table)
    return tables


def _document(document: dict[str, Any]) -> str:
    issued = f" {document['issuing_country']}" if document.get("issuing_country") else ""
    expires = f", expires {document['expires_on']}" if document.get("expires_on") else ""
    return f"{document['type']}{issued} {document['number']}{expires}"


def _print_content(opened: dict[str, Any]) -> None:
    """Everything the sender wrote: the marking and its restrictions first, then subject, text and subjects."""
    handling = opened["handling"]
    out.print(Text.assemble(("handling: ", "bold"), f"{handling} ({HANDLING_MEANINGS[Handling(handling)]})"))
    if opened.get("handling_note"):
        out.print(Text.assemble(("handling note: ", "bold"), printable(opened["handling_note"])))
    out.print(Text.assemble(("sharing: ", "bold"), opened["tlp"]))
    evaluation = opened.get("evaluation")
    if evaluation:
        source, information = evaluation["source"], evaluation["information"]
        meaning = (
            f"{EVALUATION_MEANINGS[SourceReliability(source)]}; "
            f"{EVALUATION_MEANINGS[InformationAccuracy(information)]}"
        )
        out.print(Text.assemble(("evaluation: ", "bold"), f"{source}{information} ({meaning})"))
    if opened.get("sector"):
        out.print(Text.assemble(("sector: ", "bold"), opened["sector"]))
    if opened.get("subject"):
        out.print(Text(printable(opened["subject"]), style="bold"))
    out.print(Text(printable(opened["text"])))
    for table in _subject_tables(opened["subjects"]):
        emit(out, table, wide=False)
    for item in opened["attachments"]:
        out.print(
            Text(
                f"attachment {item['index']}: {printable(item['name'])} "
                f"({item['media_type']}, {item['size']} bytes)"
            )
        )


PeerOpt = Annotated[str | None, typer.Option("--peer")]
StateOpt = Annotated[str | None, typer.Option("--state")]
AreaOpt = Annotated[str | None, typer.Option("--area")]
KindOpt = Annotated[str | None, typer.Option("--kind", help="enquiry, reply or notice")]
OverdueOpt = Annotated[bool, typer.Option("--overdue", help="Only unanswered past their deadline")]
LimitOpt = Annotated[int, typer.Option("--limit")]
SearchOpt = Annotated[
    str | None,
    typer.Option(
        "--search", help="Only messages holding these words (subject, text, note, subjects, file names)"
    ),
]


def _print_notice(opened: dict[str, Any]) -> None:
    """What a deconfliction notice adds to a message: whose case, whom to call, and the operation if any."""
    if opened.get("case_reference"):
        out.print(Text(f"case: {printable(opened['case_reference'])}"))
    if opened.get("contact"):
        out.print(Text(f"contact before acting: {printable(opened['contact'])}"))
    operation = opened.get("operation")
    if operation:
        what = f"{operation['what']} " if operation.get("what") else ""
        out.print(
            Text(
                f"operation: {printable(what)}at {printable(operation['place'])}, {printable(operation['window'])}"
            )
        )
    if (
        opened.get("kind") == "notice"
        and opened.get("folder") == "inbox"
        and opened.get("state") != "acknowledged"
    ):
        out.print(Text(f"(ncpx notice ack {opened['id']} acknowledges it)", style="dim"))


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
        sector: Annotated[
            LabourSector | None, typer.Option("--sector", help="Labour sector (with thb_labour_exploitation)")
        ] = None,
        evaluation: Annotated[
            str | None,
            typer.Option("--evaluation", help="4x4 grade: source A/B/C/X, information 1-4, e.g. B2"),
        ] = None,
        subjects: Annotated[
            Path | None,
            typer.Option("--subjects", help="JSON file of structured subjects (docs/examples/subjects.json)"),
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
        if sector is not None:
            body["sector"] = sector.value
        if evaluation is not None:
            body["evaluation"] = _evaluation(evaluation)
        if subjects is not None:
            body["subjects"] = _subjects(subjects)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        _print_created(Client(node, token).json("POST", "/v1/enquiries", body, headers=headers), as_json)

    @app.command("inbox")
    def inbox(
        node: NodeOpt,
        token: TokenOpt,
        folder: Annotated[str, typer.Option("--folder", help="inbox, sent or outbox")] = "inbox",
        peer: PeerOpt = None,
        state: StateOpt = None,
        area: AreaOpt = None,
        kind: KindOpt = None,
        overdue: OverdueOpt = False,
        search: SearchOpt = None,
        limit: LimitOpt = 50,
        wide: WideOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List a folder, newest first, with each message's subject; listing never marks anything read."""
        filters = {"peer": peer, "state": state, "area": area, "kind": kind, "q": search}
        _listing(node, token, folder, filters, overdue, limit, wide, as_json)

    @app.command("sent")
    def sent(
        node: NodeOpt,
        token: TokenOpt,
        peer: PeerOpt = None,
        state: StateOpt = None,
        area: AreaOpt = None,
        kind: KindOpt = None,
        overdue: OverdueOpt = False,
        search: SearchOpt = None,
        limit: LimitOpt = 50,
        wide: WideOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List what this country sent, newest first, with each message's state (``inbox --folder sent``)."""
        filters = {"peer": peer, "state": state, "area": area, "kind": kind, "q": search}
        _listing(node, token, "sent", filters, overdue, limit, wide, as_json)

    def _listing(
        node: str,
        token: str,
        folder: str,
        filters: dict[str, str | None],
        overdue: bool,
        limit: int,
        wide: bool,
        as_json: bool,
    ) -> None:
        query = {
            "folder": folder,
            **filters,
            "overdue": "true" if overdue else None,
            "limit": limit,
            "subject": "true",
        }
        client = Client(node, token)
        page = client.json("GET", "/v1/messages", query=query)
        while filters.get("q") and page.get("next") and len(page["items"]) < limit:
            # A search opens a bounded number of messages per request: go on from where it stopped.
            further = client.json("GET", "/v1/messages", query={**query, "cursor": page["next"]})
            page = {
                **further,
                "items": page["items"] + further["items"],
                "searched": page["searched"] + further["searched"],
            }
        if as_json:
            out.print_json(json.dumps(page))
            return
        peers = _peers(client, page["items"])
        columns = ["id", "from", "to", "subject", "due", "state"]
        if wide:
            columns[3:3] = ["kind", "area", "urgency", "created"]
        table = grid(*columns, title=folder, ids=("id",))
        for item in page["items"]:
            cells = {
                "id": item["id"],
                "kind": item["kind"],
                "from": item["sender"],
                "to": item["recipient"],
                "subject": _cell(item.get("subject")),
                "area": item["area"],
                "urgency": item["urgency"],
                "created": _local(item["created_at"]),
                "due": _local(item.get("due_at")),
                "state": _state(item, peers),
            }
            table.add_row(*(cells[c] for c in columns))
        emit(out, table, wide)
        if page.get("searched") is not None:
            out.print(f"searched the {page['searched']} newest messages that fit the filters")
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
        peers = _peers(client, thread["thread"])
        for message in thread["thread"]:
            here = message["id"] == opened["id"] and message["sender"] == opened["sender"]
            out.print(
                Text(f"{'>' if here else ' '} {message['kind']} {message['sender']} → {message['recipient']}")
            )
            out.print(Text(f"  {message['id']}"), soft_wrap=True)  # whole on one line, to be copied
            out.print(
                Text.assemble(
                    "state: ",
                    _state(message, peers),
                    f"   area: {message['area']}   urgency: {message['urgency']}",
                )
            )
            out.print(f"created: {_local(message['created_at'])}   due: {_local(message.get('due_at'))}")
            if message.get("receipt"):
                receipt = message["receipt"]
                out.print(f"receipt: signed by {receipt['receiver']} at {_local(receipt['received_at'])}")
            if not here:
                out.print(Text(f"(ncpx show {message['id']} opens it)", style="dim"), soft_wrap=True)
                continue
            _print_content(opened)
            _print_notice(opened)
            out.rule()

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

    notice_app = typer.Typer(
        help="Deconfliction notices: tell other countries you are active on targets or an operation.",
        no_args_is_help=True,
    )
    app.add_typer(notice_app, name="notice")

    @notice_app.command("send")
    def notice_send(
        node: NodeOpt,
        token: TokenOpt,
        to: Annotated[str, typer.Option("--to", help="Countries, comma-separated (MY,PH), or all")],
        subject: Annotated[str, typer.Option("--subject")],
        case_reference: Annotated[str, typer.Option("--case-ref", help="Your case reference")],
        contact: Annotated[str, typer.Option("--contact", help="Whom to call before acting")],
        targets: Annotated[
            Path | None, typer.Option("--targets", help="JSON file of structured subjects (as for send)")
        ] = None,
        operation_place: Annotated[str | None, typer.Option("--operation-place")] = None,
        operation_window: Annotated[
            str | None, typer.Option("--operation-window", help="When, with its time zone")
        ] = None,
        operation_what: Annotated[
            str | None,
            typer.Option("--operation-what", help="raid, arrest, surveillance, undercover, boarding"),
        ] = None,
        operation_ref: Annotated[str | None, typer.Option("--operation-ref")] = None,
        area: Annotated[CrimeArea, typer.Option("--area")] = CrimeArea.OTHER,
        urgency: Annotated[Urgency, typer.Option("--urgency")] = Urgency.NORMAL,
        text: Annotated[str | None, typer.Option("--text")] = None,
        text_file: Annotated[Path | None, typer.Option("--text-file")] = None,
        handling: Annotated[Handling, typer.Option("--handling")] = Handling.H0,
        handling_note: Annotated[str | None, typer.Option("--handling-note")] = None,
        tlp: Annotated[Tlp, typer.Option("--tlp")] = Tlp.AMBER,
        idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Send a deconfliction notice: one sealed message to each country, each acknowledged by its officers."""
        recipients: list[str] | str = (
            "all" if to.strip().lower() == "all" else [c.strip() for c in to.split(",") if c.strip()]
        )
        body: dict[str, Any] = {
            "recipients": recipients,
            "area": area.value,
            "urgency": urgency.value,
            "subject": subject,
            "case_reference": case_reference,
            "contact": contact,
            "text": _text(text, text_file),
            "handling": handling.value,
            "tlp": tlp.value,
        }
        if handling_note:
            body["handling_note"] = handling_note
        if targets is not None:
            body["subjects"] = json.loads(targets.read_text(encoding="utf-8"))
        if operation_place or operation_window:
            body["operation"] = {
                "place": operation_place,
                "window": operation_window,
                "what": operation_what,
                "reference": operation_ref,
            }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        _print_created(Client(node, token).json("POST", "/v1/notices", body, headers=headers), as_json)

    @notice_app.command("ack")
    def notice_ack(
        node: NodeOpt,
        token: TokenOpt,
        message_id: Annotated[str, typer.Argument(help="The received notice")],
        sender: FromOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Acknowledge a received notice (its sender sees it acknowledged)."""
        result = Client(node, token).json("POST", _message_path(message_id, sender, "/acknowledge"))
        if as_json:
            out.print_json(json.dumps(result))
            return
        out.print(f"{result['id']}: {result['state']} at {_local(result.get('acknowledged_at'))}")

    @notice_app.command("drafts")
    def notice_drafts(node: NodeOpt, token: TokenOpt, as_json: JsonOpt = False) -> None:
        """Draft notices this node prepared (from a hit, say), waiting for an officer to send or discard them."""
        drafts = Client(node, token).json("GET", "/v1/notices/drafts")
        if as_json:
            out.print_json(json.dumps(drafts))
            return
        table = Table(title="draft notices")
        table.add_column("draft", no_wrap=True, min_width=36)
        for column in ("to", "subject", "case", "from", "created"):
            table.add_column(column)
        for d in drafts["items"]:
            table.add_row(
                d["id"],
                d["recipient"],
                Text(printable(d["notice"]["subject"])),
                Text(printable(d["notice"]["case_reference"])),
                Text(printable(d.get("origin") or "")),
                _local(d["created_at"]),
            )
        out.print(table)

    @notice_app.command("send-draft")
    def notice_send_draft(
        node: NodeOpt,
        token: TokenOpt,
        draft_id: Annotated[str, typer.Argument(help="The draft to send")],
        as_json: JsonOpt = False,
    ) -> None:
        """Send a draft notice to its recipient."""
        _print_created(Client(node, token).json("POST", f"/v1/notices/drafts/{draft_id}/send", {}), as_json)

    @notice_app.command("discard")
    def notice_discard(
        node: NodeOpt, token: TokenOpt, draft_id: Annotated[str, typer.Argument(help="The draft to discard")]
    ) -> None:
        """Discard a draft notice without sending it."""
        Client(node, token).request("DELETE", f"/v1/notices/drafts/{draft_id}")
        out.print(f"draft {draft_id} discarded")

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
        table = grid(
            "figure", "count", title=f"{result['participant']} return for {result['period']} (queued)"
        )
        for key, value in result["figures"].items():
            table.add_row(key.replace("_", " "), str(value))
        out.print(table)
        if result["highlights_sealed"]:
            out.print("highlights sealed to the coordinator")

    @app.command("peers")
    def peers(node: NodeOpt, token: TokenOpt, wide: WideOpt = False, as_json: JsonOpt = False) -> None:
        """Roster members with reachability and backlog."""
        view = Client(node, token).json("GET", "/v1/peers")
        if as_json:
            out.print_json(json.dumps(view))
            return
        table = grid(
            "id",
            "name",
            "role",
            "url",
            "status",
            "reachable",
            "backlog",
            "last seen",
            "last error",
            title=f"{view['me']}: roster version {view['roster_version']}",
        )
        for p in view["peers"]:
            reachable = {True: "yes", False: "no", None: "unknown"}[p.get("reachable")]
            if p.get("unreachable_since"):
                reachable += f", since {_local(p['unreachable_since'])}"
            table.add_row(
                p["id"],
                _cell(p["name"]),
                p["role"],
                p["url"],
                p["status"],
                reachable,
                str(p["backlog"]),
                _local(p.get("last_seen_at")),
                p.get("last_error") or "",
            )
        emit(out, table, wide)
