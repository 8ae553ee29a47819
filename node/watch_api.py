"""Officer API for deconfliction's own lists: the watch list (``/v1/watchlist``) and planned operations
(``/v1/operations``).

Everything an officer adds is checked and turned into matching tokens by :mod:`protocol.watchlist` before
it is stored, so a list never holds an entry that matching would silently skip. Reading the list is audited
like changing it: a watch list says whom a country is after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, RootModel

from node.federation_api import MATCHER, SERVICE
from node.officer_api import OFFICER, OFFICERS
from node.problems import problem_response, read_body
from node.storage.watchlist import StoredEntry, StoredOperation, Watchlist
from protocol.encoding import parse_json
from protocol.errors import InvalidRows, Malformed, NotFound
from protocol.ids import check_uuid
from protocol.models import Model
from protocol.watchlist import NewEntry, NewOperation, parse_csv, parse_entry, parse_operation, to_csv


class EntryView(Model):
    """A watch-list entry as stored, with the tokens it is matched by."""

    id: str
    entry: NewEntry
    tokens: list[str]
    expired: bool
    """Its last day has passed: kept on the list, no longer matched."""
    officer: str
    created_at: str


class Entries(Model):
    """The watch list: every entry not removed, oldest first."""

    items: list[EntryView]


class Imported(Model):
    """A CSV import that succeeded: every row became an entry, in file order."""

    imported: int
    ids: list[str]


class Removed(Model):
    """An entry taken off the list."""

    id: str
    removed_at: str


class OperationView(Model):
    """A planned operation as stored; times are UTC, ``operation.zone`` says how its officers read them."""

    id: str
    operation: NewOperation
    token_count: int
    status: str
    officer: str
    created_at: str
    cancelled_at: str | None = None


class Operations(Model):
    """Every planned operation, cancelled and past ones included, oldest first."""

    items: list[OperationView]


def _json(model: Model, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=model.model_dump_json(exclude_none=True), content_type="application/json"
    )


def context(request: web.Request) -> tuple[Watchlist, str, datetime]:
    """The node's lists, the officer behind ``request`` and the time now."""
    service = request.config_dict[SERVICE]
    return Watchlist(service.mailbox.db), request[OFFICER], service.clock()


def path_id(request: web.Request) -> str:
    """The ``{id}`` of the path; one that is not an id names nothing on the list."""
    try:
        return check_uuid(request.match_info["id"])
    except Malformed as exc:
        raise NotFound from exc


async def audit(request: web.Request, action: str, target: str | None, outcome: str, now: datetime) -> None:
    """An entry in the audit table for the officer behind ``request``."""
    await request.config_dict[OFFICERS].audit(request[OFFICER], action, target, outcome, now)


def entry_view(stored: StoredEntry, now: datetime) -> EntryView:
    """A stored entry as the API and the console show it."""
    return EntryView(
        id=stored.id,
        entry=stored.entry,
        tokens=stored.tokens,
        expired=stored.entry.expires_on < now.date(),
        officer=stored.officer,
        created_at=stored.created_at,
    )


def operation_view(stored: StoredOperation) -> OperationView:
    """A stored operation as the API and the console show it."""
    return OperationView(
        id=stored.id,
        operation=stored.operation,
        token_count=stored.token_count,
        status=stored.status,
        officer=stored.officer,
        created_at=stored.created_at,
        cancelled_at=stored.cancelled_at,
    )


async def _body(request: web.Request) -> Any:
    raw = await read_body(request, request.config_dict[SERVICE].config.limits)
    return parse_json(raw, len(raw))


async def list_entries(request: web.Request) -> web.Response:
    """GET /v1/watchlist."""
    return _json(Entries(items=await listed_entries(request)))


async def listed_entries(request: web.Request) -> list[EntryView]:
    """The watch list, oldest first; audited, since a watch list says whom a country is after."""
    watchlist, _, now = context(request)
    stored = await watchlist.entries(now)
    await audit(request, "watch_list", None, "ok", now)
    return [entry_view(s, now) for s in stored]


def match_soon(request: web.Request) -> None:
    """A new item is matched with the peers this node matches with on its own, without waiting for the hour."""
    matcher = request.config_dict.get(MATCHER)
    if matcher is not None and request.config_dict[SERVICE].config.matching.auto:
        matcher.soon()


async def add_entry(request: web.Request) -> web.Response:
    """POST /v1/watchlist: one entry (JSON)."""
    return _json(await add_one(request, await _body(request)), 201)


async def add_one(request: web.Request, data: Any) -> EntryView:
    """Check, store (audited) and match soon one entry, given as decoded JSON; refused as :func:`parse_entry`
    refuses it."""
    watchlist, officer, now = context(request)
    entry, tokens = parse_entry(data, now.date())
    [entry_id] = await watchlist.add([(entry, tokens)], officer, "watch_add", now)
    match_soon(request)
    return entry_view(await watchlist.entry(entry_id), now)


async def remove_entry(request: web.Request) -> web.Response:
    """DELETE /v1/watchlist/{id}."""
    watchlist, officer, now = context(request)
    entry_id = path_id(request)
    removed_at = await watchlist.remove(entry_id, officer, now)
    return _json(Removed(id=entry_id, removed_at=removed_at))


