-- 0006_commerce: the order side of commerce.
--   * order numbers LS-2026-000123 from the existing sequence;
--   * stream attribution of add-to-carts (ledger) and of order lines (analytics);
--   * payment review fields (amount mismatch, paid after cancel, refund due);
--   * a column for persisted reaction totals (analytics);
--   * cart changes in ONE statement (commerce_cart_change) and the batched expiry sweep
--     (commerce_release_expired), both running as live_app with the `system` caller like db.tx(SYSTEM).

-- ---------------------------------------------------------------------------
-- Order numbers: LS-<year>-<sequence, at least 6 digits>. The sequence is global (never reset), so numbers
-- stay unique across years and grow past 6 digits instead of wrapping.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION next_order_number() RETURNS text
    LANGUAGE sql VOLATILE
    AS $$
        SELECT 'LS-' || to_char(now() AT TIME ZONE 'UTC', 'YYYY') || '-'
               || lpad(n::text, greatest(6, length(n::text)), '0')
        FROM nextval('public.order_number_seq') AS n
    $$;

-- ---------------------------------------------------------------------------
-- Attribution to live streams
-- ---------------------------------------------------------------------------
-- No foreign key: the ledger is append-only (an ON DELETE SET NULL would be an UPDATE) and outlives streams.
ALTER TABLE inventory_events ADD COLUMN livestream_id uuid;
CREATE INDEX inventory_events_livestream_idx ON inventory_events (livestream_id, kind)
    WHERE livestream_id IS NOT NULL;

ALTER TABLE order_items ADD COLUMN livestream_id uuid REFERENCES livestreams (id) ON DELETE SET NULL;
CREATE INDEX order_items_livestream_idx ON order_items (livestream_id) WHERE livestream_id IS NOT NULL;

-- Cumulative reaction counts per kind ({"heart": 12, ...}); written by the room service when it persists
-- them (analytics reads the larger of this and the live in-memory totals).
ALTER TABLE livestreams ADD COLUMN reaction_totals jsonb NOT NULL DEFAULT '{}';

-- ---------------------------------------------------------------------------
-- Payments needing a human: amount mismatch, money taken for canceled orders, refunds owed.
-- ---------------------------------------------------------------------------
ALTER TABLE payments
    ADD COLUMN issue            text CHECK (issue IN ('amount_mismatch', 'paid_after_cancel', 'refund_due')),
    ADD COLUMN issue_details    jsonb,
    ADD COLUMN refund_due_minor bigint NOT NULL DEFAULT 0 CHECK (refund_due_minor >= 0),
    ADD COLUMN start_error      text;
CREATE INDEX payments_issue_idx ON payments (updated_at) WHERE issue IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Every change of a variant's counters bumps stock_version. Changes of one row are serialised by its row
-- lock, so versions grow in commit order: whoever publishes availability (stock:update) can drop a value
-- older than one already published, whatever order the results reach the app in.
-- ---------------------------------------------------------------------------
ALTER TABLE product_variants ADD COLUMN stock_version bigint NOT NULL DEFAULT 0;
CREATE FUNCTION bump_stock_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.on_hand <> OLD.on_hand OR NEW.reserved <> OLD.reserved OR NEW.sold <> OLD.sold THEN
        NEW.stock_version := OLD.stock_version + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER product_variants_stock_version BEFORE UPDATE ON product_variants
    FOR EACH ROW EXECUTE FUNCTION bump_stock_version();

-- seller order lists filtered by stream and date
CREATE INDEX orders_seller_stream_idx ON orders (seller_id, livestream_id, created_at DESC);

-- ---------------------------------------------------------------------------
-- The cart as JSON (REST responses and socket acks build it the same way). Read-only; RLS applies to the
-- caller as usual (a customer sees only their own cart).
-- ---------------------------------------------------------------------------
CREATE FUNCTION commerce_cart_json(p_cart uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
        WITH lines AS (
            SELECT ci.id, ci.created_at, ci.quantity, ci.livestream_id, ci.reserved_until,
                   v.id AS variant_id, v.product_id, v.sku, v.color, v.size, v.price_minor, v.currency,
                   v.on_hand - v.reserved - v.sold AS available, p.title, p.image_urls[1] AS image_url,
                   p.seller_id, p.status = 'active' AS purchasable
            FROM cart_items ci
            JOIN product_variants v ON v.id = ci.variant_id
            JOIN products p ON p.id = v.product_id
            WHERE ci.cart_id = p_cart
        )
        SELECT jsonb_build_object(
            'id', c.id,
            'status', c.status,
            'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'variant_id', l.variant_id, 'product_id', l.product_id, 'title', l.title, 'sku', l.sku,
                    'color', l.color, 'size', l.size, 'image_url', l.image_url, 'seller_id', l.seller_id,
                    'quantity', l.quantity, 'unit_price_minor', l.price_minor, 'currency', l.currency,
                    'line_total_minor', l.price_minor * l.quantity,
                    'reserved_until', l.reserved_until,
                    'reserved', l.reserved_until IS NOT NULL AND l.reserved_until > now(),
                    'available', l.available, 'purchasable', l.purchasable,
                    'livestream_id', l.livestream_id) ORDER BY l.created_at, l.id)
                FROM lines l), '[]'::jsonb),
            'item_count', coalesce((SELECT sum(l.quantity) FROM lines l), 0),
            'subtotal_minor', coalesce((SELECT sum(l.price_minor * l.quantity) FROM lines l), 0),
            'currency', (SELECT min(l.currency) FROM lines l),
            'updated_at', c.updated_at)
        FROM carts c WHERE c.id = p_cart
    $$;

