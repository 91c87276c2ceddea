"""What the operator holds per object, counted.

Each structure that keeps something per object (a work queue's locks and waiting runs, the
specs and pods last seen, the children last applied, the teams pruned) registers a function
giving its size here, and /metrics reports them as ``hive_operator_held_entries{structure}``.
With every object gone they are back to zero: a structure that only grows shows as a line that
only climbs, and a test can wait for each one to come back to its baseline.

A structure may also register how to empty itself: a replica that stands down or takes over
the lead (hive.operator.leadership) calls `forget_everything`, since what it saw before may
have gone meanwhile without a word to it; kopf's fresh listing brings back what exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

_SIZES: dict[str, Callable[[], int]] = {}
_CLEARS: dict[str, Callable[[], None]] = {}


def track(structure: str, size: Callable[[], int], clear: Callable[[], None] | None = None) -> None:
    """Report `size()` under `structure` (registering a name again replaces it); `clear()`
    empties it when the replica forgets everything."""
    _SIZES[structure] = size
    if clear is not None:
        _CLEARS[structure] = clear


def forget_everything() -> None:
    """Empty every structure that said how (what a replica saw is no longer known to be so)."""
    for clear in _CLEARS.values():
        clear()


def held() -> dict[str, int]:
    """Every tracked structure's size now."""
    return {structure: size() for structure, size in sorted(_SIZES.items())}


class _HeldEntries(Collector):
    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "hive_operator_held_entries",
            "Entries the operator holds per object, by structure (zero with no objects).",
            labels=["structure"],
        )
        for structure, size in held().items():
            family.add_metric([structure], size)
        yield family


REGISTRY.register(_HeldEntries())
