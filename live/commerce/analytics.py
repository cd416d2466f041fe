"""Seller analytics for one live stream.

- peak_viewers: the highest concurrent viewer count (connections) the stream reached.
- chat_messages: messages posted and not deleted.
- reactions: per kind; the larger of the stored totals (livestreams.reaction_totals, written by the rooms every 5 s
  when changed) and this worker's live in-memory totals, both cumulative (see docs/commerce.md).
- add_to_carts: reservations made from the stream (cart:add, or a quantity raised, with the stream
  attributed); add_to_cart_buyers: distinct buyers behind them; units_added: units reserved that way.
- orders / paid_orders: orders with at least one line added from the stream / those paid (paid, processing,
  shipped, delivered); buyers: distinct buyers of paid orders.
- revenue: per currency, the gross value (before coupon discounts) of the paid order lines that came from the
  stream; refunded and canceled orders do not count.
- conversion: cart_conversion = buyers / add_to_cart_buyers, viewer_conversion = buyers / peak_viewers
  (null when the denominator is 0).
- viewers_over_time: [{at, viewers}], the viewer count sampled every 30 s while the stream had viewers
  (viewer_samples, written by the rooms: live/rooms/node.py `save_viewer_samples`); at most 600 points: a longer
  series is cut into equal buckets, each its start and largest count (db/analytics.py `viewers_over_time`).
- sales_over_time: [{at, orders, units, revenue: [{currency, amount_minor}]}] per minute the paid orders (as
  above) were placed, only the minutes with a sale; units and revenue count the stream's lines only. At most 600
  points: sales spread over more than 600 minutes (orders placed long after the show) are summed into equal
  buckets of `sales_bucket_minutes` minutes, each `at` its start (db/analytics.py `sales_over_time`);
  sales_bucket_minutes is 1 otherwise.
- top_products: [{product_id, title, currency, units, amount_minor}], the 10 products most sold from the stream
  (units in paid orders; a product sold in two currencies has a row for each).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from db import Database
from db import analytics as analytics_db
from db import streams as streams_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.orders import PAID_LIKE
from live.errors import not_found
from live.rooms.state import REACTION_KINDS


def _ratio(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


class Analytics:
    def __init__(self, db: Database, live_reactions: Callable[[str], dict | None],
                 flush_chat: Callable[[], Awaitable[None]] | None = None):
        self.db = db
        self._live_reactions = live_reactions
        self._flush_chat = flush_chat

    async def for_stream(self, principal: Principal, id_or_slug: str) -> dict:
        async with self.db.tx(principal) as conn:
            stream = await streams_db.get(conn, id_or_slug)
        if stream is None:
            raise not_found("stream")
        policy.stream_seller(principal, stream["seller_user_id"], "only the stream's seller sees its analytics")
        if self._flush_chat is not None:
            await self._flush_chat()
        sid = stream["id"]
        async with self.db.tx(SYSTEM) as conn:
            row = await analytics_db.stream_counters(conn, sid, PAID_LIKE)
            revenue = await analytics_db.stream_revenue(conn, sid, PAID_LIKE)
            samples = await analytics_db.viewers_over_time(conn, sid)
            sales = await analytics_db.sales_over_time(conn, sid, PAID_LIKE)
            top = await analytics_db.top_products(conn, sid, PAID_LIKE)
        persisted = row["reactions"] or {}
        live = self._live_reactions(sid) or {}
        reactions = {k: max(int(persisted.get(k, 0)), int(live.get(k, 0))) for k in REACTION_KINDS}
        peak = stream["peak_viewers"]
        return {
            "stream_id": sid, "status": stream["status"], "started_at": stream["started_at"],
            "ended_at": stream["ended_at"], "peak_viewers": peak, "chat_messages": row["chat_messages"],
            "reactions": reactions, "reactions_total": sum(reactions.values()),
            "add_to_carts": row["add_to_carts"], "add_to_cart_buyers": row["add_to_cart_buyers"],
            "units_added": row["units_added"], "orders": row["orders"], "paid_orders": row["paid_orders"],
            "buyers": row["buyers"],
            "revenue": [{"currency": r["currency"], "amount_minor": r["amount_minor"], "units": r["units"]}
                        for r in revenue],
            "conversion": {"cart_conversion": _ratio(row["buyers"], row["add_to_cart_buyers"]),
                           "viewer_conversion": _ratio(row["buyers"], peak)},
            "viewers_over_time": [{"at": r["at"], "viewers": r["viewers"]} for r in samples],
            "sales_over_time": _per_minute(sales),
            "sales_bucket_minutes": sales[0]["minutes"] if sales else 1,
            "top_products": [dict(r) for r in top],
        }


def _per_minute(rows) -> list[dict]:
    """The per (minute, currency) rows as one entry per minute: orders and units added up over currencies (an
    order is in one currency), revenue per currency."""
    out: list[dict] = []
    for r in rows:
        if not out or out[-1]["at"] != r["at"]:
            out.append({"at": r["at"], "orders": 0, "units": 0, "revenue": []})
        minute = out[-1]
        minute["orders"] += r["orders"]
        minute["units"] += r["units"]
        minute["revenue"].append({"currency": r["currency"], "amount_minor": r["amount_minor"]})
    return out
