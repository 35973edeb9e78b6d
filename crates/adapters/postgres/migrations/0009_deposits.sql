-- Deposits the ledger credited, recorded by the order processor, by the ledger's reference
-- (the admin API's reference with the asset): the whole record as JSON. Deposits credited
-- before this table existed are not in it.
CREATE TABLE deposits (
    account_id BIGINT NOT NULL,
    reference  TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    PRIMARY KEY (account_id, reference)
);
