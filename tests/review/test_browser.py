"""The Argilla UI of the test server in headless Chromium (Debian's `chromium`): sign in, open the pushed
dataset, see a pair. Asserts on the page text; the screenshot is kept in the test's tmp dir."""

from __future__ import annotations

import base64
import os
import shutil

import pytest

from prefkit.review.argilla_queue import push

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The machine's network is closed: without these Chromium keeps trying to reach Google's hosts.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium_path() -> str:
    if CHROMIUM is None:
        message = "Debian's chromium is not installed: `make system-deps` (or apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def test_reviewer_sees_a_pushed_pair_in_the_argilla_ui(argilla_server, connection, pairs, chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    rows = pairs[200:203]
    push(rows, connection, "browser-check")
    credentials = argilla_server.credentials
    auth = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{argilla_server.url}/sign-in?auth={auth}")
            page.get_by_text("browser-check").first.click(timeout=60_000)
            page.get_by_text("Which next turn is better?").first.wait_for(timeout=60_000)
            page.get_by_text("Response B").first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "argilla-review.png"))
            text = page.inner_text("body")
        finally:
            browser.close()
    assert (tmp_path / "argilla-review.png").stat().st_size > 10_000
    for label in ("Response A", "Response B", "A is better", "B is better", "Both bad", "Submit"):
        assert label in text
    # One of the pushed pairs is on screen: its context and both of its turns.
    flat = " ".join(text.split())

    def on_screen(snippet: str) -> bool:
        return " ".join(snippet.split()[:12]) in flat

    assert any(
        on_screen(row["prompt"][-1]["content"])
        and on_screen(row["chosen"][-1]["content"])
        and on_screen(row["rejected"][-1]["content"])
        for row in rows
    ), text[:2000]
