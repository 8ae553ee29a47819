"""``GET /v1/audit``: the node's audit trail for its own people (``ncpx audit``), without a copy of its database.

The trail says who did what, when, to which message or name: never what a message said. Reading it is audited
in turn, so that a look at who looked leaves its own line.
"""

from __future__ import annotations

from aiohttp import web

from node.federation_api import SERVICE
from node.officer_api import OFFICER, OFFICERS
from protocol.encoding import format_time, parse_time
from protocol.errors import Malformed

MAX_PAGE = 1000


def _time(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return format_time(parse_time(value)) if value else None


async def audit(request: web.Request) -> web.Response:
    """GET /v1/audit?officer=&action=&since=&until=&limit=&before=: entries newest first, ``next`` for more."""
    query = request.query
    try:
        limit = min(max(int(query.get("limit", "100")), 1), MAX_PAGE)
        before = int(query["before"]) if query.get("before") else None
    except ValueError as exc:
        raise Malformed("limit and before must be whole numbers") from exc
    officers = request.config_dict[OFFICERS]
    entries = await officers.search_audit(
        actor=query.get("officer") or None,
        action=query.get("action") or None,
        since=_time(request, "since"),
        until=_time(request, "until"),
        before=before,
        limit=limit + 1,
    )
    page = entries[:limit]
    now = request.config_dict[SERVICE].clock()
    await officers.audit(request[OFFICER], "read_audit", None, f"ok: {len(page)}", now)
    return web.json_response(
        {
            "entries": [entry._asdict() for entry in page],
            "next": page[-1].seq if len(entries) > limit else None,
        }
    )


def routes() -> list[web.RouteDef]:
    """Mounted under ``/v1`` on every role, behind the officer token."""
    return [web.get("/audit", audit)]
