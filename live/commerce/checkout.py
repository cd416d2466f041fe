"""Checkout: the buyer's cart becomes one order per seller and one payment attempt, exactly once per
Idempotency-Key.

One transaction does all of it: claim the key (checkout_requests), lock the cart and its lines, turn held
reservations (and, for lines whose reservation was released, free units if there are any) into sales, group
by seller, apply the coupon (one use taken atomically), write orders, lines, history, the payment and its
links, and close the cart. Any failure rolls everything back, the key included, so the buyer can fix the
cause and retry with the same key. The provider is called after the commit, with an idempotency key derived
from the payment, so repeating the call never charges twice; when it fails, the orders stay pending_payment,
the response says so, and a retry with the same key calls the provider again.

Shipping (docs/shipping.md, Rates): before the transaction, the address is checked (an inline one through the
carrier) and the sellers the buyer chose no rate for get fresh rates (the carrier is never called inside the
transaction); inside it, each seller order takes its chosen rate (`shipping: {seller_id: rate_id}`) or the
cheapest fresh one, for exactly the locked lines and this address. A chosen rate that expired or belongs to
another cart or address rolls everything back and answers 409 `rate_expired` with the seller's fresh rates; a
default one that went stale meanwhile is re-quoted and the checkout tried once more."""
from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import orjson

from db import Database
from db import cart as cart_db
from db import checkouts as checkouts_db
from db import inventory as inventory_db
from db import orders as orders_db
from db import payments as payments_db
from db import shipping as shipping_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce import coupons
from live.commerce.orders import OrderService, payment_out
from live.commerce.payments import PaymentProviders
from live.commerce.payments.base import PaymentRequest
from live.commerce.shipping.quotes import Quotes, RateStale
from live.commerce.stock import StockBoard
from live.errors import DomainError
from live.logging import get_logger
from live.notify import events as notices

log = get_logger("live.commerce.checkout")
STALE_PROCESSING = timedelta(seconds=60)  # a checkout that died between commit and provider call


