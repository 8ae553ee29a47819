"""The envelope: sign-then-encrypt with the header bound inside, plus an outer signature over the whole.

Construction (version 2), all digests SHA-256:

    hd        = H(canonical(header))                          (RFC 8785)
    b         = canonical(body), encoded once by the sender
    inner     = sign_sender("inner", hd || H(b))
    plaintext = hd || inner || b                              (32 + 64 bytes, then the body bytes)
    sealed    = encrypt_to(R, plaintext)          (X25519 + HKDF-SHA256 + ChaCha20-Poly1305: protocol.sealing)
    outer     = sign_sender("outer", hd || H(sealed))

The inner signature covers the body bytes exactly as they travel: the receiver verifies them as it decrypted
them and parses them once, never re-encoding a structure to check a signature.

The outer signature lets anyone holding the roster (a receiver before decrypting, the coordinator without any
key to the body) check that header and sealed bytes come unaltered from the sender. The inner signature and
the header digest inside the plaintext prove that the body was written for exactly this header, so a sealed
part lifted into another envelope is detected after opening (``tampered_header``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import TypeAdapter, ValidationError

from protocol.codes import Kind, due_at
from protocol.encoding import canonical, digest_text, parse_json, sha256
from protocol.errors import CannotOpen, Malformed, NotForUs, StaleTimestamp, TamperedHeader, TooLarge
from protocol.models import B64Bytes, Body, Header, Model, SealedBody
from protocol.sealing import EPHEMERAL_BYTES as EPHEMERAL_BYTES  # re-exported: callers size their randomness
from protocol.sealing import decrypt_with, encrypt_to
from protocol.signing import KeyDirectory, LocalKeys, OpeningKeys, sign, verify

M = TypeVar("M", bound=Model)
_BODY = TypeAdapter[SealedBody](Body)


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
    """Consistency rules a signature cannot express: deadlines follow urgency, replies name their request,
    notices stand alone without a deadline."""
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
    elif header.kind is Kind.NOTICE:
        if header.in_reply_to is not None:
            raise Malformed("a notice cannot be in reply to another message")
        if header.due_at is not None:
            raise Malformed("a notice carries no deadline")


DIGEST_BYTES = 32
SIGNATURE_BYTES = 64


def inner_plaintext(header: Header, body: SealedBody, signer: Ed25519PrivateKey) -> bytes:
    """``hd || inner || canonical(body)``: the body is encoded once, and signed as those very bytes."""
    return plaintext_of(header, canonical(body.wire()), signer)


def plaintext_of(header: Header, body_bytes: bytes, signer: Ed25519PrivateKey) -> bytes:
    """``hd || inner || body_bytes`` for body bytes already encoded (a body sealed again keeps its bytes)."""
    hd = header_digest(header)
    return hd + sign(signer, "inner", hd + sha256(body_bytes)) + body_bytes


def seal_body(
    header: Header,
    body: SealedBody,
    signer: Ed25519PrivateKey,
    to: X25519PublicKey,
    ephemeral: bytes,
) -> bytes:
    """Sign ``body`` bound to ``header`` and encrypt it to ``to``; returns the sealed bytes."""
    return encrypt_to(inner_plaintext(header, body, signer), to, ephemeral)


def open_body_bytes(
    header: Header,
    sealed: bytes,
    key: X25519PrivateKey,
    signer: Ed25519PublicKey,
    hd: bytes | None = None,
) -> bytes:
    """The body bytes of a sealed part, once decrypted and checked against ``header`` and the inner signature
    (not parsed: a sender sealing its own copy again keeps the bytes it signed)."""
    plaintext = decrypt_with(sealed, key)
    if len(plaintext) <= DIGEST_BYTES + SIGNATURE_BYTES:
        raise Malformed("sealed content has the wrong shape")
    hd = hd or header_digest(header)
    if plaintext[:DIGEST_BYTES] != hd:
        raise TamperedHeader
    inner = plaintext[DIGEST_BYTES : DIGEST_BYTES + SIGNATURE_BYTES]
    body_bytes = plaintext[DIGEST_BYTES + SIGNATURE_BYTES :]
    verify(signer, "inner", hd + sha256(body_bytes), inner)
    return body_bytes


def open_body(
    header: Header,
    sealed: bytes,
    key: X25519PrivateKey,
    signer: Ed25519PublicKey,
    max_attachment_bytes: int,
    hd: bytes | None = None,
) -> SealedBody:
    """Decrypt and check a sealed body made by :func:`seal_body` for ``header`` (whose digest ``hd`` the caller
    may already hold)."""
    body_bytes = open_body_bytes(header, sealed, key, signer, hd)
    try:
        body = _BODY.validate_json(body_bytes)
    except ValidationError as exc:
        raise Malformed("sealed body does not match its schema") from exc
    if body.kind != header.kind.value:
        raise TamperedHeader("body kind differs from header kind")
    if body.attachment_bytes() > max_attachment_bytes:
        raise TooLarge("attachments exceed the size limit")
    return body


def seal(header: Header, body: SealedBody, me: LocalKeys, to: X25519PublicKey, ephemeral: bytes) -> Envelope:
    """Make the envelope for ``header`` and ``body``, sealed to the recipient key ``to``."""
    return envelope_from(header, inner_plaintext(header, body, me.signing), me, to, ephemeral)


def envelope_from(
    header: Header, plaintext: bytes, me: LocalKeys, to: X25519PublicKey, ephemeral: bytes
) -> Envelope:
    """Seal an :func:`inner_plaintext` already made for ``header`` to ``to`` and sign the outside."""
    if header.sender != me.participant or header.sender_key != me.signing_kid:
        raise ValueError("header names another sender or key than the one sealing it")
    return signed_envelope(header, plaintext, me.signing, to, ephemeral)


def signed_envelope(
    header: Header, plaintext: bytes, signer: Ed25519PrivateKey, to: X25519PublicKey, ephemeral: bytes
) -> Envelope:
    """:func:`envelope_from` with the private key ``header.sender_key`` names, which may be an older key than
    the one in use (a message sealed again keeps the key and time it was signed with)."""
    sealed = encrypt_to(plaintext, to, ephemeral)
    # The plaintext opens with the header digest it was made for; a plaintext made for another header gives
    # an outer signature that no receiver accepts, since receivers digest the header themselves.
    outer = sign(signer, "outer", plaintext[:DIGEST_BYTES] + sha256(sealed))
    return Envelope(header=header, sealed=sealed, sig=outer)


MAX_BATCH = 1000
"""Most envelopes in one federation request."""


def join_batch(envelopes: Sequence[bytes]) -> bytes:
    """A federation batch: one envelope's canonical bytes per line (RFC 8785 output never holds a raw newline).

    Each envelope travels as the exact bytes its sender encoded, digested and will be receipted for; the
    receiver stores each line as it arrived instead of decoding a whole body and encoding every envelope again.
    """
    return b"\n".join(envelopes) + b"\n"


def split_batch(raw: bytes) -> list[bytes]:
    """The envelopes of a federation batch, each as the bytes that arrived; refuses an empty or oversized one."""
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines or len(lines) > MAX_BATCH:
        raise Malformed(f"a batch holds 1 to {MAX_BATCH} envelopes, one per line")
    return lines


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

    Returns the sender's signing key. This is all the coordinator could ever do with an envelope: it holds no
    key that opens one.
    """
    return _verified(envelope, directory, me, now, skew, max_age)[0]


