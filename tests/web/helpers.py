"""What the browser tests share: signing in through the sign-in page (the code read from the outbox, the tests'
mail capture) or by a session put in a new context (page_as), and watching a page for script errors."""
from __future__ import annotations

import asyncio
import json
import re

from tests.auth.helpers import owner_fetchval
from tests.helpers import until


async def latest_code(dsn: str, email: str, after: int = 0) -> tuple[int, str]:
    """(outbox id, code) of the newest sign-in mail to `email` with an id over `after`, waiting for it."""
    found: list = []

    async def arrived() -> bool:
        row = await owner_fetchval(
            dsn, "SELECT json_build_array(id, coalesce(data->>'code', body)) FROM email_outbox "
            "WHERE lower(to_address) = lower($1) AND id > $2 ORDER BY id DESC LIMIT 1", email, after)
        if row:
            found.append(row)
        return bool(row)

    await until(arrived, 10, what=f"a sign-in mail to {email}")

    mail_id, body = json.loads(found[-1])
    return mail_id, re.search(r"\b(\d{6})\b", body).group(1)

def watch_errors(page, *expected: str) -> list[str]:
    """Uncaught script errors and console errors of a page, collected as they happen; a console error holding one
    of `expected` (e.g. "status of 401" after a wrong code on purpose) is not one."""
    errors: list[str] = []

    def console(msg) -> None:
        if msg.type == "error" and not any(e in msg.text for e in expected):
            errors.append(f"console: {msg.text}")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", console)
    page.on("response", lambda r: errors.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 400 and not any(e in f"status of {r.status}" for e in expected) else None)
    return errors

async def sign_in(page, base: str, dsn: str, email: str, next_path: str = "/") -> None:
    """Sign in by email code through /signin, as a person would, and land on `next_path`."""
    await page.goto(f"{base}signin?next={next_path}")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a code").click()
    await page.get_by_label("6-digit code").wait_for()
    _, code = await latest_code(dsn, email)
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{base.rstrip('/')}{next_path}")


SHIPPED = ("Shipped", "In transit", "Out for delivery", "Delivered")  # an order's status badge once it has shipped


async def text_in(locator, texts, strip: bool = True) -> bool:
    """The locator's text is one of `texts` (stripped of surrounding whitespace first unless strip=False)."""
    text = await locator.inner_text()
    return (text.strip() if strip else text) in texts


async def page_as(browser, base: str, user_id: str, name: str, token: str, role: str | None = None, **context):
    """A new browser context (`context`: its options, e.g. viewport) whose page is signed in as the user: the session
    put where api.js keeps it, on the sign-in page; the user's role is stored in it only when given."""
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{base}signin")
    user = {"id": user_id, "name": name, **({"role": role} if role is not None else {})}
    await page.evaluate("s => localStorage.setItem('live.session', s)", json.dumps({"token": token, "user": user}))
    return page


FRAMES = "document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames"


async def frames_advance(page, what: str) -> None:
    """The watch page's video decodes new frames over a second (it moves), within 15 s."""
    async def moving() -> bool:
        before = await page.evaluate(FRAMES)
        await asyncio.sleep(1.0)
        after = await page.evaluate(FRAMES)
        return after > before + 5

    await until(moving, 15, step=0, what=f"{what}'s video frames advancing")


async def start_shop(tmp_path, dsn, aiohttp_client, **settings):
    """The demo app (tests.rooms.harness.Live) listening on the port its settings name: the sandbox payment
    provider's pay link is built from the server's own address (PUBLIC_URL, else HOST:PORT); the sandbox carrier
    scans every 2 s."""
    import socket

    from live.app import create_app
    from tests.conftest import FrontDoorTestServer
    from tests.helpers import make_settings
    from tests.rooms.harness import Live

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = make_settings(tmp_path, seed_demo="true", port=port, sandbox_carrier_pace_seconds="2", **settings)
    app = create_app(conf, dsn, run_migrations=False)
    return Live(await aiohttp_client(FrontDoorTestServer(app, host="127.0.0.1", port=port)))
