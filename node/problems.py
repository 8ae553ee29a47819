"""The one place where named errors become HTTP responses: RFC 9457 ``application/problem+json``.

The body carries the stable code and a generic detail; never any part of the request, so a refusal cannot
echo content back (or into a log that records responses).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node.config import Limits, mib
from protocol.errors import Malformed, NcpxError, NotFound, RequestTimeout, TooLarge, problem_type

log = logging.getLogger("ncpx.http")

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REFUSED = web.ResponseKey("refused", str)
"""On a problem response: the code it carries, for the refusal's log line and metric (never parsed back from the
body)."""


def problem_body(error: NcpxError) -> dict[str, Any]:
    """The problem document for ``error``."""
    return {
        "type": problem_type(error.code),
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
    }


def problem_response(error: NcpxError, **extra: Any) -> web.Response:
    """An HTTP response carrying ``error``."""
    body = problem_body(error) | extra
    response = web.Response(status=error.status, text=json.dumps(body), content_type=PROBLEM_JSON)
    response[REFUSED] = error.code
    return response


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate every failure of a handler into problem+json."""
    try:
        return await handler(request)
    except NcpxError as exc:
        return problem_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return problem_response(TooLarge("request body exceeds the size limit"))
    except web.HTTPNotFound:
        return problem_response(NotFound())
    except web.HTTPMethodNotAllowed:
        error = Malformed("method not allowed")
        response = web.Response(
            status=405, text=json.dumps(problem_body(error) | {"status": 405}), content_type=PROBLEM_JSON
        )
        response[REFUSED] = error.code
        return response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        body = {
            "type": problem_type("internal"),
            "title": "Internal error",
            "status": 500,
            "code": "internal",
        }
        response = web.Response(status=500, text=json.dumps(body), content_type=PROBLEM_JSON)
        response[REFUSED] = "internal"
        return response


def too_large(limit: int) -> TooLarge:
    """The refusal of a request body above ``limit`` bytes, saying the limit."""
    return TooLarge(
        f"the request is larger than this node's limit of {mib(limit)} MiB: send fewer or smaller attachments"
    )


async def read_body(request: web.Request, limits: Limits) -> bytes:
    """The request body, refused with :class:`TooLarge` beyond the size limit and with
    :class:`RequestTimeout` when it takes longer than the body timeout to arrive (a body trickled in byte by
    byte would otherwise hold a connection and its buffer for as long as the sender likes)."""
    limit, timeout_s = limits.max_request_bytes, limits.body_timeout_s
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    try:
        async with asyncio.timeout(timeout_s):
            data = await request.read()
    except TimeoutError as exc:
        raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} s") from exc
    if len(data) > limit:
        raise too_large(limit)
    return data
