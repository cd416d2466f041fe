-- 0005_rls: privileges and row-level security for the app role live_app.
--
-- Every request transaction runs:
--   set_config('role', 'live_app', true), set_config('app.user_id', ..., true), set_config('app.role', ..., true)
-- so all queries below are evaluated as live_app. The migrator/table owner is not subject
-- to RLS (no FORCE ROW LEVEL SECURITY) and keeps full access.
-- Policies are permissive and OR together: "<table>_privileged" gives admin/system full access,
-- the others grant the owner/seller/public access described next to them.
-- Note: INSERT ... RETURNING also needs the new row to pass a SELECT policy.

GRANT USAGE ON SCHEMA public TO live_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO live_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO live_app;

-- The migrator's own bookkeeping table (created by db/migrate.py before any migration runs)
-- is not for the app.
DO $$
BEGIN
    IF to_regclass('public.schema_migrations') IS NOT NULL THEN
        REVOKE ALL ON public.schema_migrations FROM live_app;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Policy helpers (SECURITY INVOKER: their queries are themselves subject to RLS)
-- ---------------------------------------------------------------------------

-- current user owns the stream (through one of their sellers)
CREATE FUNCTION app_owns_livestream(p_livestream_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT EXISTS (SELECT 1 FROM public.livestreams l
                       WHERE l.id = p_livestream_id
                         AND l.seller_id IN (SELECT public.app_seller_ids()))
    $$;

-- current user owns or moderates the stream
CREATE FUNCTION app_moderates_livestream(p_livestream_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT public.app_owns_livestream(p_livestream_id)
            OR EXISTS (SELECT 1 FROM public.stream_moderators m
                       WHERE m.livestream_id = p_livestream_id
                         AND m.user_id = public.app_user_id())
    $$;

-- current user is the buyer or the seller of the order
CREATE FUNCTION app_can_see_order(p_order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT EXISTS (SELECT 1 FROM public.orders o
                       WHERE o.id = p_order_id
                         AND (o.user_id = public.app_user_id()
                              OR o.seller_id IN (SELECT public.app_seller_ids())))
    $$;

-- current user owns the product (through one of their sellers)
CREATE FUNCTION app_owns_product(p_product_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT EXISTS (SELECT 1 FROM public.products p
                       WHERE p.id = p_product_id
                         AND p.seller_id IN (SELECT public.app_seller_ids()))
    $$;

-- ---------------------------------------------------------------------------
-- RLS on every table (except schema_migrations, see above), with full access for admin/system.
-- audit_log and inventory_events are append-only, so they get read+insert only.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_catalog.pg_tables
             WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1 LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        IF t IN ('audit_log', 'inventory_events') THEN
            EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO live_app USING (app_is_privileged())',
                           t || '_privileged_select', t);
            EXECUTE format('CREATE POLICY %I ON public.%I FOR INSERT TO live_app WITH CHECK (app_is_privileged())',
                           t || '_privileged_insert', t);
        ELSE
            EXECUTE format('CREATE POLICY %I ON public.%I FOR ALL TO live_app '
                           'USING (app_is_privileged()) WITH CHECK (app_is_privileged())',
                           t || '_privileged', t);
        END IF;
    END LOOP;
END
$$;

-- Internal tables with no further policies (admin/system only):
--   email_codes, wallet_nonces, email_outbox, webhook_events

-- ---------------------------------------------------------------------------
-- Core
-- ---------------------------------------------------------------------------
-- public profiles (the app selects only safe columns); sign-up runs as system
CREATE POLICY users_select ON users FOR SELECT TO live_app USING (true);
CREATE POLICY users_update_self ON users FOR UPDATE TO live_app
    USING (id = app_user_id()) WITH CHECK (id = app_user_id());

CREATE POLICY sellers_select ON sellers FOR SELECT TO live_app USING (true);
CREATE POLICY sellers_own ON sellers FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

-- anyone may log their own actions; reading is admin/system only
CREATE POLICY audit_log_insert_self ON audit_log FOR INSERT TO live_app
    WITH CHECK (actor_id IS NOT DISTINCT FROM app_user_id());

-- anyone (including anon) may submit the contact form; use no RETURNING (not readable)
CREATE POLICY contacts_insert ON contacts FOR INSERT TO live_app WITH CHECK (status = 'new');

-- ---------------------------------------------------------------------------
-- Catalog
-- ---------------------------------------------------------------------------
CREATE POLICY categories_select ON categories FOR SELECT TO live_app USING (true);

CREATE POLICY products_select ON products FOR SELECT TO live_app
    USING (status = 'active' OR seller_id IN (SELECT app_seller_ids()));
CREATE POLICY products_own ON products FOR ALL TO live_app
    USING (seller_id IN (SELECT app_seller_ids()))
    WITH CHECK (seller_id IN (SELECT app_seller_ids()));

CREATE POLICY product_variants_select ON product_variants FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM products p
                   WHERE p.id = product_id
                     AND (p.status = 'active' OR p.seller_id IN (SELECT app_seller_ids()))));
CREATE POLICY product_variants_own ON product_variants FOR ALL TO live_app
    USING (app_owns_product(product_id)) WITH CHECK (app_owns_product(product_id));

-- sellers read and append their own ledger (stock adjustments)
CREATE POLICY inventory_events_own_select ON inventory_events FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM product_variants v
                   WHERE v.id = variant_id AND app_owns_product(v.product_id)));
