//! Behaviour of the SQLite store beyond the port contract: how it keeps its data, and that
//! writes grouped into one transaction stay independent.

use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::order::{NewOrder, Order, OrderType, Side, TimeInForce};
use oms_domain::Decimal;
use oms_embedded::{SqliteOptions, SqliteStore};
use oms_ports::order_store::{Balance, OrderStore, StoreBatch};
use std::sync::Arc;

fn order(id: u64, account: u64) -> Order {
    Order::from_new(&NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account: AccountId(account),
        symbol: Symbol::new("BTC/USD"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(Decimal::new(4500000, 2)),
        stop_price: None,
        quantity: Decimal::new(1, 1),
        expire_at: None,
        created_at: Timestamp(id as i64),
    })
}

#[tokio::test]
async fn the_database_uses_wal_migrations_and_text_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oms.db");
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    store
        .apply(StoreBatch {
            balances: vec![(
                AccountId(1),
                Balance {
                    asset: Asset::new("BTC"),
                    available: Decimal::from_str_exact("0.00000001").unwrap(),
                    reserved: Decimal::from_str_exact("1.50").unwrap(),
                },
            )],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 14);
    let (kind, text): (String, String) = raw
        .query_row("SELECT typeof(reserved), reserved FROM balances", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((kind.as_str(), text.as_str()), ("text", "1.50"));
    drop(raw);
    drop(store);
    // Reopening runs no migration twice.
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.balances(AccountId(1)).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_in_a_group_does_not_undo_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    // Many concurrent batches end up in shared transactions; every third one fails.
    let tasks: Vec<_> = (1..=90u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut orders = vec![order(i, 7)];
                if i % 3 == 0 {
                    orders.push(order(u64::MAX, 7));
                }
                (
                    i,
                    store
                        .apply(StoreBatch {
                            orders,
                            ..StoreBatch::default()
                        })
                        .await,
                )
            })
        })
        .collect();
    for t in tasks {
        let (i, res) = t.await.unwrap();
        assert_eq!(res.is_ok(), i % 3 != 0, "batch {i}: {res:?}");
    }
    for i in 1..=90u64 {
        let got = store.order(AccountId(7), OrderId(i)).await.unwrap();
        assert_eq!(got.is_some(), i % 3 != 0, "order {i}");
    }
}

#[tokio::test]
async fn expired_idempotency_keys_are_purged_in_the_background() {
    use oms_ports::idempotency::{Claim, IdempotencyStore};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oms.db");
    let options = SqliteOptions {
        purge_interval: Duration::from_millis(20),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options).await.unwrap();
    let keys = store.idempotency();
    // Both written (the purge may already have taken the expired one by the time the table
    // could be counted, so that is not checked).
    for (key, ttl) in [
        ("expired", Duration::ZERO),
        ("live", Duration::from_secs(3600)),
    ] {
        assert_eq!(keys.claim(key, "f", ttl).await.unwrap(), Claim::Acquired);
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let count = || -> i64 {
        raw.query_row("SELECT COUNT(*) FROM idempotency_keys", [], |r| r.get(0))
            .unwrap()
    };
    // Wait (bounded) for the purge task; no claim touches the expired key meanwhile.
    for _ in 0..500 {
        if count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left: String = raw
        .query_row("SELECT key FROM idempotency_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!((count(), left.as_str()), (1, "live"));
}
