"""Planned operations as matching tokens: the (grid cell, hour) pairs they cover, on Uber's H3 grid.

Event deconfliction asks whether two operations are close in place and time, but private matching can only
say whether two sets share an element. So each operation becomes a set of tokens, and two operations conflict
when their sets meet. The grid is H3 at :data:`RESOLUTION` (hexagons of about 5 km², edge about 1.4 km),
fixed for every node: two nodes on different grids would never match.

**Place.** An operation at point *p* with radius *r* covers every cell that meets the disc of radius
*r* + :data:`PLACE_MARGIN_M` around *p*. The cells are found by a breadth-first walk from *p*'s cell over
neighbours, keeping each cell whose centre is within that reach plus the cell's own circumradius (the largest
distance from its centre to a vertex), so every cell that meets the disc is kept (the cells meeting a disc are
connected) and only cells near it. Hence, with *d* the great-circle distance between two operations' points:

- if *d* ≤ *r₁* + *r₂* + 2 x margin, some point lies in both discs, its cell meets both, and they share it;
- if *d* > *r₁* + *r₂* + 2 x (margin + circumradius), no cell can be kept by both (about 4 km for two point
  operations at resolution 7).

**Time.** An operation from *s* to *e* covers every UTC hour that meets [*s* - :data:`TIME_MARGIN`,
*e* + :data:`TIME_MARGIN`). Two operations whose windows are less than two margins apart share an hour; two
whose windows are three or more hours apart never do.

The token ``op:<cell>:<hour>`` is the pair; an operation's tokens are the product of its cells and hours,
bounded by :data:`MAX_TOKENS` because each one counts against the peer's daily matching budget.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

import h3

from protocol.errors import InvalidOperation

RESOLUTION: Final = 7
PLACE_MARGIN_M: Final = 500.0
"""Metres added to every operation's radius: teams 300 m apart are in each other's way."""
TIME_MARGIN: Final = timedelta(hours=1)
"""Added before and after every window: teams arrive early and overrun."""
MAX_RADIUS_M: Final = 50_000.0
MAX_WINDOW: Final = timedelta(days=31)
MAX_TOKENS: Final = 20_000
_HOUR: Final = timedelta(hours=1)


def _circumradius_m(cell: str) -> float:
    centre = h3.cell_to_latlng(cell)
    return max(
        float(h3.great_circle_distance(centre, vertex, unit="m")) for vertex in h3.cell_to_boundary(cell)
    )


def cells(latitude: float, longitude: float, radius_m: float) -> set[str]:
    """Every H3 cell that meets the disc of ``radius_m`` plus the margin around the point, and cells near it."""
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise InvalidOperation("latitude must lie within ±90 and longitude within ±180 degrees")
    if not (math.isfinite(radius_m) and 0.0 <= radius_m <= MAX_RADIUS_M):
        raise InvalidOperation(f"radius must be between 0 and {MAX_RADIUS_M:.0f} metres")
    point = (latitude, longitude)
    reach = radius_m + PLACE_MARGIN_M

    def near(cell: str) -> bool:
        distance = float(h3.great_circle_distance(point, h3.cell_to_latlng(cell), unit="m"))
        return distance <= reach + _circumradius_m(cell)

    start = h3.latlng_to_cell(latitude, longitude, RESOLUTION)
    found, frontier = {start}, [start]
    while frontier:
        cell = frontier.pop()
        for neighbour in h3.grid_disk(cell, 1):
            if neighbour not in found and near(neighbour):
                found.add(neighbour)
                frontier.append(neighbour)
    return found


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Every UTC hour that meets the window widened by the margin on both sides."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidOperation("the operation's start and end must carry a time zone")
    if not start < end <= start + MAX_WINDOW:
        raise InvalidOperation("the operation must end after it starts and last at most 31 days")
    first = (start - TIME_MARGIN).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    stop = end + TIME_MARGIN
    return [first + i * _HOUR for i in range(math.ceil((stop - first) / _HOUR))]


def operation(latitude: float, longitude: float, radius_m: float, start: datetime, end: datetime) -> set[str]:
    """The matching tokens of a planned operation: its cells crossed with its hours."""
    places, times = cells(latitude, longitude, radius_m), hours(start, end)
    if len(places) * len(times) > MAX_TOKENS:
        raise InvalidOperation(
            f"the operation covers more than {MAX_TOKENS} place-hours; split it into shorter windows"
        )
    return {f"op:{cell}:{hour:%Y-%m-%dT%H}Z" for cell in places for hour in times}
