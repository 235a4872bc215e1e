"""Who may call: bearer tokens, the loopback rule, and other users' jobs."""

from __future__ import annotations

from typing import Any

import pytest

from reattach.server import Settings
from reattach.server.settings import SettingsError

from .conftest import Api, ApiFactory

ALICE = "alice-token-1234"
BOB = "bob-token-5678"
TOKENS = {"alice": ALICE, "bob": BOB}
BODY = {"messages": [{"role": "user", "content": "hello there"}]}

# The echo model's pace when a test needs a job that is still running.
SLOW = 60_000


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_without_tokens_a_loopback_client_is_the_local_user(api: Api) -> None:
    response = await api.client.post("/v1/jobs", json=BODY)

    job = await api.runtime.manager.store.get_job(response.json()["stream_id"])
    assert job is not None
    assert job.user_id == "local"


@pytest.mark.parametrize("host", ["::1", "127.0.0.2"])
async def test_every_loopback_address_counts(make_api: ApiFactory, host: str) -> None:
    api = await make_api(client_host=host)

    response = await api.client.post("/v1/jobs", json=BODY)

    assert response.status_code == 201


@pytest.mark.parametrize(
    "host", ["10.0.0.7", "192.168.1.2", "2001:db8::1", "testclient"]
)
async def test_without_tokens_a_remote_client_is_refused(
    make_api: ApiFactory, host: str
) -> None:
    api = await make_api(client_host=host)

    responses = [
        await api.client.post("/v1/jobs", json=BODY),
        await api.client.get("/v1/jobs"),
        await api.client.get("/v1/jobs/x/events"),
    ]

    for response in responses:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    assert await api.runtime.manager.store.get_job_count() == 0


async def test_health_needs_no_credentials(make_api: ApiFactory) -> None:
    api = await make_api(client_host="10.0.0.7", tokens=TOKENS)

    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/readyz")).status_code == 200
    assert (await api.client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong-token-000"),
        {"Authorization": f"Basic {ALICE}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
    ],
)
async def test_with_tokens_a_request_without_a_valid_one_gets_401(
    make_api: ApiFactory, headers: dict[str, str]
) -> None:
    api = await make_api(tokens=TOKENS, headers=headers)

    response = await api.client.post("/v1/jobs", json=BODY)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert await api.runtime.manager.store.get_job_count() == 0


async def test_a_token_names_its_user_from_any_address(make_api: ApiFactory) -> None:
    api = await make_api(tokens=TOKENS, client_host="10.0.0.7", headers=bearer(BOB))

    response = await api.client.post("/v1/jobs", json=BODY)

    assert response.status_code == 201
    job = await api.runtime.manager.store.get_job(response.json()["stream_id"])
    assert job is not None
    assert job.user_id == "bob"


async def test_the_token_cookie_counts_for_reads_only(make_api: ApiFactory) -> None:
    owner = await make_api(tokens=TOKENS, headers=bearer(ALICE))
    stream_id = (await owner.client.post("/v1/jobs", json=BODY)).json()["stream_id"]
    await owner.wait_finished(stream_id)
    browser = await make_api(runtime=owner.runtime)
    browser.client.cookies.set("reattach_token", ALICE)

    read = await browser.client.get(f"/v1/jobs/{stream_id}/events")
    write = await browser.client.post(f"/v1/jobs/{stream_id}/abort")

    assert read.status_code == 200
    assert write.status_code == 401


async def test_another_users_job_looks_missing(make_api: ApiFactory) -> None:
    alice = await make_api(tokens=TOKENS, headers=bearer(ALICE), echo_delay_ms=SLOW)
    bob = await make_api(runtime=alice.runtime, headers=bearer(BOB))
    stream_id = (await alice.client.post("/v1/jobs", json=BODY)).json()["stream_id"]

    for method, path in [
        ("GET", "/v1/jobs/{id}"),
        ("GET", "/v1/jobs/{id}/events"),
        ("POST", "/v1/jobs/{id}/abort"),
        ("DELETE", "/v1/jobs/{id}"),
    ]:
        theirs = await bob.client.request(method, path.format(id=stream_id))
        missing = await bob.client.request(method, path.format(id="no-such-job"))
        assert theirs.status_code == missing.status_code == 404
        expected: Any = missing.json()
        expected["error"]["message"] = expected["error"]["message"].replace(
            "no-such-job", stream_id
        )
        assert theirs.json() == expected

    assert (await bob.client.get("/v1/jobs")).json() == {"jobs": []}
    mine = (await alice.client.get(f"/v1/jobs/{stream_id}")).json()
    assert mine["status"] == "running"
    assert alice.runtime.manager.stats.followers == 0


async def test_each_user_has_their_own_cap(make_api: ApiFactory) -> None:
    alice = await make_api(
        tokens=TOKENS, headers=bearer(ALICE), echo_delay_ms=SLOW, max_jobs_per_user=1
    )
    bob = await make_api(runtime=alice.runtime, headers=bearer(BOB))

    assert (await alice.client.post("/v1/jobs", json=BODY)).status_code == 201
    assert (await alice.client.post("/v1/jobs", json=BODY)).status_code == 429
    assert (await bob.client.post("/v1/jobs", json=BODY)).status_code == 201


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ({"alice": "short"}, "shorter than 8"),
        ({"alice": ALICE, "bob": ALICE}, "share one token"),
        ({"not a user": ALICE}, "user id"),
    ],
)
def test_bad_tokens_are_refused_at_startup(
    tokens: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(tokens=tokens)
