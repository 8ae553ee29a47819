"""Write ``envelope-v2.json``: fixed keys and randomness in, exact bytes out, for other implementations.

Run from the repository root: ``.venv/bin/python -m tests.vectors.make_vectors``. The test
``tests/protocol/test_vectors.py`` recomputes every output from the inputs stored in the file.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys import Identity, add_participant, new_roster, sign_roster
from keys.roster import Role
from protocol import EnquiryBody, Header, Urgency, due_at, make_receipt, seal, sign_request, uuid7
from protocol.codes import Kind
from protocol.encoding import canonical, digest_text, format_time, parse_time
from protocol.envelope import header_digest, join_batch
from protocol.models import Person, Subjects, Vessel
from protocol.receipts import make_refusal

HERE = Path(__file__).resolve().parent
FILE = HERE / "envelope-v2.json"

INPUTS: dict[str, Any] = {
    "time": "2015-10-01T02:00:00.000Z",
    "authority_private_ed25519": "01" * 32,
    "th_private_ed25519": "02" * 32,
    "th_private_x25519": "03" * 32,
    "my_private_ed25519": "04" * 32,
    "my_private_x25519": "05" * 32,
    "message_id_random": "0a" * 10,
    "thread_random": "0b" * 10,
    "ephemeral_x25519": "06" * 32,
    "body": EnquiryBody(
        subject="Vessel suspected of carrying migrants",
        text="Please confirm the last port of call and the registered owner.",
        handling="H2",
        subjects=Subjects(
            persons=[Person(family_name="Perera", given_names="Kamal", nationality="LK")],
            vessels=[Vessel(name="KM Harapan Jaya", imo="9074729", flag="ID")],
        ),
    ).wire(),
}


def identity(participant: str, signing_hex: str, encryption_hex: str) -> Identity:
    """An identity from raw private keys in hex."""
    return Identity(
        participant,
        [Ed25519PrivateKey.from_private_bytes(bytes.fromhex(signing_hex))],
        [X25519PrivateKey.from_private_bytes(bytes.fromhex(encryption_hex))],
    )


def compute(inputs: dict[str, Any]) -> dict[str, Any]:
    """Every output, from the inputs alone."""
    now = parse_time(inputs["time"])
    authority = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(inputs["authority_private_ed25519"]))
    th = identity("TH", inputs["th_private_ed25519"], inputs["th_private_x25519"])
    my = identity("MY", inputs["my_private_ed25519"], inputs["my_private_x25519"])
    since = now - timedelta(days=1)
    body = new_roster(authority.public_key(), since)
    body = add_participant(body, th.card(), "https://ncpx.th.example", Role.NODE, "Thailand", since)
    body = add_participant(body, my.card(), "https://ncpx.my.example", Role.NODE, "Malaysia", since)
    roster = sign_roster(body, authority)
    message_id = uuid7(now, bytes.fromhex(inputs["message_id_random"]))
    header = Header(
        id=message_id,
        kind=Kind.ENQUIRY,
        thread=uuid7(now, bytes.fromhex(inputs["thread_random"])),
        sender="TH",
        recipient="MY",
        created_at=now,
        area="people_smuggling",
        urgency=Urgency.URGENT_DIRECT,
        due_at=due_at(Urgency.URGENT_DIRECT, now),
        sender_key=th.signing_kid,
        recipient_key=my.encryption_kid,
    )
    envelope = seal(
        header,
        EnquiryBody.model_validate(inputs["body"]),
        th,
        my.encryption_keys[0].public_key(),
        bytes.fromhex(inputs["ephemeral_x25519"]),
    )
    raw = envelope.canonical_bytes()
    receipt = make_receipt(envelope, my, now + timedelta(seconds=1))
    refusal = make_refusal("TH", message_id, digest_text(raw), "cannot_open", my, now + timedelta(seconds=1))
    request = sign_request("POST", "/federation/v1/envelopes", "MY", join_batch([raw]), th, now)
    return {
        "roster": roster.to_bytes().decode(),
        "header": canonical(header.wire()).decode(),
        "header_digest_hex": header_digest(header).hex(),
        "envelope": raw.decode(),
        "envelope_digest": digest_text(raw),
        "receipt": canonical(receipt.wire()).decode(),
        "receipt_received_at": format_time(receipt.received_at),
        "refusal": canonical(refusal.wire()).decode(),
        "request_headers": request,
    }


def main() -> None:
    document = {
        "description": "ncpx protocol v2 test vectors; see README.md beside this file",
        "inputs": INPUTS,
        "outputs": compute(INPUTS),
    }
    FILE.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main()
