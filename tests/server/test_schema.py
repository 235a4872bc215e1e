"""Generated requests from the server's own OpenAPI document never get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from reattach.server import create_app

from .live import LiveServer, start_server

pytestmark = pytest.mark.slow

# The document the live server serves at /openapi.json, built without a server.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    limits = ("--max-jobs-per-user", "10000", "--max-body-bytes", "4096")
    server = start_server("--echo-delay-ms", "0", *limits)
    yield server
    server.stop()


def test_the_live_server_serves_this_document(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/openapi.json").json() == create_app().openapi()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_request_gets_a_server_error(case: Any, live: LiveServer) -> None:
    case.call_and_validate(base_url=live.url, checks=[not_a_server_error], timeout=10)
