"""Validation of the ids that name jobs, users, groups and consumers."""

from __future__ import annotations

import re

from ._errors import InvalidId

__all__ = ["ID_PATTERN", "validate_id"]

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def validate_id(value: object, what: str = "stream_id") -> str:
    """Return ``value`` when it is a valid id; raise :class:`InvalidId` otherwise."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise InvalidId(
            f"{what} must match [A-Za-z0-9._:-]{{1,128}}, got {_preview(value)}"
        )
    return value


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
