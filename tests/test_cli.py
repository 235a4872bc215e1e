"""The ``reattach`` command line: option parsing, ``jobs`` and ``bench``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
import types
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from reattach import GenerationManager, JobStatus, RedisJobStore
from reattach.cli import _parser, main, serve_settings
from reattach.server import Settings
from reattach.server.settings import SettingsError

from .redis_servers import RedisServer, free_port


def settings_from(args: list[str], env: dict[str, str] | None = None) -> Settings:
    options = _parser().parse_args(["serve", *args])
    settings: Settings = serve_settings(options, env or {})
    return settings


# -- serve options ---------------------------------------------------------------------


def test_no_options_mean_memory_echo_and_loopback() -> None:
    settings = settings_from([])

    assert settings == Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.redis_url is None
    assert settings.models == ["echo"]
    assert dict(settings.tokens) == {}


def test_env_vars_set_every_option() -> None:
    env = {
        "REATTACH_HOST": "0.0.0.0",
        "REATTACH_PORT": "9001",
        "REATTACH_REDIS_URL": "redis://db:6379/0",
        "REATTACH_UPSTREAM_URL": "http://llm:8000/v1",
        "REATTACH_UPSTREAM_KEY": "sk-1",
        "REATTACH_MODEL": "qwen",
        "REATTACH_TOKENS": "ann=ann-token-1, bob=bob-token-2",
        "REATTACH_MAX_BODY_BYTES": "2048",
        "REATTACH_MAX_JOBS_PER_USER": "3",
        "REATTACH_MAX_EVENT_BYTES": "4096",
        "REATTACH_ECHO_DELAY_MS": "7",
        "REATTACH_HEARTBEAT_SECONDS": "2.5",
    }

    settings = settings_from([], env)

    assert settings == Settings(
        host="0.0.0.0",
        port=9001,
        redis_url="redis://db:6379/0",
        upstream_url="http://llm:8000/v1",
        upstream_key="sk-1",
        model="qwen",
        tokens={"ann": "ann-token-1", "bob": "bob-token-2"},
        max_body_bytes=2048,
        max_jobs_per_user=3,
        max_event_bytes=4096,
        echo_delay_ms=7,
        heartbeat_seconds=2.5,
    )


def test_options_win_over_env_vars() -> None:
    env = {"REATTACH_PORT": "9001", "REATTACH_TOKENS": "ann=ann-token-1"}

    settings = settings_from(["--port", "9002", "--token", "cy=cy-token-33"], env)

    assert settings.port == 9002
    assert dict(settings.tokens) == {"cy": "cy-token-33"}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"REATTACH_PORT": "eighty"}, "REATTACH_PORT must be a number"),
        (["--token", "no-equals-sign"], {}, "expects USER=TOKEN"),
        ([], {"REATTACH_TOKENS": "ann=ann-token-1,ann=ann-token-2"}, "twice"),
        (["--upstream-url", "http://x/v1"], {}, "--model is required"),
        (["--max-jobs-per-user", "0"], {}, "max_jobs_per_user must be at least 1"),
        (["--heartbeat-seconds", "0"], {}, "heartbeat_seconds must be > 0"),
        (["--port", "70000"], {}, "port must be within"),
    ],
)
def test_bad_values_are_refused(
    args: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from(args, env)


def test_a_bad_value_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--token", "nobody"])

    assert exit_info.value.code == 2
    assert "expects USER=TOKEN" in capsys.readouterr().err


def test_serve_help_names_the_env_vars(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])

    assert "REATTACH_TOKENS" in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


# -- bench ---------------------------------------------------------------------------


def test_bench_hands_its_arguments_over(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[Sequence[str]] = []

    def bench_main(argv: Sequence[str]) -> int:
        received.append(argv)
        return 3

    module = types.ModuleType("reattach_bench")
    module.main = bench_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reattach_bench", module)

    assert main(["bench", "--help", "followers"]) == 3
    assert received == [["--help", "followers"]]


# -- jobs ------------------------------------------------------------------------------


def test_jobs_needs_a_redis_url(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["jobs", "ls"])

    assert exit_info.value.code == 2
    assert "--redis-url" in capsys.readouterr().err


def test_jobs_says_when_redis_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    assert main(["jobs", "--redis-url", url, "ls"]) == 1
    assert f"cannot reach Redis at {url}" in capsys.readouterr().err


@pytest.fixture
async def running_job(redis_standalone: RedisServer) -> AsyncIterator[str]:
    """A job running on a manager of the default-prefix store (as a server's)."""

    async def forever() -> AsyncIterator[Any]:
        yield {"event": "message_delta", "data": {"text": "hi"}}
        await asyncio.Event().wait()

    async with (
        RedisJobStore.from_url(redis_standalone.url) as store,
        GenerationManager(store) as manager,
    ):
        job = await manager.start("ops-user", forever(), model="echo")
        yield job.stream_id


def run_jobs(redis: RedisServer, *args: str) -> int:
    """``reattach jobs ARGS`` in this process, from a thread with no loop running."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(main, ["jobs", "--redis-url", redis.url, *args]).result()


async def test_jobs_ls_show_and_abort(
    running_job: str,
    redis_standalone: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_jobs(redis_standalone, "ls")
    listed = capsys.readouterr().out
    assert code == 0
    assert listed.splitlines()[0].split() == [
        "STREAM_ID",
        "USER",
        "STATUS",
        "MODEL",
        "EVENTS",
        "CREATED",
    ]
    assert any(line.startswith(running_job) for line in listed.splitlines())

    code = run_jobs(redis_standalone, "ls", "--user", "ops-user", "--json")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [row["stream_id"] for row in rows] == [running_job]
    assert rows[0]["status"] == "running"
    assert "user_message" not in rows[0]

    code = run_jobs(redis_standalone, "show", running_job)
    shown = json.loads(capsys.readouterr().out)
    assert code == 0
    assert shown["user_id"] == "ops-user"
    assert shown["model"] == "echo"

    code = run_jobs(redis_standalone, "abort", running_job)
    assert code == 0
    assert capsys.readouterr().out.strip() == f"aborted {running_job}"

    code = run_jobs(redis_standalone, "abort", running_job)
    assert code == 0
    assert "already finished (aborted)" in capsys.readouterr().out

    async with RedisJobStore.from_url(redis_standalone.url) as store:
        job = await store.get_job(running_job)
    assert job is not None
    assert job.status is JobStatus.ABORTED


async def test_jobs_show_of_a_missing_job_fails(
    redis_standalone: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_jobs(redis_standalone, "show", "no-such-job")

    assert code == 1
    assert "no job 'no-such-job'" in capsys.readouterr().err


def test_jobs_ls_without_user_lists_running_only(
    redis_standalone: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["jobs", "--redis-url", redis_standalone.url, "ls", "--status", "error"]
    )

    assert code == 1
    assert "only running jobs" in capsys.readouterr().err
