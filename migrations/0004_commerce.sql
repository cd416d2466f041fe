-- 0004_commerce: addresses, carts, orders, checkout idempotency, payments, webhooks, shipping.
-- Money is bigint minor units + char(3) ISO currency.

-- ---------------------------------------------------------------------------
-- Addresses (at most one default per user)
-- ---------------------------------------------------------------------------
CREATE TABLE addresses (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL,
    line1       text NOT NULL,
    line2       text,
    city        text NOT NULL,
    state       text,
    postal_code text,
    country     char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    phone       text,
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_user_idx ON addresses (user_id, created_at DESC);
-- switching the default: clear the old one first, then set the new one
CREATE UNIQUE INDEX addresses_one_default_key ON addresses (user_id) WHERE is_default;
CREATE TRIGGER addresses_touch BEFORE UPDATE ON addresses
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Carts: one active cart per user
-- ---------------------------------------------------------------------------
CREATE TABLE carts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'converted', 'abandoned')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX carts_one_active_key ON carts (user_id) WHERE status = 'active';
CREATE INDEX carts_user_idx ON carts (user_id, created_at DESC);
-- abandoned-cart sweeps
CREATE INDEX carts_active_updated_idx ON carts (updated_at) WHERE status = 'active';
CREATE TRIGGER carts_touch BEFORE UPDATE ON carts
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE cart_items (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    cart_id          uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    variant_id       uuid NOT NULL REFERENCES product_variants (id) ON DELETE CASCADE,
    livestream_id    uuid REFERENCES livestreams (id) ON DELETE SET NULL,  -- where it was added from
    quantity         int NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reserved_until   timestamptz,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cart_id, variant_id)
);
CREATE UNIQUE INDEX cart_items_idem_key ON cart_items (cart_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX cart_items_variant_idx ON cart_items (variant_id);
CREATE INDEX cart_items_livestream_idx ON cart_items (livestream_id) WHERE livestream_id IS NOT NULL;
-- reservation expiry sweeps
CREATE INDEX cart_items_reserved_until_idx ON cart_items (reserved_until) WHERE reserved_until IS NOT NULL;
CREATE TRIGGER cart_items_touch BEFORE UPDATE ON cart_items
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Orders: one per seller per checkout
-- ---------------------------------------------------------------------------
CREATE SEQUENCE order_number_seq;

-- Human-readable order number: LV-00000042 (grows past 8 digits, never truncates).
CREATE FUNCTION next_order_number() RETURNS text
    LANGUAGE sql VOLATILE
    AS $$
        SELECT 'LV-' || lpad(n::text, greatest(8, length(n::text)), '0')
        FROM nextval('public.order_number_seq') AS n
    $$;

CREATE TABLE orders (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number           text NOT NULL UNIQUE DEFAULT next_order_number(),
    user_id          uuid NOT NULL REFERENCES users (id),
    seller_id        uuid NOT NULL REFERENCES sellers (id),
    livestream_id    uuid REFERENCES livestreams (id) ON DELETE SET NULL,
    status           text NOT NULL DEFAULT 'pending_payment' CHECK (status IN (
                         'pending_payment', 'paid', 'processing', 'shipped',
                         'delivered', 'canceled', 'refunded')),
    subtotal_minor   bigint NOT NULL CHECK (subtotal_minor >= 0),
    discount_minor   bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    shipping_minor   bigint NOT NULL DEFAULT 0 CHECK (shipping_minor >= 0),
    total_minor      bigint NOT NULL CHECK (total_minor >= 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    coupon_id        uuid REFERENCES coupons (id) ON DELETE SET NULL,
    shipping_address jsonb,
    checkout_key     text,           -- idempotency key of the checkout that created it
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_total_check CHECK (total_minor = subtotal_minor - discount_minor + shipping_minor)
);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC);
CREATE INDEX orders_seller_idx ON orders (seller_id, status, created_at DESC);
CREATE INDEX orders_livestream_idx ON orders (livestream_id) WHERE livestream_id IS NOT NULL;
CREATE INDEX orders_coupon_idx ON orders (coupon_id) WHERE coupon_id IS NOT NULL;
-- expiry of unpaid orders
CREATE INDEX orders_pending_idx ON orders (created_at) WHERE status = 'pending_payment';
-- a retried checkout must not create a second order for the same seller
CREATE UNIQUE INDEX orders_checkout_key ON orders (user_id, checkout_key, seller_id)
    WHERE checkout_key IS NOT NULL;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Line items keep a snapshot (title, sku, price); catalog rows are archived, not deleted.
CREATE TABLE order_items (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       uuid NOT NULL REFERENCES products (id),
    variant_id       uuid NOT NULL REFERENCES product_variants (id),
    title            text NOT NULL,
    sku              text NOT NULL,
    quantity         int NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$')
);
CREATE INDEX order_items_order_idx ON order_items (order_id);
CREATE INDEX order_items_product_idx ON order_items (product_id);
CREATE INDEX order_items_variant_idx ON order_items (variant_id);

CREATE TABLE order_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status text CHECK (from_status IN ('pending_payment', 'paid', 'processing', 'shipped',
                                            'delivered', 'canceled', 'refunded')),
    to_status   text NOT NULL CHECK (to_status IN ('pending_payment', 'paid', 'processing', 'shipped',
                                                   'delivered', 'canceled', 'refunded')),
    actor_id    uuid,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'seller', 'admin', 'system', 'webhook')),
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);

