"""The home page and the sign-in page in a real Chromium: the links a newcomer follows, an email code signed in
with through the form (a wrong code first), the token kept the way the API takes it (REST bearer, socket auth),
signing out; the pages' static files and their caching."""
from __future__ import annotations

from urllib.parse import urlsplit

from tests.web.helpers import latest_code, sign_in, watch_errors


async def test_home_links_and_email_sign_in(live, dsn, browser):
    base = live.base
    context = await browser.new_context()
    page = await context.new_page()
    errors = watch_errors(page, "status of 401", "status of 409")  # the wrong code; WHEP while nobody publishes
    await page.goto(base)
    assert await page.get_by_role("link", name="Watch the demo stream").get_attribute("href") == "/live/demo"
    assert await page.get_by_role("link", name="Go live (studio)").get_attribute("href") == "/studio/live/demo"

    await page.get_by_role("link", name="Sign in").first.click()
    await page.wait_for_url(f"{base}signin")
    await page.get_by_label("Email address").fill("not an address")
    await page.get_by_role("button", name="Email me a code").click()
    assert "Enter an email address" in await page.get_by_role("alert").inner_text()

    email = "web-ann@example.com"
    await page.get_by_label("Email address").fill(email)
    await page.keyboard.press("Enter")  # the form submits from the keyboard
    await page.get_by_label("6-digit code").wait_for()
    assert await page.get_by_role("link", name="development mailbox").get_attribute("href") == "/dev/mailbox"
    _, code = await latest_code(dsn, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    await page.get_by_label("6-digit code").fill(wrong)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.get_by_text("That code is not right").wait_for()
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(base)  # no ?next=: home
    await page.goto(f"{base}live/demo")  # the pages' header says who is signed in
    await page.get_by_text("Signed in as web-ann").wait_for()

    # the kept token is a bearer the REST API and the socket accept
    me = await page.evaluate("""async () => {
        const s = JSON.parse(localStorage.getItem('live.session'));
        const r = await fetch('/api/v1/me', {headers: {Authorization: 'Bearer ' + s.token}});
        return [r.status, (await r.json()).email];
    }""")
    assert me == [200, email]

    # signing out forgets it in this browser
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("link", name="Sign in").first.wait_for()
    assert await page.evaluate("localStorage.getItem('live.session')") is None
    assert errors == [], errors


async def test_sign_in_returns_to_next_only_on_this_site(live, dsn, browser):
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, live.base, dsn, "web-bob@example.com", next_path="/live/demo")
    page2 = await context.new_page()
    await page2.goto(f"{live.base}signin?next=//evil.example/")
    await page2.get_by_label("Email address").fill("web-cy@example.com")
    await page2.get_by_role("button", name="Email me a code").click()
    await page2.get_by_label("6-digit code").wait_for()
    _, code = await latest_code(dsn, "web-cy@example.com")
    await page2.get_by_label("6-digit code").fill(code)
    await page2.get_by_role("button", name="Sign in", exact=True).click()
    await page2.wait_for_url(live.base)  # not the other site
    # a tab (or newline) the URL parser drops: `/\t/evil.example/phish` is `//evil.example/phish`
    tried: list[str] = []

    async def off_site(route) -> None:  # a request to the other site is recorded and never leaves the machine
        tried.append(route.request.url)
        await route.abort()

    await context.route(lambda url: urlsplit(url).hostname == "evil.example", off_site)
    page3 = await context.new_page()
    await page3.goto(f"{live.base}signin?next=%2F%09%2Fevil.example%2Fphish")
    await page3.get_by_label("Email address").fill("web-dee@example.com")
    await page3.get_by_role("button", name="Email me a code").click()
    await page3.get_by_label("6-digit code").wait_for()
    _, code = await latest_code(dsn, "web-dee@example.com")
    await page3.get_by_label("6-digit code").fill(code)
    await page3.get_by_role("button", name="Sign in", exact=True).click()
    await page3.wait_for_url(live.base)
    assert tried == [], tried


async def test_pages_and_static_files(live):
    client = live.client
    for path in ("/signin", "/live/demo", "/studio/live/demo"):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "text/html", path
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert (await client.get("/live/no%20such")).status == 404
    assert (await client.get("/live/" + "a" * 121)).status == 404
    # a shell escapes what it echoes (the stream reference goes into an attribute)
    html = await (await client.get("/live/demo")).text()
    assert 'data-stream="demo"' in html
    versioned = html.split('src="')[1].split('"')[0]  # the first module, /static/js/nav.js?v=<hash>
    assert versioned.startswith("/static/js/nav.js?v=")
    resp = await client.get(versioned)
    assert resp.status == 200 and resp.content_type == "text/javascript"
    assert "immutable" in resp.headers["Cache-Control"]
    etag = resp.headers["ETag"]
    resp = await client.get("/static/js/nav.js", headers={"If-None-Match": etag})
    assert resp.status == 304 and resp.headers["Cache-Control"] == "no-cache"
    resp = await client.get("/static/vendor/socket.io.esm.min.js", headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert "Socket.IO v4" in await resp.text()
    assert (await client.get("/static/vendor/socket.io-client.LICENSE")).status == 200
    for bad in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/js/nope.js", "/static/"):
        resp = await client.get(bad)
        assert resp.status == 404, bad
        assert (await resp.json())["error"]["code"] == "not_found"


def test_the_mailbox_link_only_in_development():
    from types import SimpleNamespace

    from live.web.assets import Assets
    from live.web.pages import Pages

    assets = Assets.load()
    for env, shown in (("development", True), ("test", True), ("production", False)):
        html = Pages(SimpleNamespace(live_env=env, livekit_url=""), assets).render("signin.html", title="Sign in").text
        assert ('href="/dev/mailbox"' in html) is shown, env
