"""Migration 0021: every permissive policy with a per-row check (a non-inlinable policy function or a correlated
EXISTS) reads `app_is_privileged() OR <the check>`, so system transactions (tracking jobs) short-circuit; buyers and
sellers keep exactly their access (tests/db/test_rls.py and the shipping tests reading as buyer and seller)."""
from __future__ import annotations

import re

from live.auth.principal import SYSTEM

PER_ROW = re.compile(r"(app_can_see_order|app_owns_product|app_owns_livestream|app_moderates_livestream)\(|EXISTS")


async def test_per_row_policies_check_privileged_first(shop):
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("RESET ROLE")  # the catalog, as the owner
        rows = await conn.fetch(
            """SELECT c.relname || '.' || p.polname AS name, pg_get_expr(p.polqual, p.polrelid) AS q,
                      pg_get_expr(p.polwithcheck, p.polrelid) AS w
               FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
               WHERE p.polpermissive AND p.polname NOT LIKE '%\\_privileged%'""")
    per_row = [r for r in rows if PER_ROW.search(f"{r['q']} {r['w']}")]
    assert {"shipments.shipments_select", "shipping_events.shipping_events_select", "order_items.order_items_select",
            "order_status_history.order_status_history_select"} <= {r["name"] for r in per_row}
    late = [r["name"] for r in per_row for expr in (r["q"], r["w"])
            if expr is not None and not expr.startswith("(app_is_privileged() OR ")]
    assert late == []
