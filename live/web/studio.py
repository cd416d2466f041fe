"""The seller's studio pages beyond going live (docs/web.md, "The studio"): its home, the products and the orders
queue. `GET /studio/products` lists the shop's products with their stock, adjusts it, adds a product
(js/studio_products.js).

`GET /studio` is the studio's home: the seller's shows (each linking its go-live page `/studio/live/{stream}`) and a
new show (js/studio_home.js).

`GET /studio/streams/{stream}/analytics` is a stream's analytics with its charts (js/studio_analytics.js, js/chart.js);
`GET /studio/returns` the shop's returns (js/studio_returns.js); `GET /studio/coupons` its coupons
(js/studio_coupons.js).

`GET /studio/orders` lists the shop's orders; `GET /studio/orders/{id}` is the same page with one order open (the
path the `seller.new_order` and `seller.label_failed` notifications' `url` names, live/notify/kinds.py). Both load
js/studio_orders.js, which reads and acts through the public REST routes (`/api/v1/seller/orders...`,
`/api/v1/shipments/...`) and the seller's socket (`order:update`, `notification:new`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from live.web.pages import Pages

ORDER_ID = r"{id:[0-9a-fA-F-]{36}}"


def register(app: web.Application, pages: "Pages") -> None:
    async def orders(request: web.Request) -> web.Response:
        return pages.render("studio_orders.html", title="Orders", order=request.match_info.get("id", "").lower())

    async def home(request: web.Request) -> web.Response:
        return pages.render("studio_home.html", title="Studio")

    async def products(request: web.Request) -> web.Response:
        return pages.render("studio_products.html", title="Products")

    async def analytics(request: web.Request) -> web.Response:
        return pages.render("studio_analytics.html", title="Analytics", stream=request.match_info["stream"])

    async def returns(request: web.Request) -> web.Response:
        return pages.render("studio_returns.html", title="Returns")

    async def coupons(request: web.Request) -> web.Response:
        return pages.render("studio_coupons.html", title="Coupons")

    app.router.add_get("/studio", home)
    app.router.add_get("/studio/products", products)
    app.router.add_get("/studio/orders", orders)
    app.router.add_get(f"/studio/orders/{ORDER_ID}", orders)
    app.router.add_get(r"/studio/streams/{stream:[A-Za-z0-9-]{1,120}}/analytics", analytics)
    app.router.add_get("/studio/returns", returns)
    app.router.add_get("/studio/coupons", coupons)
