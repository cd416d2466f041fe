"""A fake Paystack API: transaction initialize and verify as our code calls them, and webhook bodies signed with
Paystack's scheme (`x-paystack-signature` = hex HMAC-SHA512 of the raw body keyed with the secret key)."""
from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
from datetime import datetime, timezone

import orjson
from aiohttp import web

from tests.fakes import FakeServer


def sign(body: bytes, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


class FakePaystack(FakeServer):
    def __init__(self, secret_key: str = "sk_test_paystack_fake") -> None:
        super().__init__()
        self.secret_key = secret_key
        self.transactions: dict[str, dict] = {}
        self._ids = itertools.count(4099260516)
        self.app.router.add_post("/transaction/initialize", self._initialize)
        self.app.router.add_get("/transaction/verify/{reference}", self._verify)

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
