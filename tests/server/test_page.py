"""The chat page in a real headless Chromium, against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .conftest import ServerFactory
from .live import LiveServer

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Distinct words, so a word shown twice or missing changes the text.
MESSAGE = " ".join(f"w{i:02d}" for i in range(30)) + "  and a\nnew line"

STREAMING = "li.message.assistant[data-status=streaming]"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server("--echo-delay-ms", "120")


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    yield page
    context.close()
    assert errors == []


def send(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.click("#send")


def words_shown(page: Page) -> int:
    count: Any = page.evaluate(
        f"""() => {{
            const text = document.querySelector("{STREAMING} .text");
            return text ? text.textContent.split(" ").length - 1 : 0;
        }}"""
    )
    return int(count)


def metric(server: LiveServer, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


def test_a_reload_mid_answer_shows_every_word_once(
    page: Page, server: LiveServer
) -> None:
    send(page, MESSAGE)
    page.wait_for_function(
        f"""() => {{
            const text = document.querySelector("{STREAMING} .text");
            return text && text.textContent.split(" ").length > 8;
        }}"""
    )
    before = words_shown(page)

    page.reload()

    page.wait_for_selector("li.message.assistant[data-status=complete]")
    answer = page.locator("li.message.assistant .text").text_content()
    question = page.locator("li.message.user .text").text_content()
    assert 8 <= before < 30
    assert answer == MESSAGE
    assert question == MESSAGE
    assert metric(server, "reattach_reattaches_total") >= 1
    assert len(httpx.get(f"{server.url}/v1/jobs").json()["jobs"]) == 1


def test_a_loopback_user_without_tokens_is_not_asked_for_one(page: Page) -> None:
    send(page, "hello there")
    page.wait_for_selector("li.message.assistant[data-status=complete]")
    assert page.locator("#token-form").is_hidden()
    assert page.locator("#prompt").is_visible()


def test_stop_ends_the_answer_as_aborted(page: Page, server: LiveServer) -> None:
    send(page, MESSAGE)
    page.wait_for_selector(f"{STREAMING} .text")
    page.wait_for_selector("#running li")

    page.click("#stop")

    page.wait_for_selector("li.message.assistant[data-status=aborted]")
    assert page.locator("li.message.assistant .note").text_content() == "Stopped."
    jobs = httpx.get(f"{server.url}/v1/jobs").json()["jobs"]
    assert [job["status"] for job in jobs] == ["aborted"]
    page.wait_for_selector("#running li", state="detached")
    assert page.locator("#send").is_enabled()


def test_a_second_turn_sends_the_conversation(page: Page, server: LiveServer) -> None:
    send(page, "one two")
    page.wait_for_selector("li.message.assistant[data-status=complete]")
    send(page, "three")
    page.wait_for_selector("li.message.assistant[data-status=complete] >> nth=1")

    answers = page.locator("li.message.assistant .text").all_text_contents()
    detail = httpx.get(f"{server.url}/v1/jobs").json()["jobs"]
    assert answers == ["one two", "three"]
    assert len(detail) == 2
    assert len({job["conversation_id"] for job in detail}) == 1
