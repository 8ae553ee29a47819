"""Every way ncpx can refuse something, as one hierarchy with stable machine-readable codes.

Codes are part of the wire contract: peers and dashboards match on them, so a code is never renamed.
The HTTP layer, the CLI and the tests translate these classes in one place each; nowhere else decides
what a rejection is called. Messages never quote the offending input, so that a refusal cannot leak content.
"""

from __future__ import annotations

from typing import ClassVar


class NcpxError(Exception):
    """Base of every named ncpx error."""

    code: ClassVar[str] = "ncpx_error"
    title: ClassVar[str] = "ncpx error"
    #: HTTP status the error maps to when it crosses an API boundary.
    status: ClassVar[int] = 400
    #: Whether the same request may pass later unchanged (the peer adopts a newer roster, a clock is set
    #: right); a sender retries these until its give-up age and gives up at once on the others. Unknown codes
    #: fall back to this base class, and so are retried.
    retryable: ClassVar[bool] = True

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class PeerError(NcpxError):
    """The other side sent something we must refuse (a bad or hostile input)."""

    retryable = False


class LocalError(NcpxError):
    """We cannot do what was asked with what we hold (configuration, keys, state)."""

    status = 500
    retryable = False


# -- refusals of input --


class Malformed(PeerError):
    """The bytes do not parse as the expected structure."""

    code = "malformed"
    title = "Malformed input"


class TooLarge(PeerError):
    """The input is larger than the configured limit."""

    code = "too_large"
    title = "Input exceeds the size limit"
    status = 413


class BadSignature(PeerError):
    """A signature does not verify under the key the roster gives for the claimed signer."""

    code = "bad_signature"
    title = "Signature does not verify"
    status = 401


class TamperedHeader(PeerError):
    """The sealed part was made for a different header than the one it travels with."""

    code = "tampered_header"
    title = "Header does not match the sealed content"


class NotForUs(PeerError):
    """The envelope or request is addressed to another participant."""

    code = "not_for_us"
    title = "Addressed to another participant"
    status = 421


class UnknownSender(PeerError):
    """The claimed sender is not in the roster (or not active in it)."""

    code = "unknown_sender"
    title = "Sender is not a roster member"
    status = 403
    retryable = True


class UnknownRecipient(PeerError):
    """A message is addressed to someone who is not an active node in the roster."""

    code = "unknown_recipient"
    title = "Recipient is not an active node in the roster"
    status = 422


class NotANode(PeerError):
    """A message is from or to a roster member that is not a country node (the coordinator never takes part)."""

    code = "not_a_node"
    title = "Messages pass only between country nodes"
    status = 403


class WrongCertificate(PeerError):
    """The TLS certificate a caller presented belongs to another roster member than the one signing the request."""

    code = "wrong_certificate"
    title = "The connection's certificate belongs to another participant than the request's signer"
    status = 403


class UnknownKey(PeerError):
    """A key id named in a header is not in the roster for that participant."""

    code = "unknown_key"
    title = "Key id is not known for this participant"
    status = 403
    retryable = True


class RevokedKey(PeerError):
    """The key (or the whole participant) has been revoked in the roster."""

    code = "revoked_key"
    title = "Key has been revoked"
    status = 403


class ExpiredKey(PeerError):
    """The key exists but was not valid at the time it was used."""

    code = "expired_key"
    title = "Key is outside its validity window"
    status = 403


class Replayed(PeerError):
    """A message id already seen from this sender arrived with different bytes."""

    code = "replayed"
    title = "Message id already used with different content"
    status = 409


class UnsupportedVersion(PeerError):
    """The input was made for another version of the protocol than the one this node speaks."""

    code = "unsupported_version"
    title = "Protocol version not supported"


class RequestTimeout(PeerError):
    """The request body did not arrive within the time allowed for it."""

    code = "request_timeout"
    title = "Request body too slow"
    status = 408
    retryable = True


class TooManyAttempts(PeerError):
    """An address made too many failed attempts in a short time and must wait."""

    code = "too_many_attempts"
    title = "Too many failed attempts"
    status = 429
    retryable = True


class QuotaExceeded(PeerError):
    """A peer delivered more messages or bytes than its quota allows in the current window."""

    code = "quota_exceeded"
    title = "Peer quota exceeded"
    status = 429
    retryable = True


class StaleTimestamp(PeerError):
    """A timestamp lies outside the accepted clock-skew window."""

    code = "stale_timestamp"
    title = "Timestamp outside the accepted window"
    retryable = True


