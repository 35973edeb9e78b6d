//! `PgStore` beyond the shared suite: migrations, outages, concurrency, PostgreSQL specifics.

use oms_conformance::fixtures;
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::order::{Order, OrderStatus, Side};
use oms_ports::order_store::{FillQuery, OrderStore, Position, StoreBatch};
use oms_ports::PortError;
use oms_postgres::{latest_schema_version, PgOptions, PgStore};
use oms_testkit::postgres::PostgresServer;
use std::sync::Arc;
use std::time::Duration;

async fn store(server: &PostgresServer) -> PgStore {
    let store = PgStore::connect(&server.url(), 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_from_many_replicas_at_once() {
    let server = PostgresServer::new();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(PgStore::connect(&server.url(), 2).await.expect("connect"));
    }
    let applied = futures_join(
        stores
            .iter()
            .map(|s| {
                let s = s.clone();
                async move { s.migrate().await }
            })
            .collect(),
    )
    .await;
    let applied: Vec<Vec<i64>> = applied.into_iter().map(|a| a.expect("migrate")).collect();
    let all: Vec<i64> = (1..=latest_schema_version()).collect();
    assert_eq!(
        applied.iter().filter(|a| **a == all).count(),
        1,
        "one replica applies every migration: {applied:?}"
    );
    assert!(
        applied.iter().filter(|a| a.is_empty()).count() == 3,
        "the others find nothing to do: {applied:?}"
    );
    assert!(stores[0].migrate().await.unwrap().is_empty());
}

/// Awaits every future concurrently (no extra dependency for `join_all`).
async fn futures_join<T: Send + 'static>(
    futs: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_unavailable_and_a_restarted_one_serves_again() {
    let server = PostgresServer::new();
    let store = PgStore::connect_with(
        &server.url(),
        PgOptions {
            max_connections: 2,
            connect_timeout: Duration::from_secs(1),
            acquire_timeout: Duration::from_secs(2),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let account = store
        .create_account("outage", false, Timestamp(1))
        .await
        .unwrap()
        .id;

    server.stop();
    // The first call on a pooled connection may be the one that finds it closed; both it and
    // every later call must say Unavailable, never hang or claim success.
    for _ in 0..3 {
        match store.ping().await {
            Err(PortError::Unavailable(_)) => {}
            other => panic!("ping with the database down: expected Unavailable, got {other:?}"),
        }
        match store.balances(account).await {
            Err(PortError::Unavailable(_)) => {}
            other => panic!("read with the database down: expected Unavailable, got {other:?}"),
        }
        match store.apply(batch_for(account, 1)).await {
            Err(PortError::Unavailable(_)) => {}
            other => panic!("write with the database down: expected Unavailable, got {other:?}"),
        }
    }
    match PgStore::connect(&server.url(), 1).await {
        Err(PortError::Unavailable(_)) => {}
        Err(e) => panic!("connect with the database down: expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connect with the database down succeeded"),
    }

    server.start();
    // Connections the restart closed are replaced; a call may still meet one of them first.
    let mut ok = false;
    for _ in 0..5 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "the store serves again after the database restarts");
    store.apply(batch_for(account, 2)).await.unwrap();
    assert_eq!(
        store.positions(&format!("outage-{account}")).await.unwrap()[0].next_offset,
        2
    );
}

fn batch_for(account: AccountId, offset: u64) -> StoreBatch {
    StoreBatch {
        positions: vec![Position {
            consumer: format!("outage-{account}"),
            topic: "orders".into(),
            partition: 0,
            next_offset: offset,
        }],
        ..StoreBatch::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_client_order_id_have_one_winner() {
    let server = PostgresServer::new();
    let store = Arc::new(store(&server).await);
    let account = store
        .create_account("race", false, Timestamp(1))
        .await
        .unwrap()
        .id;
    let tasks: Vec<_> = (1..=32u64)
        .map(|i| {
            let store = store.clone();
            async move {
                (
                    i,
                    store
                        .claim_client_order_id(account, "same", OrderId(i))
                        .await
                        .unwrap(),
                )
            }
        })
        .collect();
    let results = futures_join(tasks).await;
    let winners: Vec<u64> = results
        .iter()
        .filter(|(_, holder)| holder.is_none())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {results:?}");
    for (i, holder) in &results {
        if *i != winners[0] {
            assert_eq!(
                *holder,
                Some(OrderId(winners[0])),
                "claim {i} sees the winner"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_on_overlapping_rows_all_commit() {
    // Batches touching the same positions in different orders: rows are locked in key
    // order, so none deadlocks and every batch lands.
    let server = PostgresServer::new();
    let store = Arc::new(store(&server).await);
    let pos = |partition: u32, next_offset: u64| Position {
        consumer: "overlap".into(),
        topic: "orders".into(),
        partition,
        next_offset,
    };
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let store = store.clone();
            let mut positions: Vec<Position> = (0..8).map(|p| pos(p, i)).collect();
            if i % 2 == 1 {
                positions.reverse();
            }
            async move {
                store
                    .apply(StoreBatch {
                        positions,
                        ..StoreBatch::default()
                    })
                    .await
            }
        })
        .collect();
    for res in futures_join(tasks).await {
        res.expect("batch");
    }
    let got = store.positions("overlap").await.unwrap();
    assert_eq!(got.len(), 8);
    // Every batch wrote one offset to all eight partitions atomically: they agree.
    assert!(
        got.iter().all(|p| p.next_offset == got[0].next_offset),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_requiring_tls_is_refused_and_a_bad_url_is_invalid() {
    match PgStore::connect("postgres://u@127.0.0.1:1/db?sslmode=require", 1).await {
        Err(PortError::Invalid(m)) => assert!(m.contains("TLS"), "{m}"),
        Err(e) => panic!("expected Invalid, got {e:?}"),
        Ok(_) => panic!("expected Invalid, got a store"),
    }
    match PgStore::connect("postgres://u@127.0.0.1:1/db?nonsense=1", 1).await {
        Err(PortError::Invalid(_)) => {}
        Err(e) => panic!("expected Invalid, got {e:?}"),
        Ok(_) => panic!("expected Invalid, got a store"),
    }
}

/// The stored counts summed per shard, by shard.
async fn counts_by_shard(client: &tokio_postgres::Client) -> Vec<(i32, i64)> {
    let rows = client
        .query(
            "SELECT shard, SUM(orders)::bigint FROM order_status_counts GROUP BY shard ORDER BY shard",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn counts(all: Vec<(OrderStatus, u64)>) -> Vec<(OrderStatus, u64)> {
    all.into_iter().filter(|c| c.1 > 0).collect()
}

/// Fills stored before their symbol, side and time had columns get them from the migration
/// that adds them, as do fills an older build writes after it, and are listed in the
/// account's trade history with the fills written by this build.
#[tokio::test]
async fn fills_from_before_join_the_account_trade_history() {
    let server = PostgresServer::new();
    let (client, conn) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE oms_schema_version (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now());",
        )
        .await
        .unwrap();
    let before = [
        include_str!("../migrations/0001_schema.sql"),
        include_str!("../migrations/0002_order_status_counts.sql"),
        include_str!("../migrations/0003_kill_switches.sql"),
        include_str!("../migrations/0004_global_kill_switch.sql"),
    ];
    for (version, sql) in (1i64..).zip(before) {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO oms_schema_version (version, name) VALUES ($1, 'before')",
                &[&version],
            )
            .await
            .unwrap();
    }
    let account = AccountId(4242);
    let o = fixtures::order(900, account, "ETH/USD", Side::Sell, 0);
    let old = fixtures::fill(&o, 1, "3000", "0.1");
    let mut untimed = fixtures::fill(&o, 2, "3000", "0.1");
    untimed.at = None;
    for f in [&old, &untimed] {
        client
            .execute(
                "INSERT INTO fills (order_id, trade_id, account_id, body) VALUES (900, $1, 4242, $2)",
                &[&(f.trade_id.0 as i64), &serde_json::to_string(f).unwrap()],
            )
            .await
            .unwrap();
    }
    let store = PgStore::connect(&server.url(), 2).await.unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        (5..=latest_schema_version()).collect::<Vec<_>>()
    );
    let mut new = fixtures::fill(&o, 3, "3001", "0.1");
    new.at = Some(Timestamp(old.at.unwrap().0 + 1));
    store
        .apply(StoreBatch {
            fills: vec![new.clone()],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    // A processor of the older build, still running during the upgrade, writes as it did.
    let mut late = fixtures::fill(&o, 4, "3002", "0.1");
    late.at = Some(Timestamp(old.at.unwrap().0 + 2));
    client
        .execute(
            "INSERT INTO fills (order_id, trade_id, account_id, body) VALUES (900, 4, 4242, $1)",
            &[&serde_json::to_string(&late).unwrap()],
        )
        .await
        .unwrap();
    let all = store.account_fills(&FillQuery::of(account)).await.unwrap();
    assert_eq!(all, vec![late, new, old.clone(), untimed]);
    let q = FillQuery {
        symbol: Some(Symbol::new("ETH/USD")),
        side: Some(Side::Sell),
        to: old.at,
        ..FillQuery::of(account)
    };
    assert_eq!(store.account_fills(&q).await.unwrap()[0], old);
}

/// Accounts that share a name in a database from before names were unique: the oldest keeps
/// the name, the others are renamed "name (id)", and from then on a name is taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_sharing_a_name_keep_the_oldest_on_it_and_the_others_are_renamed() {
    let server = PostgresServer::new();
    let store = PgStore::connect(&server.url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Back to version 10: migration 11 only adds the index, and 12 and 13 a table each.
    client
        .batch_execute(
            "DROP INDEX accounts_by_name;
             DROP TABLE ended_sessions;
             DROP TABLE instrument_statuses;
             DELETE FROM oms_schema_version WHERE version >= 11;
             INSERT INTO accounts (account_id, name, demo, created_at) VALUES
                 (1, 'fees', false, 0), (2, 'desk', false, 0), (3, 'desk', false, 0),
                 (4, 'fees', false, 0), (5, 'bot', false, 0), (6, 'bot (7)', false, 0),
                 (7, 'bot', false, 0);
             -- New accounts come after these ids, so a refusal below is the name's.
             SELECT setval(pg_get_serial_sequence('accounts', 'account_id'), 7);",
        )
        .await
        .unwrap();
    assert_eq!(store.migrate().await.unwrap(), vec![11, 12, 13]);
    let names: Vec<(i64, String)> = client
        .query(
            "SELECT account_id, name FROM accounts ORDER BY account_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
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
    assert_eq!(
        store.account_named("desk").await.unwrap().map(|a| a.id),
        Some(AccountId(2))
    );
    assert!(matches!(
        store.create_account("fees", false, Timestamp(1)).await,
        Err(PortError::Conflict(_))
    ));
    let fresh = store
        .create_account("fresh", false, Timestamp(1))
        .await
        .unwrap();
    // After the ones inserted (the refused insert used up one id of the sequence).
    assert!(fresh.id > AccountId(7), "{:?}", fresh.id);
}

/// A database of the first schema, with orders in it, is migrated to counted statuses: the
/// counts start from the orders there, then follow batches applied by replicas concurrently
/// (each on its own shard) and batches applied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_status_counts_start_from_the_orders_already_there() {
    let server = PostgresServer::new();
    let (client, conn) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(include_str!("../migrations/0001_schema.sql"))
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE TABLE oms_schema_version (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO oms_schema_version (version, name) VALUES (1, 'schema');
             INSERT INTO orders SELECT g, 1, 'BTC/USD',
                 CASE WHEN g <= 3 THEN 'NEW' ELSE 'FILLED' END, 'BUY', g, g, '{}'
             FROM generate_series(1, 5) g;",
        )
        .await
        .unwrap();
    // Two replicas, each a process with its own connections.
    let replicas = [
        Arc::new(PgStore::connect(&server.url(), 4).await.unwrap()),
        Arc::new(PgStore::connect(&server.url(), 4).await.unwrap()),
    ];
    let store = replicas[0].clone();
    assert_eq!(
        store.migrate().await.unwrap(),
        (2..=latest_schema_version()).collect::<Vec<_>>()
    );
    assert_eq!(
        counts(store.order_counts_by_status().await.unwrap()),
        vec![(OrderStatus::New, 3), (OrderStatus::Filled, 2)]
    );

    // The replicas apply batches at once, each on its own orders: 20 orders each, then each
    // of them accepted.
    let account = store
        .create_account("counts", false, Timestamp(1))
        .await
        .unwrap()
        .id;
    let order = |id: u64, status: OrderStatus| {
        let mut o: Order = fixtures::order(id, account, "BTC/USD", Side::Buy, id as i64);
        o.status = status;
        o
    };
    let batch = |partition: u32, ids: std::ops::Range<u64>, status: OrderStatus| StoreBatch {
        orders: ids.map(|id| order(id, status)).collect(),
        positions: vec![Position {
            consumer: "processor".into(),
            topic: "orders".into(),
            partition,
            next_offset: 1,
        }],
        ..StoreBatch::default()
    };
    for status in [OrderStatus::New, OrderStatus::Accepted] {
        let tasks: Vec<_> = (0..2u32)
            .flat_map(|replica| {
                (0..10u64).map(move |i| {
                    let first = 100 + u64::from(replica) * 1000 + i * 2;
                    (replica, first..first + 2)
                })
            })
            .map(|(replica, ids)| {
                let store = replicas[replica as usize].clone();
                let b = batch(replica, ids, status);
                async move { store.apply(b).await }
            })
            .collect();
        for res in futures_join(tasks).await {
            res.expect("batch");
        }
    }
    let expected = vec![
        (OrderStatus::New, 3),
        (OrderStatus::Accepted, 40),
        (OrderStatus::Filled, 2),
    ];
    assert_eq!(
        counts(store.order_counts_by_status().await.unwrap()),
        expected
    );
    store
        .apply(batch(0, 100..110, OrderStatus::Accepted))
        .await
        .unwrap();
    assert_eq!(
        counts(store.order_counts_by_status().await.unwrap()),
        expected,
        "a batch applied again moves nothing"
    );
    let by_shard = counts_by_shard(&client).await;
    assert_eq!(by_shard[0], (-1, 5), "the orders there before, on no shard");
    assert_eq!(
        by_shard[1..].iter().map(|s| s.1).sum::<i64>(),
        40,
        "the replicas' orders on their connections' shards: {by_shard:?}"
    );
    assert!(
        by_shard.len() > 2,
        "more than one writer's shard: {by_shard:?}"
    );

    // Connections that are gone have their counts folded into shard -1 at the next start.
    drop(replicas);
    drop(store);
    let store = PgStore::connect(&server.url(), 1).await.unwrap();
    for _ in 0..100 {
        store.migrate().await.unwrap();
        let n: i64 = client
            .query_one("SELECT COUNT(DISTINCT shard) FROM order_status_counts", &[])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        // A closed connection leaves pg_stat_activity a moment after its client drops it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let by_shard = counts_by_shard(&client).await;
    assert_eq!(by_shard, vec![(-1, 45)], "folded, nothing lost");
    assert_eq!(
        counts(store.order_counts_by_status().await.unwrap()),
        expected
    );
    // Deleting orders (by hand: the OMS never does) moves the counts too.
    client
        .execute("DELETE FROM orders WHERE status = 'FILLED'", &[])
        .await
        .unwrap();
    assert_eq!(
        counts(store.order_counts_by_status().await.unwrap()),
        vec![(OrderStatus::New, 3), (OrderStatus::Accepted, 40)]
    );
    client.execute("TRUNCATE orders", &[]).await.unwrap();
    assert_eq!(
        counts(store.order_counts_by_status().await.unwrap()),
        vec![],
        "a truncated table counts nothing"
    );
}
