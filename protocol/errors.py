"""Every way ncpx can refuse something, as one hierarchy with stable machine-readable codes.

Codes are part of the wire contract: peers and dashboards match on them, so a code is never renamed.
The HTTP layer, the CLI and the tests translate these classes in one place each; nowhere else decides
what a rejection is called. Messages never quote the offending input, so that a refusal cannot leak content.
"""

from __future__ import annotations

from collections.abc import Sequence
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


class StoredQuotaExceeded(PeerError):
    """Messages from a peer that no officer has read yet take up more bytes than this node keeps for it."""

    code = "storage_quota_exceeded"
    title = "Peer's share of storage is full"
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


# -- deconfliction: watch-list entries, operations, private matching --


class InvalidSubject(PeerError):
    """A watch-list entry or planned operation cannot be turned into a matching token."""

    code = "invalid_subject"
    title = "The entry cannot be used for matching; correct it and submit it again"
    status = 422


class InvalidName(InvalidSubject):
    """A person's name has no letters or digits left once case, accents and punctuation are set aside."""

    code = "invalid_name"
    title = "The person's name has no letters; give the name as written in the travel document"
    status = 422


class InvalidPhone(InvalidSubject):
    """A phone number does not parse, or is not a valid number for its country calling code."""

    code = "invalid_phone"
    title = "The phone number is not valid for its country code; give it with its + and country code"
    status = 422


class InvalidDocument(InvalidSubject):
    """A travel document number has no letters or digits, or more than a document can carry."""

    code = "invalid_document"
    title = "The document number must have 1 to 40 letters or digits; copy it from the document"
    status = 422


class InvalidImo(InvalidSubject):
    """An IMO number is not seven digits or its check digit does not match."""

    code = "invalid_imo"
    title = "The IMO number is not seven digits with a matching check digit; check it against the register"
    status = 422


class InvalidAccount(InvalidSubject):
    """An IBAN fails its mod-97 check, or a national account number lacks its country or digits."""

    code = "invalid_account"
    title = "The account number is not a valid IBAN or national account number; check it with the bank"
    status = 422


class InvalidAddress(InvalidSubject):
    """An address has no letters or digits left once case, accents and punctuation are set aside."""

    code = "invalid_address"
    title = "The address has no usable words; give at least a street line and the country"
    status = 422


class InvalidOperation(InvalidSubject):
    """A planned operation's place or time window is impossible or too large to match."""

    code = "invalid_operation"
    title = "The operation's place, radius or time window is out of range; correct it and submit it again"
    status = 422


class InvalidRows(PeerError):
    """A watch-list import has bad rows: each is named with its number and what is wrong, nothing is stored."""

    code = "invalid_rows"
    title = "Some rows are invalid and nothing was imported; correct them and import the whole file again"
    status = 422

    def __init__(self, rows: Sequence[tuple[int, str]]) -> None:
        self.rows = list(rows)
        listed = "".join(f"\nrow {number}: {problem}" for number, problem in self.rows)
        plural = "row is" if len(self.rows) == 1 else "rows are"
        super().__init__(f"nothing was imported: {len(self.rows)} {plural} invalid{listed}")


class BadPoint(PeerError):
    """A group element in a matching message is malformed, outside the ristretto255 group, or the identity."""

    code = "bad_point"
    title = "A matching message holds a value that is not a valid group element"


class OutOfOrder(PeerError):
    """A matching-session message arrived in a state that does not expect it: replayed, early, or from the
    wrong side."""

    code = "out_of_order"
    title = "The matching session is not at a step that accepts this message; start a new session"
    status = 409


class SessionExpired(PeerError):
    """A matching-session message arrived after the session's expiry time."""

    code = "session_expired"
    title = "The matching session has expired; start a new session"
    status = 410


class BudgetExhausted(PeerError):
    """A peer asked to match more items today than the roster's daily budget allows it."""

    code = "budget_exhausted"
    title = "The daily matching budget for this peer is used up; ask again tomorrow or ask about fewer items"
    status = 429


class InvalidPeriod(Malformed):
    """A Period of Action that cannot be declared as given: it ends before it starts, names an unknown time zone,
    or lists a participant twice."""

    code = "invalid_period"
    title = "The period is not valid as given"
    status = 422


class PeriodExists(Conflict):
    """A period of that name is already declared: declaring it again would silently replace its dates and
    participants, so changes go through an explicit amendment instead."""

    code = "period_exists"
    title = "A period of that name already exists"


class NotACoordinator(InvalidPeriod):
    """The participant named as a period's coordinator is not an active coordinator in the roster."""

    code = "not_a_coordinator"
    title = "The named coordinator is not a coordinator in the roster"


class PeriodOver(InvalidPeriod):
    """The period's window has already ended: declared by mistake it would show nothing but zeros, so a past
    period is declared only on purpose, for a replay."""

    code = "period_over"
    title = "The period is already over"


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


class SchemaTooNew(LocalError):
    """The database was written by a later release: this code does not know what its newer tables mean."""

    code = "schema_too_new"
    title = "Database schema is newer than this release"


class BackupUnusable(LocalError):
    """A backup folder lacks its manifest or database, or its database does not match the manifest."""

    code = "backup_unusable"
    title = "Backup cannot be used"


class RestoreRefused(LocalError):
    """A restore would overwrite a database that holds data (without ``--force``), or another node's."""

    code = "restore_refused"
    title = "Restore refused"


class Purged(NcpxError):
    """The message's body was removed under the node's retention policy; its metadata is all that is left."""

    code = "purged"
    title = "Message body purged"
    status = 410
    retryable = False


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
    StoredQuotaExceeded,
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
    InvalidSubject,
    InvalidName,
    InvalidPhone,
    InvalidDocument,
    InvalidImo,
    InvalidAccount,
    InvalidAddress,
    InvalidOperation,
    InvalidRows,
    BadPoint,
    OutOfOrder,
    SessionExpired,
    BudgetExhausted,
    InvalidPeriod,
    PeriodExists,
    NotACoordinator,
    PeriodOver,
    ForgedForm,
    KeyFileError,
    NoUsableKey,
    UnverifiedRoster,
    ConfigError,
    StorageFull,
    SchemaTooNew,
    BackupUnusable,
    RestoreRefused,
    Purged,
)

_BY_CODE = {cls.code: cls for cls in ALL_ERRORS}


def error_for_code(code: str) -> type[NcpxError]:
    """The class a peer meant by a code it sent back; unknown codes fall back to the base."""
    return _BY_CODE.get(code, NcpxError)


def problem_type(code: str) -> str:
    """Stable RFC 9457 ``type`` URI for a code."""
    return f"https://ncpx.invalid/problems/{code}"
