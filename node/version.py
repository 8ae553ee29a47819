"""The release of ncpx that runs: what ``ncpx --version`` prints and ``/version`` answers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("ncpx")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
