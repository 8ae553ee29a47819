"""The signed roster: who takes part, with which keys, and the authority that vouches for it.

The roster authority (the co-chairs' secretariat) signs each version offline. A node pins the authority's
public key at setup and accepts a roster only if that signature verifies and its version is higher than the
one it holds, so an old roster (with a since-revoked key in it) can never be replayed. Revocation is read at
verification time, whatever time the signature claims: a revoked key stops working at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pydantic import Field

from keys.identity import PublicCard
from protocol.encoding import b64d, b64e, canonical
from protocol.envelope import parse_model
from protocol.errors import (
    BadSignature,
    ExpiredKey,
    InvalidPeriod,
    Malformed,
    NotACoordinator,
    NotFound,
    NoUsableKey,
    PeriodExists,
    PeriodOver,
    RevokedKey,
    RosterRollback,
    UnknownKey,
    UnknownSender,
    UnverifiedRoster,
)
from protocol.models import B64Bytes, KeyId, Model, ParticipantId, UtcTime
from protocol.period import Period, period_from
from protocol.signing import ed25519_public, key_id, raw_public, sign, verify, x25519_public

MAX_ROSTER_BYTES = 4 * 1024 * 1024
DEFAULT_MATCHING_BUDGET = 20_000
"""Items a participant may ask about per day and peer unless the authority sets another budget: a watch list
of thousands matched a few times a day, far from the millions a dictionary of phone numbers needs."""


class Role(StrEnum):
    """What a participant does in the exchange."""

    NODE = "node"
    COORDINATOR = "coordinator"


class Status(StrEnum):
    """Whether a participant or key is still trusted."""

    ACTIVE = "active"
    REVOKED = "revoked"


class RosterKey(Model):
    """One public key with its validity window."""

    kid: KeyId
    public: B64Bytes
    not_before: UtcTime
    not_after: UtcTime | None = None
    status: Status = Status.ACTIVE


class Participant(Model):
    """One roster member."""

    id: ParticipantId
    role: Role = Role.NODE
    name: str = ""
    url: str = Field(pattern=r"^https?://[^\s]+$")
    status: Status = Status.ACTIVE
    signing_keys: list[RosterKey]
    encryption_keys: list[RosterKey]
    matching_budget: int | None = Field(default=None, ge=0)
    """Items this participant may ask about in private matching, per day and peer (unset: the default,
    :data:`DEFAULT_MATCHING_BUDGET`). Phone and document numbers are enumerable: the budget is what stops a
    member from probing a peer's watch list with a dictionary."""
    tls_certificates: list[B64Bytes] | None = None
    """Certificates (DER) its federation listener and delivery worker may present: mutual TLS accepts exactly
    these for this participant. Two during a renewal, so either side can switch first."""


class RosterBody(Model):
    """The signed content of a roster."""

    v: Literal[1] = 1
    version: int = Field(ge=1)
    issued_at: UtcTime
    authority_key: KeyId
    participants: list[Participant] = []
    periods: list[Period] | None = None
    """Periods of Action the authority has declared (absent until the first one)."""


class SignedRoster(Model):
    """A roster body with the authority's signature; what travels and what is stored."""

    roster: RosterBody
    sig: B64Bytes

    def to_bytes(self) -> bytes:
        """Canonical bytes (stable, so two copies of one version compare equal)."""
        return canonical(self.wire())


def parse_roster(raw: bytes) -> SignedRoster:
    """Parse roster bytes (not yet verified)."""
    return parse_model(SignedRoster, raw, MAX_ROSTER_BYTES)


def sign_roster(body: RosterBody, authority: Ed25519PrivateKey) -> SignedRoster:
    """Sign ``body`` with the authority key."""
    if body.authority_key != key_id(authority.public_key()):
        raise ValueError("roster names another authority key")
    return SignedRoster(roster=body, sig=sign(authority, "roster", canonical(body.wire())))


