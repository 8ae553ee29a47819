"""The console's deconfliction pages: hits and draft notices, the watch list, planned operations.

Each page is a view of the officer API's own functions (:mod:`node.matching_api`, :mod:`node.watch_api`,
:mod:`node.officer_api`), so what an officer adds here is checked, stored, matched and audited exactly as an
API client's request would be. The forms are flat (an address's lines in one box, a point as three numbers);
they are turned into the JSON the API takes, and a refusal names each field by its label, next to the field.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from node import matching_api, officer_api, watch_api
from node.console import forms
from node.console.views import (
    Signed,
    _form,
    _guarded,
    _redirect,
    _refused,
    _render,
    _service,
    t,
)
from protocol.codes import Handling
from protocol.errors import Malformed, NcpxError
from protocol.watchlist import ENTRY, KIND_NAMES, SHARED, SUBJECT_FIELDS, NewOperation, OperationKind

COUNTRIES = {"nationality", "region", "flag", "country"}
"""Fields that hold a country code: officers may type it in lower case."""
OPERATION_FIELDS = (
    "kind",
    "case_reference",
    "contact",
    "handling",
    "handling_note",
    "latitude",
    "longitude",
    "radius_m",
    "lines",
    "city",
    "country",
    "zone",
    "start",
    "end",
)


def _typed(form: forms.Form, names: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {name: v.strip() if isinstance(v := form.get(name), str) else "" for name in names}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _rule(error: ErrorDetails, field: str) -> str:
    """What is wrong with a field, in the officer's words (never the value typed)."""
    kind = error["type"]
    if kind in ("missing", "string_too_short", "list_too_short"):
        return t("problem.required")
    if kind in ("string_too_long", "too_long"):
        return t("problem.too_long")
    if field in COUNTRIES:
        return t("problem.country")
    if field == "zone":
        return t("problem.zone")
    if kind.startswith("datetime"):
        return t("problem.datetime")
    if kind.startswith("date"):
        return t("problem.date")
    if kind.startswith(("float", "greater", "less")):
        return t("problem.number")
    return t("problem.invalid")


def field_problems(exc: ValidationError) -> dict[str, str]:
    """Each validation error by the form field it belongs to. A rule across fields is put on the field
    that fixes it: the handling note (H3), the place (point or address) or the end of the window."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(p) for p in error["loc"] if isinstance(p, str)]
        if loc and loc[0] in KIND_NAMES:
            loc.pop(0)
        if loc:
            found.setdefault(loc[-1], _rule(error, loc[-1]))
        elif "H3" in error["msg"]:
            found.setdefault("handling_note", t("problem.h3_note"))
        elif "exactly one" in error["msg"]:
            found.setdefault("latitude", t("problem.one_place"))
        else:
            found.setdefault("end", t("problem.window"))
    return found


def _problem_list(problems: dict[str, str], prefix: str) -> list[forms.Problem]:
    return [(t(f"{prefix}.{name}"), rule) for name, rule in problems.items()]


# -- hits and draft notices --


async def _hits_context(request: web.Request, signed: Signed) -> dict[str, Any]:
    service = _service(request)
    return {
        "signed": signed,
        "hits": [h.model_dump(mode="json") for h in await matching_api.hit_views(request)],
        "drafts": [d.model_dump(mode="json") for d in await officer_api.draft_notices(service)],
        "peers": service.trust.peers(),
        "outcomes": None,
        "chosen": "",
    }


async def hits_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /hits: what a peer also holds, a round on request, and the notices drafted from hits."""
    return _render(request, "hits.html", await _hits_context(request, signed))


