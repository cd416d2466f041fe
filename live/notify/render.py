"""Mails rendered from Jinja2 templates (live/notify/templates/): for each kind `<kind>.html` (autoescaped) and
`<kind>.txt`, both extending a base layout (`base.html`, `base.txt`: the shop's name SHOP_NAME, a footer with the
preferences link and, for optional kinds, the unsubscribe link), and a subject (SUBJECTS below). Undefined
variables are errors (StrictUndefined), so a template naming data its kind does not carry fails its test rather
than sending a blank.

Context of every template: the kind's data (the contract's table, docs/notifications.md), plus `shop_name`,
`base_url`, `url` (the absolute link of the page the mail is about: live/notify/kinds.url_for), `prefs_url`,
`unsubscribe_url` (None for transactional kinds and mails to a bare address), `recipient_name` (None without a
user), `order` (the order of `order_id` as the API shows it: lines, totals, shipping address, shipment; loaded
at send time by `load`, None for kinds without an order or an order gone), the filters `money` and `when` and
the function `link(path)` (an absolute URL)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import asyncpg
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from db import orders as orders_db
from live.notify.kinds import KINDS, url_for

TEMPLATES = Path(__file__).parent / "templates"
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                          "XAF", "XOF", "XPF"})
MAX_SUBJECT = 200  # characters; a longer subject (a long stream title) is cut with an ellipsis

SUBJECTS: dict[str, str] = {
    "auth.sign_in_code": "{{ code }} is your {{ shop_name }} sign-in code",
    "order.confirmed": "Order {{ number }} is confirmed",
    "order.payment_failed": "The payment for order {{ number }} failed",
    "order.canceled": "Order {{ number }} was canceled",
    "order.refunded": "Order {{ number }} was refunded",
    "order.label_created": "Order {{ number }} is getting ready to ship",
    "order.shipped": "Order {{ number }} is on its way",
    "order.out_for_delivery": "Order {{ number }} is out for delivery",
    "order.delivered": "Order {{ number }} was delivered",
    "return.approved": "Your return for order {{ number }} is approved",
    "return.refunded": "Your refund for order {{ number }} is on its way",
    "seller.new_order": "New order {{ number }}{% if buyer_name %} from {{ buyer_name }}{% endif %}",
    "seller.label_failed": "The shipping label for order {{ number }} could not be bought",
    "seller.stock_low": "Stock running low: {{ title }} ({{ available }} left)",
    "seller.needs_attention": "A payment needs your attention",
    "follow.live_now": "{{ seller_name }} is live now: {{ title }}",
    "follow.reminder": "{{ seller_name }} goes live soon: {{ title }}",
    "contact.to_support": "[Contact] {{ subject }}",
    "contact.ack": "We received your message: {{ subject }}",
    "account.seller_approved": "You are a seller now: {{ shop }} is open",
    "account.seller_refused": "Your seller application for {{ shop }} was refused",
}
_ORDER_KINDS = frozenset(k for k in KINDS if k.startswith(("order.", "return.")) or k in (
    "seller.new_order", "seller.label_failed"))


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def money(minor: object, currency: object) -> str:
    if not isinstance(minor, int) or not isinstance(currency, str):
        return ""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return f"{minor:,} {code}"
    return f"{minor / 100:,.2f} {code}"


def when(value: object) -> str:
    """An ISO 8601 time as 'Thursday 24 December 2026, 18:00 UTC' (the recipient's time zone is not known)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc)
    return at.strftime("%A %d %B %Y, %H:%M UTC").replace(" 0", " ", 1)


class Renderer:
    """`unsubscribe(user_id, kind)` gives the signed unsubscribe path of a user and kind (live/notify/unsubscribe)."""

    def __init__(self, shop_name: str, base_url: str, unsubscribe: Callable[[str, str], str]):
        self.shop_name, self.base_url = shop_name, base_url.rstrip("/")
        self._unsubscribe = unsubscribe
        escape = select_autoescape(["html"], default_for_string=False, default=False)  # HTML only, not subjects
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, autoescape=escape, auto_reload=False)
        self.env.filters["money"] = money
        self.env.filters["when"] = when
        self.env.globals["link"] = self.link
        self._subjects = {kind: self.env.from_string(text) for kind, text in SUBJECTS.items()}

    def link(self, path: str) -> str:
        return self.base_url + path

    async def load(self, conn: asyncpg.Connection, kind: str, data: dict) -> dict:
        """What a kind's template reads from the database itself (the order), as context."""
        order = None
        if kind in _ORDER_KINDS and isinstance(data.get("order_id"), str):
            try:
                order = await orders_db.order_json(conn, data["order_id"])
            except (asyncpg.DataError, ValueError):  # not a uuid: the mail goes without the order's details
                order = None
        return {"order": order}

    def render(self, kind: str, data: dict, *, user_id: str | None = None, recipient_name: str | None = None,
               extra: dict | None = None) -> Rendered:
        spec = KINDS.get(kind)
        if spec is None or kind not in self._subjects:
            raise KeyError(f"no email template for kind {kind!r}")
        unsubscribe = None
        if user_id is not None and not spec.transactional:
            unsubscribe = self.link(self._unsubscribe(user_id, kind))
        context = {**data, **(extra or {"order": None}), "kind": kind, "shop_name": self.shop_name,
                   "base_url": self.base_url, "url": self.link(url_for(kind, data)),
                   "prefs_url": self.link("/account/preferences"), "unsubscribe_url": unsubscribe,
                   "recipient_name": recipient_name}
        subject = " ".join(self._subjects[kind].render(context).split())
        if len(subject) > MAX_SUBJECT:
            subject = subject[:MAX_SUBJECT - 1] + "…"
        context["subject"] = subject
        text = self.env.get_template(f"{kind}.txt").render(context)
        html = self.env.get_template(f"{kind}.html").render(context)
        return Rendered(subject, text.strip() + "\n", html)
