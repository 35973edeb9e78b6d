//! The order store suite.

use crate::fixtures::{balance, dec, fill, order};
use crate::support::{check, id_base, now_ms, run_id};
use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::instrument::TradingStatus;
use oms_domain::order::{Order, OrderStatus, RejectReason, Side};
use oms_domain::Decimal;
use oms_ports::order_store::{
    ApiKeyRecord, CancelAfterState, DepositRecord, FillCursor, FillQuery, GlobalSwitch,
    InstrumentStatusRecord, KeyScope, OrderQuery, OrderStore, Position, StoreBatch,
    WithdrawalRecord, ENDED_SESSION_GRACE_MS,
};
use oms_ports::PortError;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

const SUITE: &str = "order store";

/// Runs every order store check against handles made by `make` (see the crate docs).
///
/// Rules fixed here beyond the trait's doc comments:
/// - `OrderQuery.from` and `to` bound `created_at`, both inclusive; `limit` 0 means no limit.
/// - `FillQuery.from` and `to` bound the trade time, both inclusive, a fill without one
///   counting as time 0; `limit` 0 means no limit.
/// - Ids and offsets above `i64::MAX` are refused (SQL BIGINT), failing the whole batch.
/// - Claiming a client order id again for the order that holds it returns `None`.
/// - `order_counts_by_status` may omit statuses with no orders.
pub async fn order_store_suite<F, Fut, S>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: OrderStore,
{
    let ctx = Ctx {
        run: run_id(),
        ids: AtomicU64::new(id_base()),
    };

    check(SUITE, "ping");
    make().await.ping().await.expect("ping");

    check(SUITE, "accounts and API keys");
    accounts_and_keys(&make().await).await;

    check(
        SUITE,
        "ended sessions: remembered, once, forgotten a grace period after their expiry",
    );
    ended_sessions(&make().await, &ctx).await;

    check(
        SUITE,
        "a batch writes orders, fills, balances and positions",
    );
    batch_writes_everything(&make().await, &ctx).await;

    check(SUITE, "a failing batch leaves nothing behind");
    batch_is_atomic(&make().await, &ctx).await;

    check(SUITE, "decimals are stored exactly");
    decimals_are_exact(&make().await, &ctx).await;

    check(SUITE, "a repeated fill is stored once");
    fills_are_deduplicated(&make().await, &ctx).await;

    check(
        SUITE,
        "an account's fills: newest first by time, order and trade; filters; pages",
    );
    account_fills(&make().await, &ctx).await;

    check(SUITE, "orders are updated in place and counted by status");
    orders_update_and_count(&make().await, &ctx).await;

    check(SUITE, "order filters and newest-first pagination");
    filters_and_pagination(&make().await, &ctx).await;

    check(
        SUITE,
        "client order ids are unique per account until released",
    );
    client_order_ids(&make().await, &ctx).await;

    check(SUITE, "consumer positions round trip");
    positions_round_trip(&make().await, &ctx).await;

    check(
        SUITE,
        "kill switches: off until set, the latest wins, per account",
    );
    kill_switches(&make().await, &ctx).await;

    check(
        SUITE,
        "instrument statuses: none until set, the newest change wins, per symbol",
    );
    instrument_statuses(&make().await, &ctx).await;

    check(
        SUITE,
        "dead man's switches: none until set, a trigger fires only the setting it names",
    );
    cancel_afters(&make().await, &ctx).await;

    check(
        SUITE,
        "withdrawals: exact, by account and reference, the first decision stands",
    );
    withdrawals(&make().await, &ctx).await;

    check(
        SUITE,
        "deposits: exact, by account and reference, the first credit stands",
    );
    deposits(&make().await, &ctx).await;

    check(SUITE, "snapshots round trip and replace older ones");
    snapshots_round_trip(&make().await, &ctx).await;

    check(SUITE, "everything survives a reopen");
    survives_reopen(&make, &ctx).await;
}

struct Ctx {
    run: String,
    ids: AtomicU64,
}

impl Ctx {
    /// A fresh order or trade id, increasing.
    fn id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::SeqCst)
    }
    fn name(&self, what: &str) -> String {
        format!("conf-{what}-{}", self.run)
    }
}

async fn new_account(store: &impl OrderStore, name: &str) -> AccountId {
    store
        .create_account(name, false, Timestamp(now_ms()))
        .await
        .expect("create_account")
        .id
}

