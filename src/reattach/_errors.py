"""The errors reattach raises; every one of them is a :class:`ReattachError`."""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "InvalidCursor",
    "InvalidEvent",
    "InvalidId",
    "JobExists",
    "JobFinished",
    "JobNotFound",
    "PayloadTooLarge",
    "ReattachError",
    "TooManyJobs",
]


class ReattachError(Exception):
    """The root of every error reattach raises on purpose."""


class InvalidId(ReattachError, ValueError):
    """An id (stream, user, group or consumer) is outside ``[A-Za-z0-9._:-]{1,128}``."""


class InvalidEvent(ReattachError, ValueError):
    """An event cannot be stored: it is not a JSON value."""


class PayloadTooLarge(InvalidEvent):
    """An event is larger, as JSON, than ``Limits.max_event_bytes``."""


class InvalidCursor(ReattachError, ValueError):
    """A cursor is negative, not an integer, or ahead of the job's log."""


class JobNotFound(ReattachError, LookupError):
    """No such job, or the job belongs to another user (the two look the same)."""


class JobExists(ReattachError):
    """A job with this ``stream_id`` exists already; ids are never reused."""


class JobFinished(ReattachError):
    """The job has left ``running``; nothing more can be appended to it."""


class TooManyJobs(ReattachError):
    """The user already runs as many jobs as the limit allows."""


class BackendUnavailable(ReattachError):
    """The configured backend (Redis) cannot be reached or answered with an error."""