-- ---------------------------------------------------------------------------
-- Checkout idempotency: the first request with a key stores its response.
-- ---------------------------------------------------------------------------
CREATE TABLE checkout_requests (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    response     jsonb,
    status       text NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'completed', 'failed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX checkout_requests_created_idx ON checkout_requests (created_at);
CREATE TRIGGER checkout_requests_touch BEFORE UPDATE ON checkout_requests
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Payments: one payment per checkout, linked to that checkout's orders.
-- ---------------------------------------------------------------------------
CREATE TABLE payments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL REFERENCES users (id),
    provider          text NOT NULL CHECK (provider IN ('stripe', 'paystack', 'sandbox')),
    provider_ref      text,          -- Stripe PaymentIntent id / Paystack reference
    status            text NOT NULL DEFAULT 'requires_action' CHECK (status IN (
                          'requires_action', 'processing', 'succeeded', 'failed', 'canceled', 'refunded')),
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    client_secret     text,
    authorization_url text,
    idempotency_key   text UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_ref)
);
CREATE INDEX payments_user_idx ON payments (user_id, created_at DESC);
-- reconciliation of payments still in flight
CREATE INDEX payments_open_idx ON payments (created_at) WHERE status IN ('requires_action', 'processing');
CREATE TRIGGER payments_touch BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE payment_orders (
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    PRIMARY KEY (payment_id, order_id)
);
CREATE INDEX payment_orders_order_idx ON payment_orders (order_id);

-- Inbound webhooks, deduplicated by the provider's event id.
CREATE TABLE webhook_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider     text NOT NULL,
    event_key    text NOT NULL,
    event_type   text,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    error        text,
    UNIQUE (provider, event_key)
);
CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (received_at) WHERE processed_at IS NULL;

-- ---------------------------------------------------------------------------
-- Shipping: labels are bought by a worker; carrier tracking arrives by webhook.
-- ---------------------------------------------------------------------------
CREATE TABLE shipments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id        uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    carrier         text,
    service         text,
    tracking_number text,
    label_url       text,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'purchasing', 'purchased', 'in_transit', 'delivered', 'returned', 'failure')),
    rate_minor      bigint CHECK (rate_minor >= 0),
    currency        char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    provider_ref    text,          -- shipping provider's transaction id
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipments_order_idx ON shipments (order_id);
CREATE INDEX shipments_tracking_idx ON shipments (tracking_number, carrier) WHERE tracking_number IS NOT NULL;
CREATE UNIQUE INDEX shipments_provider_ref_key ON shipments (provider_ref) WHERE provider_ref IS NOT NULL;
-- label-purchase worker queue
CREATE INDEX shipments_pending_idx ON shipments (created_at) WHERE status IN ('pending', 'purchasing');
CREATE TRIGGER shipments_touch BEFORE UPDATE ON shipments
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE shipping_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id uuid NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    status      text NOT NULL,
    status_date timestamptz NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shipment_id, status, status_date)
);