def _verified(
    envelope: Envelope,
    directory: KeyDirectory,
    me: str,
    now: datetime,
    skew: timedelta,
    max_age: timedelta,
) -> tuple[Ed25519PublicKey, bytes]:
    """:func:`verify_envelope`, also returning the header digest so that opening need not compute it again."""
    header = envelope.header
    if header.recipient != me:
        raise NotForUs
    signer = directory.signing_key(header.sender, header.sender_key, header.created_at)
    hd = header_digest(header)
    verify(signer, "outer", hd + sha256(envelope.sealed), envelope.sig)
    if header.created_at > now + skew:
        raise StaleTimestamp("created_at lies in the future")
    if header.created_at < now - max_age:
        raise StaleTimestamp("created_at is older than the accepted age")
    check_header(header)
    return signer, hd


def open_envelope(
    envelope: Envelope,
    directory: KeyDirectory,
    me: OpeningKeys,
    now: datetime,
    *,
    skew: timedelta,
    max_age: timedelta,
    max_attachment_bytes: int,
) -> SealedBody:
    """Verify and open an envelope addressed to ``me``."""
    signer, hd = _verified(envelope, directory, me.participant, now, skew, max_age)
    key = me.decryption_key(envelope.header.recipient_key)
    if key is None:
        raise CannotOpen("no private key held for the named encryption key")
    return open_body(envelope.header, envelope.sealed, key, signer, max_attachment_bytes, hd)
