-- 0010_payment_refunds: the refunds we ask the payment providers for.
--
-- A paid order that is canceled (by the buyer while `paid`, by the seller before `shipped`) and an order canceled
-- before money arrived for it anyway (`paid_after_cancel`) are refunded by themselves: the transaction that cancels
-- the order writes one row here (status `requested`) and adds the amount to payments.refund_due_minor; the call to
-- the provider happens after that transaction commits, never inside one. A call that fails, or that a crash
-- interrupted, is retried by a sweeper with backoff (`attempts`, `next_attempt_at`, the last `error`); after the
-- last attempt, or when the provider refuses, the row is `failed` and the payment is flagged `refund_due` for a
-- human. The provider's refund webhook settles it: `succeeded`, and the debt on the payment is paid off.
--
-- One refund per order (UNIQUE order_id): canceling an order twice, or a retried cancel, cannot owe it twice.
-- The idempotency key sent to the provider is derived from the row (`refund-<id>`), so a retried call is one
-- refund at the provider.

CREATE TABLE payment_refunds (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id       uuid NOT NULL REFERENCES payments (id),
    order_id         uuid NOT NULL UNIQUE REFERENCES orders (id),
    provider         text NOT NULL CHECK (provider IN ('stripe', 'paystack', 'sandbox')),
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status           text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'succeeded', 'failed')),
    reason           text,
    idempotency_key  text GENERATED ALWAYS AS ('refund-' || id::text) STORED,
    provider_ref     text,           -- the provider's refund id, once it accepted the request
    provider_status  text,           -- what the provider said about it (pending, succeeded, ...)
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    error            text,           -- the last failure (kept after a later success for the record)
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    succeeded_at     timestamptz,
    UNIQUE (provider, provider_ref)
);
CREATE INDEX payment_refunds_payment_idx ON payment_refunds (payment_id, created_at);
-- the sweeper's work: requested, not yet accepted by the provider, due
CREATE INDEX payment_refunds_due_idx ON payment_refunds (next_attempt_at)
    WHERE status = 'requested' AND provider_ref IS NULL;
CREATE TRIGGER payment_refunds_touch BEFORE UPDATE ON payment_refunds
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Row-level security, like the other payment tables (0005_rls.sql): admin/system do everything (refunds are
-- written only by server-side work); the buyer and the seller of the order read its refund.
-- ---------------------------------------------------------------------------
GRANT SELECT, INSERT, UPDATE, DELETE ON payment_refunds TO live_app;
ALTER TABLE payment_refunds ENABLE ROW LEVEL SECURITY;
CREATE POLICY payment_refunds_privileged ON payment_refunds FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY payment_refunds_select ON payment_refunds FOR SELECT TO live_app
    USING (app_can_see_order(order_id));
