-- 0016_shipping: fulfillment. A seller's shipping settings (ship-from address, parcel defaults, free shipping,
-- return window, label auto-purchase), weight and dimensions on products and variants, the rates quoted at
-- checkout, the order's chosen rate, the shipment state machine with its history, and carrier tracking events
-- stored once (also for tracking numbers we do not know). docs/shipping.md draws the state machines.
--
-- Writes to these tables run as system (services authorize first, live/auth/policy.py); buyers and sellers read
-- what is theirs.

-- ---------------------------------------------------------------------------
-- Seller shipping settings
-- ---------------------------------------------------------------------------
CREATE TABLE seller_shipping (
    seller_id               uuid PRIMARY KEY REFERENCES sellers (id) ON DELETE CASCADE,
    ship_from               jsonb,    -- a validated address (name, line1, line2, city, state, postal_code, country, phone)
    default_weight_g        int NOT NULL DEFAULT 500 CHECK (default_weight_g BETWEEN 1 AND 70000),
    default_length_cm       numeric(6, 1) NOT NULL DEFAULT 20 CHECK (default_length_cm > 0 AND default_length_cm <= 300),
    default_width_cm        numeric(6, 1) NOT NULL DEFAULT 15 CHECK (default_width_cm > 0 AND default_width_cm <= 300),
    default_height_cm       numeric(6, 1) NOT NULL DEFAULT 10 CHECK (default_height_cm > 0 AND default_height_cm <= 300),
    free_shipping_over_minor bigint CHECK (free_shipping_over_minor >= 0),  -- NULL: never free
    return_window_days      int NOT NULL DEFAULT 30 CHECK (return_window_days BETWEEN 0 AND 365),  -- 0: no returns
    auto_purchase_label     boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER seller_shipping_touch BEFORE UPDATE ON seller_shipping
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Weight and parcel dimensions: a variant's override its product's, which override the seller's defaults
-- ---------------------------------------------------------------------------
ALTER TABLE products
    ADD COLUMN weight_g  int CHECK (weight_g BETWEEN 1 AND 70000),
    ADD COLUMN length_cm numeric(6, 1) CHECK (length_cm > 0 AND length_cm <= 300),
    ADD COLUMN width_cm  numeric(6, 1) CHECK (width_cm > 0 AND width_cm <= 300),
    ADD COLUMN height_cm numeric(6, 1) CHECK (height_cm > 0 AND height_cm <= 300);
ALTER TABLE product_variants
    ADD COLUMN weight_g  int CHECK (weight_g BETWEEN 1 AND 70000),
    ADD COLUMN length_cm numeric(6, 1) CHECK (length_cm > 0 AND length_cm <= 300),
    ADD COLUMN width_cm  numeric(6, 1) CHECK (width_cm > 0 AND width_cm <= 300),
    ADD COLUMN height_cm numeric(6, 1) CHECK (height_cm > 0 AND height_cm <= 300);

-- ---------------------------------------------------------------------------
-- Rates quoted for a buyer's cart, per seller; checkout takes one by id before it expires
-- ---------------------------------------------------------------------------
CREATE TABLE shipping_rates (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seller_id            uuid NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    carrier              text NOT NULL,            -- e.g. sandbox, usps, ups
    service              text NOT NULL,            -- service-level token, e.g. ground, express
    service_name         text NOT NULL,
    amount_minor         bigint NOT NULL CHECK (amount_minor >= 0),  -- what the buyer pays (0 when free)
    carrier_amount_minor bigint NOT NULL CHECK (carrier_amount_minor >= 0),  -- what the carrier charges
    currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    estimated_days       int CHECK (estimated_days >= 0),
    provider             text NOT NULL CHECK (provider IN ('sandbox', 'shippo')),
    provider_rate_id     text,                     -- Shippo's rate object_id (labels are bought from it)
    parcel               jsonb NOT NULL,           -- weight_g, length/width/height_cm the quote was for
    to_address           jsonb NOT NULL,
    quote_key            text NOT NULL,            -- digest of (seller, lines, address): a changed cart is a new quote
    expires_at           timestamptz NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipping_rates_user_idx ON shipping_rates (user_id, seller_id, created_at DESC);
CREATE INDEX shipping_rates_expiry_idx ON shipping_rates (expires_at);

-- the rate the buyer chose, as quoted (carrier, service, amounts, estimated days, provider rate id)
ALTER TABLE orders ADD COLUMN shipping_rate jsonb;

-- ---------------------------------------------------------------------------
-- Order statuses: the carrier's progress after payment
-- ---------------------------------------------------------------------------
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'pending_payment', 'paid', 'processing', 'label_created', 'shipped', 'in_transit', 'out_for_delivery',
    'delivered', 'delivery_failed', 'returned_to_sender', 'canceled', 'refunded'));
ALTER TABLE order_status_history DROP CONSTRAINT order_status_history_from_status_check;
ALTER TABLE order_status_history DROP CONSTRAINT order_status_history_to_status_check;
ALTER TABLE order_status_history ADD CONSTRAINT order_status_history_from_status_check CHECK (from_status IN (
    'pending_payment', 'paid', 'processing', 'label_created', 'shipped', 'in_transit', 'out_for_delivery',
    'delivered', 'delivery_failed', 'returned_to_sender', 'canceled', 'refunded'));
