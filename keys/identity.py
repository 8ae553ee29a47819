"""A participant's own key material: Ed25519 signing keys and an X25519 keyring for opening bodies.

Keys are never deleted on rotation: a new key is appended and becomes current once the roster lists it, while
older encryption keys stay so that messages sealed to them while in flight still open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import BaseModel, ConfigDict

from keys.keyfile import read_private, write_private
from keys.tls import read_tls_certificate
from protocol.codes import normalise_participant
from protocol.encoding import b64d, b64e
from protocol.errors import KeyFileError, Malformed
from protocol.models import B64Bytes, ParticipantId
from protocol.signing import key_id, raw_public

IDENTITY_FILE = "identity.key"
PUBLIC_FILE = "public.json"


def _raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


class PublicCard(BaseModel):
    """What a participant hands the roster authority: its id and current public keys (never a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participant: ParticipantId
    signing_key: B64Bytes
    encryption_key: B64Bytes
    tls_certificate: B64Bytes | None = None
    """The federation listener's certificate (DER), which the roster pins for mutual TLS."""

    def wire(self) -> dict[str, Any]:
        """JSON form for the card file."""
        return self.model_dump(mode="json")


@dataclass
class Identity:
    """One participant's private keys. Implements ``protocol.signing.LocalKeys``."""

    participant: str
    signing_keys: list[Ed25519PrivateKey]
    encryption_keys: list[X25519PrivateKey]
    signing_kid: str = ""
    _active: Ed25519PrivateKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.participant = normalise_participant(self.participant)
        if not self.signing_keys or not self.encryption_keys:
            raise KeyFileError("identity holds no keys")
        self.use_signing_key(key_id(self.signing_keys[-1].public_key()))

    @classmethod
    def generate(cls, participant: str) -> Identity:
        """A fresh identity with one signing and one encryption key."""
        return cls(participant, [Ed25519PrivateKey.generate()], [X25519PrivateKey.generate()])

    @property
    def signing(self) -> Ed25519PrivateKey:
        """The signing key in use."""
        assert self._active is not None
        return self._active

    def use_signing_key(self, kid: str) -> None:
        """Sign with ``kid`` from now on (the node picks the newest one the roster lists)."""
        key = self.signing_key(kid)
        if key is None:
            raise KeyFileError("no signing key with that id in this identity")
        self._active, self.signing_kid = key, kid

    def signing_key(self, kid: str) -> Ed25519PrivateKey | None:
        """The private signing key ``kid`` if held (a message sealed again is signed with the key it names)."""
        for key in self.signing_keys:
            if key_id(key.public_key()) == kid:
                return key
        return None

    def signing_kids(self) -> list[str]:
        """Ids of all signing keys held, oldest first."""
        return [key_id(k.public_key()) for k in self.signing_keys]

    @property
    def encryption_kid(self) -> str:
        """Id of the newest encryption key."""
        return key_id(self.encryption_keys[-1].public_key())

    def encryption_kids(self) -> list[str]:
        """Ids of every encryption key held, oldest first."""
        return [key_id(key.public_key()) for key in self.encryption_keys]

    def decryption_key(self, kid: str) -> X25519PrivateKey | None:
        """The private encryption key ``kid`` if still held."""
        for key in self.encryption_keys:
            if key_id(key.public_key()) == kid:
                return key
        return None

    def rotate(self) -> None:
        """Add a new signing and a new encryption key; the old ones stay for the overlap."""
        self.signing_keys.append(Ed25519PrivateKey.generate())
        self.encryption_keys.append(X25519PrivateKey.generate())

    def card(self, tls_certificate: bytes | None = None) -> PublicCard:
        """Public card with the newest keys (and the TLS certificate, when the folder holds one)."""
        return PublicCard(
            participant=self.participant,
            signing_key=raw_public(self.signing_keys[-1].public_key()),
            encryption_key=raw_public(self.encryption_keys[-1].public_key()),
            tls_certificate=tls_certificate,
        )

    def save(self, directory: Path, passphrase: bytes | None = None) -> None:
        """Write ``identity.key`` (0600) and ``public.json`` into ``directory``."""
        payload = {
            "participant": self.participant,
            "signing": [b64e(_raw_private(k)) for k in self.signing_keys],
            "encryption": [b64e(_raw_private(k)) for k in self.encryption_keys],
        }
        write_private(directory / IDENTITY_FILE, payload, passphrase)
        self.write_card(directory)

    def write_card(self, directory: Path) -> None:
        """Write ``public.json``: the newest keys and the folder's TLS certificate, for the authority."""
        card = self.card(read_tls_certificate(directory))
        (directory / PUBLIC_FILE).write_text(card.model_dump_json(indent=2, exclude_none=True) + "\n")

    @classmethod
    def load(cls, directory: Path, passphrase: bytes | None = None) -> Identity:
        """Read the identity saved by :meth:`save`."""
        payload = read_private(directory / IDENTITY_FILE, passphrase)
        try:
            return cls(
                payload["participant"],
                [Ed25519PrivateKey.from_private_bytes(b64d(k)) for k in payload["signing"]],
                [X25519PrivateKey.from_private_bytes(b64d(k)) for k in payload["encryption"]],
            )
        except (KeyError, TypeError, ValueError, Malformed) as exc:
            raise KeyFileError(f"identity file in {directory} is damaged") from exc


def read_card(path: Path) -> PublicCard:
    """Load a public card file (``public.json``)."""
    try:
        return PublicCard.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path} is not a public card") from exc
