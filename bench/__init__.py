"""``reattach bench``: the benchmark workloads of reattach and their report.

Run it as ``reattach bench`` (or ``python -m reattach_bench``); see
``docs/performance.md`` for what each figure means.
"""

from __future__ import annotations

from ._cli import WORKLOADS, main

__all__ = ["WORKLOADS", "main"]
