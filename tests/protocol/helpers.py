"""Fixed participants for protocol tests: keys from fixed bytes, a fixed time, deterministic randomness."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys import Identity, Roster, add_participant, new_roster, sign_roster
from keys.roster import Role, RosterBody
from protocol import EnquiryBody, Envelope, Header, Urgency, due_at, seal, uuid7
from protocol.codes import Kind

NOW = datetime(2015, 10, 1, 2, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
LIMIT = 10 * 1024 * 1024


def fixed_identity(participant: str, signing_byte: int, encryption_byte: int) -> Identity:
    """An identity whose keys come from repeated bytes (test vectors need fixed keys)."""
    return Identity(
        participant,
        [Ed25519PrivateKey.from_private_bytes(bytes([signing_byte]) * 32)],
        [X25519PrivateKey.from_private_bytes(bytes([encryption_byte]) * 32)],
    )


class Counter:
    """Deterministic 'random' bytes: SHA-256 of a counter, as many bytes as asked."""

    def __init__(self, seed: bytes = b"ncpx") -> None:
        self.seed = seed
        self.n = 0

    def __call__(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            self.n += 1
            out += hashlib.sha256(self.seed + self.n.to_bytes(8, "big")).digest()
        return out[:size]


@dataclass
class World:
    """An authority, TH and MY (and ID, outside the roster unless added), with a signed roster."""

    authority: Ed25519PrivateKey
    th: Identity
    my: Identity
    outsider: Identity
    body: RosterBody
    roster: Roster

    def resign(self, body: RosterBody) -> Roster:
        """Sign an edited roster body."""
        self.body = body
        self.roster = Roster(sign_roster(body, self.authority), self.authority.public_key())
        return self.roster


def world() -> World:
    authority = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
    th, my = fixed_identity("TH", 2, 3), fixed_identity("MY", 4, 5)
    outsider = fixed_identity("ID", 6, 7)
    since = NOW - timedelta(days=1)
    body = new_roster(authority.public_key(), since)
    body = add_participant(body, th.card(), "http://127.0.0.1:8101", Role.NODE, "Thailand", since)
    body = add_participant(body, my.card(), "http://127.0.0.1:8102", Role.NODE, "Malaysia", since)
    return World(
        authority, th, my, outsider, body, Roster(sign_roster(body, authority), authority.public_key())
    )


def header(w: World, random: Counter | None = None, **changes: object) -> Header:
    """An enquiry header TH -> MY at NOW."""
    rand = random or Counter()
    message_id = uuid7(NOW, rand(10))
    kid, _ = w.roster.encryption_key("MY", NOW)
    fields: dict[str, object] = {
        "id": message_id,
        "kind": Kind.ENQUIRY,
        "thread": message_id,
        "sender": "TH",
        "recipient": "MY",
        "created_at": NOW,
        "area": "people_smuggling",
        "urgency": Urgency.URGENT_DIRECT,
        "due_at": due_at(Urgency.URGENT_DIRECT, NOW),
        "sender_key": w.th.signing_kid,
        "recipient_key": kid,
    }
    fields.update(changes)
    return Header.model_validate(fields)


BODY = EnquiryBody(subject="Vessel KM Harapan", text="Last port of call?")


def envelope(w: World, body: EnquiryBody = BODY, **changes: object) -> Envelope:
    """A valid envelope TH -> MY."""
    h = header(w, **changes)
    _, to = w.roster.encryption_key("MY", NOW)
    return seal(h, body, w.th, to, bytes([8]) * 32)
