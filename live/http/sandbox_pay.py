"""The sandbox provider's confirm page: `GET /pay/sandbox/{reference}` and `POST /pay/sandbox/{reference}`.

GET shows the amount and the orders with two buttons, Pay and Decline (JSON summary with Accept:
application/json). POST (form field, or JSON `{"outcome": "succeeded"|"failed"}`) builds the sandbox webhook
event, signs it and POSTs it over real HTTP to this server's own `/webhooks/sandbox`, so it goes through the same
verification and dedup as a real provider's webhook; then it shows the result, redirects to the signed
return_url, or (JSON) answers with the webhook's reply. No auth: like a provider's hosted page, whoever has the
link pays.
"""
from __future__ import annotations

import html
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from live.appkeys import SERVICES
from live.commerce.payments.sandbox import SandboxProvider
from live.errors import DomainError, not_found
from live.http.api import json_response, parse_body, read_body

PATH = "/pay/sandbox/{reference}"
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                "XAF", "XOF", "XPF"}


class OutcomeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["succeeded", "failed"]


def money(minor: int, currency: str) -> str:
    if currency.upper() in ZERO_DECIMAL:
        return f"{minor:,} {currency.upper()}"
    return f"{minor / 100:,.2f} {currency.upper()}"


def closed_text(status: str) -> str:
    return {"succeeded": "This payment is paid.", "failed": "This payment was declined.",
            "canceled": "This payment was canceled.", "refunded": "This payment was refunded."}.get(
        status, f"This payment is {status}.")


def wants_json(request: web.Request) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get("Accept", "")


def _provider(request: web.Request) -> SandboxProvider:
    try:
        return request.app[SERVICES].payments.get("sandbox")
    except DomainError:
        raise not_found("sandbox payment page") from None


def _self_base(request: web.Request) -> str:
    """This server's own listening address (the socket the request came in on), so the webhook reaches us even
    when PUBLIC_URL is a name only the outside world resolves."""
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sock, tuple) and len(sock) >= 2:
        host = str(sock[0])
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://[{host}]:{sock[1]}" if ":" in host else f"http://{host}:{sock[1]}"
    return request.app[SERVICES].settings.base_url()


async def send_webhook(request: web.Request, provider: SandboxProvider, reference: str, outcome: str,
                       summary: dict) -> tuple[str, int, dict]:
    """Sign the event and POST it to our own /webhooks/sandbox. Returns (event id, HTTP status, reply)."""
    body = provider.event_body(reference, outcome, summary["amount_minor"], summary["currency"])
    headers = {"Content-Type": "application/json", "x-sandbox-signature": provider.sign(body)}
    url = _self_base(request) + "/webhooks/sandbox"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.post(url, data=body, headers=headers) as resp:
                status = resp.status
                try:
                    reply = await resp.json(content_type=None)
                except ValueError:
                    reply = {}
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DomainError("webhook_failed", f"could not deliver the sandbox webhook: {type(exc).__name__}") from None
    return orjson.loads(body)["id"], status, reply if isinstance(reply, dict) else {}


