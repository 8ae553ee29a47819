"""Soak: every parser of untrusted input, fed ``SOAK_EXAMPLES`` generated inputs each (10^5 by default), only
ever answers with a named error. Not part of ``make test``; ``make soak`` runs it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys.roster import parse_roster
from protocol.encoding import canonical, parse_json
from protocol.envelope import parse_envelope, parse_model, split_batch
from protocol.errors import NcpxError
from protocol.models import MetadataRecord, Receipt, Refusal
from protocol.requests import verify_request_head
from tests.protocol.helpers import envelope, world

pytestmark = pytest.mark.soak

EXAMPLES = int(os.environ.get("SOAK_EXAMPLES", "100000"))
MANY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
WORLD = world()
VALID = envelope(WORLD).canonical_bytes()
LIMIT = 1 << 20


def only_named_errors(parse: Callable[[bytes], Any], raw: bytes) -> None:
    with contextlib.suppress(NcpxError):
        parse(raw)


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with bytes flipped, cut or spliced in: near-valid input reaches the deep checks."""
    return st.tuples(st.integers(0, len(data)), st.integers(0, 16), st.binary(max_size=16)).map(
        lambda t: data[: t[0]] + t[2] + data[t[0] + t[1] :]
    )


INPUTS = st.one_of(st.binary(max_size=512), mutated(VALID))


@MANY
@given(INPUTS)
def test_envelope_parser(raw: bytes) -> None:
    only_named_errors(lambda b: parse_envelope(b, LIMIT), raw)


@MANY
@given(INPUTS)
def test_batch_framing_and_json(raw: bytes) -> None:
    only_named_errors(lambda b: [parse_json(line, LIMIT) for line in split_batch(b)], raw)


@MANY
@given(st.sampled_from([Receipt, Refusal, MetadataRecord]), st.binary(max_size=512))
def test_signed_structure_parsers(model: type[Any], raw: bytes) -> None:
    only_named_errors(lambda b: parse_model(model, b, LIMIT), raw)


@MANY
@given(st.binary(max_size=1024))
def test_roster_parser(raw: bytes) -> None:
    only_named_errors(parse_roster, raw)


HEADER_NAMES = [
    "Ncpx-Sender",
    "Ncpx-Recipient",
    "Ncpx-Key",
    "Ncpx-Timestamp",
    "Content-Digest",
    "Ncpx-Signature",
]


@MANY
@given(st.dictionaries(st.sampled_from(HEADER_NAMES), st.text(max_size=80)))
def test_request_signature_headers(headers: dict[str, str]) -> None:
    now = datetime.now(UTC)
    with contextlib.suppress(NcpxError):
        verify_request_head(
            "POST", "/federation/v1/envelopes", headers, WORLD.roster, "MY", now, timedelta(minutes=5)
        )


def test_the_mutation_strategy_reaches_valid_input() -> None:
    assert canonical(parse_json(VALID, LIMIT)) == VALID
