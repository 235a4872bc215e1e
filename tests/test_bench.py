"""``reattach bench``: the smoke run reports every figure; bad options are refused."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from .redis_servers import RedisServer

FIGURES = {
    "append": [
        "memory_manager.events_per_s",
        "redis_manager.events_per_s",
        "redis_per_event.events_per_s",
        "raw_xadd.events_per_s",
        "reference.events_per_s",
        "redis_manager.commands_per_event",
        "redis_manager.round_trips_per_event",
        "redis_per_event.commands_per_event",
        "redis_per_event.round_trips_per_event",
        "raw_xadd.commands_per_event",
        "raw_xadd.round_trips_per_event",
        "reference.commands_per_event",
        "reference.round_trips_per_event",
        "redis_manager_vs_raw_xadd",
        "redis_manager_vs_reference",
        "redis_manager_vs_per_event",
    ],
    "latency": [
        f"{place}.{stat}_ms"
        for place in ("same_process", "other_process")
        for stat in ("p50", "p99", "max")
    ],
    "reattach": [
        *(
            f"long.{where}.{what}_ms"
            for where in ("start", "middle", "end")
            for what in ("first_chunk", "total")
        ),
        "short.end.total_ms",
        "end_long_vs_short",
        "long.status_ms",
        "short.status_ms",
        "status_long_vs_short",
        "long_small_content.status_ms",
        "status_long_small_content_vs_short",
    ],
    "scale": [
        "followers_held",
        "rss_per_follower_kib",
        "rss_per_idle_job_kib",
        "rss_baseline_mib",
    ],
    "memory": [
        "redis.log_bytes_per_event",
        "redis.job_bytes_per_event",
        "redis.raw_stream_bytes_per_event",
        "memory_store.bytes_per_job",
        "memory_store.bytes_per_job_with_events",
        "memory_store.bytes_per_event",
    ],
}

TARGETS = {
    "append.redis_manager_vs_raw_xadd",
    "append.redis_manager_vs_reference",
    "append.redis_manager.round_trips_per_event",
    "latency.same_process.p99_ms",
    "latency.other_process.p99_ms",
    "reattach.end_long_vs_short",
    "reattach.status_long_vs_short",
    "reattach.status_long_small_content_vs_short",
}


# The console script installed beside this interpreter.
REATTACH = str(Path(sys.executable).with_name("reattach"))


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``reattach bench`` with ``args``."""
    return subprocess.run(
        [REATTACH, "bench", *args],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def test_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    done = bench("--smoke", "--json", str(out))

    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["command"] == f"reattach bench --smoke --json {out}"
    assert report["repeat"] == 1
    assert set(report["workloads"]) == set(FIGURES)
    expected = {f"{name}.{key}" for name, keys in FIGURES.items() for key in keys}
    assert set(report["figures"]) == expected
    for key, figure in report["figures"].items():
        assert set(figure) >= {"median", "min", "max", "unit", "target", "met"}, key
        assert (figure["target"] is not None) == (key in TARGETS), key
        if figure["unavailable"] is None:
            assert figure["samples"], key
            assert figure["min"] <= figure["median"] <= figure["max"], key
    # Only the server's workload may be unavailable (it needs `reattach serve`).
    for name, workload in report["workloads"].items():
        if name != "scale":
            assert workload["status"] == "ok", (name, workload["reason"])
    for figure in report["figures"].values():
        assert figure["label"] in done.stdout


def test_the_table_says_met_or_missed_next_to_each_target(tmp_path: Path) -> None:
    done = bench("--smoke", "--only", "reattach", "--quiet")

    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "<= 2x" in line]
    assert len(rows) == 3
    assert all(row.rstrip(" |").endswith(("met", "MISSED")) for row in rows)
    assert "unavailable" not in done.stdout


def test_a_given_redis_is_used_and_left_clean(redis_standalone: RedisServer) -> None:
    keys_before = redis_standalone.cli("DBSIZE").strip()

    done = bench(
        "--smoke", "--only", "memory", "--redis-url", redis_standalone.url, "--quiet"
    )

    assert done.returncode == 0, done.stderr
    assert "Redis: job log, bytes per event" in done.stdout
    assert "unavailable" not in done.stdout
    assert redis_standalone.cli("DBSIZE").strip() == keys_before


def test_an_unreachable_redis_fails_the_run_and_hides_its_password() -> None:
    url = "redis://user:secret@127.0.0.1:1/0"

    done = bench("--smoke", "--only", "memory", "--redis-url", url, "--quiet")

    assert done.returncode == 1
    assert "cannot reach Redis at redis://***@127.0.0.1:1/0" in done.stderr
    assert "secret" not in done.stderr + done.stdout
    assert done.stdout == ""


def test_no_redis_is_needed_for_the_server_workload_alone(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"

    done = bench("--smoke", "--only", "scale", "--json", str(out), "--quiet")

    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert list(report["workloads"]) == ["scale"]
    assert "redis_version" not in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "nope"], "--only takes names from"),
        (["--only", ","], "--only takes names from"),
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--repeat", "x"], "invalid int value"),
    ],
)
def test_bad_options_are_refused(args: list[str], message: str) -> None:
    done = bench(*args)

    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the bench with stderr on a pseudo-terminal; return its status and stderr."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [REATTACH, "bench", *args],
            stdout=subprocess.DEVNULL,
            stderr=terminal,
        )
    finally:
        os.close(terminal)
    drawn = bytearray()
    try:
        with process:
            while True:
                try:
                    data = os.read(controller, 4096)
                except OSError:  # EIO: every writer of the terminal has gone
                    break
                if not data:
                    break
                drawn += data
            status = process.wait(timeout=100)
    finally:
        os.close(controller)
    return status, drawn.decode(errors="replace")


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    status, drawn = on_a_terminal("--smoke", "--only", "memory")
    quiet = bench("--smoke", "--only", "memory", "--quiet")
    piped = bench("--smoke", "--only", "memory")

    assert status == quiet.returncode == piped.returncode == 0
    assert "\r[" in drawn
    assert "memory 1/1" in drawn
    assert quiet.stderr == ""
    assert piped.stderr == ""
