-- Accounts' own kill switches, as the order processor last recorded them from the log.
-- An account without a row has its switch off.
CREATE TABLE kill_switches (
    account_id BIGINT  PRIMARY KEY,
    enabled    BOOLEAN NOT NULL
);