CREATE POLICY inventory_events_own_insert ON inventory_events FOR INSERT TO live_app
    WITH CHECK (EXISTS (SELECT 1 FROM product_variants v
                        WHERE v.id = variant_id AND app_owns_product(v.product_id)));

-- coupons are readable (validation at checkout); sellers manage their own,
-- platform-wide coupons (seller_id NULL) are admin/system only
CREATE POLICY coupons_select ON coupons FOR SELECT TO live_app USING (true);
CREATE POLICY coupons_own ON coupons FOR ALL TO live_app
    USING (seller_id IN (SELECT app_seller_ids()))
    WITH CHECK (seller_id IN (SELECT app_seller_ids()));

CREATE POLICY wishlists_own ON wishlists FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

-- ---------------------------------------------------------------------------
-- Live
-- ---------------------------------------------------------------------------
CREATE POLICY livestreams_select ON livestreams FOR SELECT TO live_app USING (true);
CREATE POLICY livestreams_own ON livestreams FOR ALL TO live_app
    USING (seller_id IN (SELECT app_seller_ids()))
    WITH CHECK (seller_id IN (SELECT app_seller_ids()));

-- the stream's seller manages its product list, with their own products only
CREATE POLICY livestream_products_select ON livestream_products FOR SELECT TO live_app USING (true);
CREATE POLICY livestream_products_own ON livestream_products FOR ALL TO live_app
    USING (app_owns_livestream(livestream_id))
    WITH CHECK (app_owns_livestream(livestream_id) AND app_owns_product(product_id));

-- chat: readable by all; users post as themselves unless banned or muted;
-- the stream's seller and moderators may edit/delete (soft-delete) messages
CREATE POLICY chat_messages_select ON chat_messages FOR SELECT TO live_app USING (true);
CREATE POLICY chat_messages_insert_self ON chat_messages FOR INSERT TO live_app
    WITH CHECK (
        user_id = app_user_id()
        AND NOT EXISTS (SELECT 1 FROM stream_bans b
                        WHERE b.livestream_id = chat_messages.livestream_id AND b.user_id = app_user_id())
        AND NOT EXISTS (SELECT 1 FROM stream_mutes m
                        WHERE m.livestream_id = chat_messages.livestream_id AND m.user_id = app_user_id()
                          AND m.until > now())
    );
CREATE POLICY chat_messages_moderate_update ON chat_messages FOR UPDATE TO live_app
    USING (app_moderates_livestream(livestream_id)) WITH CHECK (app_moderates_livestream(livestream_id));
CREATE POLICY chat_messages_moderate_delete ON chat_messages FOR DELETE TO live_app
    USING (app_moderates_livestream(livestream_id));

-- moderator list is public (chat badges); only the stream's seller appoints moderators
CREATE POLICY stream_moderators_select ON stream_moderators FOR SELECT TO live_app USING (true);
CREATE POLICY stream_moderators_owner ON stream_moderators FOR ALL TO live_app
    USING (app_owns_livestream(livestream_id)) WITH CHECK (app_owns_livestream(livestream_id));

-- bans/mutes: visible to the affected user and the stream's staff; managed by staff
CREATE POLICY stream_bans_select ON stream_bans FOR SELECT TO live_app
    USING (user_id = app_user_id() OR app_moderates_livestream(livestream_id));
CREATE POLICY stream_bans_staff ON stream_bans FOR ALL TO live_app
    USING (app_moderates_livestream(livestream_id)) WITH CHECK (app_moderates_livestream(livestream_id));

