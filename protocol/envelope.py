"""The envelope: sign-then-encrypt with the header bound inside, plus an outer signature over the whole.

Construction (version 1), all digests SHA-256 and all structures RFC 8785 canonical:

    hd        = H(canonical(header))
    inner     = sign_sender("inner", hd || H(canonical(body)))
    plaintext = canonical({"h": b64(hd), "body": body, "sig": b64(inner)})
    e, E      = X25519 ephemeral pair from 32 caller-supplied random bytes
    k         = HKDF-SHA256(ikm = X25519(e, R), info = "ncpx/v1/seal" || E || R, 32 bytes)
    sealed    = E || ChaCha20-Poly1305(k, nonce = 0^12, plaintext)
    outer     = sign_sender("outer", hd || H(sealed))

The outer signature lets anyone holding the roster (a receiver before decrypting, the coordinator without any
key to the body) check that header and sealed bytes come unaltered from the sender. The inner signature and
the header digest inside the plaintext prove that the body was written for exactly this header, so a sealed
part lifted into another envelope is detected after opening (``tampered_header``). A fresh ephemeral key per
seal makes the all-zero nonce safe.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import TypeAdapter, ValidationError

from protocol.codes import Kind, due_at
from protocol.encoding import b64d, b64e, canonical, digest_text, parse_json, sha256
from protocol.errors import CannotOpen, Malformed, NotForUs, StaleTimestamp, TamperedHeader, TooLarge
from protocol.models import B64Bytes, Body, EnquiryBody, Header, Model, ReplyBody
from protocol.signing import KeyDirectory, LocalKeys, raw_public, sign, verify

EPHEMERAL_BYTES = 32
"""Random bytes :func:`seal` consumes per envelope."""
_NONCE = bytes(12)
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


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"ncpx/v1/seal" + ephemeral_public + recipient_public,
    )
    return hkdf.derive(shared)


def seal_body(
    header: Header,
    body: EnquiryBody | ReplyBody,
    signer: Ed25519PrivateKey,
    to: X25519PublicKey,
    ephemeral: bytes,
) -> bytes:
    """Sign ``body`` bound to ``header`` and encrypt it to ``to``; returns the sealed bytes."""
    if len(ephemeral) != EPHEMERAL_BYTES:
        raise ValueError("seal needs exactly 32 random bytes")
    hd = header_digest(header)
    body_wire = body.wire()
    inner = sign(signer, "inner", hd + sha256(canonical(body_wire)))
    plaintext = canonical({"h": b64e(hd), "body": body_wire, "sig": b64e(inner)})
    eph = X25519PrivateKey.from_private_bytes(ephemeral)
    eph_public = raw_public(eph.public_key())
    to_public = raw_public(to)
    key = _derive(eph.exchange(to), eph_public, to_public)
    return eph_public + ChaCha20Poly1305(key).encrypt(_NONCE, plaintext, None)


def open_body(
    header: Header,
    sealed: bytes,
    key: X25519PrivateKey,
    signer: Ed25519PublicKey,
    max_attachment_bytes: int,
) -> EnquiryBody | ReplyBody:
    """Decrypt and check a sealed body made by :func:`seal_body` for ``header``."""
    if len(sealed) < EPHEMERAL_BYTES + 16:
        raise CannotOpen
    eph_public = sealed[:EPHEMERAL_BYTES]
    try:
        eph = X25519PublicKey.from_public_bytes(eph_public)
        shared = key.exchange(eph)
        plaintext = ChaCha20Poly1305(_derive(shared, eph_public, raw_public(key.public_key()))).decrypt(
            _NONCE, sealed[EPHEMERAL_BYTES:], None
        )
    except (InvalidTag, ValueError) as exc:
        raise CannotOpen from exc
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
    if header.sender != me.participant or header.sender_key != me.signing_kid:
        raise ValueError("header names another sender or key than the one sealing it")
    sealed = seal_body(header, body, me.signing, to, ephemeral)
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
