"""The ASGI application: routes, error answers, the page, and its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__
from .._errors import (
    BackendUnavailable,
    InvalidCursor,
    InvalidId,
    JobNotFound,
    TooManyJobs,
)
from .errors import ApiError, error_response
from .middleware import BodyLimit, SecurityHeaders
from .routes import router
from .runtime import Runtime, open_runtime
from .settings import Settings

__all__ = ["create_app"]

STATIC = resources.files("reattach.server") / "static"


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None
) -> FastAPI:
    """The server as an ASGI app.

    With ``runtime`` the app uses it and leaves it open; without, the app's
    lifespan opens one from ``settings`` (default: memory store, echo model).
    """
    if runtime is not None:
        settings = runtime.settings
    settings = settings if settings is not None else Settings()
    app = FastAPI(
        title="reattach",
        version=__version__,
        summary="LLM generations that outlive the connection that started them.",
        lifespan=_lifespan(settings, runtime),
        # The API viewers load their scripts from a CDN, which the page's
        # Content-Security-Policy forbids; /openapi.json stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(router)
    _add_page(app)
    _add_error_handlers(app, settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _lifespan(settings: Settings, runtime: Runtime | None) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            yield
            return
        async with open_runtime(settings) as opened:
            app.state.runtime = opened
            yield

    return lifespan


def _add_page(app: FastAPI) -> None:
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(index), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")


def _add_error_handlers(app: FastAPI, settings: Settings) -> None:
    answers: dict[type[Exception], tuple[int, str, dict[str, str]]] = {
        JobNotFound: (404, "not_found", {}),
        InvalidId: (400, "invalid_id", {}),
        InvalidCursor: (400, "invalid_cursor", {}),
        TooManyJobs: (
            429,
            "too_many_jobs",
            {"Retry-After": str(settings.retry_after_seconds)},
        ),
        BackendUnavailable: (503, "backend_unavailable", {}),
    }

    async def known_error(request: Request, exc: Exception) -> JSONResponse:
        kind = next(k for k in type(exc).__mro__ if k in answers)
        status, code, headers = answers[kind]
        return error_response(status, code, _message(request, exc), headers)

    for kind in answers:
        app.add_exception_handler(kind, known_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)


def _message(request: Request, exc: Exception) -> str:
    if isinstance(exc, JobNotFound):
        # One message for a missing job and for another user's: the answer must
        # not tell them apart.
        return f"no job {request.path_params.get('stream_id', '')!r}"
    return str(exc)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    return cast(ApiError, exc).response()


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    errors = list(cast(RequestValidationError, exc).errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    raw = _unparsed_body(errors)
    if raw is not None:
        # FastAPI reads a body as JSON only when its Content-Type says so.
        if not _is_json(raw):
            return error_response(400, "invalid_json", "the body is not valid JSON")
        return error_response(
            422,
            "invalid_request",
            "send the body as a JSON object with Content-Type: application/json",
        )
    return error_response(422, "invalid_request", _describe(errors))


def _unparsed_body(errors: list[Any]) -> bytes | None:
    for error in errors:
        raw = error.get("input")
        if tuple(error.get("loc", ())) == ("body",) and isinstance(raw, bytes):
            return raw
    return None


def _is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    http = cast(HTTPException, exc)
    code = _HTTP_CODES.get(http.status_code, "http_error")
    return error_response(http.status_code, code, str(http.detail), http.headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(item) for item in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(errors) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