-- ---------------------------------------------------------------------------
-- One cart change in one statement (one round trip, so the hot variant row is locked only for the
-- milliseconds inside the server). Called by the app outside any transaction; the statement's own
-- transaction switches to live_app with the `system` caller first, exactly like db.tx(SYSTEM), because
-- stock writes are system work. Not executable by live_app itself.
--
-- p_mode: 'add' (quantity += p_qty) or 'set' (quantity := p_qty, 0 removes the line).
-- Returns {status: ok|duplicate|out_of_stock|not_found|not_in_cart|currency_mismatch|too_many,
--          available, version, changed, cart} (version: the variant's stock_version after the change).
-- A line holds its units while reserved_until IS NOT NULL (even past the time, until the sweeper releases
-- them); a released line holds none and reserves its whole quantity again when changed.
-- ---------------------------------------------------------------------------
CREATE FUNCTION commerce_cart_change(p_user uuid, p_variant uuid, p_mode text, p_qty int, p_stream uuid,
                                     p_key text, p_seconds int, p_max_line int) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_key      text;
    v_avail    int;
    v_currency text;
    v_price    bigint;
    v_active   boolean;
    v_cart     uuid;
    v_item     uuid;
    v_qty      int := 0;
    v_held     int := 0;
    v_target   int;
    v_delta    int;
    v_other    text;
    v_version  bigint;
BEGIN
    PERFORM set_config('role', 'live_app', true), set_config('app.user_id', '', true),
            set_config('app.role', 'system', true);
    IF p_mode NOT IN ('add', 'set') OR p_qty < 0 OR (p_mode = 'add' AND p_qty < 1) THEN
        RAISE EXCEPTION 'bad cart change % %', p_mode, p_qty USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_key IS NOT NULL THEN
        v_key := 'cart:' || p_user::text || ':' || p_key;
        IF EXISTS (SELECT 1 FROM inventory_events e WHERE e.variant_id = p_variant AND e.idempotency_key = v_key) THEN
            SELECT c.id INTO v_cart FROM carts c WHERE c.user_id = p_user AND c.status = 'active';
            RETURN jsonb_build_object('status', 'duplicate', 'changed', false,
                                      'cart', commerce_cart_json(v_cart));
        END IF;
    END IF;

    -- cheap, lock-free check first: a sold-out variant answers without a write
    SELECT v.on_hand - v.reserved - v.sold, v.currency, v.price_minor, p.status = 'active', v.stock_version
      INTO v_avail, v_currency, v_price, v_active, v_version
      FROM product_variants v JOIN products p ON p.id = v.product_id
     WHERE v.id = p_variant;
    IF NOT FOUND OR (p_mode = 'add' AND NOT v_active) THEN
        RETURN jsonb_build_object('status', 'not_found');
    END IF;
    IF p_mode = 'add' AND v_avail < p_qty THEN
        RETURN jsonb_build_object('status', 'out_of_stock', 'available', v_avail, 'version', v_version);
    END IF;

    -- the buyer's active cart, created if needed and locked: one buyer's changes run one after another
    INSERT INTO carts (user_id) VALUES (p_user)
        ON CONFLICT (user_id) WHERE status = 'active' DO UPDATE SET updated_at = now()
        RETURNING id INTO v_cart;

    SELECT ci.id, ci.quantity, CASE WHEN ci.reserved_until IS NOT NULL THEN ci.quantity ELSE 0 END
      INTO v_item, v_qty, v_held
      FROM cart_items ci WHERE ci.cart_id = v_cart AND ci.variant_id = p_variant
       FOR UPDATE;
    IF NOT FOUND THEN
        v_item := NULL; v_qty := 0; v_held := 0;
        IF p_mode = 'set' AND p_qty > 0 THEN
            RETURN jsonb_build_object('status', 'not_in_cart');
        END IF;
    END IF;
    v_target := CASE WHEN p_mode = 'add' THEN v_qty + p_qty ELSE p_qty END;
    IF v_target > p_max_line THEN
        RETURN jsonb_build_object('status', 'too_many', 'available', v_avail);
    END IF;
    IF v_target > v_held AND NOT v_active THEN
        RETURN jsonb_build_object('status', 'not_found');
    END IF;
    IF v_target > 0 THEN
        SELECT ci.currency INTO v_other FROM cart_items ci
         WHERE ci.cart_id = v_cart AND ci.variant_id <> p_variant AND ci.currency <> v_currency LIMIT 1;
        IF FOUND THEN
            RETURN jsonb_build_object('status', 'currency_mismatch', 'currency', v_other);
        END IF;
    END IF;

    v_delta := v_target - v_held;
    IF v_delta > 0 THEN
        -- the reservation: one conditional UPDATE, never a read-then-write
        UPDATE product_variants SET reserved = reserved + v_delta
         WHERE id = p_variant AND on_hand - reserved - sold >= v_delta
        RETURNING on_hand - reserved - sold, stock_version INTO v_avail, v_version;
        IF NOT FOUND THEN
            SELECT on_hand - reserved - sold, stock_version INTO v_avail, v_version
              FROM product_variants WHERE id = p_variant;
            RETURN jsonb_build_object('status', 'out_of_stock', 'available', v_avail, 'version', v_version);
        END IF;
        INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id, idempotency_key, livestream_id)
        VALUES (p_variant, 'reservation', v_delta, 'cart', p_user, v_key, p_stream)
        ON CONFLICT (variant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
        IF NOT FOUND THEN
            -- the same request ran concurrently and committed first: undo ours (we hold the row lock)
            UPDATE product_variants SET reserved = reserved - v_delta WHERE id = p_variant;
            RETURN jsonb_build_object('status', 'duplicate', 'changed', false,
                                      'cart', commerce_cart_json(v_cart));
        END IF;
    ELSIF v_delta < 0 THEN
        UPDATE product_variants SET reserved = reserved + v_delta WHERE id = p_variant
        RETURNING on_hand - reserved - sold, stock_version INTO v_avail, v_version;
        INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id, livestream_id)
        VALUES (p_variant, 'release', v_delta, 'cart', p_user, p_stream);
    END IF;

    IF v_target = 0 THEN
        DELETE FROM cart_items WHERE id = v_item;
    ELSIF v_item IS NOT NULL THEN
        UPDATE cart_items
           SET quantity = v_target, reserved_until = now() + make_interval(secs => p_seconds),
               unit_price_minor = v_price, currency = v_currency,
               livestream_id = coalesce(p_stream, livestream_id)
         WHERE id = v_item;
    ELSE
        INSERT INTO cart_items (cart_id, variant_id, livestream_id, quantity, unit_price_minor, currency,
                                reserved_until, idempotency_key)
        VALUES (v_cart, p_variant, p_stream, v_target, v_price, v_currency,
                now() + make_interval(secs => p_seconds),
                CASE WHEN p_key IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM cart_items x WHERE x.cart_id = v_cart AND x.idempotency_key = p_key)
                THEN p_key END);
    END IF;
    RETURN jsonb_build_object('status', 'ok', 'available', v_avail, 'version', v_version, 'changed', v_delta <> 0,
                              'cart', commerce_cart_json(v_cart));
