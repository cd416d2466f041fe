-- 0014_payment_refunds_failed: the admins' list of payments flagged for a human also shows every payment with a
-- failed refund (its flag may have been cleared or replaced by another issue meanwhile): found by this index.
CREATE INDEX payment_refunds_failed_idx ON payment_refunds (payment_id) WHERE status = 'failed';
