"""Officers' browser sessions, shared by a node's console and the coordinator's dashboard.

A token is typed once into a sign-in form; the browser then holds a random session id in a cookie that
scripts cannot read (HttpOnly), that no other site's page can make it send (SameSite=Strict), and that travels
only over TLS when the page came over TLS. Only the id's digest is stored. Forms that change anything carry a
CSRF token derived from the session id, so a request forged elsewhere fails even in a browser that ignores
SameSite; ``Origin`` is checked as well. A session ends at sign-out, at its expiry, and at once when its
officer is revoked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiohttp import web
from multidict import MultiDictProxy

from node.federation_api import LIMITER
from node.officer_api import OFFICERS
from node.storage.sessions import Session
from protocol.errors import RequestTimeout, TooLarge

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send "Origin: null" on our own forms
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
"""Every page of a browser surface: nothing loads from anywhere but this origin, nothing frames it."""

SIGN_IN_FORM_BYTES = 4096
SIGN_IN_FORM_SECONDS = 10.0
CSRF_FIELD = "csrf"


class SessionStore(Protocol):
    """Where sessions are kept (the node's repository, or the coordinator's store)."""

    async def open_session(self, id_hash: str, officer: str, now: datetime, expires: datetime) -> None:
        """Start a session."""
        ...

    async def session(self, id_hash: str) -> Session | None:
        """The session whose id has the digest ``id_hash``, expired or not."""
        ...

    async def end_session(self, id_hash: str) -> None:
        """End a session."""
        ...


@dataclass(frozen=True)
class Cookie:
    """The session cookie of one surface: its name and the path it is sent for."""

    name: str
    path: str

    def value(self, request: web.Request) -> str | None:
        """The session id the browser sent, if any."""
        return request.cookies.get(self.name) or None

    def set(self, response: web.StreamResponse, request: web.Request, session_id: str, seconds: int) -> None:
        """Hand the browser a session id."""
        response.set_cookie(
            self.name,
            session_id,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path=self.path,
            max_age=seconds,
        )

    def clear(self, response: web.StreamResponse) -> None:
        """Make the browser forget the session id."""
        response.del_cookie(self.name, path=self.path)


def digest(session_id: str) -> str:
    """What is stored for a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def new_session_id() -> str:
    """A fresh session id (256 bits)."""
    return secrets.token_urlsafe(32)


def same_origin(request: web.Request) -> bool:
    """Whether a state-changing request comes from a page of this origin (browsers send ``Origin`` on POST)."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: only a page served to its holder can know it."""
    return hmac.new(session_id.encode(), b"ncpx csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_id: str, sent: object) -> bool:
    """Whether a form carried the session's CSRF token."""
    return isinstance(sent, str) and hmac.compare_digest(sent, csrf_token(session_id))


async def current(request: web.Request, store: SessionStore, cookie: Cookie, now: datetime) -> Session | None:
    """The live session of the request's cookie, or None (none sent, unknown, expired, officer revoked)."""
    session_id = cookie.value(request)
    if session_id is None:
        return None
    session = await store.session(digest(session_id))
    if session is None or not hmac.compare_digest(session.id_hash, digest(session_id)):
        return None
    if session.expires_at < now:
        return None
    issued = await request.config_dict[OFFICERS].issued_at(session.officer)
    if issued is None or session.created_at < issued:
        return None  # revoking an officer ends their sessions at once, and a new token does not revive them
    return session


async def sign_in_form(
    request: web.Request, now: datetime
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The posted sign-in form, read before anyone is authenticated: a few bytes, not slowly, and not from an
    address that keeps failing."""
    request.config_dict[LIMITER].check(request.remote or "unknown", now)
    if request.content_length is None or request.content_length > SIGN_IN_FORM_BYTES:
        raise TooLarge("a sign-in form holds a token and nothing more")
    try:
        async with asyncio.timeout(SIGN_IN_FORM_SECONDS):
            return await request.post()
    except TimeoutError as exc:
        raise RequestTimeout("the sign-in form did not arrive in time") from exc


async def authenticate(
    request: web.Request,
    form: MultiDictProxy[str | bytes | bytearray | web.FileField],
    action: str,
    now: datetime,
) -> str | None:
    """The officer whose token the form carries; a refusal counts against the address and is audited."""
    token = form.get("token")
    officers = request.config_dict[OFFICERS]
    officer = await officers.authenticate(token) if isinstance(token, str) and token else None
    if officer is None:
        address = request.remote or "unknown"
        request.config_dict[LIMITER].failed(address, now)
        await officers.audit(f"address {address}", action, None, "refused", now)
    return officer
