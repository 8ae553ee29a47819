"""The envelope: sign-then-encrypt with the header bound inside, plus an outer signature over the whole.

Construction (version 1), all digests SHA-256 and all structures RFC 8785 canonical:

    hd        = H(canonical(header))
    inner     = sign_sender("inner", hd || H(canonical(body)))
    plaintext = canonical({"h": b64(hd), "body": body, "sig": b64(inner)})
    sealed    = encrypt_to(R, plaintext)          (X25519 + HKDF-SHA256 + ChaCha20-Poly1305: protocol.sealing)
    outer     = sign_sender("outer", hd || H(sealed))

The outer signature lets anyone holding the roster (a receiver before decrypting, the coordinator without any
key to the body) check that header and sealed bytes come unaltered from the sender. The inner signature and
the header digest inside the plaintext prove that the body was written for exactly this header, so a sealed
part lifted into another envelope is detected after opening (``tampered_header``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import TypeAdapter, ValidationError

from protocol.codes import Kind, due_at
from protocol.encoding import b64d, b64e, canonical, digest_text, parse_json, sha256
from protocol.errors import CannotOpen, Malformed, NotForUs, StaleTimestamp, TamperedHeader, TooLarge
from protocol.models import B64Bytes, Body, EnquiryBody, Header, Model, ReplyBody
from protocol.sealing import EPHEMERAL_BYTES as EPHEMERAL_BYTES  # re-exported: callers size their randomness
from protocol.sealing import decrypt_with, encrypt_to
from protocol.signing import KeyDirectory, LocalKeys, sign, verify

M = TypeVar("M", bound=Model)
_BODY = TypeAdapter[EnquiryBody | ReplyBody](Body)


class Envelope(Model):
    """One message on the wire: clear header, sealed body, sender's outer signature."""

    header: Header
    sealed: B64Bytes
    sig: B64Bytes

    def canonical_bytes(self) -> bytes:
        """The bytes that are stored, forwarded and digested."""
        return canonical(self.wire())

    def digest(self) -> str:
        """base64url SHA-256 of :meth:`canonical_bytes`; what receipts and metadata records name."""
        return digest_text(self.canonical_bytes())


def header_digest(header: Header) -> bytes:
    """SHA-256 of the canonical header."""
    return sha256(canonical(header.wire()))


def check_header(header: Header) -> None:
    """Consistency rules a signature cannot express: deadlines follow urgency, replies name their request."""
    if header.kind is Kind.ENQUIRY:
        if header.in_reply_to is not None:
            raise Malformed("an enquiry cannot be in reply to another message")
        if header.due_at != due_at(header.urgency, header.created_at):
            raise Malformed("due_at does not follow from urgency and created_at")
    elif header.kind is Kind.REPLY:
        if header.in_reply_to is None:
            raise Malformed("a reply must name the message it answers")
        if header.due_at is not None:
            raise Malformed("a reply carries no deadline")


def inner_plaintext(header: Header, body: EnquiryBody | ReplyBody, signer: Ed25519PrivateKey) -> bytes:
    """``canonical({"body": body, "h": b64(hd), "sig": b64(inner)})``, serialising the body only once.

    The members are written in RFC 8785 order (``body`` < ``h`` < ``sig``) around their own canonical forms,
    which is byte for byte the canonical form of the whole object.
    """
    hd = header_digest(header)
    body_bytes = canonical(body.wire())
    inner = sign(signer, "inner", hd + sha256(body_bytes))
    return (
        b'{"body":' + body_bytes + b',"h":' + canonical(b64e(hd)) + b',"sig":' + canonical(b64e(inner)) + b"}"
    )


def seal_body(
    header: Header,
    body: EnquiryBody | ReplyBody,
    signer: Ed25519PrivateKey,
    to: X25519PublicKey,
    ephemeral: bytes,
) -> bytes:
    """Sign ``body`` bound to ``header`` and encrypt it to ``to``; returns the sealed bytes."""
    return encrypt_to(inner_plaintext(header, body, signer), to, ephemeral)


