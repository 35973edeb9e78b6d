-- Accounts' dead man's switches, as the order processor last recorded them from the log:
-- the deadline (ms since the epoch; NULL when switched off), the change of the setting, and
-- whether it fired. An account without a row never set one.
CREATE TABLE cancel_afters (
    account_id BIGINT  PRIMARY KEY,
    deadline   BIGINT,
    change     BIGINT  NOT NULL,
    triggered  BOOLEAN NOT NULL
);
