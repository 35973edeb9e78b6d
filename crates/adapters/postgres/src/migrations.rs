//! Numbered schema migrations, embedded in the binary and applied in order. Every replica may
//! run them at start: an advisory lock makes one apply them while the others wait, and each
//! run is one transaction (PostgreSQL's DDL is transactional), so a failed migration leaves
//! nothing half done. A database from a newer build is refused.

use crate::error;
use oms_ports::{PortError, PortResult};
use tokio_postgres::Client;

/// (version, name, SQL). Append only: an applied migration is never edited.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "schema", include_str!("../migrations/0001_schema.sql")),
    (
        2,
        "order status counts",
        include_str!("../migrations/0002_order_status_counts.sql"),
    ),
    (
        3,
        "kill_switches",
        include_str!("../migrations/0003_kill_switches.sql"),
    ),
    (
        4,
        "global kill switch change",
        include_str!("../migrations/0004_global_kill_switch.sql"),
    ),
    (
        5,
        "fills by account and time",
        include_str!("../migrations/0005_fills_by_account.sql"),
    ),
    (
        6,
        "API key scope",
        include_str!("../migrations/0006_api_key_scope.sql"),
    ),
    (
        7,
        "dead man's switches",
        include_str!("../migrations/0007_cancel_afters.sql"),
    ),
    (
        8,
        "withdrawals",
        include_str!("../migrations/0008_withdrawals.sql"),
    ),
    (
        9,
        "deposits",
        include_str!("../migrations/0009_deposits.sql"),
    ),
    (
        10,
        "references in byte order",
        include_str!("../migrations/0010_references_in_byte_order.sql"),
    ),
    (
        11,
        "unique account names",
        include_str!("../migrations/0011_unique_account_names.sql"),
    ),
    (
        12,
        "ended sessions",
        include_str!("../migrations/0012_ended_sessions.sql"),
    ),
    (
        13,
        "instrument statuses",
        include_str!("../migrations/0013_instrument_statuses.sql"),
    ),
];

/// The advisory lock key that serialises migrations ("oms_migr").
const LOCK_KEY: i64 = 0x6f6d_735f_6d69_6772;

/// The schema version this build writes.
pub fn latest_schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Brings the schema up to date; returns the versions applied now.
pub(crate) async fn migrate(client: &mut Client) -> PortResult<Vec<i64>> {
    let e = |what: &'static str| move |e| error::pg(what, e);
    // Read committed whatever the server's default: a migration that locks a table and then
    // reads it (2) must see what was committed before its lock.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(e("begin migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(e("lock migrations"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS oms_schema_version (
             version    BIGINT      PRIMARY KEY,
             name       TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(e("create oms_schema_version"))?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM oms_schema_version",
            &[],
        )
        .await
        .map_err(e("read the schema version"))?
        .try_get(0)
        .map_err(|e| error::corrupt("schema version", e))?;
    if current > latest_schema_version() {
        return Err(PortError::Invalid(format!(
            "the database has schema version {current}; this build knows up to {}",
            latest_schema_version()
        )));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .await
            .map_err(e("apply a migration"))?;
        tx.execute(
            "INSERT INTO oms_schema_version (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(e("record a migration"))?;
        applied.push(*version);
    }
    tx.commit().await.map_err(e("commit migrations"))?;
    for version in &applied {
        tracing::info!(version, "applied PostgreSQL migration");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        assert_eq!(MIGRATIONS[0].0, 1);
        assert!(MIGRATIONS.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        assert_eq!(latest_schema_version(), MIGRATIONS.len() as i64);
    }
}