class Roster:
    """A verified roster, indexed for lookups. Implements ``protocol.signing.KeyDirectory``."""

    def __init__(self, signed: SignedRoster, authority: Ed25519PublicKey) -> None:
        if signed.roster.authority_key != key_id(authority):
            raise UnknownKey("roster is signed by another authority")
        verify(authority, "roster", canonical(signed.roster.wire()), signed.sig)
        self.signed = signed
        self.authority = authority
        self._by_id = {p.id: p for p in signed.roster.participants}
        self._parsed: dict[bytes, Ed25519PublicKey] = {}

    @property
    def version(self) -> int:
        """The roster's version number."""
        return self.signed.roster.version

    @property
    def participants(self) -> list[Participant]:
        """All members, in roster order."""
        return list(self.signed.roster.participants)

    def get(self, participant: str) -> Participant:
        """The member ``participant``, or :class:`UnknownSender`."""
        member = self._by_id.get(participant)
        if member is None:
            raise UnknownSender
        return member

    def period(self, name: str) -> Period:
        """The period called ``name``, or :class:`NotFound`."""
        return find_period(self.signed.roster, name)

    def coordinator(self) -> Participant | None:
        """The active coordinator, if the roster names one."""
        for member in self.signed.roster.participants:
            if member.role is Role.COORDINATOR and member.status is Status.ACTIVE:
                return member
        return None

    def withdrawn(self, participant: str) -> bool:
        """Whether nothing may go to ``participant`` any more: it left the roster or was revoked."""
        member = self._by_id.get(participant)
        return member is None or member.status is Status.REVOKED

    def matching_budget(self, participant: str) -> int:
        """Items ``participant`` may ask about per day of each peer in private matching."""
        budget = self.get(participant).matching_budget
        return DEFAULT_MATCHING_BUDGET if budget is None else budget

    def revoked_encryption_kids(self, participant: str) -> frozenset[str]:
        """Ids of ``participant``'s encryption keys that were revoked: what is sealed to them must not go."""
        member = self._by_id.get(participant)
        if member is None:
            return frozenset()
        return frozenset(k.kid for k in member.encryption_keys if k.status is Status.REVOKED)

    def is_node(self, participant: str) -> bool:
        """Whether ``participant`` is a country node: only nodes send or receive messages, never the coordinator."""
        member = self._by_id.get(participant)
        return member is not None and member.role is Role.NODE

    def signing_key(self, participant: str, kid: str, at: datetime) -> Ed25519PublicKey:
        """See ``KeyDirectory.signing_key``."""
        member = self.get(participant)
        if member.status is Status.REVOKED:
            raise RevokedKey("participant has been revoked")
        raw = _valid(member.signing_keys, kid, at).public  # validity and revocation checked on every call
        key = self._parsed.get(raw)
        if key is None:
            key = self._parsed[raw] = ed25519_public(raw)
        return key

    def encryption_key(self, participant: str, at: datetime) -> tuple[str, X25519PublicKey]:
        """See ``KeyDirectory.encryption_key``."""
        member = self.get(participant)
        usable = [
            k
            for k in member.encryption_keys
            if k.status is Status.ACTIVE and k.not_before <= at and (k.not_after is None or at <= k.not_after)
        ]
        if member.status is Status.REVOKED or not usable:
            raise NoUsableKey(f"no valid encryption key for {participant}")
        newest = max(usable, key=lambda k: k.not_before)
        return newest.kid, x25519_public(newest.public)

    def newer(self, candidate: SignedRoster) -> Roster:
        """Verify ``candidate`` and return it if it is a newer version; refuse rollbacks and forks."""
        verified = Roster(candidate, self.authority)
        if verified.version < self.version:
            raise RosterRollback
        if verified.version == self.version and candidate.to_bytes() != self.signed.to_bytes():
            raise RosterRollback("a different roster with the same version")
        return verified


def _valid(keys: Iterable[RosterKey], kid: str, at: datetime) -> RosterKey:
    for key in keys:
        if key.kid == kid:
            if key.status is Status.REVOKED:
                raise RevokedKey
            if at < key.not_before or (key.not_after is not None and at > key.not_after):
                raise ExpiredKey
            return key
    raise UnknownKey


# -- the authority's edits: each returns the next version --


def authority_roster(raw: bytes, authority: Ed25519PrivateKey) -> RosterBody:
    """The body of a roster file, only if ``authority`` signed it: the edits below re-sign what they are given.

    Checked against the key about to sign, so that a body changed on disk (a URL pointing elsewhere, a key
    added) or a roster of another authority never comes out of an edit carrying this authority's signature.
    """
    signed = parse_roster(raw)
    try:
        Roster(signed, authority.public_key())
    except (BadSignature, UnknownKey) as exc:
        raise UnverifiedRoster(
            "the roster file was changed since this authority key signed it, or another authority signed it; "
            "restore the last roster this authority signed, or use the key that signed it, and try again"
        ) from exc
    return signed.roster


