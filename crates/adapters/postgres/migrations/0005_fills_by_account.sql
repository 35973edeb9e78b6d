-- An account's trade history (`GET /api/fills`) runs newest first by trade time, order and
-- trade, filtered by symbol and side: columns computed from each fill's body, so fills stored
-- before have them too, and so do fills written by processors of an older build that are
-- still running during an upgrade. A fill without a time (recorded before fills carried one)
-- sorts as time 0. Adding stored columns rewrites the table under an exclusive lock.
ALTER TABLE fills
    ADD COLUMN symbol TEXT GENERATED ALWAYS AS (body::jsonb ->> 'symbol') STORED,
    ADD COLUMN side TEXT GENERATED ALWAYS AS (body::jsonb ->> 'side') STORED,
    ADD COLUMN traded_at BIGINT
        GENERATED ALWAYS AS (COALESCE((body::jsonb ->> 'at')::bigint, 0)) STORED;
CREATE INDEX fills_by_account_time ON fills (account_id, traded_at, order_id, trade_id);