END
$$;
REVOKE ALL ON FUNCTION commerce_cart_change(uuid, uuid, text, int, uuid, text, int, int) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Expired reservations back to stock: one batch, lines locked with SKIP LOCKED (a line being changed or
-- checked out right now is left for the next round), variants locked in id order (as checkout does).
-- Returns the variants whose availability changed.
-- ---------------------------------------------------------------------------
CREATE FUNCTION commerce_release_expired(p_limit int) RETURNS TABLE (variant_id uuid, available int, version bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_ids  uuid[];
    v_vars uuid[];
    v_qtys int[];
BEGIN
    PERFORM set_config('role', 'live_app', true), set_config('app.user_id', '', true),
            set_config('app.role', 'system', true);
    SELECT array_agg(e.id), array_agg(e.variant_id), array_agg(e.quantity)
      INTO v_ids, v_vars, v_qtys
      FROM (SELECT ci.id, ci.variant_id, ci.quantity FROM cart_items ci
             WHERE ci.reserved_until < now()
             ORDER BY ci.reserved_until LIMIT p_limit
             FOR UPDATE SKIP LOCKED) e;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    UPDATE cart_items SET reserved_until = NULL WHERE id = ANY (v_ids);
    PERFORM 1 FROM product_variants v WHERE v.id = ANY (v_vars) ORDER BY v.id FOR UPDATE;
    INSERT INTO inventory_events (variant_id, kind, quantity, reason)
    SELECT t.vid, 'release', -t.q, 'reservation expired' FROM unnest(v_vars, v_qtys) AS t(vid, q);
    RETURN QUERY
    WITH per AS (SELECT t.vid, sum(t.q)::int AS q FROM unnest(v_vars, v_qtys) AS t(vid, q) GROUP BY t.vid)
    UPDATE product_variants v SET reserved = v.reserved - per.q
      FROM per WHERE v.id = per.vid
    RETURNING v.id, v.on_hand - v.reserved - v.sold, v.stock_version;
END
$$;
REVOKE ALL ON FUNCTION commerce_release_expired(int) FROM PUBLIC;
