"""What ``reattach serve`` is configured with, from options or ``REATTACH_*`` vars."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._ids import validate_id

__all__ = [
    "ECHO_MODEL",
    "ENV_PREFIX",
    "Settings",
    "SettingsError",
    "env_values",
    "parse_tokens",
    "redact_url",
]

#: The built-in model: it streams the last user message back, one word per event.
ECHO_MODEL = "echo"

ENV_PREFIX = "REATTACH_"


class SettingsError(ValueError):
    """An option or environment variable has a value the server cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to know, with the defaults of ``reattach serve``.

    ``tokens`` maps user ids to bearer tokens; when it is empty the server accepts
    only loopback clients, as the user ``local``. ``model`` is the model sent
    upstream (and the default of a request that names none); it is required with
    ``upstream_url``. ``heartbeat_seconds`` is how long an SSE stream may stay
    silent before a comment line is sent.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    upstream_url: str | None = None
    upstream_key: str | None = None
    model: str | None = None
    tokens: Mapping[str, str] = field(default_factory=dict)
    max_body_bytes: int = 1 << 20
    max_jobs_per_user: int = 10
    max_event_bytes: int = 1 << 20
    echo_delay_ms: int = 50
    heartbeat_seconds: float = 15.0
    retry_after_seconds: int = 5
    upstream_max_retries: int = 2

    def __post_init__(self) -> None:
        _check_positive("max_body_bytes", self.max_body_bytes)
        _check_positive("max_jobs_per_user", self.max_jobs_per_user)
        _check_positive("retry_after_seconds", self.retry_after_seconds)
        if self.max_event_bytes < 64:
            raise SettingsError("max_event_bytes must be at least 64")
        if self.echo_delay_ms < 0 or self.upstream_max_retries < 0:
            raise SettingsError("echo_delay_ms and upstream_max_retries must be >= 0")
        if self.heartbeat_seconds <= 0:
            raise SettingsError("heartbeat_seconds must be > 0")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be within 0..65535, got {self.port}")
        if self.upstream_url is not None and not self.model:
            raise SettingsError("--model is required with --upstream-url")
        if self.model == ECHO_MODEL and self.upstream_url is not None:
            raise SettingsError(f"--model {ECHO_MODEL!r} is the built-in model's name")
        _check_tokens(self.tokens)

    @property
    def default_model(self) -> str:
        """The model of a request that names none."""
        return self.models[0]

    @property
    def models(self) -> list[str]:
        """The models this server offers: ``echo``, and the upstream's model."""
        if self.upstream_url is not None and self.model:
            return [self.model, ECHO_MODEL]
        return [ECHO_MODEL]

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from ``REATTACH_*`` variables; unset ones keep their defaults.

        :raises SettingsError: a variable has a value of the wrong kind.
        """
        return cls(**env_values(environ))


_INT_FIELDS = (
    "port",
    "max_body_bytes",
    "max_jobs_per_user",
    "max_event_bytes",
    "echo_delay_ms",
    "retry_after_seconds",
    "upstream_max_retries",
)
_STR_FIELDS = ("host", "redis_url", "upstream_url", "upstream_key", "model")


def env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings that ``REATTACH_*`` variables set, converted and named as fields.

    :raises SettingsError: a variable has a value of the wrong kind.
    """
    values: dict[str, Any] = {}
    for name in _STR_FIELDS:
        text = environ.get(ENV_PREFIX + name.upper(), "")
        if text:
            values[name] = text
    for name in _INT_FIELDS:
        text = environ.get(ENV_PREFIX + name.upper(), "")
        if text:
            values[name] = _number(ENV_PREFIX + name.upper(), text, int)
    heartbeat = environ.get(ENV_PREFIX + "HEARTBEAT_SECONDS", "")
    if heartbeat:
        values["heartbeat_seconds"] = _number(
            ENV_PREFIX + "HEARTBEAT_SECONDS", heartbeat, float
        )
    tokens = environ.get(ENV_PREFIX + "TOKENS", "")
    if tokens.strip():
        values["tokens"] = parse_tokens(tokens.split(","), source=ENV_PREFIX + "TOKENS")
    return values


def parse_tokens(items: list[str], *, source: str = "--token") -> dict[str, str]:
    """Parse ``USER=TOKEN`` items into a mapping of user id to token.

    :raises SettingsError: an item is not ``USER=TOKEN`` or a user appears twice.
    """
    tokens: dict[str, str] = {}
    for item in items:
        user, sep, token = item.strip().partition("=")
        if not sep or not user or not token:
            raise SettingsError(f"{source} expects USER=TOKEN, got {item.strip()!r}")
        if user in tokens:
            raise SettingsError(f"{source} names the user {user!r} twice")
        tokens[user] = token
    return tokens


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _number(name: str, text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {text!r}") from exc


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")


def _check_tokens(tokens: Mapping[str, str]) -> None:
    seen: set[str] = set()
    for user, token in tokens.items():
        try:
            validate_id(user, "user id")
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        if len(token) < 8:
            raise SettingsError(f"the token of {user!r} is shorter than 8 characters")
        if token in seen:
            raise SettingsError("two users share one token")
        seen.add(token)
