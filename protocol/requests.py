"""Server-to-server request signatures, in the spirit of RFC 9421 (HTTP Message Signatures).

The signature covers method, path, sender, recipient, signing key id, a timestamp and the RFC 9530
``Content-Digest`` of the body, so a request cannot be replayed to another path, another recipient or with
another body, and an old one is refused once outside the skew window. Security never depends on TLS.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.codes import normalise_participant
from protocol.encoding import b64d, b64e, canonical, format_time, parse_time, sha256
from protocol.errors import BadSignature, Malformed, NotForUs, StaleTimestamp
from protocol.signing import KeyDirectory, LocalKeys, sign, verify

SENDER = "Ncpx-Sender"
RECIPIENT = "Ncpx-Recipient"
KEY = "Ncpx-Key"
TIMESTAMP = "Ncpx-Timestamp"
SIGNATURE = "Ncpx-Signature"
DIGEST = "Content-Digest"
SIGNED_HEADERS = (SENDER, RECIPIENT, KEY, TIMESTAMP, SIGNATURE, DIGEST)


def content_digest(body: bytes) -> str:
    """RFC 9530 Content-Digest value for ``body`` (SHA-256, base64 in a byte sequence)."""
    return "sha-256=:" + base64.b64encode(sha256(body)).decode("ascii") + ":"


def _base(method: str, path: str, sender: str, recipient: str, kid: str, stamp: str, digest: str) -> bytes:
    return canonical(
        {
            "method": method.upper(),
            "path": path,
            "sender": sender,
            "recipient": recipient,
            "key": kid,
            "timestamp": stamp,
            "digest": digest,
        }
    )


def sign_request(
    method: str, path: str, recipient: str, body: bytes, me: LocalKeys, now: datetime
) -> dict[str, str]:
    """Headers that authenticate a request from ``me`` to ``recipient``."""
    stamp = format_time(now)
    digest = content_digest(body)
    signature = sign(
        me.signing, "request", _base(method, path, me.participant, recipient, me.signing_kid, stamp, digest)
    )
    return {
        SENDER: me.participant,
        RECIPIENT: recipient,
        KEY: me.signing_kid,
        TIMESTAMP: stamp,
        DIGEST: digest,
        SIGNATURE: b64e(signature),
    }


@dataclass(frozen=True)
class SignedRequest:
    """The authenticated facts of a verified request."""

    sender: str
    """Participant id of the peer that signed the request."""
    signer: Ed25519PublicKey
    """The key it signed with (valid and unrevoked at verification time)."""
    at: datetime
    """The timestamp it claimed, inside the skew window."""
    digest: str = ""
    """The ``Content-Digest`` it signed: the body must match it (:func:`check_body`)."""


def verify_request(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    directory: KeyDirectory,
    me: str,
    now: datetime,
    skew: timedelta,
) -> SignedRequest:
    """Authenticate a request made with :func:`sign_request`; raises a named error on any failure."""
    signed = verify_request_head(method, path, headers, directory, me, now, skew)
    check_body(signed, body)
    return signed


def check_body(signed: SignedRequest, body: bytes) -> None:
    """Check that ``body`` is the one the verified request's signature covers."""
    # Compared as bytes: a header may hold any text, and str comparison refuses non-ASCII with a TypeError.
    if not hmac.compare_digest(
        signed.digest.encode("utf-8", "replace"), content_digest(body).encode("ascii")
    ):
        raise BadSignature("body does not match Content-Digest")


def verify_request_head(
    method: str,
    path: str,
    headers: Mapping[str, str],
    directory: KeyDirectory,
    me: str,
    now: datetime,
    skew: timedelta,
) -> SignedRequest:
    """Authenticate a request from its headers alone (the signature covers the body's digest), so that a
    receiver reads no body from anyone it cannot name; :func:`check_body` then checks the body."""
    try:
        sender = normalise_participant(headers[SENDER])
        recipient = normalise_participant(headers[RECIPIENT])
        kid = headers[KEY]
        stamp = headers[TIMESTAMP]
        digest = headers[DIGEST]
        signature = b64d(headers[SIGNATURE])
    except KeyError as exc:
        raise BadSignature("request signature headers missing") from exc
    if recipient != me:
        raise NotForUs
    at = parse_time(stamp)
    if format_time(at) != stamp:
        raise Malformed("timestamp not in canonical form")
    signer = directory.signing_key(sender, kid, at)
    verify(signer, "request", _base(method, path, sender, recipient, kid, stamp, digest), signature)
    if abs(now - at) > skew:
        raise StaleTimestamp
    return SignedRequest(sender=sender, signer=signer, at=at, digest=digest)