CREATE POLICY stream_mutes_select ON stream_mutes FOR SELECT TO live_app
    USING (user_id = app_user_id() OR app_moderates_livestream(livestream_id));
CREATE POLICY stream_mutes_staff ON stream_mutes FOR ALL TO live_app
    USING (app_moderates_livestream(livestream_id)) WITH CHECK (app_moderates_livestream(livestream_id));

-- ---------------------------------------------------------------------------
-- Commerce
-- ---------------------------------------------------------------------------
CREATE POLICY addresses_own ON addresses FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

CREATE POLICY carts_own ON carts FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

CREATE POLICY cart_items_own ON cart_items FOR ALL TO live_app
    USING (EXISTS (SELECT 1 FROM carts c WHERE c.id = cart_id AND c.user_id = app_user_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM carts c WHERE c.id = cart_id AND c.user_id = app_user_id()));

-- orders: buyer and seller read/update; only the buyer creates; delete is admin/system only
CREATE POLICY orders_select ON orders FOR SELECT TO live_app
    USING (user_id = app_user_id() OR seller_id IN (SELECT app_seller_ids()));
CREATE POLICY orders_insert_buyer ON orders FOR INSERT TO live_app
    WITH CHECK (user_id = app_user_id());
CREATE POLICY orders_update ON orders FOR UPDATE TO live_app
    USING (user_id = app_user_id() OR seller_id IN (SELECT app_seller_ids()))
    WITH CHECK (user_id = app_user_id() OR seller_id IN (SELECT app_seller_ids()));

-- order lines: visible with the order; written by the buyer at checkout
CREATE POLICY order_items_select ON order_items FOR SELECT TO live_app
    USING (app_can_see_order(order_id));
CREATE POLICY order_items_insert_buyer ON order_items FOR INSERT TO live_app
    WITH CHECK (EXISTS (SELECT 1 FROM orders o WHERE o.id = order_id AND o.user_id = app_user_id()));

-- status history: visible with the order; buyer/seller append entries as themselves
CREATE POLICY order_status_history_select ON order_status_history FOR SELECT TO live_app
    USING (app_can_see_order(order_id));
CREATE POLICY order_status_history_insert ON order_status_history FOR INSERT TO live_app
    WITH CHECK (app_can_see_order(order_id) AND actor_id = app_user_id());

CREATE POLICY checkout_requests_own ON checkout_requests FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

-- payments: the paying user reads/creates/updates; delete is admin/system only
CREATE POLICY payments_select_own ON payments FOR SELECT TO live_app
    USING (user_id = app_user_id());
CREATE POLICY payments_insert_own ON payments FOR INSERT TO live_app
    WITH CHECK (user_id = app_user_id());
CREATE POLICY payments_update_own ON payments FOR UPDATE TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

-- payment <-> order links follow the payment; both must belong to the user
CREATE POLICY payment_orders_select ON payment_orders FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM payments p WHERE p.id = payment_id AND p.user_id = app_user_id()));
CREATE POLICY payment_orders_insert ON payment_orders FOR INSERT TO live_app
    WITH CHECK (EXISTS (SELECT 1 FROM payments p WHERE p.id = payment_id AND p.user_id = app_user_id())
                AND EXISTS (SELECT 1 FROM orders o WHERE o.id = order_id AND o.user_id = app_user_id()));

-- shipments: buyer and seller read; the seller may create/update (manual tracking);
-- label purchase and tracking webhooks run as system
CREATE POLICY shipments_select ON shipments FOR SELECT TO live_app
    USING (app_can_see_order(order_id));
CREATE POLICY shipments_seller_insert ON shipments FOR INSERT TO live_app
    WITH CHECK (EXISTS (SELECT 1 FROM orders o
                        WHERE o.id = order_id AND o.seller_id IN (SELECT app_seller_ids())));
CREATE POLICY shipments_seller_update ON shipments FOR UPDATE TO live_app
    USING (EXISTS (SELECT 1 FROM orders o
                   WHERE o.id = order_id AND o.seller_id IN (SELECT app_seller_ids())))
    WITH CHECK (EXISTS (SELECT 1 FROM orders o
                        WHERE o.id = order_id AND o.seller_id IN (SELECT app_seller_ids())));

CREATE POLICY shipping_events_select ON shipping_events FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM shipments s WHERE s.id = shipment_id AND app_can_see_order(s.order_id)));
