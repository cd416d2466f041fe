"""A fake Shippo API (aiohttp on 127.0.0.1) speaking the request and response shapes of the endpoints our Shippo
client calls (https://docs.goshippo.com): addresses with validation, shipments with deterministic rates,
transactions (labels: stored, counted per rate and per metadata), their list by rate (paginated like Shippo's),
refunds, tracks; `Authorization: ShippoToken <key>` is checked on every call.

Failure injection for the never-two-labels tests and the benchmarks: `fail_next(n, status)` answers the next n
calls with that status, `delay_next(n, seconds)` delays them, `lose_next_purchase(n)` makes the next n purchases
succeed at Shippo but drop the connection before answering (the caller sees a transport error, the label exists),
`queue_next(n)` answers the next n purchases QUEUED (SUCCESS from then on, like Shippo's async finish).
`track_body(...)` and `send_track_webhook(...)` make and POST a tracking webhook as Shippo sends it (with its
`?token=` and, given a secret, its Shippo-Auth-Signature).

Run alone (for `make run` or the load tester): `python -m tests.shipping.fake_shippo --port 8799 --key KEY`.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import time
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import orjson
from aiohttp import web

from live.commerce.shipping.carriers.shippo_webhook import sign
from tests.payments.fakes import FakeServer

API_KEY = "shippo_test_fakekey0123456789"
# servicelevel token -> (provider, name, base USD, USD per started 500 g, days)
SERVICES = {
    "usps_ground_advantage": ("USPS", "Ground Advantage", Decimal("5.25"), Decimal("0.60"), 4),
    "usps_priority": ("USPS", "Priority Mail", Decimal("8.10"), Decimal("0.95"), 2),
    "ups_next_day_air": ("UPS", "Next Day Air®", Decimal("29.40"), Decimal("2.10"), 1),
}
LOCAL = {"US": ("USD", Decimal(1)), "GB": ("GBP", Decimal("0.79")), "DE": ("EUR", Decimal("0.92")),
         "CA": ("CAD", Decimal("1.36")), "NG": ("NGN", Decimal(1500))}
REQUIRED = ("name", "street1", "city", "country")
PARAMS = web.RequestKey("params", dict)


def _id(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32]


class FakeShippo(FakeServer):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.rates: dict[str, dict] = {}           # object_id -> rate (with its shipment's addresses)
        self.transactions: dict[str, dict] = {}    # object_id -> transaction, in purchase order
        self.refunds: dict[str, dict] = {}
        self.tracks: list[dict] = []
        self.scanned: set[str] = set()             # transaction ids whose parcel was scanned: refunds refused
        self.expired: set[str] = set()             # rate ids Shippo no longer sells: transaction ERROR
        self._fail: list[int] = []                 # statuses of the next calls to fail
        self._delay: list[float] = []
        self._lose = 0
        self.refuse = False  # while set, every purchase is refused
        self._queue = 0
        self._seq = itertools.count(1)
        self.pad_shipments = 0                     # bytes of filler added to each shipment answer (big answers)
        r = self.app.router
        r.add_post("/addresses/", self._addresses)
        r.add_post("/shipments/", self._shipments)
        r.add_post("/transactions/", self._buy)
        r.add_get("/transactions/", self._list)
        r.add_post("/refunds/", self._refund)
        r.add_post("/tracks/", self._track)
        self.app.middlewares.append(self._gate)

    # ---- what the test tells it ----

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._fail.extend([status] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        self._delay.extend([seconds] * n)

    def lose_next_purchase(self, n: int = 1) -> None:
        self._lose += n

    def queue_next(self, n: int = 1) -> None:
        self._queue += n

    # ---- what the test reads ----

    def labels(self, *, rate: str | None = None, metadata: str | None = None) -> list[dict]:
        """Transactions bought (SUCCESS or QUEUED, not ERROR), optionally of one rate or one metadata."""
        return [t for t in self.transactions.values() if t["status"] != "ERROR"
                and (rate is None or t["rate"] == rate) and (metadata is None or t["metadata"] == metadata)]

    def labels_per_metadata(self) -> Counter:
        """metadata ("shipment:<id>") -> labels bought with it: the "exactly one label each" check."""
        return Counter(t["metadata"] for t in self.labels())

    # ---- the API ----

    @web.middleware
    async def _gate(self, request: web.Request, handler):
        try:
            params = orjson.loads(await request.read() or b"{}") if request.method == "POST" else dict(request.query)
        except orjson.JSONDecodeError:
            return web.json_response({"detail": "JSON parse error."}, status=400)
        self.record(request, params)
        if self._delay:
            await asyncio.sleep(self._delay.pop(0))
        if request.headers.get("Authorization") != f"ShippoToken {self.api_key}":
            return web.json_response({"detail": "Invalid token."}, status=401)
        if self._fail:
            status = self._fail.pop(0)
            return web.json_response({"detail": "Fake Shippo is having a bad day."}, status=status)
        request[PARAMS] = params
        return await handler(request)

    @staticmethod
    def _missing(prefix: str, address: object) -> dict:
        if not isinstance(address, dict):
            return {prefix: ["This field is required."]}
        errs = {k: ["This field is required."] for k in REQUIRED if not address.get(k)}
        if address.get("country") == "US" and not address.get("zip"):
            errs["zip"] = ["This field is required."]
        return {prefix: errs} if errs else {}

    async def _addresses(self, request: web.Request) -> web.Response:
        a = request[PARAMS]
        messages = []
        if "nowhere" in str(a.get("street1", "")).lower():
            messages.append({"source": "Shippo Address Validator", "code": "Unknown Street", "type": "address_error",
                             "text": "The address as submitted could not be found. Please check for excessive "
                                     "abbreviations in the street address line."})
        if a.get("zip") == "00000":
            messages.append({"source": "USPS", "code": "Invalid City/State/Zip", "type": "address_error",
                             "text": "The ZIP Code is invalid for this city and state."})
        if "apt?" in str(a.get("street2", "")).lower():
            messages.append({"source": "USPS", "code": "Address Warning", "type": "address_warning",
                             "text": "The apartment number may be missing."})
        valid = not any(m["type"] == "address_error" for m in messages)
        body = {**{k: a.get(k, "") for k in ("name", "street1", "street2", "city", "state", "zip", "country")},
                "object_id": _id("address", next(self._seq)), "is_complete": valid, "object_state": "VALID",
                "validation_results": {"is_valid": valid, "messages": messages} if a.get("validate") else {}}
        return web.json_response(body, status=201)

    async def _shipments(self, request: web.Request) -> web.Response:
        p = request[PARAMS]
        errors = {**self._missing("address_from", p.get("address_from")), **self._missing("address_to",
                                                                                        p.get("address_to"))}
        parcels = p.get("parcels") if isinstance(p.get("parcels"), list) else []
        if not parcels or not all(isinstance(x, dict) and x.get("mass_unit") == "g" and x.get("distance_unit") == "cm"
                                  for x in parcels):
            errors["parcels"] = ["A parcel with weight in g and dimensions in cm is required."]
        if errors:
            return web.json_response(errors, status=400)
        grams = sum(Decimal(str(x.get("weight") or 0)) for x in parcels)
        shipment_id = _id("shipment", next(self._seq))
        origin = p["address_from"]["country"]
        local, per_usd = LOCAL.get(origin, ("USD", Decimal(1)))
        services = SERVICES if origin == p["address_to"]["country"] == "US" else {"usps_priority": SERVICES[
            "usps_priority"]}
        rates = []
        steps = max(1, int((grams + 499) // 500))
        for token, (provider, name, base, per, days) in services.items():
            amount = base + per * (steps - 1)
            rate = {"object_id": _id("rate", shipment_id, token), "shipment": shipment_id, "provider": provider,
                    "servicelevel": {"token": token, "name": name, "terms": ""}, "amount": f"{amount:.2f}",
                    "currency": "USD", "amount_local": f"{amount * per_usd:.2f}", "currency_local": local,
                    "estimated_days": days, "duration_terms": f"{days} business days", "attributes": [],
                    "carrier_account": _id("account", provider), "messages": []}
            self.rates[rate["object_id"]] = rate
            rates.append(rate)
        return web.json_response({"object_id": shipment_id, "status": "SUCCESS", "address_from": p["address_from"],
                                  "address_to": p["address_to"], "parcels": parcels, "rates": rates,
                                  "messages": [], "metadata": p.get("metadata", ""),
                                  **({"filler": "x" * self.pad_shipments} if self.pad_shipments else {})}, status=201)

    async def _buy(self, request: web.Request) -> web.Response:
        if self.refuse:  # as Shippo refuses a label: a transaction with status ERROR and its messages
            return web.json_response({"object_id": "tx-refused", "status": "ERROR", "tracking_number": "",
                                      "label_url": "", "messages": [{"source": "USPS", "code": "",
                                                                     "text": "The address is not deliverable"}]},
                                     status=201)
        p = request[PARAMS]
        rate = self.rates.get(str(p.get("rate")))
        if rate is None:
            return web.json_response({"rate": [f"Rate with object_id {p.get('rate')} does not exist."]}, status=400)
        n = next(self._seq)
        tx = {"object_id": _id("transaction", n), "object_state": "VALID", "rate": rate["object_id"],
              "metadata": p.get("metadata") or "", "label_file_type": p.get("label_file_type", "PDF"),
              "created": datetime.now(timezone.utc).isoformat(), "messages": [], "tracking_status": "UNKNOWN"}
        if rate["object_id"] in self.expired:
            tx.update(status="ERROR", tracking_number="", label_url="", tracking_url_provider="",
                      messages=[{"source": rate["provider"], "code": "", "text": "Rate has expired. Please "
                                 "create a new shipment to get fresh rates."}])
        else:
            number = f"9400{int(_id('tracking', tx['object_id']), 16) % 10 ** 18:018d}"
            tx.update(status="QUEUED" if self._queue else "SUCCESS", tracking_number=number,
                      label_url=f"{request.url.origin()}/labels/{tx['object_id']}.pdf",
                      tracking_url_provider=f"https://tools.usps.com/go/TrackConfirmAction?tLabels={number}")
            self._queue = max(0, self._queue - 1)
        self.transactions[tx["object_id"]] = tx
        if self._lose and tx["status"] != "ERROR":
            self._lose -= 1
            request.transport.close()  # bought, but the answer never arrives
            return web.Response(status=500)
        return web.json_response(tx, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        q = request[PARAMS]
        if not str(q.get("results", "25")).isdigit() or not str(q.get("page", "1")).isdigit():
            return web.json_response({"detail": "Invalid page."}, status=404)
        size = min(max(int(q.get("results", "25")), 1), 100)
        page = max(int(q.get("page", "1")), 1)
        for tx in self.transactions.values():  # a QUEUED label is finished by the time anyone looks again
            if tx["status"] == "QUEUED":
                tx["status"] = "SUCCESS"
        found = [t for t in self.transactions.values() if "rate" not in q or t["rate"] == q["rate"]]
        found.reverse()  # newest first, like Shippo
        chunk = found[(page - 1) * size:page * size]
        more = len(found) > page * size
        nxt = None
        if more:
            nxt = f"{request.url.origin()}/transactions/?rate={q.get('rate', '')}&results={size}&page={page + 1}"
        return web.json_response({"count": len(found), "next": nxt, "previous": None, "results": chunk})

    async def _refund(self, request: web.Request) -> web.Response:
        tx = self.transactions.get(str(request[PARAMS].get("transaction")))
        if tx is None:
            return web.json_response({"transaction": ["Transaction does not exist."]}, status=400)
        if any(r["transaction"] == tx["object_id"] and r["status"] != "ERROR" for r in self.refunds.values()):
            return web.json_response({"transaction": ["A refund for this transaction already exists."]}, status=400)
        refused = tx["object_id"] in self.scanned or tx["status"] != "SUCCESS"
        refund = {"object_id": _id("refund", next(self._seq)), "transaction": tx["object_id"],
                  "status": "ERROR" if refused else "QUEUED", "test": True,
                  "object_created": datetime.now(timezone.utc).isoformat()}
        self.refunds[refund["object_id"]] = refund
        return web.json_response(refund, status=201)

    async def _track(self, request: web.Request) -> web.Response:
        p = request[PARAMS]
        if not p.get("carrier") or not p.get("tracking_number"):
            return web.json_response({"tracking_number": ["This field is required."]}, status=400)
        self.tracks.append(p)
        return web.json_response({"carrier": p["carrier"], "tracking_number": p["tracking_number"],
                                  "metadata": p.get("metadata"), "tracking_status": None,
                                  "tracking_history": []}, status=201)


def track_body(tracking_number: str, status: str, *, status_date: datetime | str | None = None,
               substatus: str | None = None, carrier: str = "usps", metadata: str | None = None,
               history: list[dict] | None = None, details: str = "", event: str = "track_updated") -> bytes:
    """A Shippo tracking webhook body: tracking_status (status PRE_TRANSIT|TRANSIT|..., substatus code) and
    tracking_history (entries as status_entry gives them)."""
    return orjson.dumps({"event": event, "test": True, "data": {
        "carrier": carrier, "tracking_number": tracking_number, "metadata": metadata, "eta": None,
        "address_from": {"city": "San Francisco", "state": "CA", "zip": "94105", "country": "US"},
        "address_to": {"city": "New York", "state": "NY", "zip": "10001", "country": "US"},
        "tracking_status": status_entry(status, status_date=status_date, substatus=substatus, details=details),
        "tracking_history": history or []}})


def status_entry(status: str, *, status_date: datetime | str | None = None, substatus: str | None = None,
                 details: str = "") -> dict:
    when = status_date or datetime.now(timezone.utc)
    return {"status": status, "substatus": {"code": substatus, "text": substatus, "action_required": False}
            if substatus else None, "status_details": details,
            "status_date": when.isoformat().replace("+00:00", "Z") if isinstance(when, datetime) else when,
            "location": {"city": "Memphis", "state": "TN", "zip": "38118", "country": "US"},
            "object_id": _id("track", status, when)}


async def send_track_webhook(url: str, body: bytes, *, token: str | None, hmac_secret: str | None = None,
                             timestamp: int | None = None) -> tuple[int, bytes]:
    """POST a tracking webhook to `url` (e.g. .../webhooks/shippo) as Shippo does: `?token=`, and the HMAC header
    when a secret is given. Returns (status, body)."""
    headers = {"Content-Type": "application/json"}
    if hmac_secret:
        headers["Shippo-Auth-Signature"] = sign(hmac_secret, body, int(time.time()) if timestamp is None
                                                else timestamp)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers,
                                params={"token": token} if token is not None else None) as resp:
            return resp.status, await resp.read()


async def _serve(port: int, key: str) -> None:
    fake = FakeShippo(key)
    runner = web.AppRunner(fake.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"fake Shippo on http://127.0.0.1:{port} (SHIPPO_API_BASE), key {key}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--key", default=API_KEY)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.key))