async fn accounts_and_keys(store: &impl OrderStore) {
    let at = Timestamp(1_700_000_000_000);
    let a = store.create_account("conf alice", true, at).await.unwrap();
    let b = store.create_account("conf bob", false, at).await.unwrap();
    assert_ne!(a.id, b.id, "account ids are distinct");
    assert_eq!(
        (a.name.as_str(), a.demo, a.created_at),
        ("conf alice", true, at)
    );
    let all = store.accounts().await.unwrap();
    assert!(
        all.contains(&a) && all.contains(&b),
        "accounts() lists new accounts"
    );
    let ids: Vec<_> = all.iter().map(|x| x.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "accounts() by id");
    // A page at a time, from after an id, in order; nothing past the last.
    let page = store.accounts_page(Some(a.id), 1).await.unwrap();
    assert_eq!(page, vec![b.clone()], "the one account after a");
    let first = store.accounts_page(None, 1).await.unwrap();
    assert_eq!(first.first().map(|x| x.id), ids.first().copied());
    assert!(
        store
            .accounts_page(ids.last().copied(), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing after the last account"
    );
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.accounts_page(after, 2).await.unwrap();
        assert!(page.len() <= 2, "at most the limit");
        after = page.last().map(|x| x.id);
        let done = page.len() < 2;
        paged.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(paged, all, "paging through gives every account once");
    assert_eq!(store.account(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.account(b.id).await.unwrap(), Some(b.clone()));
    let unknown = oms_domain::ids::AccountId(ids.last().unwrap().0 + 1_000);
    assert_eq!(
        store.account(unknown).await.unwrap(),
        None,
        "no such account"
    );
    // Names are unique, found exactly (no prefix, no case folding).
    assert_eq!(
        store.account_named("conf alice").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.account_named("conf bob").await.unwrap(),
        Some(b.clone())
    );
    for other in ["conf", "conf alice ", "Conf Alice", "conf al%"] {
        assert_eq!(store.account_named(other).await.unwrap(), None, "{other:?}");
    }
    match store.create_account("conf alice", false, at).await {
        Err(oms_ports::PortError::Conflict(_)) => {}
        other => panic!("a second account named \"conf alice\": {other:?}"),
    }
    assert_eq!(
        store.accounts().await.unwrap(),
        all,
        "the refused account is not created"
    );

    let (trade, read) = (KeyScope::Trade, KeyScope::Read);
    let hash_a = format!("hash-a-{}", a.id);
    let hash_a2 = format!("hash-a2-{}", a.id);
    store.add_api_key(a.id, &hash_a, trade, at).await.unwrap();
    store.add_api_key(a.id, &hash_a2, read, at).await.unwrap();
    assert_eq!(
        store.account_for_key(&hash_a).await.unwrap(),
        Some((a.id, trade))
    );
    assert_eq!(
        store.account_for_key(&hash_a2).await.unwrap(),
        Some((a.id, read)),
        "an account may have several keys, each with its scope"
    );
    assert_eq!(store.account_for_key("no-such-hash").await.unwrap(), None);
    match store.add_api_key(b.id, &hash_a, read, at).await {
        Err(PortError::Conflict(_)) => {}
        other => panic!("a key hash belongs to one account: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.account_for_key(&hash_a).await.unwrap(),
        Some((a.id, trade)),
        "a refused key changes nothing"
    );

    let later = Timestamp(at.0 + 1);
    let hash_a3 = format!("hash-a3-{}", a.id);
    store
        .add_api_key(a.id, &hash_a3, trade, later)
        .await
        .unwrap();
    let listed = |keys: &[(&str, KeyScope, Timestamp)]| -> Vec<ApiKeyRecord> {
        keys.iter()
            .map(|(h, scope, t)| ApiKeyRecord {
                key_hash: h.to_string(),
                scope: *scope,
                created_at: *t,
            })
            .collect()
    };
    assert_eq!(
        store.api_keys(a.id).await.unwrap(),
        listed(&[
            (&hash_a, trade, at),
            (&hash_a2, read, at),
            (&hash_a3, trade, later)
        ]),
        "an account's keys, oldest first"
    );
    assert_eq!(store.api_keys(b.id).await.unwrap(), vec![]);
    assert!(
        !store.revoke_api_key(b.id, &hash_a).await.unwrap(),
        "another account's key is not revoked"
    );
    assert_eq!(
        store.account_for_key(&hash_a).await.unwrap(),
        Some((a.id, trade))
    );
    assert!(store.revoke_api_key(a.id, &hash_a).await.unwrap());
    assert!(
        !store.revoke_api_key(a.id, &hash_a).await.unwrap(),
        "only once"
    );
    assert_eq!(store.account_for_key(&hash_a).await.unwrap(), None);
    assert_eq!(
        store.api_keys(a.id).await.unwrap(),
        listed(&[(&hash_a2, read, at), (&hash_a3, trade, later)])
    );
}

async fn ended_sessions(store: &impl OrderStore, ctx: &Ctx) {
    let live = ctx.name("session-live");
    let just_expired = ctx.name("session-just-expired");
    let long_expired = ctx.name("session-long-expired");
    let later = ctx.name("session-later");
    let now = now_ms();
    let hour = 3_600_000;
    assert!(!store.session_ended(&live).await.unwrap(), "not ended yet");
    store
        .end_session(&live, Timestamp(now + hour))
        .await
        .unwrap();
    assert!(store.session_ended(&live).await.unwrap());
    store
        .end_session(&live, Timestamp(now + hour))
        .await
        .expect("ending a session twice is no error");
    assert!(store.session_ended(&live).await.unwrap());
    let long_ago = now - ENDED_SESSION_GRACE_MS - 60_000;
    store
        .end_session(&long_expired, Timestamp(long_ago))
        .await
        .unwrap();
    store
        .end_session(&just_expired, Timestamp(now - 1_000))
        .await
        .unwrap();
    // Ending another session forgets those past their expiry by more than the grace (clocks
    // may be behind), and only those.
    store
        .end_session(&later, Timestamp(now + hour))
        .await
        .unwrap();
    assert!(
        !store.session_ended(&long_expired).await.unwrap(),
        "an ended session long past its expiry is forgotten"
    );
    for kept in [&just_expired, &live, &later] {
        assert!(store.session_ended(kept).await.unwrap(), "{kept}");
    }
}

async fn batch_writes_everything(store: &impl OrderStore, ctx: &Ctx) {
    let acct = new_account(store, "conf batch").await;
    let o = order(ctx.id(), acct, "BTC/USD", Side::Buy, 1_000);
    let f = fill(&o, ctx.id(), "45000.5", "0.1");
    let consumer = ctx.name("batch-consumer");
    store
        .apply(StoreBatch {
            kill_switches: Vec::new(),
            global_kill_switch: None,
            cancel_afters: Vec::new(),
            cancel_after_triggers: Vec::new(),
            withdrawals: Vec::new(),
            deposits: Vec::new(),
            instrument_statuses: Vec::new(),
            orders: vec![o.clone()],
            fills: vec![f.clone()],
            balances: vec![
                (acct, balance("USD", "1000", "4500.05")),
                (acct, balance("BTC", "0.1", "0")),
            ],
            positions: vec![Position {
                consumer: consumer.clone(),
                topic: "orders".into(),
                partition: 3,
                next_offset: 17,
            }],
        })
        .await
        .expect("apply");
    assert_eq!(
        store.order(acct, o.order_id).await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(store.fills(acct, o.order_id).await.unwrap(), vec![f]);
    let mut bal = store.balances(acct).await.unwrap();
    bal.sort_by(|a, b| a.asset.cmp(&b.asset));
    assert_eq!(
        bal,
        vec![
            balance("BTC", "0.1", "0"),
            balance("USD", "1000", "4500.05")
        ]
    );
    assert_eq!(
        store.positions(&consumer).await.unwrap(),
        vec![Position {
            consumer,
            topic: "orders".into(),
            partition: 3,
            next_offset: 17
        }]
    );
    let other = new_account(store, "conf other").await;
    assert_eq!(
        store.order(other, o.order_id).await.unwrap(),
        None,
        "another account does not see the order"
    );
    assert!(store.fills(other, o.order_id).await.unwrap().is_empty());
    assert!(store.balances(other).await.unwrap().is_empty());
    // An empty batch is fine.
    store.apply(StoreBatch::default()).await.unwrap();
}

async fn batch_is_atomic(store: &impl OrderStore, ctx: &Ctx) {
    let acct = new_account(store, "conf atomic").await;
    let good = order(ctx.id(), acct, "BTC/USD", Side::Buy, 1_000);
    let f = fill(&good, ctx.id(), "45000.5", "0.1");
    let consumer = ctx.name("atomic-consumer");
    // The last element cannot be stored (offset above i64::MAX); everything before it must
    // be undone.
    let res = store
        .apply(StoreBatch {
            kill_switches: Vec::new(),
            global_kill_switch: None,
            cancel_afters: Vec::new(),
            cancel_after_triggers: Vec::new(),
            withdrawals: Vec::new(),
            deposits: Vec::new(),
            instrument_statuses: Vec::new(),
            orders: vec![good.clone()],
            fills: vec![f],
            balances: vec![(acct, balance("USD", "1", "0"))],
            positions: vec![
                Position {
                    consumer: consumer.clone(),
                    topic: "orders".into(),
                    partition: 0,
                    next_offset: 5,
                },
                Position {
                    consumer: consumer.clone(),
                    topic: "orders".into(),
                    partition: 1,
                    next_offset: u64::MAX,
                },
            ],
        })
        .await;
    assert!(res.is_err(), "a batch with an unstorable offset fails");
    assert_eq!(
        store.order(acct, good.order_id).await.unwrap(),
        None,
        "order rolled back"
    );
    assert!(
        store.fills(acct, good.order_id).await.unwrap().is_empty(),
        "fill rolled back"
    );
    assert!(
        store.balances(acct).await.unwrap().is_empty(),
        "balance rolled back"
    );
    assert!(
        store.positions(&consumer).await.unwrap().is_empty(),
        "position rolled back"
    );

    let res = store
        .apply(StoreBatch {
            orders: vec![good.clone(), order(u64::MAX, acct, "BTC/USD", Side::Buy, 1)],
            ..StoreBatch::default()
        })
        .await;
    assert!(res.is_err(), "an order id above i64::MAX is refused");
    assert_eq!(
        store.order(acct, good.order_id).await.unwrap(),
        None,
        "order rolled back"
    );

    // The store still works after a failed batch.
    store
        .apply(StoreBatch {
            orders: vec![good.clone()],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.order(acct, good.order_id).await.unwrap(), Some(good));
}

async fn decimals_are_exact(store: &impl OrderStore, ctx: &Ctx) {
    let acct = new_account(store, "conf decimals").await;
    let tiny = "0.00000001";
    let huge = "12345678901234.12345678";
    let mut o = order(ctx.id(), acct, "BTC/USD", Side::Sell, 1_000);
    o.price = Some(dec(huge));
    o.quantity = dec(tiny);
    o.executed_notional = dec("0.10000000");
    o.fees = dec("0.000000000000000001");
    let mut f = fill(&o, ctx.id(), huge, tiny);
    f.fee = dec("79228162514264337593543950335"); // Decimal::MAX
    store
        .apply(StoreBatch {
            kill_switches: Vec::new(),
            global_kill_switch: None,
            cancel_afters: Vec::new(),
            cancel_after_triggers: Vec::new(),
            withdrawals: Vec::new(),
            deposits: Vec::new(),
            instrument_statuses: Vec::new(),
            orders: vec![o.clone()],
            fills: vec![f.clone()],
            balances: vec![
                (acct, balance("BTC", tiny, huge)),
                (acct, balance("USD", "1.10", "-0.5")),
            ],
            positions: vec![],
        })
        .await
        .unwrap();
    let got = store.order(acct, o.order_id).await.unwrap().expect("order");
    assert_eq!(got.price.unwrap().to_string(), huge);
    assert_eq!(got.quantity.to_string(), tiny);
    assert_eq!(
        got.executed_notional.to_string(),
        "0.10000000",
        "scale kept"
    );
    assert_eq!(got.fees.to_string(), "0.000000000000000001");
    let got_fill = &store.fills(acct, o.order_id).await.unwrap()[0];
    assert_eq!(got_fill.price.to_string(), huge);
    assert_eq!(got_fill.quantity.to_string(), tiny);
    assert_eq!(got_fill.fee, Decimal::MAX);
    let bal: BTreeMap<String, (String, String)> = store
        .balances(acct)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.asset.0, (b.available.to_string(), b.reserved.to_string())))
        .collect();
    assert_eq!(bal["BTC"], (tiny.to_string(), huge.to_string()));
    assert_eq!(
        bal["USD"],
        ("1.10".to_string(), "-0.5".to_string()),
        "scale kept"
    );
}

async fn fills_are_deduplicated(store: &impl OrderStore, ctx: &Ctx) {
    let acct = new_account(store, "conf fills").await;
    let o = order(ctx.id(), acct, "ETH/USD", Side::Buy, 1_000);
    let (t1, t2) = (ctx.id(), ctx.id());
    let f1 = fill(&o, t1, "3000", "0.1");
    let f2 = fill(&o, t2, "3001", "0.15");
    store
        .apply(StoreBatch {
            orders: vec![o.clone()],
            // The same fill twice within one batch.
            fills: vec![f2.clone(), f1.clone(), f2.clone()],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    // And again in a later batch, as after a redelivery.
    let mut changed = f1.clone();
    changed.quantity = dec("99");
    store
        .apply(StoreBatch {
            fills: vec![changed, f2.clone()],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.fills(acct, o.order_id).await.unwrap(),
        vec![f1, f2],
        "each (order, trade) once, the first copy kept, by trade id"
    );
}

async fn account_fills(store: &impl OrderStore, ctx: &Ctx) {
    let acct = new_account(store, "conf history").await;
    let other = new_account(store, "conf history other").await;
    let o1 = order(ctx.id(), acct, "BTC/USD", Side::Buy, 1_000);
    let o2 = order(ctx.id(), acct, "ETH/USD", Side::Sell, 1_001);
    let o3 = order(ctx.id(), acct, "BTC/USD", Side::Sell, 1_002);
    let o4 = order(ctx.id(), other, "BTC/USD", Side::Buy, 1_003);
    let at = |mut f: Fill, t: Option<i64>| {
        f.at = t.map(Timestamp);
        f
    };
    let t = ctx.id();
    let f1 = at(fill(&o1, t, "100", "0.1"), Some(100));
    let f2 = at(fill(&o2, t + 1, "200", "0.1"), Some(200));
    // Same time as f2: the higher order id first.
    let f3 = at(fill(&o1, t + 2, "201", "0.1"), Some(200));
    // A trade between two of the account's own orders: both sides share the trade id.
    let f4 = at(fill(&o3, t + 3, "300", "0.1"), Some(300));
    let f5 = at(fill(&o1, t + 3, "300", "0.1"), Some(300));
    // Recorded before fills carried their time: last.
    let f6 = at(fill(&o1, t + 4, "50", "0.1"), None);
    let theirs = at(fill(&o4, t + 5, "250", "0.1"), Some(250));
    store
        .apply(StoreBatch {
            orders: vec![o1.clone(), o2.clone(), o3.clone(), o4.clone()],
            fills: vec![
                f1.clone(),
                f6.clone(),
                f3.clone(),
                theirs,
                f5.clone(),
                f2.clone(),
                f4.clone(),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let newest_first = vec![
        f4.clone(),
        f5.clone(),
        f2.clone(),
        f3.clone(),
        f1.clone(),
        f6.clone(),
    ];
    let all = store.account_fills(&FillQuery::of(acct)).await.unwrap();
    assert_eq!(
        all, newest_first,
        "every fill of the account, newest first, no other's"
    );

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let q = FillQuery {
            before,
            limit: 2,
            ..FillQuery::of(acct)
        };
        let page = store.account_fills(&q).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        before = Some(FillCursor::of(last));
        pages.extend(page);
    }
    assert_eq!(
        pages, newest_first,
        "pages of 2 cover every fill once, in order"
    );

    let q = FillQuery {
        symbol: Some(Symbol::new("BTC/USD")),
        ..FillQuery::of(acct)
    };
    assert_eq!(
        store.account_fills(&q).await.unwrap(),
        vec![f4.clone(), f5, f3.clone(), f1, f6]
    );
    let q = FillQuery {
        side: Some(Side::Sell),
        ..FillQuery::of(acct)
    };
    assert_eq!(store.account_fills(&q).await.unwrap(), vec![f4, f2.clone()]);
    let q = FillQuery {
        from: Some(Timestamp(200)),
        to: Some(Timestamp(250)),
        ..FillQuery::of(acct)
    };
    assert_eq!(
        store.account_fills(&q).await.unwrap(),
        vec![f2, f3],
        "from and to bound the trade time, both inclusive"
    );
    let q = FillQuery {
        account: AccountId(u64::MAX),
        ..FillQuery::of(acct)
    };
    assert!(store.account_fills(&q).await.unwrap().is_empty());
}

async fn orders_update_and_count(store: &impl OrderStore, ctx: &Ctx) {
    let count = |counts: Vec<(OrderStatus, u64)>, s: OrderStatus| {
        counts.iter().filter(|c| c.0 == s).map(|c| c.1).sum::<u64>()
    };
    let put = |orders: Vec<Order>| {
        store.apply(StoreBatch {
            orders,
            ..StoreBatch::default()
        })
    };
    let acct = new_account(store, "conf counts").await;
    let before = store.order_counts_by_status().await.unwrap();
    let mut a = order(ctx.id(), acct, "BTC/USD", Side::Buy, 1_000);
    let b = order(ctx.id(), acct, "BTC/USD", Side::Sell, 1_001);
    put(vec![a.clone(), b.clone()]).await.unwrap();
    let mid = store.order_counts_by_status().await.unwrap();
    assert_eq!(
        count(mid.clone(), OrderStatus::New),
        count(before.clone(), OrderStatus::New) + 2
    );
    a.status = OrderStatus::PartiallyFilled;
    a.filled_quantity = dec("0.1");
    a.updated_at = Timestamp(2_000);
    put(vec![a.clone()]).await.unwrap();
    assert_eq!(
        store.order(acct, a.order_id).await.unwrap(),
        Some(a.clone()),
        "updated"
    );
    // A batch applied again (a redelivery after a crash) moves no count.
    put(vec![a.clone(), b.clone()]).await.unwrap();
    let after = store.order_counts_by_status().await.unwrap();
    assert_eq!(
        count(after.clone(), OrderStatus::New),
        count(before.clone(), OrderStatus::New) + 1
    );
    assert_eq!(
        count(after, OrderStatus::PartiallyFilled),
        count(before, OrderStatus::PartiallyFilled) + 1
    );
    let q = OrderQuery {
        account: Some(acct),
        status: Some(OrderStatus::PartiallyFilled),
        limit: 10,
        ..OrderQuery::default()
    };
    assert_eq!(
        store.orders(&q).await.unwrap(),
        vec![a],
        "status filter sees the update"
    );
}

async fn filters_and_pagination(store: &impl OrderStore, ctx: &Ctx) {
    let acct = new_account(store, "conf filters").await;
    let other = new_account(store, "conf filters other").await;
    let mut mine = Vec::new();
    for i in 0..12u64 {
        let symbol = if i % 3 == 0 { "ETH/USD" } else { "BTC/USD" };
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let mut o = order(ctx.id(), acct, symbol, side, 10_000 + i as i64 * 100);
        if i % 4 == 0 {
            o.status = OrderStatus::Filled;
        }
        mine.push(o);
    }
    let theirs: Vec<Order> = (0..3)
        .map(|i| order(ctx.id(), other, "BTC/USD", Side::Buy, 10_000 + i))
        .collect();
    store
        .apply(StoreBatch {
            orders: mine.iter().chain(&theirs).cloned().collect(),
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let newest_first = |pred: &dyn Fn(&Order) -> bool| -> Vec<OrderId> {
        let mut v: Vec<&Order> = mine.iter().filter(|o| pred(o)).collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.order_id));
        v.into_iter().map(|o| o.order_id).collect()
    };
    let ids = |v: Vec<Order>| v.into_iter().map(|o| o.order_id).collect::<Vec<_>>();
    let base = OrderQuery {
        account: Some(acct),
        limit: 100,
        ..OrderQuery::default()
    };

    let all = store.orders(&base).await.unwrap();
    assert_eq!(
        ids(all.clone()),
        newest_first(&|_| true),
        "one account's orders, newest first"
    );
    assert_eq!(
        all.iter().find(|o| o.order_id == mine[5].order_id),
        Some(&mine[5])
    );

    let q = OrderQuery {
        symbol: Some(Symbol::new("ETH/USD")),
        ..base.clone()
    };
    assert_eq!(
        ids(store.orders(&q).await.unwrap()),
        newest_first(&|o| o.symbol.as_str() == "ETH/USD"),
        "symbol filter"
    );
    let q = OrderQuery {
        side: Some(Side::Sell),
        ..base.clone()
    };
    assert_eq!(
        ids(store.orders(&q).await.unwrap()),
        newest_first(&|o| o.side == Side::Sell),
        "side filter"
    );
    let q = OrderQuery {
        status: Some(OrderStatus::Filled),
        ..base.clone()
    };
    assert_eq!(
        ids(store.orders(&q).await.unwrap()),
        newest_first(&|o| o.status == OrderStatus::Filled),
        "status filter"
    );
    let q = OrderQuery {
        from: Some(Timestamp(10_300)),
        to: Some(Timestamp(10_700)),
        ..base.clone()
    };
    assert_eq!(
        ids(store.orders(&q).await.unwrap()),
        newest_first(&|o| (10_300..=10_700).contains(&o.created_at.0)),
        "created_at between from and to, both inclusive"
    );
    let q = OrderQuery {
        symbol: Some(Symbol::new("BTC/USD")),
        side: Some(Side::Buy),
        ..base.clone()
    };
    assert_eq!(
        ids(store.orders(&q).await.unwrap()),
        newest_first(&|o| o.symbol.as_str() == "BTC/USD" && o.side == Side::Buy),
        "filters combine"
    );
    let q = OrderQuery {
        limit: 0,
        ..base.clone()
    };
    assert_eq!(
        store.orders(&q).await.unwrap().len(),
        12,
        "limit 0 means no limit"
    );

    // Pages of 5, each starting below the last id of the previous page.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let q = OrderQuery {
            before,
            limit: 5,
            ..base.clone()
        };
        let page = ids(store.orders(&q).await.unwrap());
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5, "limit respected");
        before = page.last().copied();
        pages.push(page);
        assert!(pages.len() <= 3, "pagination ends");
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![5, 5, 2]
    );
    assert_eq!(
        pages.concat(),
        newest_first(&|_| true),
        "pages cover every order once"
    );

    let q = OrderQuery {
        account: Some(other),
        ..base.clone()
    };
    let mut want: Vec<OrderId> = theirs.iter().map(|o| o.order_id).collect();
    want.reverse();
    assert_eq!(
        ids(store.orders(&q).await.unwrap()),
        want,
        "accounts are separate"
    );
}

async fn client_order_ids(store: &impl OrderStore, ctx: &Ctx) {
    let a = new_account(store, "conf coid a").await;
    let b = new_account(store, "conf coid b").await;
    let (o1, o2, o3) = (OrderId(ctx.id()), OrderId(ctx.id()), OrderId(ctx.id()));
    assert_eq!(
        store.claim_client_order_id(a, "my-1", o1).await.unwrap(),
        None,
        "free"
    );
    assert_eq!(
        store.claim_client_order_id(a, "my-1", o2).await.unwrap(),
        Some(o1),
        "taken: the holder is returned"
    );
    assert_eq!(
        store.claim_client_order_id(a, "my-1", o1).await.unwrap(),
        None,
        "the holder claiming again is no conflict"
    );
    assert_eq!(
        store.claim_client_order_id(b, "my-1", o3).await.unwrap(),
        None,
        "another account's id space"
    );
    assert_eq!(
        store.claim_client_order_id(a, "my-2", o2).await.unwrap(),
        None
    );
    store.release_client_order_id(a, "my-1").await.unwrap();
    assert_eq!(
        store.claim_client_order_id(a, "my-1", o2).await.unwrap(),
        None,
        "free again after release"
    );
    assert_eq!(
        store.claim_client_order_id(a, "my-1", o3).await.unwrap(),
        Some(o2)
    );
    assert_eq!(
        store.claim_client_order_id(b, "my-1", o1).await.unwrap(),
        Some(o3),
        "release touched only one account"
    );
    store
        .release_client_order_id(a, "never-claimed")
        .await
        .unwrap();
    // Looked up by its holder's account only.
    let holder = |account, id: &'static str| store.order_for_client_order_id(account, id);
    assert_eq!(holder(a, "my-1").await.unwrap(), Some(o2));
    assert_eq!(holder(a, "my-2").await.unwrap(), Some(o2));
    assert_eq!(holder(b, "my-1").await.unwrap(), Some(o3));
    assert_eq!(holder(b, "my-2").await.unwrap(), None);
    assert_eq!(holder(a, "never-claimed").await.unwrap(), None);
    store.release_client_order_id(b, "my-1").await.unwrap();
    assert_eq!(holder(b, "my-1").await.unwrap(), None, "released");
    assert_eq!(
        store
            .order_for_client_order_id(AccountId(u64::MAX), "my-1")
            .await
            .unwrap(),
        None
    );
}

async fn positions_round_trip(store: &impl OrderStore, ctx: &Ctx) {
    let c1 = ctx.name("positions-1");
    let c2 = ctx.name("positions-2");
    let pos = |c: &str, t: &str, p: u32, o: u64| Position {
        consumer: c.to_string(),
        topic: t.to_string(),
        partition: p,
        next_offset: o,
    };
    store
        .apply(StoreBatch {
            positions: vec![
                pos(&c1, "orders", 1, 10),
                pos(&c1, "orders", 0, 4),
                pos(&c1, "marketdata", 0, 0),
                pos(&c2, "orders", 0, 99),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    store
        .apply(StoreBatch {
            positions: vec![pos(&c1, "orders", 1, 12)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let mut got = store.positions(&c1).await.unwrap();
    got.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    assert_eq!(
        got,
        vec![
            pos(&c1, "marketdata", 0, 0),
            pos(&c1, "orders", 0, 4),
            pos(&c1, "orders", 1, 12)
        ],
        "latest position per partition, one consumer only"
    );
    assert_eq!(
        store.positions(&c2).await.unwrap(),
        vec![pos(&c2, "orders", 0, 99)]
    );
    assert!(store
        .positions(&ctx.name("nobody"))
        .await
        .unwrap()
        .is_empty());
}

async fn instrument_statuses(store: &impl OrderStore, ctx: &Ctx) {
    let (x, y) = (
        Symbol::new(ctx.name("X/USD")),
        Symbol::new(ctx.name("Y/USD")),
    );
    let mine = |all: Vec<InstrumentStatusRecord>| -> Vec<(String, TradingStatus, u64, i64)> {
        all.into_iter()
            .filter(|r| r.symbol == x || r.symbol == y)
            .map(|r| {
                (
                    r.symbol.as_str().to_string(),
                    r.status,
                    r.change,
                    r.set_at.0,
                )
            })
            .collect()
    };
    assert!(
        mine(store.instrument_statuses().await.unwrap()).is_empty(),
        "none until set"
    );
    let set = |symbol: &Symbol, status, change: u64| InstrumentStatusRecord {
        symbol: symbol.clone(),
        status,
        change,
        set_at: Timestamp(1_000 + change as i64),
    };
    // Copies of one change from several partitions, and two changes, in one batch.
    store
        .apply(StoreBatch {
            instrument_statuses: vec![
                set(&x, TradingStatus::Halted, 20),
                set(&x, TradingStatus::CancelOnly, 10),
                set(&x, TradingStatus::Halted, 20),
                set(&y, TradingStatus::CancelOnly, 5),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let (xs, ys) = (x.as_str().to_string(), y.as_str().to_string());
    let mut want = vec![
        (xs.clone(), TradingStatus::Halted, 20, 1_020),
        (ys.clone(), TradingStatus::CancelOnly, 5, 1_005),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let read = |all| {
        let mut v = mine(all);
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(read(store.instrument_statuses().await.unwrap()), want);
    // An older change read late from another partition changes nothing; a newer one wins.
    store
        .apply(StoreBatch {
            instrument_statuses: vec![
                set(&x, TradingStatus::Trading, 15),
                set(&y, TradingStatus::Trading, 6),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let mut want = vec![
        (xs, TradingStatus::Halted, 20, 1_020),
        (ys, TradingStatus::Trading, 6, 1_006),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(read(store.instrument_statuses().await.unwrap()), want);
}

async fn kill_switches(store: &impl OrderStore, ctx: &Ctx) {
    let a = new_account(store, &ctx.name("switch-a")).await;
    let b = new_account(store, &ctx.name("switch-b")).await;
    let c = new_account(store, &ctx.name("switch-c")).await;
    assert!(!store.kill_switch(a).await.unwrap(), "off until set");
    store
        .apply(StoreBatch {
            kill_switches: vec![(a, true), (b, true), (b, false), (c, false), (c, true)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert!(store.kill_switch(a).await.unwrap());
    assert!(
        !store.kill_switch(b).await.unwrap() && store.kill_switch(c).await.unwrap(),
        "the later entry of a batch wins"
    );
    store
        .apply(StoreBatch {
            kill_switches: vec![(a, false)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert!(!store.kill_switch(a).await.unwrap());

    // The global switch: apart from every account's, kept until a newer change.
    let global = |change, on| Some(GlobalSwitch { change, on });
    for (change, on) in [(10, true), (20, false)] {
        store
            .apply(StoreBatch {
                kill_switches: vec![(b, !on)],
                global_kill_switch: global(change, on),
                ..StoreBatch::default()
            })
            .await
            .unwrap();
        assert_eq!(store.global_kill_switch().await.unwrap(), on);
        assert_eq!(store.kill_switch(b).await.unwrap(), !on);
        assert!(
            !store.kill_switch(a).await.unwrap(),
            "not an account's switch"
        );
        store
            .apply(StoreBatch {
                kill_switches: vec![(c, on)],
                ..StoreBatch::default()
            })
            .await
            .unwrap();
        assert_eq!(
            store.global_kill_switch().await.unwrap(),
            on,
            "a batch that does not set it leaves it"
        );
    }
    // A copy of the older change, read late from another partition, changes nothing; the
    // same change again does no harm.
    for (change, on) in [(10, true), (20, false)] {
        store
            .apply(StoreBatch {
                global_kill_switch: global(change, on),
                ..StoreBatch::default()
            })
            .await
            .unwrap();
        assert!(
            !store.global_kill_switch().await.unwrap(),
            "change {change}"
        );
    }
    store
        .apply(StoreBatch {
            global_kill_switch: global(30, true),
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert!(store.global_kill_switch().await.unwrap());
}

async fn cancel_afters(store: &impl OrderStore, ctx: &Ctx) {
    let a = new_account(store, &ctx.name("cancel-after-a")).await;
    let b = new_account(store, &ctx.name("cancel-after-b")).await;
    let state = |deadline: Option<i64>, change, triggered| CancelAfterState {
        deadline: deadline.map(Timestamp),
        change,
        triggered,
    };
    assert_eq!(store.cancel_after(a).await.unwrap(), None, "none until set");
    store
        .apply(StoreBatch {
            cancel_afters: vec![
                (a, state(Some(1_700_000_000_123), 5, false)),
                (b, state(Some(1_700_000_000_456), 6, true)),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.cancel_after(a).await.unwrap(),
        Some(state(Some(1_700_000_000_123), 5, false))
    );
    assert_eq!(
        store.cancel_after(b).await.unwrap(),
        Some(state(Some(1_700_000_000_456), 6, true))
    );
    // A trigger of another setting of `a` does nothing; one of its setting fires it.
    store
        .apply(StoreBatch {
            cancel_after_triggers: vec![(a, 4)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert!(!store.cancel_after(a).await.unwrap().unwrap().triggered);
    store
        .apply(StoreBatch {
            cancel_after_triggers: vec![(a, 5), (a, 5)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.cancel_after(a).await.unwrap(),
        Some(state(Some(1_700_000_000_123), 5, true))
    );
    // A newer setting replaces it whole; switched off, it has no deadline.
    store
        .apply(StoreBatch {
            cancel_afters: vec![(a, state(None, 9, false))],
            cancel_after_triggers: vec![(b, 6)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.cancel_after(a).await.unwrap(),
        Some(state(None, 9, false))
    );
    assert!(store.cancel_after(b).await.unwrap().unwrap().triggered);
}

async fn withdrawals(store: &impl OrderStore, ctx: &Ctx) {
    let a = new_account(store, &ctx.name("withdraw-a")).await;
    let b = new_account(store, &ctx.name("withdraw-b")).await;
    let record = |account, reference: &str, amount: &str, approved| WithdrawalRecord {
        account,
        reference: reference.into(),
        asset: Asset::new("BTC"),
        amount: dec(amount),
        approved,
        reason: (!approved).then_some(RejectReason::InsufficientBalance),
        decided_at: Timestamp(1_700_000_000_000),
    };
    assert_eq!(store.withdrawal(a, "w-1").await.unwrap(), None);
    let first = record(a, "w-1", "0.00000001", true);
    store
        .apply(StoreBatch {
            withdrawals: vec![
                first.clone(),
                record(a, "w-1", "5", false),
                record(b, "w-1", "2.50", false),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    store
        .apply(StoreBatch {
            withdrawals: vec![record(a, "w-1", "7", false)],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let got = store.withdrawal(a, "w-1").await.unwrap().unwrap();
    assert_eq!(got, first);
    assert_eq!(got.amount.to_string(), "0.00000001", "exact, scale kept");
    assert_eq!(
        store.withdrawal(b, "w-1").await.unwrap(),
        Some(record(b, "w-1", "2.50", false))
    );
    assert_eq!(store.withdrawal(a, "w-2").await.unwrap(), None);

    // Listed by reference in byte order ("W" before "w"), a page at a time, per account.
    store
        .apply(StoreBatch {
            withdrawals: vec![
                record(a, "w-3", "1", true),
                record(a, "W-9", "1", true),
                record(a, "w-2", "1", true),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let refs = |page: Vec<WithdrawalRecord>| -> Vec<String> {
        page.into_iter().map(|w| w.reference).collect()
    };
    assert_eq!(
        refs(store.withdrawals_page(a, None, 10).await.unwrap()),
        ["W-9", "w-1", "w-2", "w-3"]
    );
    assert_eq!(
        refs(store.withdrawals_page(a, None, 2).await.unwrap()),
        ["W-9", "w-1"]
    );
    assert_eq!(
        refs(store.withdrawals_page(a, Some("w-1"), 2).await.unwrap()),
        ["w-2", "w-3"]
    );
    assert!(store
        .withdrawals_page(a, Some("w-3"), 2)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.withdrawals_page(b, None, 10).await.unwrap(),
        vec![record(b, "w-1", "2.50", false)],
        "another account's are its own"
    );
}

async fn deposits(store: &impl OrderStore, ctx: &Ctx) {
    let a = new_account(store, &ctx.name("deposit-a")).await;
    let record = |reference: &str, amount: &str| DepositRecord {
        account: a,
        reference: reference.into(),
        asset: Asset::new("USD"),
        amount: dec(amount),
        credited_at: Timestamp(1_700_000_000_000),
    };
    assert_eq!(store.deposit(a, "wire-1:USD").await.unwrap(), None);
    store
        .apply(StoreBatch {
            deposits: vec![record("wire-1:USD", "250000.10"), record("wire-1:USD", "9")],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    store
        .apply(StoreBatch {
            deposits: vec![record("wire-1:USD", "7")],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let got = store.deposit(a, "wire-1:USD").await.unwrap().unwrap();
    assert_eq!(got, record("wire-1:USD", "250000.10"));
    assert_eq!(got.amount.to_string(), "250000.10", "exact, scale kept");
    assert_eq!(store.deposit(a, "wire-1:BTC").await.unwrap(), None);

    store
        .apply(StoreBatch {
            deposits: vec![record("wire-0:USD", "1"), record("wire-1:BTC", "2")],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let refs = |page: Vec<DepositRecord>| -> Vec<String> {
        page.into_iter().map(|d| d.reference).collect()
    };
    assert_eq!(
        refs(store.deposits_page(a, None, 10).await.unwrap()),
        ["wire-0:USD", "wire-1:BTC", "wire-1:USD"]
    );
    assert_eq!(
        refs(store.deposits_page(a, Some("wire-0:USD"), 1).await.unwrap()),
        ["wire-1:BTC"]
    );
    assert!(store
        .deposits_page(a, Some("wire-1:USD"), 5)
        .await
        .unwrap()
        .is_empty());
}

async fn snapshots_round_trip(store: &impl OrderStore, ctx: &Ctx) {
    let name = ctx.name("snapshot");
    assert_eq!(store.load_snapshot(&name, 0).await.unwrap(), None);
    let state: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    store.save_snapshot(&name, 0, 42, &state).await.unwrap();
    store.save_snapshot(&name, 1, 7, b"").await.unwrap();
    assert_eq!(
        store.load_snapshot(&name, 0).await.unwrap(),
        Some((42, state))
    );
    assert_eq!(
        store.load_snapshot(&name, 1).await.unwrap(),
        Some((7, Vec::new()))
    );
    store.save_snapshot(&name, 0, 50, b"newer").await.unwrap();
    assert_eq!(
        store.load_snapshot(&name, 0).await.unwrap(),
        Some((50, b"newer".to_vec())),
        "a new snapshot replaces the old"
    );
    assert_eq!(
        store
            .load_snapshot(&ctx.name("other-snapshot"), 0)
            .await
            .unwrap(),
        None
    );
}

async fn survives_reopen<F, Fut, S>(make: &F, ctx: &Ctx)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: OrderStore,
{
    let store = make().await;
    let acct = new_account(&store, "conf reopen").await;
    let key = format!("reopen-key-{}", acct);
    store
        .add_api_key(acct, &key, KeyScope::Read, Timestamp(1))
        .await
        .unwrap();
    let o = order(ctx.id(), acct, "BTC/USD", Side::Buy, 5);
    let f = fill(&o, ctx.id(), "1.5", "0.2");
    store
        .apply(StoreBatch {
            kill_switches: Vec::new(),
            global_kill_switch: None,
            cancel_afters: Vec::new(),
            cancel_after_triggers: Vec::new(),
            withdrawals: Vec::new(),
            deposits: Vec::new(),
            instrument_statuses: Vec::new(),
            orders: vec![o.clone()],
            fills: vec![f.clone()],
            balances: vec![(
                acct,
                balance("USD", "0.00000001", "12345678901234.12345678"),
            )],
            positions: vec![],
        })
        .await
        .unwrap();
    store
        .claim_client_order_id(acct, "keep", o.order_id)
        .await
        .unwrap();
    let name = ctx.name("reopen-snapshot");
    store.save_snapshot(&name, 2, 9, b"state").await.unwrap();
    drop(store);

    let store = make().await;
    assert_eq!(
        store.order(acct, o.order_id).await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(store.fills(acct, o.order_id).await.unwrap(), vec![f]);
    assert_eq!(
        store.balances(acct).await.unwrap(),
        vec![balance("USD", "0.00000001", "12345678901234.12345678")]
    );
    assert_eq!(
        store.account_for_key(&key).await.unwrap(),
        Some((acct, KeyScope::Read))
    );
    assert!(store.accounts().await.unwrap().iter().any(|a| a.id == acct));
    assert_eq!(
        store
            .claim_client_order_id(acct, "keep", OrderId(ctx.id()))
            .await
            .unwrap(),
        Some(o.order_id),
        "client order id claims are permanent"
    );
    assert_eq!(
        store.load_snapshot(&name, 2).await.unwrap(),
        Some((9, b"state".to_vec()))
    );
}
