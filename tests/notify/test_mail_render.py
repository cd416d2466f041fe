"""Every kind of KINDS has an email: subject, plain text and HTML render from its templates with the contract's
sample data (StrictUndefined: a variable the kind does not carry fails here), with the shop's name, absolute links
to the page it is about and the preferences page, and an unsubscribe link only for optional kinds sent to a user."""
from __future__ import annotations

import re

import pytest

from live.notify.kinds import KINDS, url_for
from live.notify.render import SUBJECTS, TEMPLATES, Renderer, money
from live.notify.unsubscribe import UnsubscribeTokens
from tests.helpers import SECRET

BASE = "https://shop.example"
USER = "6f1c2a9e-0b7d-4a51-9a43-7d2f3c1e8b10"
ORDER_ID = "0b9f6a8e-2d3c-4e5f-8a7b-1c2d3e4f5a6b"
TRACK = {"carrier": "USPS", "tracking_number": "9400 1000 0000 0000", "tracking_url": "https://track.example/94"}
STREAM = {"stream_id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a", "slug": "spring-drop", "title": "Spring <drop>",
          "seller_name": "Shop & Co", "seller_slug": "shop-co", "cover_url": "https://cdn.example/c.jpg"}
ORDER_BASE = {"order_id": ORDER_ID, "number": "LV-1042"}
SAMPLES: dict[str, dict] = {
    "auth.sign_in_code": {"code": "123456", "minutes": 10},
    "order.confirmed": {**ORDER_BASE, "total_minor": 4599, "currency": "USD"},
    "order.payment_failed": {**ORDER_BASE, "reason": "card declined"},
    "order.canceled": {**ORDER_BASE, "reason": "the payment never came"},
    "order.refunded": {**ORDER_BASE, "amount_minor": 4599, "currency": "USD"},
    "order.label_created": {**ORDER_BASE, **TRACK},
    "order.shipped": {**ORDER_BASE, **TRACK},
    "order.out_for_delivery": {**ORDER_BASE, **TRACK},
    "order.delivered": {**ORDER_BASE, **TRACK, "tracking_url": None},
    "return.approved": {**ORDER_BASE, "return_id": "r-1"},
    "return.refunded": {**ORDER_BASE, "return_id": "r-1", "amount_minor": 1500, "currency": "EUR"},
    "seller.new_order": {**ORDER_BASE, "total_minor": 4599, "currency": "USD", "buyer_name": "Ada"},
    "seller.label_failed": {**ORDER_BASE, "error": "address not deliverable"},
    "seller.stock_low": {"product_id": "p-1", "variant_id": "v-1", "title": "Mug", "sku": "MUG-1", "available": 2,
                         "threshold": 5},
    "seller.needs_attention": {"payment_id": "pay-1", "issue": "refund failed at the provider",
                               "order_ids": [ORDER_ID], "numbers": ["LV-1042", "LV-1043"]},
    "follow.live_now": STREAM,
    "follow.reminder": {**STREAM, "scheduled_at": "2026-12-24T18:00:00+00:00"},
    "contact.to_support": {"contact_id": 7, "name": "Ada <script>", "email": "ada@example.com",
                           "subject": "Where is my parcel?", "message": "Hello,\nit is late."},
    "contact.ack": {"contact_id": 7, "name": "Ada", "subject": "Where is my parcel?", "message": "Hello"},
    "account.seller_approved": {"shop": "Ada's <mugs>", "note": "Welcome aboard"},
    "account.seller_refused": {"shop": "Ada's mugs", "note": "Tell us more about what you sell"},
}
ORDER = {"id": ORDER_ID, "number": "LV-1042", "subtotal_minor": 4000, "discount_minor": 500, "shipping_minor": 1099,
         "total_minor": 4599, "currency": "USD", "coupon_code": "SPRING",
         "shipping_address": {"name": "Ada Lovelace", "line1": "1 Main St", "line2": None, "city": "Springfield",
                              "state": "IL", "postal_code": "62701", "country": "US"},
         "items": [{"title": "Blue mug", "sku": "MUG-B", "quantity": 2, "line_total_minor": 4000,
                    "currency": "USD"}]}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer("Maple Market", BASE, UnsubscribeTokens(SECRET).path)


