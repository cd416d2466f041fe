"""The kinds of notification: one table, read by every channel (in-app list and push, email, web push) and by the
preferences page. The names are fixed (issue 14's contract): templates, preferences rows and stored
notifications carry them.

`audience` says who gets it: "buyer" (the order's buyer), "seller" (the seller's user), "follower" (the
followers of a seller), "user" (the user an account change is about: their seller application decided),
"address" (a mail to an address, no user: sign-in codes and the contact form; these go through
`live.notify.mail.queue_mail`, never `notify`). A `transactional` kind cannot be turned off; an `in_app` one is
stored in the user's notifications and pushed as `notification:new`. `title` is the in-app title, filled with
`str.format` from the notification's data (`title_for`)."""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

AUDIENCES = frozenset({"buyer", "seller", "follower", "user", "address"})


@dataclass(frozen=True)
class Kind:
    name: str            # "order.confirmed"
    audience: str        # "buyer" | "seller" | "follower" | "user" | "address"
    transactional: bool  # True: cannot be turned off
    in_app: bool         # stored in the user's notifications and pushed as notification:new
    label: str           # for the preferences page: "Order confirmed"
    title: str           # in-app title, str.format(**data): "Order {number} is paid"

    def __post_init__(self) -> None:
        if self.audience not in AUDIENCES:
            raise ValueError(f"kind {self.name}: unknown audience {self.audience!r}")


def _k(name: str, audience: str, transactional: bool, in_app: bool, label: str, title: str) -> Kind:
    return Kind(name, audience, transactional, in_app, label, title)


_ALL = [
    _k("auth.sign_in_code", "address", True, False, "Sign-in code", "Your sign-in code"),
    _k("order.confirmed", "buyer", True, True, "Order confirmed", "Order {number} is paid"),
    _k("order.payment_failed", "buyer", True, True, "Payment failed", "The payment for order {number} failed"),
    _k("order.canceled", "buyer", True, True, "Order canceled", "Order {number} was canceled"),
    _k("order.refunded", "buyer", True, True, "Order refunded", "Order {number} was refunded"),
    _k("order.label_created", "buyer", True, True, "Shipping label created",
       "Order {number} has a shipping label"),
    _k("order.shipped", "buyer", True, True, "Order shipped", "Order {number} is on its way"),
    _k("order.out_for_delivery", "buyer", True, True, "Out for delivery", "Order {number} is out for delivery"),
    _k("order.delivered", "buyer", True, True, "Order delivered", "Order {number} was delivered"),
    _k("return.approved", "buyer", True, True, "Return approved", "Your return for order {number} is approved"),
    _k("return.refunded", "buyer", True, True, "Return refunded", "Your return for order {number} was refunded"),
    _k("seller.new_order", "seller", True, True, "New order", "New order {number} from {buyer_name}"),
    _k("seller.label_failed", "seller", True, True, "Label purchase failed",
       "The shipping label for order {number} could not be bought"),
    _k("seller.stock_low", "seller", False, True, "Stock running low", "{title}: {available} left"),
    _k("seller.needs_attention", "seller", True, True, "Payment needs attention",
       "A payment needs attention: {issue}"),
    _k("follow.live_now", "follower", False, True, "A seller you follow is live", "{seller_name} is live: {title}"),
    _k("follow.reminder", "follower", False, True, "Stream reminder", "{seller_name} goes live soon: {title}"),
    _k("contact.to_support", "address", True, False, "Contact message (support)",
       "Contact message: {subject}"),
    _k("contact.ack", "address", True, False, "Contact message received", "We received your message"),
    _k("account.seller_approved", "user", True, True, "Seller application approved",
       "You are a seller now: {shop} is open"),
    _k("account.seller_refused", "user", True, True, "Seller application refused",
       "Your seller application for {shop} was refused"),
]
KINDS: dict[str, Kind] = {k.name: k for k in _ALL}

_ORDER = "/account/orders/{order_id}"
_STUDIO_ORDER = "/studio/orders/{order_id}"
_PATHS: dict[str, str] = {
    **{name: _ORDER for name in KINDS if name.startswith(("order.", "return."))},
    "seller.new_order": _STUDIO_ORDER,
    "seller.label_failed": _STUDIO_ORDER,
    "seller.stock_low": "/studio/products/{product_id}",
    "follow.live_now": "/live/{slug}",
    "follow.reminder": "/live/{slug}",
    "contact.to_support": "/admin/contact/{contact_id}",
    "account.seller_approved": "/studio",
    "account.seller_refused": "/account/seller",
}
DEFAULT_PATH = "/account/notifications"


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _fill(template: str, data: dict[str, Any]) -> str:
    try:
        return string.Formatter().vformat(template, (), _Blank(data))
    except (ValueError, IndexError, AttributeError, TypeError, KeyError):
        return ""


def url_for(kind: str, data: dict) -> str:
    """The path of the page a notification is about (relative; mail makes it absolute with PUBLIC_URL):
    `/account/orders/<id>` for the buyer's order kinds, `/studio/orders/<id>` for the seller's, `/live/<slug>`
    for follows, ... A kind or data that does not give one: the notifications page."""
    if kind == "seller.needs_attention":  # the seller's first order of the flagged payment
        ids = data.get("order_ids") or []
        return _STUDIO_ORDER.format(order_id=ids[0]) if ids and isinstance(ids[0], str) else "/studio/orders"
    template = _PATHS.get(kind)
    if template is None:
        return DEFAULT_PATH
    path = _fill(template, data)
    return path if path and not path.endswith("/") else DEFAULT_PATH


def title_for(kind: str, data: dict) -> str:
    """The in-app title of a notification: its kind's `title` filled from its data (a missing field is blank);
    an unknown kind: the kind's name."""
    k = KINDS.get(kind)
    if k is None:
        return kind
    return _fill(k.title, data) or k.label