class ImplausibleTime(PeerError):
    """A record's times contradict each other: before the message was created, or a creation backdated beyond
    the accepted envelope age."""

    code = "implausible_time"
    title = "Times in the record contradict each other"
    status = 422


class Unproven(PeerError):
    """A ``sent`` record lacks the receiver's signed receipt, or carries one that does not prove this delivery."""

    code = "unproven"
    title = "Record lacks valid delivery evidence"
    status = 422


class OutsidePeriods(PeerError):
    """A record describes an exchange between parties who share no period the coordinator serves."""

    code = "outside_periods"
    title = "Exchange is outside every period the coordinator serves"
    status = 422


class CannotOpen(PeerError):
    """The sealed part does not decrypt with any key we hold for the named key id."""

    code = "cannot_open"
    title = "Sealed content cannot be opened"


class KeyNotHeld(PeerError):
    """The roster lists the key the message was sealed to, but this node does not hold it yet (its operator
    rotated keys and has not given the node the new key folder): the sender keeps it and tries again."""

    code = "key_not_held"
    title = "Sealed to a key this node does not hold yet"
    status = 409
    retryable = True


class RosterRollback(PeerError):
    """A roster with a version lower than (or equal to, but different from) the one held."""

    code = "roster_rollback"
    title = "Roster version is not newer than the one held"
    status = 409


class Unauthorized(PeerError):
    """The caller did not present a valid credential."""

    code = "unauthorized"
    title = "Authentication required"
    status = 401


class NotFound(PeerError):
    """No such resource visible to the caller."""

    code = "not_found"
    title = "Not found"
    status = 404


class Conflict(PeerError):
    """The request conflicts with the current state (e.g. an idempotency key reused for another request)."""

    code = "conflict"
    title = "Conflicts with the current state"
    status = 409


class InvalidState(PeerError):
    """The operation is not allowed in the message's current state (e.g. answering a reply)."""

    code = "invalid_state"
    title = "Not allowed in the current state"
    status = 409


class ForgedForm(PeerError):
    """A browser form arrived without the CSRF token of the session it claims, or from another origin."""

    code = "forged_form"
    title = "Form not accepted"
    status = 403


# -- local failures --


class KeyFileError(LocalError):
    """A key file is missing, unreadable, too permissive or the passphrase is wrong."""

    code = "key_file"
    title = "Key file cannot be used"


class NoUsableKey(LocalError):
    """The roster holds no currently valid key for a participant we need to address."""

    code = "no_usable_key"
    title = "No valid key for the participant"
    status = 422
    retryable = True


class UnverifiedRoster(LocalError):
    """The roster file an authority command is about to edit does not carry that authority's signature.

    Re-signing it would lend the authority's signature to whatever was changed in the file since.
    """

    code = "unverified_roster"
    title = "Roster file is not signed by this authority key"


class StorageFull(LocalError):
    """The node's disk is full: nothing could be stored (and nothing was)."""

    code = "storage_full"
    title = "The node's storage is full"
    status = 507
    retryable = True


class ConfigError(LocalError):
    """The node configuration is incomplete or inconsistent."""

    code = "config"
    title = "Configuration error"


ALL_ERRORS: tuple[type[NcpxError], ...] = (
    Malformed,
    WrongCertificate,
    TooLarge,
    BadSignature,
    TamperedHeader,
    NotForUs,
    UnknownSender,
    UnknownRecipient,
    NotANode,
    UnknownKey,
    RevokedKey,
    ExpiredKey,
    Replayed,
    UnsupportedVersion,
    RequestTimeout,
    TooManyAttempts,
    QuotaExceeded,
    StaleTimestamp,
    ImplausibleTime,
    Unproven,
    OutsidePeriods,
    CannotOpen,
    KeyNotHeld,
    RosterRollback,
    Unauthorized,
    NotFound,
    Conflict,
    InvalidState,
    ForgedForm,
    KeyFileError,
    NoUsableKey,
    UnverifiedRoster,
    ConfigError,
)

_BY_CODE = {cls.code: cls for cls in ALL_ERRORS}


def error_for_code(code: str) -> type[NcpxError]:
    """The class a peer meant by a code it sent back; unknown codes fall back to the base."""
    return _BY_CODE.get(code, NcpxError)


def problem_type(code: str) -> str:
    """Stable RFC 9457 ``type`` URI for a code."""
    return f"https://ncpx.invalid/problems/{code}"
