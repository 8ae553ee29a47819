"""Operation tokens: operations 300 m and 40 minutes apart share one; 30 km or two days apart never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import grid
from protocol.errors import InvalidOperation

START = datetime(2015, 10, 3, 4, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
LATITUDES = st.floats(-60, 60)
LONGITUDES = st.floats(-179, 179)
BEARINGS = st.tuples(st.floats(-1, 1), st.floats(-1, 1)).filter(lambda v: abs(v[0]) + abs(v[1]) > 0.1)


def away(
    latitude: float, longitude: float, direction: tuple[float, float], metres: float
) -> tuple[float, float]:
    """A point ``metres`` from the given one in a direction, found by scaling a small step (tests only)."""
    step = (direction[0] * 0.01, direction[1] * 0.01)
    for _ in range(5):
        there = (latitude + step[0], longitude + step[1])
        scale = metres / h3.great_circle_distance((latitude, longitude), there, unit="m")
        step = (step[0] * scale, step[1] * scale)
    return latitude + step[0], longitude + step[1]


def tokens(point: tuple[float, float], radius: float, start: datetime, length: timedelta = HOUR) -> set[str]:
    return grid.operation(point[0], point[1], radius, start, start + length)


@given(LATITUDES, LONGITUDES, BEARINGS, st.floats(0, 300), st.integers(0, 59))
@settings(max_examples=60, deadline=None)
def test_operations_300_m_and_40_minutes_apart_conflict(
    latitude: float, longitude: float, direction: tuple[float, float], radius: float, minute: int
) -> None:
    start = START.replace(minute=minute)
    other = away(latitude, longitude, direction, 300)
    first = tokens((latitude, longitude), radius, start, timedelta(minutes=30))
    second = tokens(other, radius, start + timedelta(minutes=70), timedelta(minutes=30))
    assert first & second  # the second starts 40 minutes after the first ends


@given(LATITUDES, LONGITUDES, BEARINGS, st.floats(0, 2000))
@settings(max_examples=60, deadline=None)
def test_operations_30_km_apart_never_conflict(
    latitude: float, longitude: float, direction: tuple[float, float], radius: float
) -> None:
    other = away(latitude, longitude, direction, 30_000)
    assert not tokens((latitude, longitude), radius, START) & tokens(other, radius, START)


@given(LATITUDES, LONGITUDES, st.floats(0, 2000))
@settings(max_examples=30, deadline=None)
def test_operations_two_days_apart_never_conflict(latitude: float, longitude: float, radius: float) -> None:
    here = (latitude, longitude)
    assert not tokens(here, radius, START) & tokens(here, radius, START + timedelta(days=2))


def test_the_margin_is_what_makes_nearby_operations_meet() -> None:
    here = (13.7563, 100.5018)
    there = away(*here, (1.0, 0.0), 900)
    assert tokens(here, 0, START) & tokens(there, 0, START)  # 900 m <= 2 x 500 m margin


def test_tokens_name_cell_and_utc_hour() -> None:
    start = datetime(2015, 10, 3, 11, 30, tzinfo=UTC)
    found = tokens((13.7563, 100.5018), 0, start, timedelta(minutes=20))
    cell = h3.latlng_to_cell(13.7563, 100.5018, grid.RESOLUTION)
    assert {f"op:{cell}:2015-10-03T{hour}Z" for hour in ("10", "11", "12")} <= found
    assert all(token.startswith("op:") for token in found)


@pytest.mark.parametrize(
    ("latitude", "longitude", "radius", "length"),
    [
        (91.0, 0.0, 0.0, HOUR),
        (0.0, 181.0, 0.0, HOUR),
        (0.0, 0.0, -1.0, HOUR),
        (0.0, 0.0, float("nan"), HOUR),
        (0.0, 0.0, grid.MAX_RADIUS_M + 1, HOUR),
        (0.0, 0.0, 0.0, timedelta(0)),
        (0.0, 0.0, 0.0, grid.MAX_WINDOW + HOUR),
        (0.0, 0.0, 20_000.0, timedelta(days=30)),
    ],
)
def test_impossible_or_oversized_operations_are_refused(
    latitude: float, longitude: float, radius: float, length: timedelta
) -> None:
    with pytest.raises(InvalidOperation):
        grid.operation(latitude, longitude, radius, START, START + length)


def test_a_window_without_time_zone_is_refused() -> None:
    naive = datetime(2015, 10, 3, 4, 0)
    with pytest.raises(InvalidOperation):
        grid.operation(0.0, 0.0, 0.0, naive, naive + HOUR)
