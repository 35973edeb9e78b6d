-- Withdrawals as the risk engine decided them, recorded by the order processor: the whole
-- record as JSON (decimals as strings), the first decision of a reference kept.
CREATE TABLE withdrawals (
    account_id BIGINT NOT NULL,
    reference  TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    PRIMARY KEY (account_id, reference)
);
