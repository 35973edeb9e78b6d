//! Numbered schema migrations, applied in order at open. `schema_version` records each applied
//! one; a database from a newer build (a version this build does not know) is refused.

use crate::error::{EmbeddedError, EmbeddedResult};
use rusqlite::Connection;

/// (version, SQL). Append only: an applied migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    account_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    demo       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Only a hash of each key is kept: a leaked database does not leak credentials.
CREATE TABLE api_keys (
    key_hash   TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_by_account ON api_keys (account_id);

-- The columns the API filters on, plus the whole order as JSON (decimals as strings).
CREATE TABLE orders (
    order_id   INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    symbol     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    side       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX orders_by_account ON orders (account_id, order_id DESC);
CREATE INDEX orders_by_account_symbol ON orders (account_id, symbol, order_id DESC);
CREATE INDEX orders_by_account_status ON orders (account_id, status, order_id DESC);
CREATE INDEX orders_by_status ON orders (status);

CREATE TABLE fills (
    order_id   INTEGER NOT NULL,
    trade_id   INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (order_id, trade_id)
);

-- Decimals as TEXT: read back exactly, scale included.
CREATE TABLE balances (
    account_id INTEGER NOT NULL,
    asset      TEXT    NOT NULL,
    available  TEXT    NOT NULL,
    reserved   TEXT    NOT NULL,
    PRIMARY KEY (account_id, asset)
);

CREATE TABLE client_order_ids (
    account_id      INTEGER NOT NULL,
    client_order_id TEXT    NOT NULL,
    order_id        INTEGER NOT NULL,
    PRIMARY KEY (account_id, client_order_id)
);

CREATE TABLE consumer_positions (
    consumer    TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);

CREATE TABLE snapshots (
    name        TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    state       BLOB    NOT NULL,
    PRIMARY KEY (name, partition)
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE idempotency_keys (
    key         TEXT    PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    completed   INTEGER NOT NULL,
    status      INTEGER,
    headers     TEXT,
    body        BLOB,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
"#,
    ),
    (
        3,
        r#"
-- An uncompleted claim records its request's intent and is kept past its lock, so a retry
-- after a crash resumes that request instead of running a second one. NULL lock_until: a
-- claim from before, locked until it expires.
ALTER TABLE idempotency_keys ADD COLUMN intent BLOB;
ALTER TABLE idempotency_keys ADD COLUMN lock_until INTEGER;
"#,
    ),
    (
        4,
        r#"
-- Orders by status, counted as the order store writes them (`write_batch`) rather than by
-- scanning an index on every /metrics scrape. The index it replaces moved an entry on every
-- status change, between places anywhere in the index for orders that rested long: more
-- pages written per fill. (Triggers would keep the count too, but every insert then pays for
-- a statement journal: twice the CPU per new order.)
CREATE TABLE order_status_counts (
    status TEXT    PRIMARY KEY,
    orders INTEGER NOT NULL
);
INSERT INTO order_status_counts (status, orders)
    SELECT status, COUNT(*) FROM orders GROUP BY status;
DROP INDEX orders_by_status;
"#,
    ),
    (
        5,
        r#"
-- Accounts' own kill switches, as the order processor last recorded them from the log. An
-- account without a row has its switch off.
CREATE TABLE kill_switches (
    account_id INTEGER PRIMARY KEY,
    enabled    INTEGER NOT NULL
);
"#,
    ),
    (
        6,
        r#"
-- The change of the global kill switch (the row of account 0): a copy of an older switch,
-- read late from another partition, must not overwrite a newer one. Accounts' rows keep 0.
ALTER TABLE kill_switches ADD COLUMN change INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        7,
        r#"
-- An account's trade history (`GET /api/fills`) runs newest first by trade time, order and
-- trade, filtered by symbol and side. The time is the index's key: the processor writes it
-- with each fill, and fills from before get it here; a fill without one (recorded before
-- fills carried their time) sorts as time 0. Symbol and side are only filtered on: virtual
-- columns computed from the body as rows are read.
ALTER TABLE fills ADD COLUMN symbol TEXT
    GENERATED ALWAYS AS (json_extract(body, '$.symbol')) VIRTUAL;
ALTER TABLE fills ADD COLUMN side TEXT
    GENERATED ALWAYS AS (json_extract(body, '$.side')) VIRTUAL;
ALTER TABLE fills ADD COLUMN traded_at INTEGER NOT NULL DEFAULT 0;
UPDATE fills SET traded_at = COALESCE(json_extract(body, '$.at'), 0);
CREATE INDEX fills_by_account_time ON fills (account_id, traded_at, order_id, trade_id);
"#,
    ),
    (
        8,
        r#"
-- What an API key may do: TRADE (everything, as every key before) or READ.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'TRADE';
"#,
    ),
    (
        9,
        r#"
-- Accounts' dead man's switches, as the order processor last recorded them from the log:
-- the deadline (ms since the epoch; NULL when switched off), the change of the setting, and
-- whether it fired. An account without a row never set one.
CREATE TABLE cancel_afters (
    account_id INTEGER PRIMARY KEY,
    deadline   INTEGER,
    change     INTEGER NOT NULL,
    triggered  INTEGER NOT NULL
);
"#,
    ),
    (
        10,
        r#"
-- Withdrawals as the risk engine decided them, recorded by the order processor: the whole
-- record as JSON (decimals as strings), the first decision of a reference kept.
CREATE TABLE withdrawals (
    account_id INTEGER NOT NULL,
    reference  TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (account_id, reference)
);
"#,
    ),
    (
        11,
        r#"
-- Deposits the ledger credited, recorded by the order processor, by the ledger's reference
-- (the admin API's reference with the asset): the whole record as JSON. Deposits credited
-- before this table existed are not in it.
CREATE TABLE deposits (
    account_id INTEGER NOT NULL,
    reference  TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (account_id, reference)
);
"#,
    ),
    (
        12,
        r#"
-- One account per name: names are how the configuration finds its accounts at start (and
-- `fees` is the fee account's). Checked before each insert, that rule still let two callers at
-- once both insert; the index makes the second insert fail, and serves the look-up by name.
-- An account whose name an older account already had keeps its id and is renamed "name (id)".
UPDATE accounts SET name = name || ' (' || account_id || ')'
WHERE account_id NOT IN (SELECT MIN(account_id) FROM accounts GROUP BY name)
  AND NOT EXISTS (
      SELECT 1 FROM accounts other
      WHERE other.name = accounts.name || ' (' || accounts.account_id || ')');
-- One whose new name another account has already: its id twice.
UPDATE accounts SET name = name || ' (' || account_id || ') (' || account_id || ')'
WHERE account_id NOT IN (SELECT MIN(account_id) FROM accounts GROUP BY name);
CREATE UNIQUE INDEX accounts_by_name ON accounts (name);
"#,
    ),
    (
        13,
        r#"
-- Signed-in sessions ended (signed out) before their expiry, by their token's SHA-256: the
-- cookie is signed, not stored, so ending one early must be remembered until it expires.
CREATE TABLE ended_sessions (
    token_hash TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ended_sessions_by_expiry ON ended_sessions (expires_at);
"#,
    ),
    (
        14,
        r#"
-- Operators' trading statuses of instruments (PUT /api/admin/instruments/status),
-- the newest change per symbol, over the configured status.
CREATE TABLE instrument_statuses (
    symbol TEXT    PRIMARY KEY,
    status TEXT    NOT NULL,
    change INTEGER NOT NULL,
    set_at INTEGER NOT NULL
);
"#,
    ),
];

pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

pub(crate) fn migrate(conn: &mut Connection) -> EmbeddedResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if current > latest() {
        return Err(EmbeddedError::Invalid(format!(
            "the database has schema version {current}; this build knows up to {}",
            latest()
        )));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (version, now),
        )?;
        tracing::info!(version, "applied SQLite migration");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a build that knew the migrations before `version` left it.
    fn before_migration(version: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 < version) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, 0)",
                [version],
            )
            .unwrap();
        }
        conn
    }

    #[test]
    fn accounts_sharing_a_name_keep_the_oldest_on_it_and_the_others_are_renamed() {
        let mut conn = before_migration(12);
        for (id, name) in [
            (1, "fees"),
            (2, "desk"),
            (3, "desk"),
            (4, "fees"),
            (5, "bot"),
            (6, "bot (7)"),
            (7, "bot"),
        ] {
            conn.execute(
                "INSERT INTO accounts (account_id, name, demo, created_at) VALUES (?1, ?2, 0, 0)",
                rusqlite::params![id, name],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let names: Vec<(i64, String)> = conn
            .prepare("SELECT account_id, name FROM accounts ORDER BY account_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expect = [
            (1, "fees"),
            (2, "desk"),
            (3, "desk (3)"),
            (4, "fees (4)"),
            (5, "bot"),
            (6, "bot (7)"),
            (7, "bot (7) (7)"),
        ];
        assert_eq!(names, expect.map(|(i, n)| (i, n.to_string())).to_vec());
        let again = conn.execute(
            "INSERT INTO accounts (name, demo, created_at) VALUES ('desk', 0, 0)",
            [],
        );
        assert!(again.is_err(), "a name is now unique");
    }

    #[test]
    fn migrations_are_numbered_in_order_and_apply_once() {
        assert!(MIGRATIONS.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        assert_eq!(MIGRATIONS[0].0, 1);
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let applied: Vec<i64> = conn
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(applied, (1..=latest()).collect::<Vec<_>>());
    }

    #[test]
    fn status_counts_start_from_the_orders_already_there() {
        let mut conn = before_migration(4);
        for (id, status) in [(1, "NEW"), (2, "NEW"), (3, "FILLED")] {
            conn.execute(
                "INSERT INTO orders VALUES (?1, 1, 'BTC/USD', ?2, 'BUY', 0, 0, '{}')",
                rusqlite::params![id, status],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let counts = |conn: &Connection| -> Vec<(String, i64)> {
            conn.prepare(
                "SELECT status, orders FROM order_status_counts WHERE orders > 0 ORDER BY status",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let expect = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
        };
        assert_eq!(counts(&conn), expect(&[("FILLED", 1), ("NEW", 2)]));
        let index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'orders_by_status'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(index, 0, "the index the counts replace is gone");
    }

    #[test]
    fn fills_from_before_get_their_symbol_side_and_time() {
        let mut conn = before_migration(7);
        let o = oms_conformance::fixtures::order(
            5,
            oms_domain::ids::AccountId(1),
            "ETH/USD",
            oms_domain::order::Side::Sell,
            0,
        );
        let timed = oms_conformance::fixtures::fill(&o, 7, "3000", "0.1");
        let mut untimed = oms_conformance::fixtures::fill(&o, 8, "3000", "0.1");
        untimed.at = None;
        for f in [&timed, &untimed] {
            conn.execute(
                "INSERT INTO fills (order_id, trade_id, account_id, body) VALUES (5, ?1, 1, ?2)",
                rusqlite::params![f.trade_id.0 as i64, serde_json::to_string(f).unwrap()],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, String, i64)> = conn
            .prepare("SELECT symbol, side, traded_at FROM fills ORDER BY trade_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let at = timed.at.unwrap().0;
        assert_eq!(
            rows,
            vec![
                ("ETH/USD".into(), "SELL".into(), at),
                ("ETH/USD".into(), "SELL".into(), 0),
            ]
        );
    }

    #[test]
    fn keys_from_before_scopes_may_trade() {
        let mut conn = before_migration(8);
        conn.execute("INSERT INTO api_keys VALUES ('h', 1, 0)", [])
            .unwrap();
        migrate(&mut conn).unwrap();
        let scope: String = conn
            .query_row("SELECT scope FROM api_keys WHERE key_hash = 'h'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(scope, "TRADE");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, 0)",
            [latest() + 1],
        )
        .unwrap();
        assert!(matches!(migrate(&mut conn), Err(EmbeddedError::Invalid(_))));
    }
}
