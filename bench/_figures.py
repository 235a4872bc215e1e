"""Figures: repeated measurements, their median, min and max, and their targets."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "Target", "WorkloadResult", "percentile"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank on sorted values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for a figure: ``median <op> value``, reported next to it, not asserted.

    ``op`` is one of ``>=``, ``<=``, ``<``.
    """

    op: str
    value: float
    text: str

    def met(self, median: float) -> bool:
        """Whether ``median`` reaches the goal."""
        if self.op == ">=":
            return median >= self.value
        if self.op == "<=":
            return median <= self.value
        if self.op == "<":
            return median < self.value
        raise ValueError(f"unknown target operator {self.op!r}")


@dataclass(slots=True)
class Figure:
    """One reported number: a sample per repetition, summarised by the median."""

    key: str
    label: str
    unit: str
    target: Target | None = None
    samples: list[float] = field(default_factory=list)
    unavailable: str | None = None

    def add(self, value: float) -> None:
        """Record the value one repetition measured."""
        self.samples.append(float(value))

    @property
    def median(self) -> float | None:
        """The median sample; ``None`` before any."""
        return statistics.median(self.samples) if self.samples else None

    @property
    def low(self) -> float | None:
        """The smallest sample; ``None`` before any."""
        return min(self.samples) if self.samples else None

    @property
    def high(self) -> float | None:
        """The largest sample; ``None`` before any."""
        return max(self.samples) if self.samples else None

    @property
    def met(self) -> bool | None:
        """Whether the median meets the target; ``None`` without either."""
        median = self.median
        if self.target is None or median is None:
            return None
        return self.target.met(median)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the figure."""
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "median": _finite(self.median),
            "min": _finite(self.low),
            "max": _finite(self.high),
            "samples": [_finite(value) for value in self.samples],
            "target": None if self.target is None else self.target.text,
            "met": self.met,
            "unavailable": self.unavailable,
        }


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity; an unmeasurable value is written as null.
    if value is None or not math.isfinite(value):
        return None
    return value


@dataclass(slots=True)
class WorkloadResult:
    """The figures one workload produced, and why it could not run, if it could not."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    unavailable: str | None = None
    seconds: float = 0.0
    load_at_start: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def figure(
        self, key: str, label: str, unit: str, target: Target | None = None
    ) -> Figure:
        """Declare a figure (every figure is declared, even when it cannot be run)."""
        made = Figure(f"{self.name}.{key}", label, unit, target)
        self.figures.append(made)
        return made

    def mark_unavailable(self, reason: str) -> None:
        """Record that the workload could not run; its figures stay, without values."""
        self.unavailable = reason
        for item in self.figures:
            if not item.samples:
                item.unavailable = reason

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the workload's result."""
        return {
            "title": self.title,
            "status": "ok" if self.unavailable is None else "unavailable",
            "reason": self.unavailable,
            "seconds": round(self.seconds, 3),
            "load_average_at_start": self.load_at_start,
            "figures": {item.key: item.to_dict() for item in self.figures},
            "details": self.details,
        }
