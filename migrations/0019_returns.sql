-- 0019_returns: a buyer's return of a delivered order's items (docs/shipping.md, "Returns").
--
-- A return is requested by the order's buyer within the seller's return window, for some of the order's items;
-- the seller approves it (a return label is bought: `return_label_id`, a shipment of kind 'return') or refuses
-- it; the return follows its shipment (in_transit, delivered back at the seller); the seller marks it received,
-- with the refund (a payment_refunds row of this return) and the units that go back to stock. One open return
-- per order at a time (partial unique index). Every status change is a row of return_status_history.
--
-- Writes run as system after the services authorize (live/auth/policy.py); the buyer and the seller read theirs.

CREATE TABLE returns (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id),
    seller_id        uuid NOT NULL REFERENCES sellers (id),
    status           text NOT NULL DEFAULT 'requested' CHECK (status IN (
                         'requested', 'approved', 'refused', 'canceled', 'in_transit', 'delivered', 'received',
                         'refunded')),
    reason           text NOT NULL CHECK (reason IN (
                         'damaged', 'defective', 'wrong_item', 'not_as_described', 'changed_mind', 'other')),
    note             text CHECK (char_length(note) <= 1000),           -- the buyer's words
    decision_note    text CHECK (char_length(decision_note) <= 1000),  -- the seller's (a refusal's reason)
    refund_minor     bigint CHECK (refund_minor >= 0),                 -- set when received
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    return_label_id  uuid REFERENCES shipments (id) ON DELETE SET NULL,
    decided_by       uuid,
    decided_at       timestamptz,
    received_by      uuid,
    received_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX returns_one_open_key ON returns (order_id)
    WHERE status IN ('requested', 'approved', 'in_transit', 'delivered');
CREATE INDEX returns_user_idx ON returns (user_id, created_at DESC, id DESC);
CREATE INDEX returns_seller_idx ON returns (seller_id, created_at DESC, id DESC);
CREATE INDEX returns_label_idx ON returns (return_label_id) WHERE return_label_id IS NOT NULL;
CREATE TRIGGER returns_touch BEFORE UPDATE ON returns FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- the order's lines a return takes back; `restocked`: how many of them went back to stock at receipt
CREATE TABLE return_items (
    return_id     uuid NOT NULL REFERENCES returns (id) ON DELETE CASCADE,
    order_item_id uuid NOT NULL REFERENCES order_items (id) ON DELETE CASCADE,
    quantity      int NOT NULL CHECK (quantity > 0),
    restocked     int NOT NULL DEFAULT 0 CHECK (restocked >= 0 AND restocked <= quantity),
    PRIMARY KEY (return_id, order_item_id)
);
CREATE INDEX return_items_item_idx ON return_items (order_item_id);

CREATE TABLE return_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    return_id   uuid NOT NULL REFERENCES returns (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'seller', 'admin', 'system', 'carrier')),
    actor_id    uuid,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX return_status_history_idx ON return_status_history (return_id, id);

-- One live label per order and direction still, except that a return label that reached its end (delivered back,
-- or returned to the buyer) makes room for the label of the order's next return (0016 kept one return label per
-- order for ever). db/shipments.py insert() catches the unique violation whatever the predicate.
DROP INDEX shipments_one_active_key;
CREATE UNIQUE INDEX shipments_one_active_key ON shipments (order_id, kind)
    WHERE status NOT IN ('voided', 'purchase_failed') AND (kind = 'outbound' OR status NOT IN ('delivered', 'returned'));

-- ---------------------------------------------------------------------------
-- Refunds: several per order (a cancel's, and one per return). The cancel's stays unique per order (a retried
-- cancel cannot owe it twice), a return's unique per return (a retried receipt cannot owe it twice).
-- ---------------------------------------------------------------------------
ALTER TABLE payment_refunds ADD COLUMN return_id uuid REFERENCES returns (id);
ALTER TABLE payment_refunds DROP CONSTRAINT payment_refunds_order_id_key;
CREATE UNIQUE INDEX payment_refunds_order_key ON payment_refunds (order_id) WHERE return_id IS NULL;
CREATE UNIQUE INDEX payment_refunds_return_key ON payment_refunds (return_id) WHERE return_id IS NOT NULL;
CREATE INDEX payment_refunds_order_idx ON payment_refunds (order_id);

-- ---------------------------------------------------------------------------
-- Row-level security: admin/system do everything; the buyer and the seller read theirs
-- ---------------------------------------------------------------------------
ALTER TABLE returns ENABLE ROW LEVEL SECURITY;
CREATE POLICY returns_privileged ON returns FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY returns_select ON returns FOR SELECT TO live_app
    USING (user_id = app_user_id() OR seller_id IN (SELECT app_seller_ids()));

ALTER TABLE return_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY return_items_privileged ON return_items FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY return_items_select ON return_items FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM returns r WHERE r.id = return_id));

ALTER TABLE return_status_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY return_status_history_privileged ON return_status_history FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY return_status_history_select ON return_status_history FOR SELECT TO live_app
    USING (EXISTS (SELECT 1 FROM returns r WHERE r.id = return_id));

GRANT SELECT, INSERT, UPDATE, DELETE ON returns, return_items, return_status_history TO live_app;
GRANT USAGE, SELECT ON SEQUENCE return_status_history_id_seq TO live_app;
