-- 0009_commerce_batched_cart_changes: many cart changes of one variant in one statement.
--
-- In a flash sale thousands of buyers ask for the same row at once. One change per round trip made the sale
-- a queue of round trips (measured: 100 units, 5,000 buyers, ~1.75 ms per unit sold, and the app's event
-- loop between every two of them). A worker now sends the changes of one variant that wait together in one
-- call, and they are applied in the order given, in one transaction:
--   1. without a lock: the idempotency keys are looked up (a replayed add answers `duplicate`), the variant is
--      read once, and adds beyond what the read says is free are answered `out_of_stock` at once (unless the
--      batch also holds quantity changes, which may give units back: then every add goes on to step 3);
--   2. the carts of the changes that go on are created or locked in user-id order, the order every other
--      transaction takes carts in before the variant (a single change, checkout), so batches never deadlock
--      with them or with each other;
--   3. each change, in the order given, does what the single change of 0007 did: the line locked, the one
--      conditional UPDATE of the variant (the CHECK and `on_hand - reserved - sold >= n` still guard every
--      unit), the ledger row (whose unique idempotency key makes a repeat inside the batch a `duplicate`),
--      the cart line.
-- A change that fails raises, and the whole batch rolls back: the app then retries the changes one by one,
-- so one bad request never fails another buyer's. The single change is this function with one element.
-- Returns one row per change, in the given order (idx from 1): status (ok, duplicate, out_of_stock,
-- not_found, not_in_cart, too_many, currency_mismatch), available and version (the variant as this change
-- left or saw it; an add refused in step 1 gets what was left for it after the adds ahead of it, and no
-- version unless that is what the row held), cart_id (ok and duplicate), detail (the cart's currency for
-- currency_mismatch).

CREATE FUNCTION commerce_cart_changes(p_variant uuid, p_users uuid[], p_modes text[], p_qtys int[],
                                      p_streams uuid[], p_keys text[], p_seconds int, p_max_line int)
    RETURNS TABLE (idx int, status text, available int, version bigint, cart_id uuid, detail text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    n          int := coalesce(array_length(p_users, 1), 0);
    i          int;
    v_keys     text[];
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
    v_left     int;
    v_prune    boolean;
    v_repeat   boolean[];
    v_user     uuid;
    v_cart     uuid;
    v_item     uuid;
    v_qty      int;
    v_held     int;
    v_target   int;
    v_delta    int;
    v_other    text;
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

    -- 1. without a lock
    SELECT v.on_hand - v.reserved - v.sold, v.currency, v.price_minor, p.status = 'active', v.stock_version
      INTO v_avail, v_currency, v_price, v_active, v_version
      FROM product_variants v JOIN products p ON p.id = v.product_id
     WHERE v.id = p_variant;
    IF NOT FOUND THEN
        RETURN QUERY SELECT g::int, 'not_found'::text, NULL::int, NULL::bigint, NULL::uuid, NULL::text
                       FROM generate_series(1, n) AS g;
        RETURN;
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
            v_left := v_left - p_qtys[i];
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

    -- 3. each change, in the order given
    FOR i IN 1..n LOOP
        CONTINUE WHEN r_status[i] IS NOT NULL;
        v_cart := r_cart[i];
        SELECT ci.id, ci.quantity, CASE WHEN ci.reserved_until IS NOT NULL THEN ci.quantity ELSE 0 END
          INTO v_item, v_qty, v_held
          FROM cart_items ci WHERE ci.cart_id = v_cart AND ci.variant_id = p_variant
           FOR UPDATE;
        IF NOT FOUND THEN
            v_item := NULL; v_qty := 0; v_held := 0;
            IF p_modes[i] = 'set' AND p_qtys[i] > 0 THEN
                r_status[i] := 'not_in_cart';
                CONTINUE;
            END IF;
        END IF;
        v_target := CASE WHEN p_modes[i] = 'add' THEN v_qty + p_qtys[i] ELSE p_qtys[i] END;
        IF v_target > p_max_line THEN
            r_status[i] := 'too_many';
            r_avail[i] := v_avail;
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

        v_delta := v_target - v_held;
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
            VALUES (p_variant, 'reservation', v_delta, 'cart', p_users[i], v_keys[i], p_streams[i])
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
            VALUES (p_variant, 'release', v_delta, 'cart', p_users[i], p_streams[i]);
        END IF;

        IF v_target = 0 THEN
            DELETE FROM cart_items WHERE id = v_item;
        ELSIF v_item IS NOT NULL THEN
            UPDATE cart_items
               SET quantity = v_target, reserved_until = now() + make_interval(secs => p_seconds),
                   unit_price_minor = v_price, currency = v_currency,
                   livestream_id = coalesce(p_streams[i], livestream_id)
             WHERE id = v_item;
        ELSE
            INSERT INTO cart_items (cart_id, variant_id, livestream_id, quantity, unit_price_minor, currency,
                                    reserved_until, idempotency_key)
            VALUES (v_cart, p_variant, p_streams[i], v_target, v_price, v_currency,
                    now() + make_interval(secs => p_seconds),
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
REVOKE ALL ON FUNCTION commerce_cart_changes(uuid, uuid[], text[], int[], uuid[], text[], int, int) FROM PUBLIC;

DROP FUNCTION commerce_cart_change(uuid, uuid, text, int, uuid, text, int, int);
