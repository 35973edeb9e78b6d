-- Operators' trading statuses of instruments (PUT /api/admin/instruments/status),
-- the newest change per symbol, over the configured status.
CREATE TABLE instrument_statuses (
    symbol TEXT   PRIMARY KEY,
    status TEXT   NOT NULL,
    change BIGINT NOT NULL,
    set_at BIGINT NOT NULL
);
