"""The browser tests' fixtures: one Debian Chromium for the whole run, started here with the fake camera and
microphone and driven by Playwright over its DevTools protocol (no browser is downloaded); each test connects to
it and opens one browser context per user (separate storage: a seller and two viewers never share a token).

Chromium is installed by `make test` (apt-get, as root) when missing; run without it, these tests fail with the
one line that says how to install it: they are never skipped."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
INSTALL = f"the browser tests need Chromium at {CHROMIUM}: run `sudo apt-get install -y chromium` (make test does it)"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--mute-audio", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    # a synthetic camera and microphone, and their permission granted without a prompt
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
)


@pytest.fixture(scope="session")
def chromium_endpoint(tmp_path_factory):
    """The DevTools websocket URL of a Chromium started once per test session."""
    if not (shutil.which(CHROMIUM) or os.access(CHROMIUM, os.X_OK)):
        pytest.fail(INSTALL, pytrace=False)
    profile = tmp_path_factory.mktemp("chromium")
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:  # the endpoint, then drain Chromium's chatter so it never blocks on a full pipe
        for line in proc.stderr:
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30) or not found:
        proc.kill()
        pytest.fail(f"{CHROMIUM} did not start (exit {proc.poll()})", pytrace=False)
    yield found[0]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
async def browser(chromium_endpoint):
    """Playwright connected to the session's Chromium; contexts made through it are closed after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield browser
        finally:
            await browser.close()  # connected over CDP: closes the contexts this test made, leaves Chromium up


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client):
    """The demo app from start_shop (tests/web/helpers.py): the sandbox's pay page and carrier (scans every 2 s)."""
    from tests.web.helpers import start_shop

    live = await start_shop(tmp_path, dsn, aiohttp_client)
    yield live
    await live.close_viewers()
