"""The officer API's OpenAPI 3.1 document, generated from the same pydantic models the handlers use."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from node import watch_api
from node.api_models import (
    Created,
    DraftNotices,
    NewEnquiry,
    NewNotice,
    NewOutcome,
    NewReply,
    OutcomeQueued,
    Page,
    Peers,
    Thread,
)
from protocol.codes import CrimeArea, Kind

_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


_PROBLEM = {
    "description": "Refused; RFC 9457 problem document with a stable `code`",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _op(summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": ok | {"4XX": _PROBLEM}, **extra}


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (computed once)."""
    models: list[type[BaseModel]] = [
        NewEnquiry,
        NewReply,
        NewNotice,
        DraftNotices,
        Created,
        Page,
        Thread,
        Peers,
        NewOutcome,
        OutcomeQueued,
        *watch_api.OPENAPI_MODELS,
    ]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    schemas["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "detail": {"type": "string"},
        },
    }
    list_params = [
        {"name": "folder", "in": "query", "schema": {"enum": ["inbox", "sent", "outbox"]}},
        {"name": "peer", "in": "query", "schema": {"type": "string"}},
        {
            "name": "state",
            "in": "query",
            "schema": {
                "enum": [
                    "queued",
                    "sent",
                    "received",
                    "delivered",
                    "read",
                    "answered",
                    "acknowledged",
                    "undeliverable",
                    "overdue",
                ]
            },
        },
        {"name": "area", "in": "query", "schema": {"enum": [a.value for a in CrimeArea]}},
        {"name": "kind", "in": "query", "schema": {"enum": [k.value for k in Kind]}},
        {"name": "overdue", "in": "query", "schema": {"type": "boolean"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {
            "name": "subject",
            "in": "query",
            "description": "include each enquiry's subject (opened for the listing; marks nothing read)",
            "schema": {"type": "boolean"},
        },
    ]
    idempotency = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 200}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ncpx officer API",
            "version": "1",
            "description": "Send and answer end-to-end encrypted enquiries, and send and acknowledge "
            "deconfliction notices, between national contact points.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/enquiries": {
                "post": _op(
                    "Send an enquiry to one or more countries",
                    {"201": {"description": "Queued", "content": _json(Created)}},
                    parameters=[idempotency],
                    requestBody={"required": True, "content": _json(NewEnquiry)},
                )
            },
            "/v1/messages": {
                "get": _op(
                    "List a folder",
                    {"200": {"description": "A page", "content": _json(Page)}},
                    parameters=list_params,
                )
            },
            "/v1/messages/{id}": {
                "get": _op(
                    "Open a message with its thread",
                    {"200": {"description": "The thread", "content": _json(Thread)}},
                    parameters=[_ID],
                )
            },
            "/v1/messages/{id}/replies": {
                "post": _op(
                    "Answer a received enquiry",
                    {"201": {"description": "Queued", "content": _json(Created)}},
                    parameters=[_ID, idempotency],
                    requestBody={"required": True, "content": _json(NewReply)},
                )
            },
            "/v1/messages/{id}/read": {
                "post": _op(
                    "Mark a received message read (the sender is told)",
                    {"200": {"description": "Marked"}},
                    parameters=[_ID],
                )
            },
            "/v1/messages/{id}/acknowledge": {
                "post": _op(
                    "Acknowledge a received deconfliction notice (the sender is told)",
                    {"200": {"description": "Acknowledged"}},
                    parameters=[_ID],
                )
            },
            "/v1/notices": {
                "post": _op(
                    "Send a deconfliction notice to some countries or to all",
                    {"201": {"description": "Queued", "content": _json(Created)}},
                    parameters=[idempotency],
                    requestBody={"required": True, "content": _json(NewNotice)},
                )
            },
            "/v1/notices/drafts": {
                "get": _op(
                    "Draft notices waiting for an officer",
                    {"200": {"description": "The drafts", "content": _json(DraftNotices)}},
                )
            },
            "/v1/notices/drafts/{id}/send": {
                "post": _op(
                    "Send a draft notice to its recipient",
                    {"201": {"description": "Queued", "content": _json(Created)}},
                    parameters=[_ID, idempotency],
                )
            },
            "/v1/notices/drafts/{id}": {
                "delete": _op(
                    "Discard a draft notice", {"204": {"description": "Discarded"}}, parameters=[_ID]
                )
            },
            "/v1/messages/{id}/attachments/{index}": {
                "get": _op(
                    "Download an attachment",
                    {
                        "200": {
                            "description": "The bytes",
                            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                        }
                    },
                    parameters=[
                        _ID,
                        {"name": "index", "in": "path", "required": True, "schema": {"type": "integer"}},
                    ],
                )
            },
            "/v1/outcomes": {
                "post": _op(
                    "Submit this country's signed outcome return for a period (queued for the coordinator)",
                    {"202": {"description": "Queued", "content": _json(OutcomeQueued)}},
                    requestBody={"required": True, "content": _json(NewOutcome)},
                )
            },
            "/v1/reminders": {
                "get": _op(
                    "What the coordinator reminded this node of (a missing outcome return), newest first",
                    {
                        "200": {
                            "description": "{reminders: [{period, coordinator, about, sent_at, received_at}]}"
                        }
                    },
                )
            },
            "/v1/peers": {
                "get": _op(
                    "Roster members and their reachability",
                    {"200": {"description": "Peers", "content": _json(Peers)}},
                )
            },
        }
        | watch_api.openapi_paths(_op, _json, _ID),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