def new_roster(authority: Ed25519PublicKey, now: datetime) -> RosterBody:
    """Version 1 of an empty roster."""
    return RosterBody(version=1, issued_at=now, authority_key=key_id(authority))


def _next(body: RosterBody, participants: list[Participant], now: datetime) -> RosterBody:
    return body.model_copy(
        update={"version": body.version + 1, "issued_at": now, "participants": participants}
    )


def _card_keys(card: PublicCard, now: datetime) -> tuple[RosterKey, RosterKey]:
    signing = RosterKey(kid=key_id(ed25519_public(card.signing_key)), public=card.signing_key, not_before=now)
    encryption = RosterKey(
        kid=key_id(x25519_public(card.encryption_key)), public=card.encryption_key, not_before=now
    )
    return signing, encryption


def add_participant(
    body: RosterBody, card: PublicCard, url: str, role: Role, name: str, now: datetime
) -> RosterBody:
    """Add a member from its public card."""
    if any(p.id == card.participant for p in body.participants):
        raise Malformed(f"{card.participant} is already in the roster; use rotate to change its keys")
    signing, encryption = _card_keys(card, now)
    member = Participant(
        id=card.participant,
        role=role,
        name=name,
        url=url.rstrip("/"),
        signing_keys=[signing],
        encryption_keys=[encryption],
        tls_certificates=[card.tls_certificate] if card.tls_certificate else None,
    )
    return _next(body, [*body.participants, member], now)


def _replace(body: RosterBody, participant: str, new: Participant, now: datetime) -> RosterBody:
    if not any(p.id == participant for p in body.participants):
        raise UnknownSender(f"{participant} is not in the roster")
    return _next(body, [new if p.id == participant else p for p in body.participants], now)


def _member(body: RosterBody, participant: str) -> Participant:
    for member in body.participants:
        if member.id == participant:
            return member
    raise UnknownSender(f"{participant} is not in the roster")


def revoke(body: RosterBody, participant: str, kid: str | None, now: datetime) -> RosterBody:
    """Revoke one key of a member, or the whole member when ``kid`` is None. Effective at once."""
    member = _member(body, participant)
    if kid is None:
        return _replace(body, participant, member.model_copy(update={"status": Status.REVOKED}), now)

    def mark(keys: list[RosterKey]) -> list[RosterKey]:
        return [k.model_copy(update={"status": Status.REVOKED}) if k.kid == kid else k for k in keys]

    if not any(k.kid == kid for k in [*member.signing_keys, *member.encryption_keys]):
        raise UnknownKey(f"{participant} has no key {kid}")
    updated = member.model_copy(
        update={"signing_keys": mark(member.signing_keys), "encryption_keys": mark(member.encryption_keys)}
    )
    return _replace(body, participant, updated, now)


def rotate(
    body: RosterBody, card: PublicCard, overlap: timedelta, now: datetime, url: str | None = None
) -> RosterBody:
    """Add a member's new keys; its current keys stay valid for ``overlap`` so that in-flight messages open."""
    member = _member(body, card.participant)
    signing, encryption = _card_keys(card, now)
    if any(k.kid == signing.kid for k in member.signing_keys):
        certificates = _renewed(member.tls_certificates, card.tls_certificate)
        if certificates == member.tls_certificates:
            raise Malformed("the card's keys and certificate are already in the roster")
        # A new TLS certificate alone: the message keys stay as they are.
        return _replace(
            body, card.participant, member.model_copy(update={"tls_certificates": certificates}), now
        )

    def close(keys: list[RosterKey]) -> list[RosterKey]:
        end = now + overlap
        return [
            k.model_copy(update={"not_after": end}) if k.not_after is None or k.not_after > end else k
            for k in keys
        ]

    updated = member.model_copy(
        update={
            "signing_keys": [*close(member.signing_keys), signing],
            "encryption_keys": [*close(member.encryption_keys), encryption],
            "url": (url or member.url).rstrip("/"),
            "tls_certificates": _renewed(member.tls_certificates, card.tls_certificate),
        }
    )
    return _replace(body, card.participant, updated, now)