async def match_now(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /hits/match: a round with the chosen country, or all; the page again with each session's result."""
    form = await _form(request, signed)
    chosen = _typed(form, ["peer"])["peer"]
    outcomes = await matching_api.match_round(request, chosen or None)
    context = await _hits_context(request, signed)
    context.update(outcomes=[o.model_dump(mode="json") for o in outcomes], chosen=chosen)
    return _render(request, "hits.html", context)


async def send_draft(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /drafts/{id}/send: the draft becomes a notice, queued for its recipient; its page opens."""
    service = _service(request)
    await _form(request, signed)
    draft_id = officer_api.message_id_of(request)
    # A draft is sent once by its own state (a second send is invalid_state): no form key is needed.
    _, location = await officer_api.submit_once(
        request,
        None,
        "",
        "send_notice",
        lambda records: service.send_draft(draft_id, signed.officer, records),
        lambda headers: (303, f"/messages/{headers[0].id}".encode()),
    )
    return _redirect(location.decode())


async def discard_draft(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /drafts/{id}/discard."""
    await _form(request, signed)
    await officer_api.forget_draft(request, officer_api.message_id_of(request))
    return _redirect("/hits")


# -- the watch list --


def _kind(value: str) -> str:
    if value and value not in KIND_NAMES:
        raise Malformed("the kind must be one of the listed choices")
    return value or KIND_NAMES[0]


async def _watch_context(
    request: web.Request, signed: Signed, kind: str, values: dict[str, str]
) -> dict[str, Any]:
    return {
        "signed": signed,
        "entries": [e.model_dump(mode="json") for e in await watch_api.listed_entries(request)],
        "kinds": KIND_NAMES,
        "kind": kind,
        "fields": SUBJECT_FIELDS[kind],
        "values": values,
        "handlings": [h.value for h in Handling],
        "field_problems": {},
        "problems": [],
    }


async def watchlist_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /watchlist?kind=: the list, and the form for a new entry of the chosen kind."""
    kind = _kind(request.query.get("kind", ""))
    return _render(request, "watchlist.html", await _watch_context(request, signed, kind, {}))


def _entry_data(kind: str, values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": kind}
    for name, value in values.items():
        if value:
            data[name] = _lines(value) if name == "lines" else value.upper() if name in COUNTRIES else value
    return data


async def add_entry(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /watchlist: one entry, or the form again with what to correct next to each field."""
    form = await _form(request, signed)
    kind = _kind(_typed(form, ["kind"])["kind"])
    values = _typed(form, [*SUBJECT_FIELDS[kind], *SHARED])
    context = await _watch_context(request, signed, kind, values)
    data = _entry_data(kind, values)
    try:
        ENTRY.validate_python(data)
    except ValidationError as exc:
        problems = field_problems(exc)
        context["field_problems"] = problems
        return _refused(request, "watchlist.html", context, Malformed(), _problem_list(problems, "watch"))
    try:
        await watch_api.add_one(request, data)
    except NcpxError as exc:
        return _refused(request, "watchlist.html", context, exc, [])
    return _redirect(f"/watchlist?kind={kind}")


async def remove_entry(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /watchlist/{id}/remove: take an entry off the list (audited by the repository)."""
    await _form(request, signed)
    watchlist, officer, now = watch_api.context(request)
    await watchlist.remove(watch_api.path_id(request), officer, now)
    return _redirect("/watchlist")


# -- planned operations --


async def _operations_context(request: web.Request, signed: Signed, values: dict[str, str]) -> dict[str, Any]:
    return {
        "signed": signed,
        "operations": [o.model_dump(mode="json") for o in await watch_api.listed_operations(request)],
        "kinds": [k.value for k in OperationKind],
        "handlings": [h.value for h in Handling],
        "values": values,
        "field_problems": {},
        "problems": [],
    }


async def operations_page(request: web.Request, signed: Signed) -> web.StreamResponse:
    """GET /operations: every planned operation, and the form for a new one."""
    return _render(request, "operations.html", await _operations_context(request, signed, {}))


def _operation_data(values: dict[str, str]) -> dict[str, Any]:
    """The flat form as :class:`NewOperation`'s shape: a point when any of its numbers is given, an address
    when any of its parts is."""
    data: dict[str, Any] = {
        name: values[name]
        for name in ("kind", "case_reference", "contact", "handling", "handling_note", "zone", "start", "end")
        if values[name]
    }
    if any(values[n] for n in ("latitude", "longitude", "radius_m")):
        data["point"] = {n: values[n] for n in ("latitude", "longitude", "radius_m")}
    if any(values[n] for n in ("lines", "city", "country")):
        address = {"lines": _lines(values["lines"]), "country": values["country"].upper()}
        data["address"] = address | ({"city": values["city"]} if values["city"] else {})
    return data


async def add_operation(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /operations: plan one, or the form again with what to correct next to each field."""
    form = await _form(request, signed)
    values = _typed(form, OPERATION_FIELDS)
    context = await _operations_context(request, signed, values)
    data = _operation_data(values)
    try:
        NewOperation.model_validate(data)
    except ValidationError as exc:
        problems = field_problems(exc)
        context["field_problems"] = problems
        return _refused(
            request, "operations.html", context, Malformed(), _problem_list(problems, "operation")
        )
    try:
        await watch_api.plan(request, data)
    except NcpxError as exc:
        return _refused(request, "operations.html", context, exc, [])
    return _redirect("/operations")


async def cancel_operation(request: web.Request, signed: Signed) -> web.StreamResponse:
    """POST /operations/{id}/cancel: call it off (audited by the repository)."""
    await _form(request, signed)
    watchlist, officer, now = watch_api.context(request)
    await watchlist.cancel_operation(watch_api.path_id(request), officer, now)
    return _redirect("/operations")


def routes() -> list[web.RouteDef]:
    """Mounted next to :func:`node.console.views.routes`."""
    return [
        web.get("/hits", _guarded(hits_page)),
        web.post("/hits/match", _guarded(match_now)),
        web.post("/drafts/{id}/send", _guarded(send_draft)),
        web.post("/drafts/{id}/discard", _guarded(discard_draft)),
        web.get("/watchlist", _guarded(watchlist_page)),
        web.post("/watchlist", _guarded(add_entry)),
        web.post("/watchlist/{id}/remove", _guarded(remove_entry)),
        web.get("/operations", _guarded(operations_page)),
        web.post("/operations", _guarded(add_operation)),
        web.post("/operations/{id}/cancel", _guarded(cancel_operation)),
    ]
