"""A fake Stripe API: the PaymentIntent and Refund endpoints our code calls, with Stripe's idempotency rules, a
switch that makes it answer 500 (`down`), and webhook events signed with Stripe's scheme
(`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`), written here from the scheme, not with
the stripe library (the app verifies with the library)."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from tests.payments.fakes import FakeServer


def parse_form(body: str) -> dict:
    """Stripe's form encoding: `metadata[payment_id]=x&automatic_payment_methods[enabled]=true` -> nested dict."""
    out: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def stripe_error(status: int, type_: str, message: str, code: str | None = None) -> web.Response:
    err = {"type": type_, "message": message}
    if code:
        err["code"] = code
    return web.json_response({"error": err}, status=status)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class FakeStripe(FakeServer):
    def __init__(self, api_key: str = "sk_test_fake") -> None:
        super().__init__()
        self.api_key = api_key
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}  # re_... -> refund, in the order they were made
        self.down = False  # every call answers 500 (with Stripe-Should-Retry: false, as Stripe's 500s do)
        self._idem: dict[str, tuple[dict, dict]] = {}
        self.app.router.add_post("/v1/payment_intents", self._create)
        self.app.router.add_get("/v1/payment_intents/{id}", self._retrieve)
        self.app.router.add_post("/v1/refunds", self._refund)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _refuse_or_replay(self, request: web.Request, params: dict) -> web.Response | None:
        """What Stripe answers before doing anything: 401 without the API key; for an Idempotency-Key seen before,
        the first answer again (400 if the parameters differ). None: go on."""
        if not self._authorized(request):
            return stripe_error(401, "invalid_request_error", "Invalid API Key provided")
        key = request.headers.get("Idempotency-Key")
        if key in self._idem:
            first_params, response = self._idem[key]
            if first_params != params:
                return stripe_error(400, "idempotency_error", "Keys for idempotent requests can only be used "
                                    "with the same parameters they were first used with.")
            return web.json_response(response, headers={"Idempotent-Replayed": "true"})
        return None

    def _remember(self, request: web.Request, params: dict, response: dict) -> None:
        if key := request.headers.get("Idempotency-Key"):
            self._idem[key] = (params, dict(response))

    async def _create(self, request: web.Request) -> web.Response:
        params = parse_form(await request.text())
        self.record(request, params)
        if (early := self._refuse_or_replay(request, params)) is not None:
            return early
        if not params.get("amount", "").isdigit() or int(params["amount"]) < 1:
            return stripe_error(400, "invalid_request_error", "Invalid integer: amount", "parameter_invalid_integer")
        if not re.fullmatch(r"[a-z]{3}", params.get("currency", "")):
            return stripe_error(400, "invalid_request_error", "Invalid currency", "parameter_invalid_string")
        pi_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": pi_id, "object": "payment_intent", "amount": int(params["amount"]), "amount_received": 0,
            "currency": params["currency"], "status": "requires_payment_method",
            "client_secret": f"{pi_id}_secret_{secrets.token_hex(12)}", "created": int(time.time()),
            "livemode": False, "metadata": params.get("metadata", {}), "description": params.get("description"),
            "automatic_payment_methods": {"enabled": params.get("automatic_payment_methods", {}).get("enabled")
                                          == "true"},
            "last_payment_error": None,
        }
        self.intents[pi_id] = intent
        self._remember(request, params, intent)
        return web.json_response(intent)

    async def _retrieve(self, request: web.Request) -> web.Response:
        self.record(request, dict(request.query))
        if not self._authorized(request):
            return stripe_error(401, "invalid_request_error", "Invalid API Key provided")
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return stripe_error(404, "invalid_request_error", f"No such payment_intent: "
                                f"'{request.match_info['id']}'", "resource_missing")
        return web.json_response(intent)

    async def _refund(self, request: web.Request) -> web.Response:
        params = parse_form(await request.text())
        self.record(request, params)
        if self.down:
            return web.json_response({"error": {"type": "api_error", "message": "Stripe is having a bad day."}},
                                     status=500, headers={"Stripe-Should-Retry": "false"})
        if (early := self._refuse_or_replay(request, params)) is not None:
            return early
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return stripe_error(400, "invalid_request_error", "No such payment_intent", "resource_missing")
        if intent["status"] != "succeeded":
            return stripe_error(400, "invalid_request_error", "This PaymentIntent does not have a successful "
                                "charge to refund.", "charge_not_refundable")
        left = intent["amount_received"] - self.refunded(intent["id"])
        amount = int(params["amount"]) if params.get("amount", "").isdigit() else left
        if amount < 1 or amount > left:
            return stripe_error(400, "invalid_request_error", f"Refund amount ({amount}) is greater than unrefunded "
                                f"amount on charge ({left})", "amount_too_large")
        refund = {"id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount,
                  "currency": intent["currency"], "payment_intent": intent["id"],
                  "charge": self.charge_id(intent["id"]), "status": "succeeded",
                  "metadata": params.get("metadata", {}), "created": int(time.time())}
        self.refunds[refund["id"]] = refund
        self._remember(request, params, refund)
        return web.json_response(refund)

    def dashboard_refund(self, pi_id: str, amount: int) -> dict:
        """A refund made by hand in Stripe's dashboard (not through the API)."""
        intent = self.intents[pi_id]
        refund = {"id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount,
                  "currency": intent["currency"], "payment_intent": pi_id, "charge": self.charge_id(pi_id),
                  "status": "succeeded", "metadata": {}, "created": int(time.time())}
        self.refunds[refund["id"]] = refund
        return refund

    def refund_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v1/refunds"]

    def refunded(self, pi_id: str) -> int:
        return sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == pi_id)

    @staticmethod
    def charge_id(pi_id: str) -> str:
        return "ch_" + pi_id.removeprefix("pi_")

    def refund_event(self, refund_id: str, *, list_refunds: bool = True, event_id: str | None = None) -> bytes:
        """The `charge.refunded` event Stripe sends after refund `refund_id`: the charge as that refund left it
        (amount_refunded cumulative) with previous_attributes; `list_refunds` includes the charge's refunds (API
        versions before 2022-11-15), newest first."""
        refund = self.refunds[refund_id]
        pi_id = refund["payment_intent"]
        ours = [r for r in self.refunds.values() if r["payment_intent"] == pi_id]
        upto = ours[:ours.index(refund) + 1]
        total = sum(r["amount"] for r in upto)
        intent = self.intents[pi_id]
        charge = {"id": self.charge_id(pi_id), "object": "charge", "amount": intent["amount"],
                  "amount_captured": intent["amount_received"], "amount_refunded": total,
                  "refunded": total >= intent["amount_received"], "currency": intent["currency"],
                  "payment_intent": pi_id, "metadata": intent["metadata"]}
        if list_refunds:
            charge["refunds"] = {"object": "list", "data": [dict(r) for r in reversed(upto)]}
        return self.event("charge.refunded", charge, event_id, previous={"amount_refunded": total - refund["amount"],
                                                                          "refunded": False})

    # ---- what the customer / Stripe does next ----

    def succeed(self, pi_id: str, amount_received: int | None = None) -> dict:
        intent = self.intents[pi_id]
        intent.update(status="succeeded", amount_received=intent["amount"] if amount_received is None
                      else amount_received)
        return intent

    def fail(self, pi_id: str) -> dict:
        intent = self.intents[pi_id]
        intent.update(status="requires_payment_method",
                      last_payment_error={"code": "card_declined", "message": "Your card was declined."})
        return intent

    def cancel(self, pi_id: str) -> dict:
        self.intents[pi_id]["status"] = "canceled"
        return self.intents[pi_id]

    def charge(self, pi_id: str, *, amount_refunded: int | None = None) -> dict:
        """The charge of an intent, refunded (fully unless amount_refunded, cumulative, says less)."""
        intent = self.intents[pi_id]
        refunded = intent["amount"] if amount_refunded is None else amount_refunded
        return {"id": "ch_" + secrets.token_hex(12), "object": "charge", "amount": intent["amount"],
                "amount_refunded": refunded, "refunded": refunded >= intent["amount"],
                "currency": intent["currency"], "payment_intent": pi_id, "metadata": {}}

    @staticmethod
    def event(event_type: str, obj: dict, event_id: str | None = None, previous: dict | None = None) -> bytes:
        """A webhook body as Stripe sends it (snapshot event; `previous` = data.previous_attributes)."""
        data: dict = {"object": dict(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        return orjson.dumps({
            "id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "api_version": "2025-01-27.acacia",
            "created": int(time.time()), "type": event_type, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "data": data,
        })
