"""The reattach server: an HTTP/SSE API over a GenerationManager, and a chat page.

``reattach serve`` runs it; :func:`create_app` builds the ASGI app for any ASGI
server.
"""

from __future__ import annotations

from .app import create_app
from .errors import ApiError
from .runtime import Runtime, open_runtime
from .settings import ECHO_MODEL, Settings, SettingsError
from .upstream import UpstreamError

__all__ = [
    "ECHO_MODEL",
    "ApiError",
    "Runtime",
    "Settings",
    "SettingsError",
    "UpstreamError",
    "create_app",
    "open_runtime",
]