def test_every_kind_has_its_templates_and_a_subject():
    assert set(SAMPLES) == set(KINDS)
    for kind in KINDS:
        assert kind in SUBJECTS
        assert (TEMPLATES / f"{kind}.html").is_file() and (TEMPLATES / f"{kind}.txt").is_file()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_renders_html_and_text_with_links(renderer, kind):
    data = SAMPLES[kind]
    extra = {"order": ORDER if "order_id" in data and kind != "seller.needs_attention" else None}
    out = renderer.render(kind, data, user_id=USER, recipient_name="Ada", extra=extra)
    assert out.subject and "{{" not in out.subject and "\n" not in out.subject
    page = BASE + url_for(kind, data)
    for body in (out.text, out.html):
        assert "Maple Market" in body
        assert BASE + "/account/preferences" in body
        assert "{{" not in body and "{%" not in body
    assert page in out.text and f'href="{page}"' in out.html or kind in ("auth.sign_in_code", "contact.ack")
    assert out.html.lstrip().startswith("<!doctype html>")
    unsubscribe = re.search(r"/unsubscribe\?t=[\w.-]+", out.text)
    if KINDS[kind].transactional:
        assert unsubscribe is None and "/unsubscribe" not in out.html
    else:
        assert unsubscribe and UnsubscribeTokens(SECRET).read(unsubscribe.group().split("=", 1)[1]) == (USER, kind)
        assert BASE + unsubscribe.group() in out.html
    if extra["order"] is not None:  # the lines, totals and address the template loaded
        for body in (out.text, out.html):
            assert "Blue mug" in body and "45.99 USD" in body and "Springfield" in body and "SPRING" in body
    if "tracking_url" in data and data["tracking_url"]:
        assert data["tracking_url"] in out.text and data["tracking_url"] in out.html


def test_html_escapes_data_and_text_keeps_it(renderer):
    out = renderer.render("contact.to_support", SAMPLES["contact.to_support"])
    assert "Ada &lt;script&gt;" in out.html and "<script>" not in out.html
    assert "Ada <script>" in out.text
    live = renderer.render("follow.live_now", STREAM, user_id=USER)
    assert "Spring &lt;drop&gt;" in live.html and live.subject == "Shop & Co is live now: Spring <drop>"
    assert BASE + "/live/spring-drop" in live.text and BASE + "/sellers/shop-co" in live.html


def test_a_missing_variable_is_an_error_not_a_blank(renderer):
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        renderer.render("order.shipped", {"order_id": ORDER_ID, "number": "LV-1"})  # no carrier, tracking
    with pytest.raises(KeyError):
        renderer.render("no.such_kind", {})


def test_optional_data_left_empty_by_the_events_reads_well(renderer):
    """What live/notify/events.py may send: no reason, a manual parcel without carrier or link, no buyer name."""
    canceled = renderer.render("order.canceled", {**ORDER_BASE, "reason": None})
    assert "Order LV-1042 was canceled." in canceled.text and "None" not in canceled.text + canceled.html
    shipped = renderer.render("order.shipped", {**ORDER_BASE, "carrier": None, "tracking_number": "TN1",
                                                "tracking_url": None})
    assert "Tracking number: TN1" in shipped.text and "Carrier" not in shipped.text + shipped.html
    assert "None" not in shipped.text + shipped.html
    new = renderer.render("seller.new_order", {**ORDER_BASE, "total_minor": 100, "currency": "USD",
                                               "buyer_name": None})
    assert new.subject == "New order LV-1042" and "A buyer paid" in new.text
    failed = renderer.render("seller.label_failed", {**ORDER_BASE, "error": ""})
    assert "could not be bought.\n" in failed.text


def test_the_sign_in_code_mail_to_an_address_has_no_greeting_and_no_unsubscribe(renderer):
    out = renderer.render("auth.sign_in_code", {"code": "654321", "minutes": 10})
    assert out.subject == "654321 is your Maple Market sign-in code"
    assert "654321" in out.text and "expires in 10 minutes" in out.text and "Hi " not in out.text
    assert "unsubscribe" not in out.text.lower()


def test_a_seller_application_mail_names_the_applicants_shop_not_the_site(renderer):
    approved = renderer.render("account.seller_approved", SAMPLES["account.seller_approved"], user_id=USER)
    assert approved.subject == "You are a seller now: Ada's <mugs> is open"
    assert "sell as Ada's <mugs> is approved" in approved.text
    assert "sell as <strong>Ada&#39;s &lt;mugs&gt;</strong> is approved" in approved.html
    assert "the studio.\n\nWelcome aboard\n\nOpen the studio" in approved.text  # the note stands apart
    bare = renderer.render("account.seller_approved", {"shop": "Ada's mugs", "note": None}, user_id=USER)
    assert "the studio.\n\nOpen the studio" in bare.text and "None" not in bare.text + bare.html
    refused = renderer.render("account.seller_refused", SAMPLES["account.seller_refused"], user_id=USER)
    assert refused.subject == "Your seller application for Ada's mugs was refused"
    assert "sell as Ada's mugs was refused:\n\nTell us more" in refused.text and "Ada&#39;s mugs" in refused.html


def test_reminder_says_when_in_words(renderer):
    out = renderer.render("follow.reminder", {**STREAM, "scheduled_at": "2026-12-24T19:05:00+01:00"})
    assert "goes live on Thursday 24 December 2026, 18:05 UTC" in out.text


def test_money():
    assert money(123456, "usd") == "1,234.56 USD"
    assert money(1500, "JPY") == "1,500 JPY"
    assert money(None, "USD") == ""
