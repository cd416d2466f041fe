"""The buying pages (docs/web.md, Buying): `GET /checkout` (address, shipping rate, coupon, pay through the
configured provider) and `GET /orders/{id}` (one of the buyer's orders, its live status and timeline). Like every
shell, they hold no user data: their scripts (js/checkout.js, js/order.js, and js/cart.js, the cart drawer that
templates/_cart_drawer.html includes) read the cart, the rates and the order through the public REST API with the
buyer's token, and the order page follows the buyer's own Socket.IO events."""
from __future__ import annotations

from aiohttp import web

# /checkout alone may load the payment providers' own scripts and frames (Stripe's rules: Stripe.js from
# js.stripe.com, never self-hosted; Paystack's popup); every other page keeps the app's `script-src 'self'`
CHECKOUT_CSP = ("default-src 'self'; script-src 'self' https://js.stripe.com https://js.paystack.co; "
                "style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self' ws: wss: https:; "
                "frame-src https://js.stripe.com https://hooks.stripe.com https://checkout.paystack.com; "
                "media-src 'self' blob: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
ORDER = r"{id:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}"


def register(app: web.Application, pages) -> None:
    async def checkout(request: web.Request) -> web.Response:
        resp = pages.render("checkout.html", title="Checkout")
        resp.headers["Content-Security-Policy"] = CHECKOUT_CSP
        return resp

    async def order(request: web.Request) -> web.Response:
        return pages.render("order.html", title="Your order", order=request.match_info["id"].lower())

    app.router.add_get("/checkout", checkout)
    app.router.add_get(f"/orders/{ORDER}", order)
