"""A fake Paystack API: transaction initialize and verify, refund create and list as our code calls them, switches
that make it answer 500 (`down`) or lose the answer to a refund it made (`lose_refund_answers`), and webhook bodies
signed with Paystack's scheme (`x-paystack-signature` = hex HMAC-SHA512 of the raw body keyed with the secret key)."""
from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
from datetime import datetime, timezone

import orjson
from aiohttp import web

from tests.payments.fakes import FakeServer


def sign(body: bytes, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


class FakePaystack(FakeServer):
    def __init__(self, secret_key: str = "sk_test_paystack_fake") -> None:
        super().__init__()
        self.secret_key = secret_key
        self.transactions: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.down = False
        self.lose_refund_answers = 0  # make this many refunds, then answer 504 as if the answer got lost
        self._ids = itertools.count(4099260516)
        self.app.router.add_post("/transaction/initialize", self._initialize)
        self.app.router.add_get("/transaction/verify/{reference}", self._verify)
        self.app.router.add_post("/refund", self._refund)
        self.app.router.add_get("/refund", self._list_refunds)

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return web.json_response({"status": False, "message": "Invalid key"}, status=401)
        return None

    async def _initialize(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(request, body)
        if (denied := self._denied(request)) is not None:
            return denied
        if not body.get("email") or "@" not in body["email"]:
            return web.json_response({"status": False, "message": "Invalid Email Address Passed"}, status=400)
        amount = body.get("amount")
        if not str(amount).isdigit() or int(amount) < 1:
            return web.json_response({"status": False, "message": "Invalid Amount Sent"}, status=400)
        reference = body.get("reference") or secrets.token_hex(8)
        if not re.fullmatch(r"[A-Za-z0-9.=-]+", reference):
            return web.json_response({"status": False, "message": "Invalid transaction reference: only -, ., = "
                                      "and alphanumeric characters allowed"}, status=400)
        if reference in self.transactions:
            return web.json_response({"status": False, "message": "Duplicate Transaction Reference"}, status=400)
        access_code = secrets.token_hex(8)
        self.transactions[reference] = {
            "id": next(self._ids), "domain": "test", "status": "abandoned", "reference": reference,
            "amount": int(amount), "currency": body.get("currency") or "NGN", "gateway_response": "The transaction "
            "was not completed", "paid_at": None, "channel": "card", "metadata": body.get("metadata") or "",
            "customer": {"email": body["email"]}, "callback_url": body.get("callback_url"),
        }
        return web.json_response({"status": True, "message": "Authorization URL created", "data": {
            "authorization_url": f"{self.url}/checkout/{access_code}", "access_code": access_code,
            "reference": reference}})

    async def _verify(self, request: web.Request) -> web.Response:
        self.record(request, {})
        if (denied := self._denied(request)) is not None:
            return denied
        tx = self.transactions.get(request.match_info["reference"])
        if tx is None:
            return web.json_response({"status": False, "message": "Transaction reference not found"}, status=400)
        return web.json_response({"status": True, "message": "Verification successful", "data": tx})

    async def _refund(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(request, body)
        if self.down:
            return web.json_response({"status": False, "message": "Service unavailable"}, status=500)
        if (denied := self._denied(request)) is not None:
            return denied
        tx = self.transactions.get(str(body.get("transaction")))
        if tx is None:
            return web.json_response({"status": False, "message": "Transaction not found"}, status=404)
        if tx["status"] != "success":
            return web.json_response({"status": False, "message": "Cannot refund an unsuccessful transaction"},
                                     status=400)
        left = tx["amount"] - sum(r["amount"] for r in self.refunds if r["transaction"]["reference"] == tx["reference"])
        amount = int(body.get("amount") or left)
        if amount < 1 or amount > left:
            return web.json_response({"status": False, "message": "Refund amount cannot be more than the "
                                      "transaction amount left to refund"}, status=400)
        refund = {"id": next(self._ids), "integration": 100982, "domain": "test", "amount": amount,
                  "currency": body.get("currency") or tx["currency"], "status": "pending", "channel": "card",
                  "transaction": {"id": tx["id"], "reference": tx["reference"], "amount": tx["amount"],
                                  "currency": tx["currency"]},
                  "merchant_note": body.get("merchant_note"), "customer_note": body.get("customer_note"),
                  "refunded_by": "api", "createdAt": datetime.now(timezone.utc).isoformat()}
        self.refunds.append(refund)
        if self.lose_refund_answers > 0:
            self.lose_refund_answers -= 1
            return web.json_response({"status": False, "message": "Gateway timeout"}, status=504)
        return web.json_response({"status": True, "message": "Refund has been queued for processing",
                                  "data": refund})

    async def _list_refunds(self, request: web.Request) -> web.Response:
        self.record(request, dict(request.query))
        if self.down:
            return web.json_response({"status": False, "message": "Service unavailable"}, status=500)
        if (denied := self._denied(request)) is not None:
            return denied
        reference = request.query.get("reference")
        items = [r for r in self.refunds if reference in (None, r["transaction"]["reference"])]
        return web.json_response({"status": True, "message": "Refunds retrieved", "data": items[::-1],
                                  "meta": {"total": len(items)}})

    def refund_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == "/refund"]

    # ---- what the customer / Paystack does next ----

    def complete(self, reference: str, status: str = "success", amount: int | None = None) -> dict:
        """The customer pays (or fails); `amount` overrides what was charged."""
        tx = self.transactions[reference]
        tx.update(status=status, gateway_response="Successful" if status == "success" else "Declined",
                  paid_at=datetime.now(timezone.utc).isoformat() if status == "success" else None)
        if amount is not None:
            tx["amount"] = amount
        return tx

    def charge_success(self, reference: str, **overrides) -> bytes:
        return orjson.dumps({"event": "charge.success", "data": {**self.transactions[reference], **overrides}})

    def refund_processed(self, reference: str, amount: int | None = None) -> bytes:
        tx = self.transactions[reference]
        return orjson.dumps({"event": "refund.processed", "data": {
            "status": "processed", "transaction_reference": reference, "refund_reference": "rf_" + secrets.token_hex(6),
            "amount": str(tx["amount"] if amount is None else amount), "currency": tx["currency"],
            "processor": "fake", "customer": tx["customer"], "integration": 100982, "domain": "test"}})
