"""Who is calling: bearer tokens mapped to user ids, or the loopback-only local user."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote

from starlette.requests import HTTPConnection

from .errors import ApiError

__all__ = ["LOCAL_USER", "TOKEN_COOKIE", "Authenticator"]

#: The one user of a server that has no tokens configured.
LOCAL_USER = "local"

#: A browser's EventSource cannot send headers; the page keeps its token in this
#: cookie, which is read on GET requests only.
TOKEN_COOKIE = "reattach_token"


class Authenticator:
    """Maps a request to a user id.

    With tokens, a request needs ``Authorization: Bearer <token>`` (or, on a GET,
    the :data:`TOKEN_COOKIE` cookie). Without tokens, only loopback clients are
    served, all as :data:`LOCAL_USER`.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._users = [(token.encode(), user) for user, token in tokens.items()]

    @property
    def uses_tokens(self) -> bool:
        """Whether the server has tokens configured."""
        return bool(self._users)

    def user_for(self, request: HTTPConnection) -> str:
        """The user id making ``request``.

        :raises ApiError: 401 without a valid token, 403 for a remote client of a
            server without tokens.
        """
        if not self._users:
            return self._local_user(request)
        token = _bearer_token(request)
        if token is None and request.scope.get("method") == "GET":
            cookie = request.cookies.get(TOKEN_COOKIE)
            token = unquote(cookie) if cookie else None
        if token is None:
            raise _unauthorized("send Authorization: Bearer <token>")
        user = self._match(token.encode())
        if user is None:
            raise _unauthorized("the token is not valid")
        return user

    def _match(self, token: bytes) -> str | None:
        # Compare against every token so the time taken says nothing about which
        # token came close.
        found = None
        for known, user in self._users:
            if hmac.compare_digest(known, token):
                found = user
        return found

    @staticmethod
    def _local_user(request: HTTPConnection) -> str:
        host = request.client.host if request.client is not None else ""
        if not is_loopback(host):
            raise ApiError(
                403,
                "forbidden",
                "this server has no tokens configured and serves loopback "
                "clients only; start it with --token USER=TOKEN",
            )
        return LOCAL_USER


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bearer_token(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"}
    )
