-- 0021_rls_privileged_first: the cheap check first in the permissive policies that run a per-row check.
--
-- Permissive policies OR together, and PostgreSQL evaluated them as `app_can_see_order(order_id) OR
-- app_is_privileged()` (EXPLAIN): for every row a system or admin transaction touched it first ran the per-row
-- check, a SQL function it cannot inline (or a correlated EXISTS). Each such policy is rewritten here as
-- `app_is_privileged() OR (<the same check>)`, so a privileged caller short-circuits on a session setting.
--
-- Same access as before: a policy is rewritten only when its table's `<table>_privileged` policy (0005) already
-- lets admin/system do that command (FOR ALL, or the same command: inventory_events has SELECT and INSERT only),
-- so `app_is_privileged() OR ...` adds nothing a privileged caller did not have, and nothing for anyone else.
-- Policies whose check is a column compare or an uncorrelated `IN (SELECT app_seller_ids())` (one initplan per
-- statement) are left alone. The rewrite is done from the catalog (pg_get_expr), so it covers every such policy
-- of 0005, 0010, 0016 and 0019 (order_items, order_status_history, payment_refunds, shipments, shipping_events,
-- shipment_status_history, product_variants, inventory_events, livestream_products, stream_*, chat_messages,
-- cart_items, payment_orders, ...), and is idempotent (a policy already starting with the privileged check is
-- skipped).
--
-- Measured on the tracking storm's database (1,000 sandbox shipments, 4,000 events, 2026-12-06), as role live_app
-- with app.role = system, EXPLAIN ANALYZE execution time, median of 30, before -> after this migration:
--   SELECT ... FROM shipments WHERE id = $1 FOR UPDATE                       0.31 ms -> 0.06 ms
--   by_tracking (SELECT id FROM shipments WHERE tracking_number = $1 ...)     0.24 ms -> 0.03 ms
--   a shipment's 4 events (SELECT ... FROM shipping_events WHERE shipment_id)  0.81 ms -> 0.03 ms
--   an order's status history (SELECT * FROM order_status_history ...)        0.43 ms -> 0.02 ms
-- Rewritten (28 policies): cart_items_own, chat_messages_{insert_self,moderate_delete,moderate_update},
-- inventory_events_own_{insert,select}, livestream_products_own, order_items_{insert_buyer,select},
-- order_status_history_{insert,select}, payment_orders_{insert,select}, payment_refunds_select,
-- product_variants_{own,select}, return_items_select, return_status_history_select,
-- shipment_status_history_select, shipments_{select,seller_insert,seller_update}, shipping_events_select,
-- stream_bans_{select,staff}, stream_moderators_owner, stream_mutes_{select,staff}.
DO $$
DECLARE
    p record;
    q text;
    w text;
BEGIN
    FOR p IN
        SELECT c.relname AS tab, pol.polname AS name, pol.polcmd AS cmd,
               pg_get_expr(pol.polqual, pol.polrelid) AS qual,
               pg_get_expr(pol.polwithcheck, pol.polrelid) AS withcheck
        FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE pol.polpermissive
          AND pol.polname NOT LIKE '%\_privileged%'
          AND concat_ws(' ', pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))
              ~ '(app_can_see_order|app_owns_product|app_owns_livestream|app_moderates_livestream)\(|EXISTS'
          AND EXISTS (SELECT 1 FROM pg_policy priv
                      WHERE priv.polrelid = pol.polrelid AND priv.polpermissive
                        AND priv.polname LIKE c.relname || '\_privileged%'
                        AND (priv.polcmd = '*' OR priv.polcmd = pol.polcmd))
        ORDER BY 1, 2
    LOOP
        q := CASE WHEN p.qual IS NULL OR p.qual LIKE '(app_is_privileged() OR %' THEN NULL
                  ELSE 'app_is_privileged() OR (' || p.qual || ')' END;
        w := CASE WHEN p.withcheck IS NULL OR p.withcheck LIKE '(app_is_privileged() OR %' THEN NULL
                  ELSE 'app_is_privileged() OR (' || p.withcheck || ')' END;
        IF q IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON public.%I USING (%s)', p.name, p.tab, q);
        END IF;
        IF w IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON public.%I WITH CHECK (%s)', p.name, p.tab, w);
        END IF;
    END LOOP;
END
$$;
