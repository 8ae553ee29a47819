"""Private set intersection: the published vectors, the intersection it computes, and refused elements."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pysodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import normalise, psi
from protocol.errors import BadPoint, Malformed
from tests.vectors.make_psi_vectors import FILE, compute

DOCUMENT = json.loads(FILE.read_text(encoding="utf-8"))
INPUTS, OUTPUTS = DOCUMENT["inputs"], DOCUMENT["outputs"]
RECOMPUTED = compute(INPUTS)
ASKER = psi.secret(bytes([1]) * 64)
ANSWERER = psi.secret(bytes([2]) * 64)
TOKENS = st.lists(st.text(min_size=1, max_size=12), max_size=12, unique=True)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_published_output_is_reproduced_exactly(name: str) -> None:
    assert RECOMPUTED[name] == OUTPUTS[name]


def test_published_session_finds_the_shared_tokens() -> None:
    assert set(OUTPUTS["intersection"]) == set(INPUTS["asker_tokens"]) & set(INPUTS["answerer_tokens"])


def session(mine: list[str], theirs: list[str]) -> list[str]:
    """One whole session through the wire encodings, as two nodes would run it."""
    blinded = psi.unpack_points(psi.pack_points(psi.blind(mine, ASKER)))
    answered = psi.unpack_points(psi.pack_points(psi.answer(blinded, ANSWERER)))
    own = psi.unpack_digests(psi.pack_digests(psi.digests(theirs, ANSWERER)))
    return psi.intersect(mine, psi.unblind(answered, ASKER), own)


@given(TOKENS, TOKENS)
@settings(max_examples=40, deadline=None)
def test_the_asker_learns_exactly_the_intersection(mine: list[str], theirs: list[str]) -> None:
    assert session(mine, theirs) == [token for token in mine if token in set(theirs)]


@given(
    st.lists(st.sampled_from(["Kamal Perera", "PERERA, kamal", "Kamal  Peréra", "kamal-perera"]), min_size=1)
)
@settings(max_examples=20, deadline=None)
def test_matching_is_invariant_under_the_normalisations(spellings: list[str]) -> None:
    theirs = [normalise.person("Perera Kamal", date(1984, 3, 7), "LK")]
    mine = sorted({normalise.person(name, date(1984, 3, 7), "lk") for name in spellings})
    assert session(mine, theirs) == theirs


def test_the_answerer_receives_neither_tokens_nor_their_plain_hashes() -> None:
    tokens = INPUTS["asker_tokens"]
    received = bytes.fromhex(OUTPUTS["blinded"])
    for token in tokens:
        raw = token.encode()
        for value in (
            raw,
            *(hashlib.new(name, raw).digest() for name in ("sha256", "sha1", "md5", "sha512")),
        ):
            assert value[:16] not in received
        assert psi.hash_to_group(token) not in received


def test_chunks_concatenate_to_the_whole() -> None:
    tokens = [f"phone:+668100000{i:02d}" for i in range(23)]
    parts = [psi.blind(chunk, ASKER) for chunk in psi.chunks(tokens, 5)]
    assert [element for part in parts for element in part] == psi.blind(tokens, ASKER)
    assert [len(chunk) for chunk in psi.chunks(tokens, 5)] == [5, 5, 5, 5, 3]


def test_digests_travel_sorted() -> None:
    values = psi.digests(["b", "a", "c"], ANSWERER)
    assert psi.unpack_digests(psi.pack_digests(values)) == sorted(values)


@pytest.mark.parametrize(
    "element",
    [
        bytes(32),  # the identity: every answer would be equal
        b"\xff" * 32,  # not a field element
        bytes([1]) + bytes(31),  # an odd encoding is never canonical in ristretto255
        b"\x00" * 31 + b"\x80",  # top bit set
        bytes(31),  # too short
        bytes(33),  # too long
    ],
)
def test_malformed_or_wrong_group_elements_are_refused(element: bytes) -> None:
    with pytest.raises(BadPoint):
        psi.answer([psi.blind(["x"], ASKER)[0], element], ANSWERER)
    with pytest.raises(BadPoint):
        psi.unblind([element], ASKER)


def test_an_ed25519_point_outside_the_ristretto_encoding_is_refused() -> None:
    # A valid Ed25519 point of small order (the cofactor part ristretto255 removes).
    small_order = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
    with pytest.raises(BadPoint):
        psi.answer([small_order], ANSWERER)


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=200)
def test_any_32_bytes_are_a_group_element_or_a_named_error(element: bytes) -> None:
    try:
        (out,) = psi.answer([element], ANSWERER)
    except BadPoint:
        assert not pysodium.crypto_core_ristretto255_is_valid_point(element) or element == bytes(32)
    else:
        assert pysodium.crypto_core_ristretto255_is_valid_point(out)


@pytest.mark.parametrize(
    ("data", "unpack"), [(bytes(33), psi.unpack_points), (bytes(17), psi.unpack_digests)]
)
def test_truncated_lists_are_malformed(data: bytes, unpack: object) -> None:
    with pytest.raises(Malformed):
        unpack(data)  # type: ignore[operator]


def test_an_answer_of_another_length_is_malformed() -> None:
    with pytest.raises(Malformed):
        psi.intersect(["a", "b"], psi.unblind(psi.answer(psi.blind(["a"], ASKER), ANSWERER), ASKER), [])


def test_a_secret_needs_64_random_bytes_that_do_not_reduce_to_zero() -> None:
    with pytest.raises(ValueError, match="64"):
        psi.secret(bytes(32))
    with pytest.raises(ValueError, match="zero"):
        psi.secret(bytes(64))
