"""Prometheus metrics of the operator, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter("hive_reconciles", "Reconciles run, by kind and outcome.", ["kind", "outcome"])
RECONCILE_SECONDS = Histogram(
    "hive_reconcile_duration_seconds",
    "Time one reconcile takes, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
