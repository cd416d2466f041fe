"""The README's screenshots, taken by a test from the real pages with the demo data (the seeded live show, its
products and spotlight, a few viewers chatting and reacting, a buyer with orders): the home page, the watch page
on a phone (390×844) with chat and the spotlight, the checkout, the studio's live panel, the account's orders and
the admin's users.
Each is always taken into the test's tmp dir and must not be blank (many distinct colours); with
`LIVE_SCREENSHOTS=1` they are also written to docs/screenshots/ (palette PNGs, small enough for the repository):

    LIVE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/web/test_web_screenshots.py"""
from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from tests.helpers import until
from tests.rooms.harness import paid_sale
from tests.web.helpers import frames_advance, page_as, watch_errors
from tests.web.test_web_a11y import LOADING
from tests.web.test_web_account import buyer_with_things, rest
from tests.web.test_web_watch import go_live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CHAT = (("Maya", "Hi from Lisbon! 👋"), ("Tom", "Is the weekender bag waterproof?"),
        ("Priya", "Love the colour of that one"), ("Maya", "How long does shipping to Portugal take?"),
        ("Leo", "Just ordered two 🎉"))
MIN_COLOURS = 40  # a blank or half-drawn page has a handful


async def shoot(page, name: str, tmp_path: Path, **kw) -> Path:
    """A screenshot once nothing says 'Loading…', checked not blank, kept as a palette PNG (and in docs/ when
    LIVE_SCREENSHOTS=1)."""
    await until(lambda: page.evaluate(LOADING), 10, what=f"{page.url} loaded")
    await page.evaluate("document.fonts.ready.then(() => document.activeElement?.blur())")
    image = Image.open(io.BytesIO(await page.screenshot(animations="disabled", **kw))).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24)
    assert len(colours) > MIN_COLOURS, f"{name}: {len(colours)} colours: blank?"
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True)
    path = tmp_path / f"{name}.png"
    path.write_bytes(out.getvalue())
    if os.environ.get("LIVE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        (DOCS / path.name).write_bytes(out.getvalue())
    return path


def cover(top: tuple, bottom: tuple) -> bytes:
    """A 640×360 PNG fading from one colour to another: a stream's cover."""
    image = Image.linear_gradient("L").resize((640, 360))
    out = io.BytesIO()
    Image.composite(Image.new("RGB", (640, 360), bottom), Image.new("RGB", (640, 360), top), image).save(out, "PNG")
    return out.getvalue()


SHOWS = (("Sunday vintage market", "vintage", "2031-05-04T17:00:00+00:00", (233, 174, 120), (120, 60, 90)),
         ("Pottery night: new glazes", "pottery", "2031-05-06T19:30:00+00:00", (110, 160, 200), (40, 70, 110)))


async def shows(live) -> None:
    """Two scheduled shows with covers and an ended one (a replay card) for the home page."""
    _, token = await live.user("studio-anna", "seller")
    for title, slug, at, top, bottom in SHOWS:
        await rest(live, "POST", "/livestreams", token, {"title": title, "slug": slug, "scheduled_at": at})
        resp = await live.client.post(f"/api/v1/livestreams/{slug}/cover", data=cover(top, bottom),
                                      headers={"Content-Type": "image/png", "Authorization": f"Bearer {token}"})
        assert resp.status == 200, await resp.text()
    await rest(live, "POST", "/livestreams", token, {"title": "Knitwear clear-out", "slug": "knitwear"})
    await rest(live, "POST", "/livestreams/knitwear/start", token)
    await rest(live, "POST", "/livestreams/knitwear/end", token)


async def test_screenshots(live, browser, tmp_path):
    base = live.base
    await shows(live)
    studio = await go_live(browser, live)
    studio_errors = watch_errors(studio)
    await studio.set_viewport_size({"width": 1280, "height": 860})
    viewers = {}
    for name, text in CHAT:
        if name not in viewers:
            viewers[name] = await live.viewer(name)
        assert (await viewers[name].say(text))["ok"]
    for viewer, kind in zip(viewers.values(), ("heart", "fire", "heart", "clap")):
        assert (await viewer.call("reaction", {"stream_id": "demo", "kind": kind}))["ok"]

    # a buyer with an order paid, one awaiting payment, and the spotlighted product in the cart
    ann_id, token, _ = await buyer_with_things(live, "Ann")
    ann_socket = await live.open_viewer(base, token, "Ann", ann_id, "demo", {})
    spotlight = ann_socket.joined["spotlight"]
    await paid_sale(live, token, ann_socket)  # in the room: the studio's panel counts it
    await rest(live, "POST", "/me/cart/items", token, {"variant_id": spotlight["variants"][-1]["id"], "qty": 2})

    shots = []
    home = await (await browser.new_context(viewport=DESKTOP)).new_page()
    home_errors = watch_errors(home)
    await home.goto(base)
    await home.get_by_role("region", name="Live now").get_by_role("link").first.wait_for()
    shots.append(await shoot(home, "home", tmp_path, full_page=True))

    phone = await page_as(browser, base, ann_id, "Ann", token, viewport=PHONE, device_scale_factor=2,
                          is_mobile=True, has_touch=True)
    phone_errors = watch_errors(phone)
    await phone.goto(f"{base}live/demo")
    await phone.locator("#chat-list li", has_text=CHAT[-1][1]).wait_for()
    await phone.locator("#spot-title", has_text=spotlight["title"]).wait_for()
    await frames_advance(phone, "the phone")
    shots.append(await shoot(phone, "watch-phone", tmp_path, full_page=True))

    ann = await page_as(browser, base, ann_id, "Ann", token, viewport=DESKTOP)
    ann_errors = watch_errors(ann)
    await ann.goto(f"{base}checkout")
    await ann.get_by_role("button", name="Show shipping options").click()
    await ann.get_by_role("heading", name="3. Coupon and payment").wait_for()
    shots.append(await shoot(ann, "checkout", tmp_path, full_page=True))
    await ann.goto(f"{base}account/orders")
    await ann.locator("#panel-body li").nth(1).wait_for()
    shots.append(await shoot(ann, "account-orders", tmp_path))

    admin_id, admin_token = await live.user("rosa-admin", "admin")
    admin = await page_as(browser, base, admin_id, "rosa-admin", admin_token, viewport=DESKTOP)
    admin_errors = watch_errors(admin)
    await admin.goto(f"{base}admin")
    await admin.get_by_role("list", name="Users").locator("li").nth(5).wait_for()
    shots.append(await shoot(admin, "admin-users", tmp_path))

    await studio.locator("#chat-list li", has_text=CHAT[-1][1]).wait_for()
    await studio.get_by_text("Live: your video is on air").wait_for()
    await studio.locator("#units", has_text="2").wait_for()
    shots.append(await shoot(studio, "studio-live", tmp_path, full_page=True))

    assert sum(p.stat().st_size for p in shots) <= 1_500_000, [(p.name, p.stat().st_size) for p in shots]
    assert studio_errors == home_errors == phone_errors == ann_errors == admin_errors == [], (
        studio_errors, home_errors, phone_errors, ann_errors, admin_errors)