def open_body(
    header: Header,
    sealed: bytes,
    key: X25519PrivateKey,
    signer: Ed25519PublicKey,
    max_attachment_bytes: int,
) -> EnquiryBody | ReplyBody:
    """Decrypt and check a sealed body made by :func:`seal_body` for ``header``."""
    plaintext = decrypt_with(sealed, key)
    inner = parse_json(plaintext, len(plaintext))
    if not isinstance(inner, dict) or set(inner) != {"h", "body", "sig"}:
        raise Malformed("sealed content has the wrong shape")
    hd = header_digest(header)
    if b64d(inner["h"]) != hd:
        raise TamperedHeader
    body_wire: Any = inner["body"]
    verify(signer, "inner", hd + sha256(canonical(body_wire)), b64d(inner["sig"]))
    try:
        body = _BODY.validate_python(body_wire)
    except ValidationError as exc:
        raise Malformed("sealed body does not match its schema") from exc
    if body.kind != header.kind.value:
        raise TamperedHeader("body kind differs from header kind")
    if body.attachment_bytes() > max_attachment_bytes:
        raise TooLarge("attachments exceed the size limit")
    return body


def seal(
    header: Header, body: EnquiryBody | ReplyBody, me: LocalKeys, to: X25519PublicKey, ephemeral: bytes
) -> Envelope:
    """Make the envelope for ``header`` and ``body``, sealed to the recipient key ``to``."""
    return envelope_from(header, inner_plaintext(header, body, me.signing), me, to, ephemeral)


def envelope_from(
    header: Header, plaintext: bytes, me: LocalKeys, to: X25519PublicKey, ephemeral: bytes
) -> Envelope:
    """Seal an :func:`inner_plaintext` already made for ``header`` to ``to`` and sign the outside."""
    if header.sender != me.participant or header.sender_key != me.signing_kid:
        raise ValueError("header names another sender or key than the one sealing it")
    sealed = encrypt_to(plaintext, to, ephemeral)
    outer = sign(me.signing, "outer", header_digest(header) + sha256(sealed))
    return Envelope(header=header, sealed=sealed, sig=outer)


def parse_envelope(raw: bytes, limit: int) -> Envelope:
    """Parse untrusted envelope bytes; raises Malformed or TooLarge."""
    return parse_model(Envelope, raw, limit)


def parse_model(model: type[M], raw: bytes, limit: int) -> M:
    """Parse untrusted JSON bytes into ``model``; every failure is :class:`Malformed` or :class:`TooLarge`."""
    data = parse_json(raw, limit)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Malformed(f"does not match the {model.__name__} schema") from exc


def verify_envelope(
    envelope: Envelope,
    directory: KeyDirectory,
    me: str,
    now: datetime,
    skew: timedelta,
    max_age: timedelta,
) -> Ed25519PublicKey:
    """Check an envelope without opening it: addressee, sender key, outer signature, time, header rules.

    Returns the sender's signing key so that :func:`open_envelope` need not look it up again. This is all the
    coordinator can ever do with an envelope: it holds no key that opens one.
    """
    header = envelope.header
    if header.recipient != me:
        raise NotForUs
    signer = directory.signing_key(header.sender, header.sender_key, header.created_at)
    verify(signer, "outer", header_digest(header) + sha256(envelope.sealed), envelope.sig)
    if header.created_at > now + skew:
        raise StaleTimestamp("created_at lies in the future")
    if header.created_at < now - max_age:
        raise StaleTimestamp("created_at is older than the accepted age")
    check_header(header)
    return signer


def open_envelope(
    envelope: Envelope,
    directory: KeyDirectory,
    me: LocalKeys,
    now: datetime,
    *,
    skew: timedelta,
    max_age: timedelta,
    max_attachment_bytes: int,
) -> EnquiryBody | ReplyBody:
    """Verify and open an envelope addressed to ``me``."""
    signer = verify_envelope(envelope, directory, me.participant, now, skew, max_age)
    key = me.decryption_key(envelope.header.recipient_key)
    if key is None:
        raise CannotOpen("no private key held for the named encryption key")
    return open_body(envelope.header, envelope.sealed, key, signer, max_attachment_bytes)