def _page(title: str, inner: str, status: int = 200) -> web.Response:
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(title)} · live sandbox</title><link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f4f7;color:#1d1d24;margin:0}}
main{{max-width:440px;margin:48px auto;background:#fff;border-radius:12px;padding:28px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}}
h1{{font-size:1.1rem;margin:0 0 4px}} .note{{color:#6b6b78;font-size:.85rem;margin:0 0 20px}}
.amount{{font-size:2rem;font-weight:700;margin:8px 0 20px}}
table{{width:100%;border-collapse:collapse;font-size:.9rem;margin-bottom:24px}}
td{{padding:6px 0;border-top:1px solid #eee;vertical-align:top}} td.r{{text-align:right;white-space:nowrap}}
.items{{color:#6b6b78;font-size:.8rem}} form{{display:flex;gap:12px}}
button{{flex:1;padding:12px;border:0;border-radius:8px;font-size:1rem;cursor:pointer}}
.pay{{background:#1f7a4d;color:#fff}} .decline{{background:#e9e9ef;color:#1d1d24}}
.result{{font-size:1.1rem;font-weight:600}}
</style></head><body><main>
<h1>live · sandbox payment</h1><p class="note">Test mode: no money moves.</p>
{inner}
</main></body></html>"""
    return web.Response(text=doc, content_type="text/html", status=status)


def _orders_table(summary: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(o['number'])} · {html.escape(o['seller'])}"
        f"<div class=items>{html.escape(o['items'])}</div></td>"
        f"<td class=r>{html.escape(money(o['total_minor'], o['currency']))}</td></tr>"
        for o in summary["orders"])
    return f"<table>{rows}</table>" if rows else ""


async def confirm_page(request: web.Request) -> web.Response:
    reference = request.match_info["reference"]
    provider = _provider(request)
    summary = await provider.payment_summary(reference)
    if wants_json(request):
        return json_response({"reference": reference, **summary})
    amount = html.escape(money(summary["amount_minor"], summary["currency"]))
    inner = f'<div class="amount">{amount}</div>{_orders_table(summary)}'
    if provider.still_open(summary):
        hidden = ""
        return_url, sig = request.query.get("return_url"), request.query.get("sig")
        if provider.return_url_ok(reference, return_url, sig):
            hidden = (f'<input type="hidden" name="return_url" value="{html.escape(return_url)}">'
                      f'<input type="hidden" name="sig" value="{html.escape(sig)}">')
        inner += (f'<form method="post" action="/pay/sandbox/{html.escape(reference)}">{hidden}'
                  '<button class="decline" name="outcome" value="failed">Decline</button>'
                  '<button class="pay" name="outcome" value="succeeded">Pay</button></form>')
    else:
        inner += f'<p class="result">{html.escape(closed_text(summary["status"]))}</p>'
    return _page("Confirm payment", inner)


async def submit(request: web.Request) -> web.Response:
    reference = request.match_info["reference"]
    provider = _provider(request)
    as_json = wants_json(request)
    return_url = sig = None
    if request.content_type == "application/json":
        limit = request.app[SERVICES].settings.http_max_body_bytes
        outcome = parse_body(OutcomeBody, await read_body(request, limit)).outcome
    else:
        form = await request.post()
        outcome = form.get("outcome")
        if outcome not in ("succeeded", "failed"):
            raise DomainError("validation_failed", "outcome must be succeeded or failed")
        return_url, sig = form.get("return_url"), form.get("sig")
    summary = await provider.payment_summary(reference)
    if not provider.still_open(summary):
        if as_json:
            raise DomainError("conflict", f"payment is already {summary['status']}")
        return _page("Payment", f'<p class="result">{html.escape(closed_text(summary["status"]))}</p>', status=409)
    event_id, status, reply = await send_webhook(request, provider, reference, outcome, summary)
    if as_json:
        if status != 200:
            raise DomainError("webhook_failed", f"our webhook answered {status}", details=reply)
        return json_response({"reference": reference, "outcome": outcome, "event_id": event_id,
                              "webhook": {"status": status, "body": reply}})
    if status != 200:
        return _page("Payment", f'<p class="result">The payment could not be recorded (HTTP {status}). '
                     'Try again.</p>', status=502)
    if return_url and provider.return_url_ok(reference, return_url, sig):
        raise web.HTTPSeeOther(_with_query(return_url, {"payment": outcome, "reference": reference}))
    text = "Payment succeeded." if outcome == "succeeded" else "Payment declined."
    amount = html.escape(money(summary["amount_minor"], summary["currency"]))
    return _page("Payment", f'<div class="amount">{amount}</div><p class="result">{text}</p>')


def _with_query(url: str, extra: dict) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def register(app: web.Application) -> None:
    app.router.add_get(PATH, confirm_page)
    app.router.add_post(PATH, submit)
