"""Queued envelopes and a recipient's changed keys: the decision table, and sealing a message again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys.identity import Identity
from keys.roster import rotate
from protocol import CrimeArea, Urgency, open_envelope
from protocol.compose import compose_enquiry
from protocol.errors import BadSignature, CannotOpen, TamperedHeader
from protocol.rekey import KeyAction, RecipientKeys, key_action, reseal
from tests.protocol.helpers import BODY, LIMIT, MAX_AGE, NOW, SKEW, Counter, world

KEYS = RecipientKeys(withdrawn=False, current="new", revoked=frozenset({"revoked"}))


@pytest.mark.parametrize(
    ("keys", "sealed_to", "handed", "expected"),
    [
        (KEYS, "new", False, KeyAction.SEND),
        (KEYS, "new", True, KeyAction.SEND),
        (KEYS, "old", False, KeyAction.RESEAL),
        (KEYS, "revoked", False, KeyAction.RESEAL),
        (KEYS, "old", True, KeyAction.SEND),  # the peer may hold it, and still holds the old key
        (KEYS, "revoked", True, KeyAction.WITHDRAW),  # the peer may hold it: other bytes would be refused
        (RecipientKeys(True, "new", frozenset()), "new", False, KeyAction.WITHDRAW),
        (RecipientKeys(False, None, frozenset({"revoked"})), "revoked", False, KeyAction.WITHDRAW),
        (RecipientKeys(False, None, frozenset()), "expired", False, KeyAction.SEND),
    ],
)
def test_what_becomes_of_a_queued_envelope(
    keys: RecipientKeys, sealed_to: str, handed: bool, expected: KeyAction
) -> None:
    assert key_action(keys, sealed_to, handed) is expected


def test_a_message_sealed_again_keeps_everything_but_the_key_and_opens_with_the_new_one() -> None:
    w = world()
    random = Counter()
    [out] = compose_enquiry(
        BODY,
        ["MY"],
        CrimeArea.OTHER,
        Urgency.NORMAL,
        w.th,
        w.roster,
        w.th.encryption_keys[-1].public_key(),
        NOW,
        random,
    )
    rotated = Identity("MY", [*w.my.signing_keys], [*w.my.encryption_keys])
    rotated.rotate()
    roster = w.resign(rotate(w.body, rotated.card(), timedelta(days=7), NOW))
    to = roster.encryption_key("MY", NOW)
    assert to[0] != out.envelope.header.recipient_key

    again = reseal(
        out.envelope,
        out.local_sealed,
        w.th.encryption_keys,
        w.th.signing,
        to,
        w.th.encryption_keys[-1].public_key(),
        random,
    )

    old, new = out.envelope.header, again.envelope.header
    assert new.recipient_key == to[0]
    assert (
        new.model_copy(update={"recipient_key": old.recipient_key}) == old
    )  # id, thread, times, sender: kept
    opened = open_envelope(
        again.envelope, roster, rotated, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT
    )
    assert opened == BODY
    with pytest.raises(CannotOpen):  # the old key opens nothing of it
        open_envelope(
            again.envelope, roster, w.my, NOW, skew=SKEW, max_age=MAX_AGE, max_attachment_bytes=LIMIT
        )
    # The new own copy belongs to the new header: it is what a later reseal (or the sender's view) opens.
    third = reseal(
        again.envelope,
        again.local_sealed,
        w.th.encryption_keys,
        w.th.signing,
        to,
        w.th.encryption_keys[-1].public_key(),
        random,
    )
    assert third.envelope.header == new


def test_an_own_copy_that_is_not_this_message_s_is_never_sealed_again() -> None:
    w = world()
    random = Counter()
    own = w.th.encryption_keys[-1].public_key()
    first, second = (
        compose_enquiry(BODY, ["MY"], CrimeArea.OTHER, Urgency.NORMAL, w.th, w.roster, own, NOW, random)[0]
        for _ in range(2)
    )
    to = w.roster.encryption_key("MY", NOW)
    with pytest.raises(TamperedHeader):  # another message's copy
        reseal(first.envelope, second.local_sealed, w.th.encryption_keys, w.th.signing, to, own, random)
    with pytest.raises(CannotOpen):  # no key of ours opens it
        reseal(
            first.envelope, first.local_sealed, [X25519PrivateKey.generate()], w.th.signing, to, own, random
        )
    with pytest.raises(BadSignature):  # not signed with the key the header names
        reseal(first.envelope, first.local_sealed, w.th.encryption_keys, w.my.signing, to, own, random)
