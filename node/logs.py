"""Logs an operator can search: one JSON object per line (a console layout on a terminal), each carrying the
request id and, where known, the peer, the message id and the error code.

The node's modules log through the standard ``logging`` module (``logging.getLogger("ncpx.*")``, with
``extra={...}`` for fields); structlog's :class:`~structlog.stdlib.ProcessorFormatter` renders those records, so
there is one way to log and one output. What a request handler binds with :func:`bind` (the peer once its
signature verified, the message id of the path) lands on every line logged while it runs, through context
variables that :func:`request_ids` starts afresh for each request.

Nothing a message says is ever logged: fields are participant ids, message ids, codes and counts.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from typing import Any, TextIO

import structlog
from aiohttp import web

from node.problems import REFUSED, Handler
from protocol.errors import ConfigError

log = logging.getLogger("ncpx.http")

REQUEST_ID = "X-Request-Id"
LEVEL_ENV = "NCPX_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
"""A caller's request id is kept only if it looks like an id (a proxy's UUID, a trace id): anything else could
carry text into every log line of the request, or break the lines apart."""


def level_of(configured: str) -> str:
    """The level to log at: ``NCPX_LOG_LEVEL`` when set (to change it for one run without editing the file),
    otherwise the configuration's ``log_level``."""
    chosen = os.environ.get(LEVEL_ENV, "").strip().upper() or configured.upper()
    if chosen not in LEVELS:
        raise ConfigError(f"log level {chosen!r} is not one of {', '.join(LEVELS)}: set {LEVEL_ENV} to one")
    return chosen


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route every log record of the process to ``stream`` (standard error by default): JSON lines, or the
    console layout when ``stream`` is a terminal. The root logger's earlier handlers are removed, so that a
    record is never written twice."""
    out = stream if stream is not None else sys.stderr
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if out.isatty()
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def bind(**fields: str) -> None:
    """Add ``fields`` (participant ids, message ids, codes: never contents) to every line logged from here to the
    end of the current request or task."""
    structlog.contextvars.bind_contextvars(**fields)


def fresh(**fields: str) -> None:
    """Start the current task's log context anew (a background loop must not carry the request that started
    it)."""
    structlog.contextvars.clear_contextvars()
    bind(**fields)


def request_id_of(request: web.Request) -> str:
    """The caller's ``X-Request-Id`` if it is a sane id, else a new one: lets an operator follow one request
    through a proxy's log and ours."""
    given = request.headers.get(REQUEST_ID, "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def _route(request: web.Request) -> str | None:
    """The route a request matched, as declared (``/v1/messages/{id}``): what it asked for without its ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, bound to its log lines and echoed in the response's ``X-Request-Id``; a refusal
    (a problem response) is logged as a warning with its code and nothing of what was sent.

    A connection serves its requests one after another in one task, so the context is cleared first: nothing
    bound for the previous request may leak into this one's lines.
    """
    request_id = request_id_of(request)
    fresh(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID] = request_id
        raise
    response.headers[REQUEST_ID] = request_id
    code = response.get(REFUSED)
    if code is not None:
        log.warning(
            "request refused",
            extra={
                "code": code,
                "status": response.status,
                "method": request.method,
                "route": _route(request),
            },
        )
    return response
