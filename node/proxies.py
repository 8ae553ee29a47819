"""Reverse proxies in front of the officer listener: their ``X-Forwarded-*`` headers are believed, nobody else's.

An operator usually terminates TLS for officers' browsers in a proxy (nginx, Caddy) on the same host. The node
then sees plain HTTP from the proxy's address, and without the forwarded scheme and host the dashboard's
same-origin check would refuse every sign-in. Parsing and checking those headers is ``aiohttp-remotes``' job
(``XForwardedStrict``: exactly one hop, from a listed address); what this module adds is only the choice of
when to ask it: a request straight from an officer's machine or the CLI on loopback is served as it came
(aiohttp itself never reads forwarded headers), so that they cannot be spoofed from anywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_remotes import XForwardedStrict


def forwarded_middleware(trusted: Sequence[IPv4Address | IPv6Address]) -> Middleware:
    """A middleware applying the forwarded headers of requests whose peer is one of ``trusted``."""
    proxies = frozenset(trusted)
    strict = XForwardedStrict([list(proxies)]) if proxies else None

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if strict is not None and _peer(request) in proxies:
            return await strict.middleware(request, handler)
        return await handler(request)

    return forwarded


def _peer(request: web.Request) -> IPv4Address | IPv6Address | None:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    try:
        return ip_address(peer[0]) if peer else None
    except ValueError:
        return None
