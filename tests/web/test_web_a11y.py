"""The accessibility scan (tests/web/a11y.py, axe-core) in a real Chromium against the real server and database: it
can fail (an unlabelled field, a nameless button), and every page passes it in its main states: signed out (home,
sign-in, watch), a buyer with an order and something in each account section (watch with the cart drawer open,
checkout, the order, each account section, a replay), the seller live with chat (the studio's live panel, home,
products, orders)."""
from __future__ import annotations

import uuid

import pytest

from live.rooms.state import REACTION_KINDS
from live.web.account import SECTIONS
from tests.helpers import until
from tests.web.a11y import assert_accessible, violations
from tests.web.helpers import page_as, watch_errors
from tests.web.test_web_account import ADDRESS, buyer_with_things, notice, rest
from tests.web.test_web_studio import PHONE
from tests.web.test_web_watch import go_live


async def test_the_scan_finds_a_violation_and_passes_the_home_page(live, browser):
    page = await (await browser.new_context()).new_page()
    errors = watch_errors(page)
    await page.goto(live.base)
    await page.get_by_role("region", name="Live now").wait_for()
    await assert_accessible(page)
    assert await icon_status(page) == 200
    # the scan can fail: an unlabelled field and an empty button on the same page
    await page.evaluate("""() => { const i = document.createElement('input'); i.id = 'nolabel';
        const b = document.createElement('button'); b.id = 'noname';
        document.querySelector('main').append(i, b); }""")
    with pytest.raises(AssertionError) as failed:
        await assert_accessible(page)
    text = str(failed.value)
    assert "label (critical)" in text and "#nolabel" in text and "button-name (critical)" in text, text
    assert "https://dequeuniversity.com/rules/axe/" in text
    await assert_accessible(page, exclude=("#nolabel", "#noname"))
    assert [v["id"] for v in await violations(page)]  # still there, only left out
    assert errors == [], errors


LOADING = """() => ![...document.querySelectorAll('main *')].some(e => !e.children.length && e.checkVisibility()
    && /^(Loading|Connecting)/.test(e.textContent.trim()))"""


ICON = """() => fetch(document.querySelector('link[rel=icon]').href)
    .then(r => r.headers.get('content-type').startsWith('image/svg+xml') ? r.status : r.headers.get('content-type'))"""


async def icon_status(page) -> int:
    """The status of the page's icon (its <link rel=icon>) fetched as the page would; its type if not an SVG."""
    return await page.evaluate(ICON)


FOCUS = """() => { const e = document.activeElement, s = getComputedStyle(e);
    return {key: e.id || (e.dataset.kind ? `react-${e.dataset.kind}` : e.tagName + ':' + e.textContent.trim()),
            ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2}; }"""


async def focus_of(page) -> dict:
    """The focused element ({key: its id, react-<kind> or tag:text}, ring: a visible outline of 2 px or more)."""
    return await page.evaluate(FOCUS)


async def tab_until(page, selector: str, *, back: bool = False, limit: int = 40) -> list[dict]:
    """Press Tab (Shift+Tab when `back`) until `selector` has the focus; the focus stops on the way."""
    stops = []
    for _ in range(limit):
        await page.keyboard.press("Shift+Tab" if back else "Tab")
        stops.append(await focus_of(page))
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return stops
    raise AssertionError(f"{selector} not reached in {limit} tabs: {[s['key'] for s in stops]}")


async def scan(page, url: str, ready=None, **kw) -> None:
    """Open `url` (unless None: the page as it is), wait for `ready` (a locator) and for no 'Loading…' left, scan."""
    if url is not None:
        await page.goto(url)
    if ready is not None:
        await ready.wait_for()
    await until(lambda: page.evaluate(LOADING), 10, what=f"{page.url} loaded")
    await assert_accessible(page, **kw)


