"""Mutual TLS between nodes, pinned to the roster: who may connect is decided before HTTP is spoken.

The federation listener asks every caller for a certificate and accepts exactly those the current roster lists
for an active participant, so a stranger (or a revoked member) is turned away in the handshake, before a header
is parsed. A roster adopted while the node runs takes effect on the next connection: the listener's context
hands each handshake to a context built for the newest roster. The delivery worker calls each peer presenting
our certificate and trusting only that peer's, so a redirected or hijacked address cannot pose as the peer.
Host names play no part: the roster, not DNS, says which certificate is which participant's.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path

from keys.roster import Participant, Roster, Status
from keys.tls import fingerprint, load_certificate

log = logging.getLogger("ncpx.node")


class FederationTls:
    """The TLS contexts of one node's federation traffic, rebuilt whenever the roster version changes."""

    def __init__(
        self, me: str, cert_file: Path, key_file: Path, password: bytes | None, roster: Callable[[], Roster]
    ) -> None:
        self._me = me
        self._chain = (cert_file, key_file, password)
        self._roster = roster
        self._version = -1
        self._members: dict[str, str] = {}
        self._inner = self._server_context(b"")
        self._clients: dict[str, ssl.SSLContext] = {}
        self.server = self._server_context(b"")
        """What the listener is started with; it trusts nobody itself and defers each handshake to the
        context of the current roster."""
        self.server.sni_callback = self._choose
        self._refresh()

    def _load_chain(self, context: ssl.SSLContext) -> None:
        cert, key, password = self._chain
        context.load_cert_chain(cert, key, password=password)

    def _server_context(self, anchors: bytes) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load_chain(context)
        context.verify_mode = ssl.CERT_REQUIRED
        # Roster certificates are self-signed leaves, trusted as they are rather than through an issuer.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        if anchors:
            context.load_verify_locations(cadata=anchors)
        return context

    def _refresh(self) -> None:
        roster = self._roster()
        if roster.version == self._version:
            return
        members = {
            fingerprint(der): member.id
            for member in roster.participants
            if member.status is Status.ACTIVE
            for der in member.tls_certificates or []
        }
        anchors = b"".join(
            der
            for member in roster.participants
            if member.status is Status.ACTIVE
            for der in member.tls_certificates or []
        )
        self._inner, self._members, self._clients = self._server_context(anchors), members, {}
        self._version = roster.version
        if members.get(fingerprint(load_certificate(self._chain[0]))) != self._me:
            log.warning(
                "this node presents a TLS certificate that roster version %d does not list for it: peers refuse "
                "its connections until the authority lists it (ncpx roster rotate --card keys/public.json)",
                roster.version,
            )

    def _choose(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        """Called in every handshake (with or without SNI): continue it under the current roster's trust."""
        self._refresh()
        connection.context = self._inner

    def participant(self, certificate: bytes | None) -> str | None:
        """The active member whose roster entry lists ``certificate`` (DER), if any."""
        self._refresh()
        return None if certificate is None else self._members.get(fingerprint(certificate))

    def client_context(self, peer: Participant) -> ssl.SSLContext | None:
        """How to call ``peer``: our certificate, and trust in its roster certificates alone (None when the
        roster lists none for it, and the system's CAs are the only way to check it)."""
        self._refresh()
        if not peer.tls_certificates:
            return None
        context = self._clients.get(peer.id)
        if context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.check_hostname = False
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            context.load_verify_locations(cadata=b"".join(peer.tls_certificates))
            self._load_chain(context)
            self._clients[peer.id] = context
        return context
