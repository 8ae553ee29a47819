"""Key material and trust: participant identities, the authority key, and the signed roster."""

from keys.authority import generate_authority, load_authority
from keys.identity import Identity, PublicCard, read_card
from keys.roster import (
    Participant,
    Role,
    Roster,
    RosterBody,
    RosterKey,
    SignedRoster,
    Status,
    add_participant,
    authority_public_text,
    new_roster,
    parse_authority_public,
    parse_roster,
    revoke,
    rotate,
    sign_roster,
)

__all__ = [
    "Identity",
    "Participant",
    "PublicCard",
    "Role",
    "Roster",
    "RosterBody",
    "RosterKey",
    "SignedRoster",
    "Status",
    "add_participant",
    "authority_public_text",
    "generate_authority",
    "load_authority",
    "new_roster",
    "parse_authority_public",
    "parse_roster",
    "read_card",
    "revoke",
    "rotate",
    "sign_roster",
]