async def import_entries(request: web.Request) -> web.Response:
    """POST /v1/watchlist/import: a CSV file (UTF-8), all rows or none."""
    watchlist, officer, now = context(request)
    raw = await read_body(request, request.config_dict[SERVICE].config.limits)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the file is not UTF-8 text; save the spreadsheet as CSV UTF-8") from None
    try:
        items = await asyncio.to_thread(parse_csv, text, now.date())  # a long file takes seconds
    except InvalidRows as exc:
        await audit(request, "watch_import", None, "refused", now)
        return problem_response(exc, rows=[{"row": number, "problem": text} for number, text in exc.rows])
    ids = await watchlist.add(items, officer, "watch_import", now)
    match_soon(request)
    return _json(Imported(imported=len(ids), ids=ids), 201)


async def export_entries(request: web.Request) -> web.Response:
    """GET /v1/watchlist/export: the entries still matched, as CSV the import reads back."""
    watchlist, _, now = context(request)
    stored = await watchlist.entries(now, include_expired=False)
    await audit(request, "watch_export", None, "ok", now)
    return web.Response(
        text=to_csv(s.entry for s in stored),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="watchlist.csv"'},
    )


async def list_operations(request: web.Request) -> web.Response:
    """GET /v1/operations."""
    return _json(Operations(items=await listed_operations(request)))


async def listed_operations(request: web.Request) -> list[OperationView]:
    """Every planned operation, oldest first; audited like the watch list."""
    watchlist, _, now = context(request)
    stored = await watchlist.operations()
    await audit(request, "operation_list", None, "ok", now)
    return [operation_view(s) for s in stored]


async def add_operation(request: web.Request) -> web.Response:
    """POST /v1/operations."""
    return _json(await plan(request, await _body(request)), 201)


async def plan(request: web.Request, data: Any) -> OperationView:
    """Check, store (audited) and match soon one operation, given as decoded JSON."""
    watchlist, officer, now = context(request)
    operation, tokens = await asyncio.to_thread(parse_operation, data, now)  # a wide window is many cells
    operation_id = await watchlist.add_operation(operation, tokens, officer, now)
    match_soon(request)
    return operation_view(await watchlist.operation(operation_id))


async def cancel_operation(request: web.Request) -> web.Response:
    """POST /v1/operations/{id}/cancel."""
    watchlist, officer, now = context(request)
    operation_id = path_id(request)
    await watchlist.cancel_operation(operation_id, officer, now)
    return _json(operation_view(await watchlist.operation(operation_id)))


class NewEntryBody(RootModel[NewEntry]):
    """A new watch-list entry: one of the kinds, chosen by ``kind``."""


OPENAPI_MODELS: tuple[type[BaseModel], ...] = (
    NewEntryBody,
    EntryView,
    Entries,
    Imported,
    Removed,
    NewOperation,
    OperationView,
    Operations,
)
"""What :func:`openapi_paths` refers to, for the document's schemas."""


def openapi_paths(
    op: Callable[..., dict[str, Any]],
    json_of: Callable[[type[BaseModel]], dict[str, Any]],
    path_id: dict[str, Any],
) -> dict[str, Any]:
    """This module's paths for the officer API's OpenAPI document (:mod:`node.openapi` lends its helpers)."""
    csv_body = {"text/csv": {"schema": {"type": "string"}}}
    return {
        "/v1/watchlist": {
            "get": op("The watch list", {"200": {"description": "Entries", "content": json_of(Entries)}}),
            "post": op(
                "Add a watch-list entry (refused unless it can be matched)",
                {"201": {"description": "Added", "content": json_of(EntryView)}},
                requestBody={"required": True, "content": json_of(NewEntryBody)},
            ),
        },
        "/v1/watchlist/{id}": {
            "delete": op(
                "Take an entry off the list",
                {"200": {"description": "Removed", "content": json_of(Removed)}},
                parameters=[path_id],
            )
        },
        "/v1/watchlist/import": {
            "post": op(
                "Import a CSV watch list, all rows or none (`invalid_rows` names each bad row)",
                {"201": {"description": "Imported", "content": json_of(Imported)}},
                requestBody={"required": True, "content": csv_body},
            )
        },
        "/v1/watchlist/export": {
            "get": op(
                "The entries still matched, as CSV", {"200": {"description": "CSV", "content": csv_body}}
            )
        },
        "/v1/operations": {
            "get": op(
                "Planned operations", {"200": {"description": "Operations", "content": json_of(Operations)}}
            ),
            "post": op(
                "Plan an operation (a point and radius or an address, a window)",
                {"201": {"description": "Planned", "content": json_of(OperationView)}},
                requestBody={"required": True, "content": json_of(NewOperation)},
            ),
        },
        "/v1/operations/{id}/cancel": {
            "post": op(
                "Call off a planned operation",
                {"200": {"description": "Cancelled", "content": json_of(OperationView)}},
                parameters=[path_id],
            )
        },
    }


def routes() -> list[web.RouteDef]:
    """The watch-list and operation routes, mounted under ``/v1`` next to :func:`node.officer_api.routes`."""
    return [
        web.get("/watchlist", list_entries),
        web.post("/watchlist", add_entry),
        web.post("/watchlist/import", import_entries),
        web.get("/watchlist/export", export_entries),
        web.delete("/watchlist/{id}", remove_entry),
        web.get("/operations", list_operations),
        web.post("/operations", add_operation),
        web.post("/operations/{id}/cancel", cancel_operation),
    ]
