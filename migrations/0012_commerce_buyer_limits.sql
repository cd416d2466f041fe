-- 0012_commerce_buyer_limits: a per-buyer cap per variant, holds that are not renewed past their first expiry,
-- and stream attribution only for a live stream showing the product (issue 11, items 13 and 14).
--
-- 1. product_variants.max_per_buyer: how many units of the variant one buyer may hold (1-99), in the cart and
--    in orders not paid yet (a checkout does not free the cap: units waiting for payment are held too); NULL means
--    the platform default the app passes in (CART_MAX_PER_BUYER, 5). Enforced inside the batched statement:
--    step 1 refuses an add that would take the buyer past the cap before it counts against the units left
--    (so one account's burst cannot make others' adds look sold out), and step 3, with the buyer's cart
--    locked, refuses it for good: N parallel adds of one buyer never hold more than the cap.
-- 2. cart_holds: when a cart first reserved a variant, the hold's end is fixed (`expires_at`, first
--    reservation + CART_RESERVATION_SECONDS). Later changes of the line, removing it and adding it again
--    included, do not move it. Once it is over, the line cannot take units again (`hold_expired`) until
--    CART_HOLD_COOLDOWN_SECONDS after that end (the units are free for everybody else meanwhile), or until
--    the buyer checks out (a new cart starts with no holds; checkout takes the line's units if they are free).
-- 3. A change's stream counts for attribution only if that stream is live and spotlights or lists the
--    variant's product; any other stream id is ignored (stored as NULL), never an error. One query per batch.

ALTER TABLE product_variants
    ADD COLUMN max_per_buyer int CHECK (max_per_buyer BETWEEN 1 AND 99);

CREATE TABLE cart_holds (
    cart_id    uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    variant_id uuid NOT NULL REFERENCES product_variants (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (cart_id, variant_id)
);
CREATE INDEX cart_holds_expires_idx ON cart_holds (expires_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON cart_holds TO live_app;
ALTER TABLE cart_holds ENABLE ROW LEVEL SECURITY;
-- written only by commerce_cart_changes (SECURITY DEFINER) and purged by server-side work (system)
CREATE POLICY cart_holds_privileged ON cart_holds FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());

DROP FUNCTION commerce_cart_changes(uuid, uuid[], text[], int[], uuid[], text[], int, int);

-- As 0009 (same steps, same result columns), plus: p_default_cap (the cap of a variant without its own),
-- p_cooldown (seconds after a hold's end before the cart may hold that variant again). New statuses:
-- too_many (detail: the cap), hold_expired (detail: when the cart may hold the variant again).
CREATE FUNCTION commerce_cart_changes(p_variant uuid, p_users uuid[], p_modes text[], p_qtys int[],
                                      p_streams uuid[], p_keys text[], p_seconds int, p_max_line int,
                                      p_default_cap int, p_cooldown int)
    RETURNS TABLE (idx int, status text, available int, version bigint, cart_id uuid, detail text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    n          int := coalesce(array_length(p_users, 1), 0);
    i          int;
    j          int;
    v_keys     text[];
    v_streams  uuid[];
    v_shown    uuid[];
    r_status   text[];
    r_avail    int[];
    r_version  bigint[];
    r_cart     uuid[];
    r_detail   text[];
    v_avail    int;
    v_version  bigint;
    v_currency text;
    v_price    bigint;
    v_active   boolean;
    v_product  uuid;
    v_cap      int;
    v_left     int;
    v_prune    boolean;
    v_repeat   boolean[];
    v_seen     uuid[] := '{}';
    v_sums     int[] := '{}';
    v_user     uuid;
    v_cart     uuid;
    v_item     uuid;
    v_qty      int;
    v_held     int;
    v_target   int;
    v_delta    int;
    v_other    text;
    v_window   timestamptz;
    v_until    timestamptz;
    v_pending  int;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF n = 0 THEN
        RETURN;
    END IF;
    IF array_length(p_modes, 1) IS DISTINCT FROM n OR array_length(p_qtys, 1) IS DISTINCT FROM n
       OR array_length(p_streams, 1) IS DISTINCT FROM n OR array_length(p_keys, 1) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'cart changes: arrays of different lengths' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1..n LOOP
        IF p_modes[i] IS NULL OR p_modes[i] NOT IN ('add', 'set') OR p_qtys[i] IS NULL OR p_qtys[i] < 0
           OR (p_modes[i] = 'add' AND p_qtys[i] < 1) OR p_users[i] IS NULL THEN
            RAISE EXCEPTION 'bad cart change % %', p_modes[i], p_qtys[i] USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    r_status := array_fill(NULL::text, ARRAY[n]);
    r_avail := array_fill(NULL::int, ARRAY[n]);
    r_version := array_fill(NULL::bigint, ARRAY[n]);
    r_cart := array_fill(NULL::uuid, ARRAY[n]);
    r_detail := array_fill(NULL::text, ARRAY[n]);
    v_keys := array_fill(NULL::text, ARRAY[n]);
    v_streams := array_fill(NULL::uuid, ARRAY[n]);

    -- 1. without a lock
    SELECT v.on_hand - v.reserved - v.sold, v.currency, v.price_minor, p.status = 'active', v.stock_version,
           v.product_id, least(coalesce(v.max_per_buyer, p_default_cap), p_max_line)
      INTO v_avail, v_currency, v_price, v_active, v_version, v_product, v_cap
      FROM product_variants v JOIN products p ON p.id = v.product_id
     WHERE v.id = p_variant;
    IF NOT FOUND THEN
        RETURN QUERY SELECT g::int, 'not_found'::text, NULL::int, NULL::bigint, NULL::uuid, NULL::text
                       FROM generate_series(1, n) AS g;
        RETURN;
    END IF;
    -- the streams named that are live and spotlight or list the product: the others are not attributed
    IF EXISTS (SELECT 1 FROM unnest(p_streams) AS s WHERE s IS NOT NULL) THEN
        SELECT coalesce(array_agg(l.id), '{}') INTO v_shown FROM livestreams l
         WHERE l.id = ANY (p_streams) AND l.status = 'live'
           AND (l.spotlight_product_id = v_product
                OR EXISTS (SELECT 1 FROM livestream_products lp
                            WHERE lp.livestream_id = l.id AND lp.product_id = v_product));
        FOR i IN 1..n LOOP
            IF p_streams[i] = ANY (v_shown) THEN
                v_streams[i] := p_streams[i];
            END IF;
        END LOOP;
    END IF;
    v_left := v_avail;
    v_prune := NOT ('set' = ANY (p_modes));
    -- a repeat of an earlier change in this batch (same buyer and key) takes no unit: step 3 answers it
    SELECT array_agg(x.rn > 1 AND p_keys[x.g] IS NOT NULL ORDER BY x.g) INTO v_repeat
      FROM (SELECT g, row_number() OVER (PARTITION BY p_users[g], p_keys[g] ORDER BY g) AS rn
              FROM generate_series(1, n) AS g) x;
    FOR i IN 1..n LOOP
        IF p_keys[i] IS NOT NULL THEN
            v_keys[i] := 'cart:' || p_users[i]::text || ':' || p_keys[i];
            IF EXISTS (SELECT 1 FROM inventory_events e
                        WHERE e.variant_id = p_variant AND e.idempotency_key = v_keys[i]) THEN
                r_status[i] := 'duplicate';
                r_cart[i] := (SELECT c.id FROM carts c WHERE c.user_id = p_users[i] AND c.status = 'active');
                CONTINUE;
            END IF;
        END IF;
        IF p_modes[i] = 'add' AND NOT v_active THEN
            r_status[i] := 'not_found';
        ELSIF v_repeat[i] THEN
            NULL;
        ELSIF p_modes[i] = 'add' AND v_prune AND v_left < p_qtys[i] THEN
            -- what is left for it after the changes ahead of it; a version only while that is the row's state
            r_status[i] := 'out_of_stock';
            r_avail[i] := v_left;
            r_version[i] := CASE WHEN v_left = v_avail THEN v_version END;
        ELSIF p_modes[i] = 'add' AND v_prune THEN
            -- the buyer's cap, before the add counts against the units left: what the line and their unpaid
            -- orders hold now (read once per buyer, only for adds that stock could satisfy) plus their adds ahead
            -- of it in the batch
            j := array_position(v_seen, p_users[i]);
            IF j IS NULL THEN
                v_seen := v_seen || p_users[i];
                v_sums := v_sums || (coalesce((SELECT ci.quantity FROM carts c
                                                 JOIN cart_items ci ON ci.cart_id = c.id AND ci.variant_id = p_variant
                                                WHERE c.user_id = p_users[i] AND c.status = 'active'), 0)
                                     + (SELECT coalesce(sum(oi.quantity), 0)::int FROM orders o
                                          JOIN order_items oi ON oi.order_id = o.id AND oi.variant_id = p_variant
                                         WHERE o.user_id = p_users[i] AND o.status = 'pending_payment'));
                j := array_length(v_seen, 1);
            END IF;
            IF v_sums[j] + p_qtys[i] > v_cap THEN
                r_status[i] := 'too_many';
                r_detail[i] := v_cap::text;
            ELSE
                v_sums[j] := v_sums[j] + p_qtys[i];
                v_left := v_left - p_qtys[i];
            END IF;
        END IF;
    END LOOP;

    -- 2. the carts of the changes that go on, locked in user-id order
    FOR i IN SELECT g FROM generate_series(1, n) AS g WHERE r_status[g] IS NULL ORDER BY p_users[g], g LOOP
        IF p_users[i] IS DISTINCT FROM v_user THEN
            v_user := p_users[i];
            INSERT INTO carts (user_id) VALUES (v_user)
                ON CONFLICT (user_id) WHERE status = 'active' DO UPDATE SET updated_at = now()
                RETURNING id INTO v_cart;
        END IF;
        r_cart[i] := v_cart;
    END LOOP;

    -- 3. each change, in the order given (the buyer's cart is locked: their changes are serialized)
    FOR i IN 1..n LOOP
        CONTINUE WHEN r_status[i] IS NOT NULL;
        v_cart := r_cart[i];
        SELECT ci.id, ci.quantity, CASE WHEN ci.reserved_until IS NOT NULL THEN ci.quantity ELSE 0 END,
               ci.reserved_until
          INTO v_item, v_qty, v_held, v_until
          FROM cart_items ci WHERE ci.cart_id = v_cart AND ci.variant_id = p_variant
           FOR UPDATE;
        IF NOT FOUND THEN
            v_item := NULL; v_qty := 0; v_held := 0; v_until := NULL;
            IF p_modes[i] = 'set' AND p_qtys[i] > 0 THEN
                r_status[i] := 'not_in_cart';
                CONTINUE;
            END IF;
        END IF;
        v_target := CASE WHEN p_modes[i] = 'add' THEN v_qty + p_qtys[i] ELSE p_qtys[i] END;
        v_pending := 0;
        IF v_target > v_qty THEN
            -- units of the variant in the buyer's orders waiting for payment hold stock as much as a cart does
            SELECT coalesce(sum(oi.quantity), 0)::int INTO v_pending FROM orders o
              JOIN order_items oi ON oi.order_id = o.id AND oi.variant_id = p_variant
             WHERE o.user_id = p_users[i] AND o.status = 'pending_payment';
        END IF;
        IF v_target > v_qty AND v_target + v_pending > v_cap THEN
            -- the cap, unpaid orders included (a line above it, the seller having lowered it, may still go down)
            r_status[i] := 'too_many';
            r_detail[i] := v_cap::text;
            CONTINUE;
        END IF;
        IF v_target > v_held AND NOT v_active THEN
            r_status[i] := 'not_found';
            CONTINUE;
        END IF;
        IF v_target > 0 THEN
            SELECT ci.currency INTO v_other FROM cart_items ci
             WHERE ci.cart_id = v_cart AND ci.variant_id <> p_variant AND ci.currency <> v_currency LIMIT 1;
            IF FOUND THEN
                r_status[i] := 'currency_mismatch';
                r_detail[i] := v_other;
                CONTINUE;
            END IF;
        END IF;

        -- the hold's end, fixed at the cart's first reservation of this variant (a line held before this
        -- migration has no row: its reserved_until stands for it)
        v_window := coalesce((SELECT h.expires_at FROM cart_holds h
                               WHERE h.cart_id = v_cart AND h.variant_id = p_variant), v_until);
        IF v_target > v_held THEN
            IF v_window IS NULL OR v_window <= now() - make_interval(secs => p_cooldown) THEN
                -- the first hold, or a fresh one long after the last one ended
                v_window := now() + make_interval(secs => p_seconds);
                INSERT INTO cart_holds (cart_id, variant_id, expires_at) VALUES (v_cart, p_variant, v_window)
                    ON CONFLICT (cart_id, variant_id) DO UPDATE SET expires_at = EXCLUDED.expires_at;
            ELSIF v_window <= now() AND v_target > v_qty THEN
                -- no renewal: more units only after the cool-down (or through checkout)
                r_status[i] := 'hold_expired';
                r_detail[i] := to_char((v_window + make_interval(secs => p_cooldown)) AT TIME ZONE 'UTC',
                                       'YYYY-MM-DD"T"HH24:MI:SS"Z"');
                CONTINUE;
            ELSIF v_window <= now() THEN
                -- past the hold, a line may shrink but takes no units: it stays as it is held (or not)
                v_target := least(v_target, v_qty);
            END IF;
        END IF;

        v_delta := CASE WHEN v_window IS NOT NULL AND v_window <= now() AND v_held = 0 THEN 0
                        ELSE v_target - v_held END;
        IF v_delta > 0 THEN
            -- the reservation: one conditional UPDATE, never a read-then-write
            UPDATE product_variants SET reserved = reserved + v_delta
             WHERE id = p_variant AND on_hand - reserved - sold >= v_delta
            RETURNING on_hand - reserved - sold, stock_version INTO v_avail, v_version;
            IF NOT FOUND THEN
                SELECT v.on_hand - v.reserved - v.sold, v.stock_version INTO v_avail, v_version
                  FROM product_variants v WHERE v.id = p_variant;
                r_status[i] := 'out_of_stock';
                r_avail[i] := v_avail;
                r_version[i] := v_version;
                CONTINUE;
            END IF;
            INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id, idempotency_key,
                                          livestream_id)
            VALUES (p_variant, 'reservation', v_delta, 'cart', p_users[i], v_keys[i], v_streams[i])
            ON CONFLICT (variant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
            IF NOT FOUND THEN
                -- the same request already ran (in this batch, or concurrently and committed first): undo ours
                UPDATE product_variants SET reserved = reserved - v_delta WHERE id = p_variant
                RETURNING on_hand - reserved - sold, stock_version INTO v_avail, v_version;
                r_status[i] := 'duplicate';
                CONTINUE;
            END IF;
        ELSIF v_delta < 0 THEN
            UPDATE product_variants SET reserved = reserved + v_delta WHERE id = p_variant
            RETURNING on_hand - reserved - sold, stock_version INTO v_avail, v_version;
            INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id, livestream_id)
            VALUES (p_variant, 'release', v_delta, 'cart', p_users[i], v_streams[i]);
        END IF;

        IF v_target = 0 THEN
            DELETE FROM cart_items WHERE id = v_item;
        ELSIF v_item IS NOT NULL THEN
            UPDATE cart_items
               SET quantity = v_target,
                   reserved_until = CASE WHEN v_window > now() OR v_held > 0 THEN v_window END,
                   unit_price_minor = v_price, currency = v_currency,
                   livestream_id = coalesce(v_streams[i], livestream_id)
             WHERE id = v_item;
        ELSE
            INSERT INTO cart_items (cart_id, variant_id, livestream_id, quantity, unit_price_minor, currency,
                                    reserved_until, idempotency_key)
            VALUES (v_cart, p_variant, v_streams[i], v_target, v_price, v_currency, v_window,
                    CASE WHEN p_keys[i] IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM cart_items x WHERE x.cart_id = v_cart AND x.idempotency_key = p_keys[i])
                    THEN p_keys[i] END);
        END IF;
        r_status[i] := 'ok';
        r_avail[i] := v_avail;
        r_version[i] := v_version;
    END LOOP;

    RETURN QUERY SELECT u.idx::int, u.status, u.available, u.version,
                        CASE WHEN u.status IN ('ok', 'duplicate') THEN u.cart_id END, u.detail
                   FROM unnest(r_status, r_avail, r_version, r_cart, r_detail)
                        WITH ORDINALITY AS u(status, available, version, cart_id, detail, idx)
                  ORDER BY u.idx;
END
$$;
REVOKE ALL ON FUNCTION commerce_cart_changes(uuid, uuid[], text[], int[], uuid[], text[], int, int, int, int)
    FROM PUBLIC;