def request_hash(body: dict) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CheckoutService:
    def __init__(self, db: Database, board: StockBoard, orders: OrderService, payments: PaymentProviders,
                 quotes: Quotes):
        self.db = db
        self.board = board
        self.orders = orders
        self.payments = payments
        self.quotes = quotes

    async def checkout(self, principal: Principal, key: str, body: dict) -> tuple[dict, bool]:
        """(response, replayed). body: address or address_id, provider, coupon_code, email, return_url, shipping
        ({seller_id: rate_id})."""
        user = policy.signed_in(principal).user_id
        provider_name = body.get("provider") or self.payments.default_name()
        body = {**body, "provider": provider_name}
        provider = self.payments.get(provider_name)  # provider_unavailable before anything is written
        digest = request_hash(body)
        for attempt in range(2):
            address = None
            async with self.db.tx(SYSTEM) as conn:
                known = await checkouts_db.checkout_request(conn, user, key) is not None
            if not known:  # a first request: the address and the rates, outside the transaction
                address = await self.quotes.destination(user, body.get("address"), body.get("address_id"))
                await self.quotes.ensure(user, address, skip=set(body.get("shipping") or {}))
            try:
                async with self.db.tx(SYSTEM) as conn:
                    if not await checkouts_db.claim_checkout(conn, user, key, digest):
                        prior = await checkouts_db.checkout_request(conn, user, key)
                    else:
                        prior = None
                        if address is None:  # claimed by a request that rolled back since: start over
                            raise RateStale("", None)
                        created = await self._create(conn, user, key, body, address)
                        await checkouts_db.store_checkout(conn, user, key, "processing", created["response"])
                break
            except RateStale as stale:
                if stale.chosen_id is None and attempt == 0:
                    continue  # the cart or the rates changed between the quote and the lock: quote again
                if not stale.seller_id:
                    raise DomainError("in_progress", "a checkout with this Idempotency-Key is in progress; "
                                      "retry shortly") from None
                fresh = await self.quotes.requote(user, stale.seller_id, address)
                if not fresh["rates"]:
                    raise DomainError("conflict", "the seller's carrier offers no shipping for this order: "
                                      + (fresh["unavailable"] or "no rate"),
                                      details={"seller_id": stale.seller_id}) from None
                raise DomainError("rate_expired", "the shipping rate you chose has expired or no longer fits your "
                                  "cart and address: choose one of these", details={
                                      "seller_id": stale.seller_id, "rates": fresh["rates"]}) from None
        if prior is not None:
            return await self._replay(principal, key, digest, prior, body)
        await self.board.seen(created["levels"])
        self.orders.push_orders(created["orders"])  # as they were written: pending_payment (or paid)
        response = await self._start_payment(user, key, created["response"], provider, body)
        return response, False

    async def _replay(self, principal: Principal, key: str, digest: str, prior, body: dict) -> tuple[dict, bool]:
        if prior["request_hash"] != digest:
            raise DomainError("idempotency_key_reused",
                              "this Idempotency-Key was used with a different request")
        if prior["status"] == "completed":
            return prior["response"], True
        if prior["status"] == "processing" and prior["age"] < STALE_PROCESSING:
            raise DomainError("in_progress", "a checkout with this Idempotency-Key is in progress; retry shortly")
        # the payment start failed (or the process died before it): try the provider again
        response = prior["response"]
        provider = self.payments.get(response["payment"]["provider"])
        return await self._start_payment(principal.user_id, key, response, provider, body), True  # same body

    async def _create(self, conn, user: str, key: str, body: dict, address: dict) -> dict:
        cart_id = await cart_db.lock_active(conn, user)
        lines = await cart_db.lines_for_checkout(conn, cart_id) if cart_id else []
        if not lines:
            raise DomainError("cart_empty", "your cart is empty")
        gone = [ln for ln in lines if ln["product_status"] != "active"]
        if gone:
            raise DomainError("product_unavailable", "some products are no longer sold: remove them from your cart",
                              details=[{"variant_id": ln["variant_id"], "sku": ln["sku"], "title": ln["title"]}
                                       for ln in gone])
        currencies = {ln["currency"] for ln in lines}
        if len(currencies) != 1:
            raise DomainError("conflict", "one currency per checkout: your cart mixes " + ", ".join(sorted(currencies)))
        currency = currencies.pop()

        levels, missing = await inventory_db.sell(
            conn, [(ln["variant_id"], ln["quantity"], ln["quantity"] if ln["held"] else 0) for ln in lines],
            user, "checkout")
        if missing:
            now = {lv.variant_id: lv.available for lv in await inventory_db.levels(conn, missing)}
            raise DomainError("out_of_stock", "some items are no longer available in the quantity you want",
                              details=[{"variant_id": ln["variant_id"], "sku": ln["sku"], "title": ln["title"],
                                        "requested": ln["quantity"], "available": max(now.get(ln["variant_id"], 0), 0)}
                                       for ln in lines if ln["variant_id"] in missing])
        by_seller: dict[str, list] = {}
        for ln in lines:
            by_seller.setdefault(ln["seller_id"], []).append(ln)
        subtotals = {s: sum(ln["price_minor"] * ln["quantity"] for ln in group) for s, group in by_seller.items()}
        discount = None
        if body.get("coupon_code"):
            discount = await coupons.take(conn, body["coupon_code"], subtotals, currency)
        totals = {s: subtotals[s] - (discount.by_seller.get(s, 0) if discount else 0) for s in subtotals}
        rates = await self._shipping(conn, user, body.get("shipping") or {}, by_seller, address, totals, currency)
        shipping = {s: rates[s]["amount_minor"] if rates[s] else 0 for s in by_seller}
        amount = sum(totals.values()) + sum(shipping.values())
        status = "pending_payment" if amount > 0 else "paid"
        order_ids = []
        for seller_id in sorted(by_seller):
            group = by_seller[seller_id]
            streams = [ln["livestream_id"] for ln in sorted(group, key=lambda ln: ln["created_at"])
                       if ln["livestream_id"]]
            off = discount.by_seller.get(seller_id, 0) if discount else 0
            order_id = await orders_db.insert_order(
                conn, user_id=user, seller_id=seller_id, livestream_id=streams[0] if streams else None,
                subtotal=subtotals[seller_id], discount=off, total=totals[seller_id], currency=currency,
                coupon_id=discount.coupon_id if discount and off else None, address=address, checkout_key=key,
                status=status)
            if rates[seller_id] is not None:
                await shipping_db.set_order_shipping(conn, order_id, shipping[seller_id], rates[seller_id])
            await orders_db.insert_items(conn, order_id, group)
            await orders_db.add_history(conn, [order_id], None, "pending_payment", user, "user", "checkout")
            if status == "paid":
                await orders_db.add_history(conn, [order_id], "pending_payment", "paid", None, "system",
                                            "nothing to pay")
            order_ids.append(order_id)
        if status == "paid":
            await notices.order_moved(conn, order_ids, "paid")  # confirmed (buyer), new order (seller)
        if status == "paid" and self.orders.shipping is not None:
            # nothing to pay: paid here, so the labels of sellers who buy on payment are queued here too (as the
            # payment's success event does for a paid checkout)
            await self.orders.shipping.labels.on_paid(conn, order_ids)
        payment_id = str(uuid.uuid4())
        await payments_db.insert_payment(conn, payment_id=payment_id, user_id=user, provider=body["provider"],
                                       amount=amount, currency=currency,
                                       status="requires_action" if amount > 0 else "succeeded", order_ids=order_ids)
        await cart_db.mark_converted(conn, cart_id)
        orders = await orders_db.orders_json(conn, order_ids)
        pay = await payments_db.payment(conn, payment_id)
        response = {"orders": [order for order, _ in orders], "payment": payment_out(pay, buyer=True),
                    "coupon_code": discount.code if discount else None}
        return {"response": response, "orders": orders, "levels": levels}

    async def _shipping(self, conn, user: str, choices: dict, by_seller: dict, address: dict, totals: dict,
                        currency: str) -> dict:
        """seller id -> the rate its order is charged (None: the seller ships without a carrier)."""
        strangers = sorted(set(choices) - set(by_seller))
        if strangers:
            raise DomainError("validation_failed", "shipping names sellers your cart has nothing from",
                              details=[{"field": f"shipping.{s}", "message": "no order for this seller in your cart"}
                                       for s in strangers])
        return {s: await self.quotes.choose(conn, user, s, choices.get(s), by_seller[s], address,
                                            subtotal_minor=totals[s], currency=currency)
                for s in sorted(by_seller)}

    async def _start_payment(self, user: str, key: str, response: dict, provider, body: dict) -> dict:
        payment = response["payment"]
        async with self.db.tx(SYSTEM) as conn:
            pay = await payments_db.payment(conn, payment["id"])
            starts = pay["status"] == "requires_action" and not pay["provider_ref"]
            email = (await users_db.get(conn, user))["email"] if starts else None
        if starts:
            req = PaymentRequest(
                payment_id=pay["id"], amount_minor=pay["amount_minor"], currency=pay["currency"],
                idempotency_key=pay["idempotency_key"], email=email or body.get("email"),
                description="Orders " + ", ".join(o["number"] for o in response["orders"]),
                return_url=body.get("return_url"),
                metadata={"payment_id": pay["id"], "orders": ",".join(o["number"] for o in response["orders"])})
            try:
                started = await provider.start(req)
            except Exception as exc:
                log.warning("payment_start_failed", payment_id=pay["id"], provider=pay["provider"], error=str(exc))
                message = exc.message if isinstance(exc, DomainError) else "the payment provider did not answer"
                async with self.db.tx(SYSTEM) as conn:
                    await payments_db.set_payment(conn, pay["id"], start_error=message[:500])
                    pay = await payments_db.payment(conn, pay["id"])
                    out = {**response, "payment": {**payment_out(pay, buyer=True), "started": False,
                                                   "error": message,
                                                   "retry": "repeat this request with the same Idempotency-Key"}}
                    await checkouts_db.store_checkout(conn, user, key, "failed", out)
                return out
            async with self.db.tx(SYSTEM) as conn:
                await payments_db.record_start(conn, pay["id"], started.provider_ref, started.client_secret,
                                             started.authorization_url,
                                             started.status if started.status in payments_db.OPEN
                                             else "requires_action")
        async with self.db.tx(SYSTEM) as conn:
            pay = await payments_db.payment(conn, payment["id"])
            out = {**response, "payment": {**payment_out(pay, buyer=True), "started": True}}
            await checkouts_db.store_checkout(conn, user, key, "completed", out)
        return out
