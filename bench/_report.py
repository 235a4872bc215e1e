"""The report: a Markdown table for people, and JSON for machines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._figures import Figure, WorkloadResult

__all__ = ["format_number", "render_table", "to_json"]

_HEADER = ("figure", "median", "min", "max", "unit", "target", "result")


def format_number(value: float | None) -> str:
    """A figure as people read it: 3 significant digits, thousands grouped."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if value.is_integer() and size < 1e15:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    if size == 0:
        return "0"
    return f"{value:.3g}"


def _verdict(figure: Figure) -> str:
    if figure.met is None:
        return ""
    return "met" if figure.met else "MISSED"


def _row(figure: Figure) -> tuple[str, ...]:
    if figure.unavailable is not None:
        return (figure.label, "unavailable", "", "", figure.unit, _target(figure), "")
    return (
        figure.label,
        format_number(figure.median),
        format_number(figure.low),
        format_number(figure.high),
        figure.unit,
        _target(figure),
        _verdict(figure),
    )


def _target(figure: Figure) -> str:
    return "" if figure.target is None else figure.target.text


def render_table(results: Sequence[WorkloadResult]) -> str:
    """Every workload's figures as one Markdown table per workload."""
    blocks = []
    for result in results:
        load = "" if result.load_at_start is None else f", load {result.load_at_start}"
        title = f"### {result.title} (`{result.name}`, {result.seconds:.0f} s{load})"
        if result.unavailable is not None:
            title += f"\n\nunavailable: {result.unavailable}"
        rows = [_HEADER, *(_row(figure) for figure in result.figures)]
        blocks.append(title + "\n\n" + _markdown(rows))
    return "\n\n".join(blocks) + "\n"


def _markdown(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    numeric = {1, 2, 3}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = [
        "-" * (width - 1) + ":" if i in numeric else "-" * width
        for i, width in enumerate(widths)
    ]
    return "\n".join(
        [line(rows[0]), "| " + " | ".join(rule) + " |"]
        + [line(row) for row in rows[1:]]
    )


def to_json(
    results: Sequence[WorkloadResult], header: dict[str, Any]
) -> dict[str, Any]:
    """The whole run: how it was made, each workload, and every figure by key."""
    figures: dict[str, Any] = {}
    for result in results:
        for figure in result.figures:
            figures[figure.key] = figure.to_dict()
    return {
        **header,
        "workloads": {result.name: result.to_dict() for result in results},
        "figures": figures,
    }