def _renewed(current: list[bytes] | None, new: bytes | None) -> list[bytes] | None:
    """The new certificate first and the newest previous one kept, so that peers adopting the roster accept
    either while the member switches; older ones go."""
    if new is None or (current and current[0] == new):
        return current
    return [new, *(current or [])[:1]]


def set_matching_budget(body: RosterBody, participant: str, items: int, now: datetime) -> RosterBody:
    """Set how many items ``participant`` may ask about per day of each peer."""
    if items < 0:
        raise Malformed("a matching budget cannot be negative")
    member = _member(body, participant)
    return _replace(body, participant, member.model_copy(update={"matching_budget": items}), now)


def add_period(body: RosterBody, period: Period, now: datetime, historical: bool = False) -> RosterBody:
    """Declare a new Period of Action; a name already declared is refused (:func:`amend_period` changes one).

    A window that is already over is refused unless ``historical`` says it is declared on purpose (to replay a
    past period from imported returns and records): by mistake it would only ever show zeros.
    """
    if any(p.name == period.name for p in body.periods or []):
        raise PeriodExists(
            "a period of that name is already declared; use 'ncpx period amend' to change it, or choose another name"
        )
    if period.end <= now and not historical:
        raise PeriodOver(
            "the period's window is already over; declare it with --historical if you mean to replay a past period"
        )
    _check_members(body, period)
    return _with_periods(body, [*(body.periods or []), period], now)


AMENDABLE = frozenset({"title", "start", "end", "participants", "timezone"})
"""What an amendment may change: a period's name identifies it and its coordinator's store holds its figures."""


def amend_period(body: RosterBody, name: str, changes: dict[str, Any], now: datetime) -> RosterBody:
    """Change a declared period's dates, zone, participants or title, as a new roster version.

    The amended period is validated as a whole, like a new one, so that an amendment cannot produce a period a
    declaration would refuse.
    """
    if not set(changes) <= AMENDABLE:
        raise ValueError(f"only {', '.join(sorted(AMENDABLE))} can be amended")
    current = find_period(body, name)
    amended = period_from({**current.model_dump(), **changes})
    _check_members(body, amended)
    return _with_periods(body, [amended if p.name == name else p for p in body.periods or []], now)


def close_period(body: RosterBody, name: str, now: datetime) -> RosterBody:
    """End a running period at ``now``, before its declared end."""
    current = find_period(body, name)
    if now >= current.end:
        raise PeriodOver("the period has already ended; nothing to close")
    if now <= current.start:
        raise InvalidPeriod("the period has not started yet; amend its dates instead of closing it")
    return amend_period(body, name, {"end": now}, now)


def find_period(body: RosterBody, name: str) -> Period:
    """The period ``name`` declares in ``body``, or :class:`NotFound`."""
    for period in body.periods or []:
        if period.name == name:
            return period
    raise NotFound("no period of that name is declared; 'ncpx period list' shows those that are")


def _check_members(body: RosterBody, period: Period) -> None:
    by_id = {p.id: p for p in body.participants}
    missing = [p for p in [*period.participants, period.coordinator] if p not in by_id]
    if missing:
        raise UnknownSender(f"not in the roster: {', '.join(missing)}")
    coordinator = by_id[period.coordinator]
    if coordinator.role is not Role.COORDINATOR or coordinator.status is not Status.ACTIVE:
        raise NotACoordinator(
            "the participant named as coordinator is not an active coordinator in the roster; name the coordinator"
        )


def _with_periods(body: RosterBody, periods: list[Period], now: datetime) -> RosterBody:
    return body.model_copy(update={"version": body.version + 1, "issued_at": now, "periods": periods})


def authority_public_text(key: Ed25519PublicKey) -> str:
    """The one-line form of the authority's public key that operators pin at setup."""
    return "ncpx-authority:" + b64e(raw_public(key))


def parse_authority_public(text: str) -> Ed25519PublicKey:
    """Inverse of :func:`authority_public_text`."""
    prefix = "ncpx-authority:"
    text = text.strip()
    if not text.startswith(prefix):
        raise Malformed("authority public key must start with 'ncpx-authority:'")
    return ed25519_public(b64d(text[len(prefix) :]))