ALTER TABLE order_status_history ADD CONSTRAINT order_status_history_to_status_check CHECK (to_status IN (
    'pending_payment', 'paid', 'processing', 'label_created', 'shipped', 'in_transit', 'out_for_delivery',
    'delivered', 'delivery_failed', 'returned_to_sender', 'canceled', 'refunded'));
ALTER TABLE order_status_history DROP CONSTRAINT order_status_history_actor_kind_check;
ALTER TABLE order_status_history ADD CONSTRAINT order_status_history_actor_kind_check
    CHECK (actor_kind IN ('user', 'seller', 'admin', 'system', 'webhook', 'carrier'));

-- ---------------------------------------------------------------------------
-- Shipments: outbound (seller -> buyer) and return (buyer -> seller) parcels
-- ---------------------------------------------------------------------------
ALTER TABLE shipments DROP CONSTRAINT shipments_status_check;
UPDATE shipments SET status = 'label_created' WHERE status = 'purchased';
ALTER TABLE shipments ADD CONSTRAINT shipments_status_check CHECK (status IN (
    'pending', 'purchasing', 'purchase_failed', 'label_created', 'pre_transit', 'in_transit', 'out_for_delivery',
    'delivered', 'failure', 'returned', 'voiding', 'voided'));
ALTER TABLE shipments
    ADD COLUMN kind          text NOT NULL DEFAULT 'outbound' CHECK (kind IN ('outbound', 'return')),
    ADD COLUMN provider      text CHECK (provider IN ('sandbox', 'shippo', 'manual')),
    ADD COLUMN rate          jsonb,          -- the rate the label is bought from
    ADD COLUMN from_address  jsonb,
    ADD COLUMN to_address    jsonb,
    ADD COLUMN parcel        jsonb,
    ADD COLUMN tracking_url  text,
    ADD COLUMN last_event    jsonb,          -- the latest tracking event applied
    ADD COLUMN eta           timestamptz,
    ADD COLUMN last_error    text,
    ADD COLUMN purchased_at  timestamptz,
    ADD COLUMN shipped_at    timestamptz,    -- first carrier scan
    ADD COLUMN delivered_at  timestamptz,
    ADD COLUMN voided_at     timestamptz;
-- one live label per order and direction (a voided or failed purchase makes room for a new one)
CREATE UNIQUE INDEX shipments_one_active_key ON shipments (order_id, kind)
    WHERE status NOT IN ('voided', 'purchase_failed');
DROP INDEX shipments_pending_idx;

CREATE TABLE shipment_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id uuid NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'seller', 'admin', 'system', 'webhook', 'carrier')),
    actor_id    uuid,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipment_status_history_idx ON shipment_status_history (shipment_id, id);

-- ---------------------------------------------------------------------------
-- Tracking events: stored once per (tracking number, status, status date), Shippo sends no event id; an event
-- for a number we do not know is kept with no shipment
-- ---------------------------------------------------------------------------
ALTER TABLE shipping_events DROP CONSTRAINT shipping_events_shipment_id_status_status_date_key;
ALTER TABLE shipping_events ALTER COLUMN shipment_id DROP NOT NULL;
ALTER TABLE shipping_events
    ADD COLUMN provider        text NOT NULL DEFAULT 'sandbox' CHECK (provider IN ('sandbox', 'shippo')),
    ADD COLUMN carrier         text,
    ADD COLUMN tracking_number text NOT NULL DEFAULT '',
    ADD COLUMN substatus       text,
    ADD COLUMN applied         boolean NOT NULL DEFAULT false;  -- moved the shipment (false: stale or unknown)
ALTER TABLE shipping_events ALTER COLUMN provider DROP DEFAULT;
ALTER TABLE shipping_events ALTER COLUMN tracking_number DROP DEFAULT;
CREATE UNIQUE INDEX shipping_events_dedupe_key ON shipping_events (tracking_number, status, status_date);
CREATE INDEX shipping_events_shipment_idx ON shipping_events (shipment_id, status_date) WHERE shipment_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Row-level security: everything is open to admin/system; the parties read their own
-- ---------------------------------------------------------------------------
ALTER TABLE seller_shipping ENABLE ROW LEVEL SECURITY;
CREATE POLICY seller_shipping_privileged ON seller_shipping FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY seller_shipping_owner ON seller_shipping FOR ALL TO live_app
    USING (seller_id IN (SELECT app_seller_ids())) WITH CHECK (seller_id IN (SELECT app_seller_ids()));

ALTER TABLE shipping_rates ENABLE ROW LEVEL SECURITY;
CREATE POLICY shipping_rates_privileged ON shipping_rates FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY shipping_rates_owner ON shipping_rates FOR SELECT TO live_app USING (user_id = app_user_id());

ALTER TABLE shipment_status_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY shipment_status_history_privileged ON shipment_status_history FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY shipment_status_history_select ON shipment_status_history FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM shipments s WHERE s.id = shipment_id AND app_can_see_order(s.order_id)));

GRANT SELECT, INSERT, UPDATE, DELETE ON seller_shipping, shipping_rates, shipment_status_history TO live_app;
GRANT USAGE, SELECT ON SEQUENCE shipment_status_history_id_seq TO live_app;
