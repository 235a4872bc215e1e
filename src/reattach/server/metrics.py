"""``/metrics``: the manager's counters in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..manager import ManagerStats

__all__ = ["CONTENT_TYPE", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics(stats: ManagerStats, running_jobs: int) -> bytes:
    """The exposition text for one scrape.

    ``running_jobs`` counts every running job in the store (on Redis: across all
    processes); the other values are this process's.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(stats, running_jobs))
    return generate_latest(registry)


class _Scrape(Collector):
    """The values of one scrape, read once so that they agree with each other."""

    def __init__(self, stats: ManagerStats, running_jobs: int) -> None:
        self._stats = stats
        self._running_jobs = running_jobs

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield _gauge(
            "reattach_jobs_running",
            "Jobs running in the store, across every process that shares it.",
            self._running_jobs,
        )
        yield _gauge(
            "reattach_local_jobs",
            "Jobs this process is producing.",
            stats.local_jobs,
        )
        yield _gauge(
            "reattach_followers",
            "Event streams this process is serving.",
            stats.followers,
        )
        yield _counter(
            "reattach_jobs_started",
            "Jobs started by this process.",
            stats.jobs_started,
        )
        yield _counter(
            "reattach_events_appended",
            "Events this process appended to job logs.",
            stats.events_appended,
        )
        yield _counter(
            "reattach_reattaches",
            "Subscriptions that resumed from a cursor after the start of a log.",
            stats.reattaches,
        )
        yield _append_latency(stats)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _append_latency(stats: ManagerStats) -> HistogramMetricFamily:
    """Seconds per store write; each write appends a batch of events."""
    # The manager counts each write once, in the first bucket it fits;
    # Prometheus buckets count every write at or below their bound.
    buckets = []
    total = 0
    for bound, count in sorted(stats.append_latency_buckets.items()):
        total += count
        buckets.append((repr(float(bound)), total))
    buckets.append(("+Inf", stats.append_calls))
    return HistogramMetricFamily(
        "reattach_append_seconds",
        "Seconds per store write of a batch of events.",
        buckets=buckets,
        sum_value=stats.append_seconds,
    )