async def test_every_page_in_its_main_states(live, browser):
    """Signed out, signed in as a buyer with an order and things in each account section, and as the seller live
    with chat and a spotlighted product: every page passes the scan, the watch page also with the cart open."""
    base = live.base
    ann_id, ann_token, things = await buyer_with_things(live, "a11y-ann")
    await notice(live, ann_id, "order.shipped", "3001")
    studio = await go_live(browser, live)
    studio_errors = watch_errors(studio)
    chatter = await live.viewer("a11y-bo")
    await chatter.say("Does it come in blue?")
    await studio.locator("#chat-list li", has_text="Does it come in blue?").wait_for()
    await scan(studio, None, studio.get_by_role("heading", name="On screen now"))

    guest = await (await browser.new_context(viewport=PHONE)).new_page()
    guest_errors = watch_errors(guest)
    for path, ready in (("", guest.get_by_role("region", name="Live now").get_by_role("link").first),
                        ("signin", guest.get_by_label("Email address")),
                        ("live/demo", guest.locator("#chat-list li", has_text="Does it come in blue?"))):
        await scan(guest, base + path, ready)

    ann = await page_as(browser, base, ann_id, "a11y-ann", ann_token)
    ann_errors = watch_errors(ann, "status of 404")  # the replay of a stream that has none
    await scan(ann, f"{base}live/demo", ann.get_by_role("button", name="Add to cart"))
    await ann.locator("#chat-form").wait_for()
    # by keyboard alone, from the top: every stop shows its focus; the reactions, the cart, Add to cart and the
    # chat's field are reached in the page's order
    stops = await tab_until(ann, "#chat-text")
    order = [s["key"] for s in stops]
    assert [k for k in order if k.startswith("react-")] == [f"react-{k}" for k in REACTION_KINDS], order
    assert order.index("react-laugh") < order.index("cart-button") < order.index("spot-add") \
        < order.index("chat-text"), order
    assert not [s for s in stops if not s["ring"]], [s for s in stops if not s["ring"]]
    await tab_until(ann, "#spot-add", back=True)
    await ann.keyboard.press("Enter")
    await ann.get_by_text("Added to your cart.").wait_for()
    await tab_until(ann, "#cart-button", back=True)
    await ann.keyboard.press("Enter")
    drawer = ann.get_by_role("dialog", name="Your cart")
    await drawer.get_by_role("link", name="Checkout").wait_for()
    inside = await tab_until(ann, "#cart-checkout")  # focus went into the drawer and stays there
    assert inside[0]["key"] != "cart-button" and all(s["ring"] for s in inside), inside
    # the lines drawn anew (the cart changed elsewhere) while a line's button has the focus: it stays on it
    before = (await tab_until(ann, "#cart-lines button:not([disabled])", back=True))[-1]
    await ann.evaluate("""() => { document.querySelector('#cart-lines li').dataset.old = '1';
        document.dispatchEvent(new CustomEvent('live:cart-changed', {detail: {}})); }""")
    await until(lambda: ann.evaluate("!document.querySelector('#cart-lines li[data-old]')"), 5, what="lines anew")
    assert await focus_of(ann) == before and await ann.evaluate(
        "document.querySelector('#cart-lines').contains(document.activeElement)")
    await scan(ann, None, drawer)
    await ann.keyboard.press("Escape")
    await drawer.wait_for(state="hidden")
    assert (await focus_of(ann))["key"] == "cart-button"  # back where it was
    await scan(ann, f"{base}checkout", ann.get_by_role("heading", name="1. Shipping address"))
    # the sandbox payment page (the server's own HTML) for the cart ann filled by keyboard, with its icon
    pay = await rest(live, "POST", "/checkout", ann_token, {"address": ADDRESS, "provider": "sandbox"},
                     **{"Idempotency-Key": uuid.uuid4().hex})
    sandbox = await (await browser.new_context()).new_page()
    sandbox_errors = watch_errors(sandbox)
    await scan(sandbox, base + pay["payment"]["authorization_url"].split("/", 3)[3],
               sandbox.get_by_role("button", name="Pay"))
    assert await icon_status(sandbox) == 200 and sandbox_errors == [], sandbox_errors
    order = things["order"]
    await scan(ann, f"{base}orders/{order['id']}", ann.get_by_role("heading", name=f"Order {order['number']}"))
    for section in SECTIONS:
        await scan(ann, f"{base}account/{section}", ann.get_by_role("heading", name=SECTIONS[section]))
    await scan(ann, f"{base}replay/demo", ann.locator("#replay-state").get_by_text("no", exact=False))

    await studio.goto(f"{base}studio")  # the stream goes on without its studio page: the other studio pages
    for path, ready in (("studio", studio.locator(".shows-live").get_by_role("link").first),
                        ("studio/products", studio.get_by_text("on hand").first),
                        ("studio/orders", studio.locator("#orders li").first),
                        ("studio/coupons", studio.locator("#coupons li").first)):
        await scan(studio, base + path, ready)
        # headings go down one level at a time (a list's items were h3 under the page's h1)
        assert [v for v in await violations(studio) if v["id"] == "heading-order"] == [], path
    assert studio_errors == [] and guest_errors == [] and ann_errors == [], (studio_errors, guest_errors, ann_errors)
