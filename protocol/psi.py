"""Private set intersection over ristretto255: the asker learns which of its tokens the peer holds, nothing else.

The construction, its wire format and its security argument are in ``protocol/PSI.md``; the published test
vectors in ``tests/vectors/psi-v1.json``. In short, with *H* a hash onto the group, the asker's secret *a* and
the answerer's secret *b*:

1. the asker sends ``H(x)^a`` for each of its tokens *x* (:func:`blind`);
2. the answerer returns ``(H(x)^a)^b`` in the same order (:func:`answer`) and, sorted, a 16-byte digest of
   ``H(y)^b`` for each of its own tokens *y* (:func:`digests`);
3. the asker raises each answer to ``1/a``, digests it and looks it up among the answerer's digests
   (:func:`intersect`).

Why ristretto255 and not the OpenMined package's P-256: ``bench/deconfliction.py`` measures both in one run
(README, "Deconfliction (protocol)"). Ristretto255 is a prime-order group with a canonical encoding, so a
malformed or wrong-group element is refused by decoding itself (:class:`~protocol.errors.BadPoint`) rather
than by a cofactor check, and libsodium's hash-to-group (``from_hash``, Elligator 2 twice) is built in.
libsodium is reached through ``pysodium``, because PyNaCl does not expose the ristretto255 functions.

Everything here is pure: secrets come from random bytes passed in, and every function takes and returns lists,
so that a caller can split a large set into :func:`chunks` and run them in a process pool; the results
concatenate in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import pysodium

from protocol.errors import BadPoint, Malformed

VERSION: Final = 1
POINT_BYTES: Final = 32
DIGEST_BYTES: Final = 16
"""Digests of the answerer's elements: 128 bits keep a false match below 2^-90 for 10^6 x 10^6 items."""
SECRET_RANDOM_BYTES: Final = 64
"""Random bytes a secret is drawn from: reduced mod the group order, 64 bytes give a uniform scalar."""
_HASH_TAG: Final = b"ncpx-psi-v1 hash-to-group\x00"
_DIGEST_TAG: Final = b"ncpx-psi-v1 digest\x00"

T = TypeVar("T")


@dataclass(frozen=True)
class Secret:
    """One side's exponent for one session, and its inverse; never stored, never sent, used once."""

    scalar: bytes
    inverse: bytes


def secret(random: bytes) -> Secret:
    """The secret drawn from ``random`` (:data:`SECRET_RANDOM_BYTES` from a CSPRNG)."""
    if len(random) != SECRET_RANDOM_BYTES:
        raise ValueError(f"a secret needs exactly {SECRET_RANDOM_BYTES} random bytes")
    scalar = pysodium.crypto_core_ristretto255_scalar_reduce(random)
    if scalar == bytes(32):  # probability 2^-252: the random source is broken
        raise ValueError("the random bytes reduce to zero")
    return Secret(scalar, pysodium.crypto_core_ristretto255_scalar_invert(scalar))


def hash_to_group(token: str) -> bytes:
    """The group element of a token: SHA-512 of a domain tag and the token's UTF-8, mapped by ``from_hash``."""
    return bytes(
        pysodium.crypto_core_ristretto255_from_hash(hashlib.sha512(_HASH_TAG + token.encode()).digest())
    )


def _power(scalar: bytes, element: bytes) -> bytes:
    """``element`` to the ``scalar``; libsodium refuses a non-canonical or non-ristretto255 encoding and the
    identity (it would make every answer equal)."""
    if len(element) != POINT_BYTES:
        raise BadPoint("a group element must be exactly 32 bytes")
    try:
        return bytes(pysodium.crypto_scalarmult_ristretto255(scalar, element))
    except ValueError:
        raise BadPoint("a value in the message is not a valid ristretto255 group element") from None


def _digest(element: bytes) -> bytes:
    return hashlib.sha512(_DIGEST_TAG + element).digest()[:DIGEST_BYTES]


def blind(tokens: Sequence[str], own: Secret) -> list[bytes]:
    """Step 1, asker: ``H(x)^a`` for each token, in order."""
    return [_power(own.scalar, hash_to_group(token)) for token in tokens]


def answer(blinded: Sequence[bytes], own: Secret) -> list[bytes]:
    """Step 2, answerer: the asker's elements raised to ``b``, in the order received."""
    return [_power(own.scalar, element) for element in blinded]


def digests(tokens: Sequence[str], own: Secret) -> list[bytes]:
    """Step 2, answerer: digests of ``H(y)^b`` for its own tokens (sort the concatenated chunks before sending:
    :func:`pack_digests` does)."""
    return [_digest(_power(own.scalar, hash_to_group(token))) for token in tokens]


def unblind(answered: Sequence[bytes], own: Secret) -> list[bytes]:
    """Step 3, asker: digests of ``H(x)^b``, recovered from the answers with ``1/a``, in order."""
    return [_digest(_power(own.inverse, element)) for element in answered]


def intersect(tokens: Sequence[str], unblinded: Sequence[bytes], peer_digests: Iterable[bytes]) -> list[str]:
    """Step 3, asker: its own tokens whose unblinded digest is among the answerer's."""
    if len(tokens) != len(unblinded):
        raise Malformed("the answer must hold one element for each element asked")
    held = set(peer_digests)
    return [token for token, digest in zip(tokens, unblinded, strict=True) if digest in held]


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive slices of at most ``size``, for a process pool; results concatenate."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def pack_points(elements: Sequence[bytes]) -> bytes:
    """Elements on the wire: their 32-byte encodings back to back."""
    return b"".join(elements)


def unpack_points(data: bytes) -> list[bytes]:
    """Elements from the wire; each is validated when it is used (:class:`BadPoint`)."""
    if len(data) % POINT_BYTES:
        raise Malformed("a list of group elements must be a multiple of 32 bytes long")
    return [data[i : i + POINT_BYTES] for i in range(0, len(data), POINT_BYTES)]


def pack_digests(values: Iterable[bytes]) -> bytes:
    """The answerer's digests on the wire: sorted, so their order says nothing about its list's order."""
    return b"".join(sorted(values))


def unpack_digests(data: bytes) -> list[bytes]:
    """The answerer's digests from the wire."""
    if len(data) % DIGEST_BYTES:
        raise Malformed("a list of digests must be a multiple of 16 bytes long")
    return [data[i : i + DIGEST_BYTES] for i in range(0, len(data), DIGEST_BYTES)]
