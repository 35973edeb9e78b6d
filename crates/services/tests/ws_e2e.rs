//! End to end: the whole pipeline in one process, as `oms serve` runs it (API → `orders` →
//! risk → `venue` → venue → `orders`/`marketdata` → processor and market data), with real
//! HTTP and WebSocket clients. An order placed over REST trades; the WebSocket clients see the
//! trade, the candle and their own private order updates, and nobody else's.

use futures_util::{SinkExt, StreamExt};
use oms_domain::events::Event;
use oms_domain::ids::{AccountId, Asset};
use oms_domain::instrument::default_instruments;
use oms_domain::risk::RiskConfig;
use oms_domain::Decimal;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::EventLog;
use oms_ports::order_store::{KeyScope, OrderStore};
use oms_services::api::{self, auth::hash_api_key, ApiConfig, ApiState};
use oms_services::codec::{topics, LogNames};
use oms_services::ingestion::publish::publish_order_event;
use oms_services::ingestion::OrderIdGenerator;
use oms_services::marketdata::{
    marketdata_router, run_marketdata_consumer, run_orders_feed, ApiAccounts, MarketData,
    MarketDataConfig,
};
use oms_services::pipeline::metrics::PipelineMetrics;
use oms_services::pipeline::now;
use oms_services::pipeline::processor::{OrderUpdate, ProcessorStage};
use oms_services::pipeline::reference::References;
use oms_services::pipeline::risk::RiskStage;
use oms_services::pipeline::venue::VenueStage;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Guards against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(30);
const ADMIN_KEY: &str = "oms_admin_ws-test";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct System {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    md: MarketData,
    log: Arc<dyn EventLog>,
    /// The processor's persisted changes, as `oms serve` feeds its private channel from them.
    processor_updates: broadcast::Sender<OrderUpdate>,
    _stop: watch::Sender<bool>,
}

async fn start() -> (System, AccountId, AccountId) {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(
        &dir.path().join("log"),
        FileLogOptions {
            fsync: false,
            ..FileLogOptions::default()
        },
    )
    .await
    .unwrap();
    let log: Arc<dyn EventLog> = Arc::new(log);
    for (topic, partitions) in [
        (topics::ORDERS, 4),
        (topics::VENUE, 2),
        (topics::MARKETDATA, 2),
    ] {
        log.ensure_topic(topic, partitions).await.unwrap();
    }
    let sqlite = SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
        .await
        .unwrap();
    let idempotency = Arc::new(sqlite.idempotency());
    let store: Arc<dyn OrderStore> = Arc::new(sqlite);
    let instruments = default_instruments();

    let fees = store.create_account("fees", false, now()).await.unwrap().id;
    let mut accounts = Vec::new();
    for (name, key, asset, amount) in [
        ("seller", "seller-key", "BTC", "10"),
        ("buyer", "buyer-key", "USD", "1000000"),
    ] {
        let a = store.create_account(name, false, now()).await.unwrap().id;
        store
            .add_api_key(a, &hash_api_key(key), KeyScope::Trade, now())
            .await
            .unwrap();
        let deposit = Event::Deposit {
            account: a,
            asset: Asset::new(asset),
            amount: amount.parse::<Decimal>().unwrap(),
            reference: format!("test:{name}"),
        };
        publish_order_event(log.as_ref(), topics::ORDERS, now(), deposit)
            .await
            .unwrap();
        accounts.push(a);
    }

    let (stop, shutdown) = watch::channel(false);
    let references = References::default();
    let (updates, _) = broadcast::channel(1024);
    let processor_updates = updates.clone();
    tokio::spawn(
        RiskStage {
            log: log.clone(),
            store: store.clone(),
            instruments: instruments.clone(),
            config: RiskConfig::default(),
            fee_account: fees,
            references: references.clone(),
            snapshot_every: 1_000,
            snapshot_max_age: Duration::from_secs(3600),
            remember_ended: Duration::from_secs(3600),
            names: LogNames::default(),
        }
        .run(shutdown.clone()),
    );
    tokio::spawn(
        VenueStage {
            log: log.clone(),
            store: store.clone(),
            instruments: instruments.clone(),
            fee_account: fees,
            snapshot_every: 1_000,
            snapshot_max_age: Duration::from_secs(3600),
            tick_every: Duration::from_millis(200),
            names: LogNames::default(),
        }
        .run(shutdown.clone()),
    );
    tokio::spawn(
        ProcessorStage {
            log: log.clone(),
            store: store.clone(),
            snapshot_every: 1_000,
            snapshot_max_age: Duration::from_secs(3600),
            remember_ended: Duration::from_secs(3600),
            metrics: Arc::new(PipelineMetrics::default()),
            updates,
            names: LogNames::default(),
            fee_account: fees,
        }
        .run(shutdown.clone()),
    );
    tokio::spawn(references.follow(log.clone(), topics::MARKETDATA.into(), shutdown.clone()));

    let api_state = ApiState::new(
        log.clone(),
        store.clone(),
        idempotency,
        instruments.clone(),
        ApiConfig {
            partitions: 4,
            operator_key_hashes: [hash_api_key(ADMIN_KEY)].into(),
            ..ApiConfig::default()
        },
        Arc::new(OrderIdGenerator::new(1).unwrap()),
    );
    let md = MarketData::new(
        MarketDataConfig {
            instruments,
            auth_recheck_interval: Duration::from_millis(200),
            ..MarketDataConfig::default()
        },
        store.clone(),
        Arc::new(ApiAccounts(api_state.clone())),
    );
    tokio::spawn(run_marketdata_consumer(
        md.clone(),
        log.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(run_orders_feed(md.clone(), log.clone(), shutdown));
    let log_for_tests = log.clone();
    let app = api::router_with(api_state, marketdata_router(md.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let system = System {
        _dir: dir,
        addr,
        md,
        log: log_for_tests,
        processor_updates,
        _stop: stop,
    };
    (system, accounts[0], accounts[1])
}

impl System {
    /// One HTTP/1.1 request of the account of `key`: (status, JSON body).
    async fn request(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, body) = self
            .raw_request(method, path, &format!("X-API-Key: {key}"), body)
            .await;
        (status, body)
    }

    /// One HTTP/1.1 request with one more header line: (status, head, JSON body).
    async fn raw_request(
        &self,
        method: &str,
        path: &str,
        header: &str,
        body: Option<Value>,
    ) -> (u16, String, Value) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{header}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (
            head[9..12].parse().unwrap(),
            head.to_string(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// Places an order for the account of `key`; its id.
    async fn place(&self, key: &str, order: Value) -> String {
        let (status, placed) = self.request("POST", "/api/orders", key, Some(order)).await;
        assert_eq!(status, 202, "{placed}");
        placed["orderId"].as_str().unwrap().to_string()
    }

    /// The buyer's order `id` once it has left NEW.
    async fn settled(&self, id: &str) -> Value {
        self.until(id, "buyer-key", |o| o["status"] != "NEW").await
    }

    /// Order `id` of the account of `key` once `done` holds for it.
    async fn until(&self, id: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let path = format!("/api/orders/{id}");
                let (status, o) = self.request("GET", &path, key, None).await;
                if status == 200 && done(&o) {
                    return o;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the order settles")
    }

    async fn ws(&self, key: Option<&str>, channels: &[&str]) -> Ws {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", self.addr))
            .await
            .unwrap();
        if let Some(k) = key {
            send(&mut ws, json!({"op":"auth","apiKey":k})).await;
            assert_eq!(next(&mut ws).await["type"], "authenticated");
        }
        send(&mut ws, json!({"op":"subscribe","channels":channels})).await;
        assert_eq!(next(&mut ws).await["type"], "subscribed");
        ws
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next message that is not a heartbeat.
async fn next(ws: &mut Ws) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] != "heartbeat" {
                        return v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("no message")
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is no decimal string"))
        .parse()
        .unwrap()
}

fn order(side: &str, tif: &str) -> Value {
    json!({"symbol":"BTC/USD","side":side,"quantity":"0.1","price":45000,"orderType":"LIMIT","timeInForce":tif})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketable_order_reaches_every_feed_and_private_updates_stay_private() {
    let (sys, seller, buyer) = start().await;
    let mut buyer_ws = sys
        .ws(
            Some("buyer-key"),
            &[
                "trades:BTC/USD",
                "candles:BTC/USD:1m",
                "ticker:BTC/USD",
                "orders",
            ],
        )
        .await;
    let mut seller_ws = sys.ws(Some("seller-key"), &["orders"]).await;
    let mut spectator = sys.ws(None, &["trades:BTC/USD", "depth:BTC/USD"]).await;
    let snapshot = next(&mut spectator).await;
    assert_eq!(snapshot["type"], "snapshot");
    tokio::time::timeout(PATIENCE, async {
        while !sys.md.orders_feed_live() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();

    // The seller rests an offer; the buyer lifts it.
    let (status, sell) = sys
        .request(
            "POST",
            "/api/orders",
            "seller-key",
            Some(order("SELL", "GTC")),
        )
        .await;
    assert_eq!(status, 202, "{sell}");
    let sell_id = sell["orderId"].as_str().unwrap().to_string();
    loop {
        let m = next(&mut seller_ws).await;
        assert_eq!(m["data"]["order"]["accountId"], seller.0);
        if m["data"]["order"]["status"] == "ACCEPTED" {
            break;
        }
    }
    let (status, buy) = sys
        .request(
            "POST",
            "/api/orders",
            "buyer-key",
            Some(order("BUY", "IOC")),
        )
        .await;
    assert_eq!(status, 202, "{buy}");
    let buy_id = buy["orderId"].as_str().unwrap().to_string();

    // The buyer sees the trade, the candle and its own order fill.
    let (mut trade, mut candle, mut filled) = (None, None, None);
    while trade.is_none() || candle.is_none() || filled.is_none() {
        let m = next(&mut buyer_ws).await;
        match m["channel"].as_str().unwrap() {
            "trades:BTC/USD" => trade = Some(m["data"].clone()),
            "candles:BTC/USD:1m" => candle = Some(m["data"].clone()),
            "ticker:BTC/USD" => {}
            "orders" => {
                let o = &m["data"]["order"];
                assert_eq!(o["accountId"], buyer.0, "only the buyer's own orders");
                assert_eq!(o["orderId"], buy_id.as_str());
                if o["status"] == "FILLED" {
                    filled = Some(m["data"].clone());
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    let trade = trade.unwrap();
    assert_eq!(trade["price"], "45000.00");
    assert_eq!(dec(&trade["quantity"]), dec(&json!("0.1")));
    assert_eq!(trade["takerSide"], "BUY");
    let candle = candle.unwrap();
    assert_eq!(candle["trades"], 1);
    assert_eq!(candle["close"], "45000.00");
    assert_eq!(dec(&candle["volume"]), dec(&json!("0.1")));
    let filled = filled.unwrap();
    assert_eq!(filled["fill"]["liquidity"], "TAKER");
    assert_eq!(filled["fill"]["tradeId"], trade["tradeId"]);
    assert_eq!(filled["order"]["filledQuantity"], "0.10000");

    // The seller's private stream: its own order filled as maker, never the buyer's order.
    loop {
        let m = next(&mut seller_ws).await;
        let o = &m["data"]["order"];
        assert_eq!(o["accountId"], seller.0);
        assert_ne!(o["orderId"], buy_id.as_str());
        if o["status"] == "FILLED" {
            assert_eq!(o["orderId"], sell_id.as_str());
            assert_eq!(m["data"]["fill"]["liquidity"], "MAKER");
            break;
        }
    }
    // A spectator sees the public trade, and the offer's level leave the book.
    let mut saw_trade = false;
    let mut ask_gone = false;
    while !(saw_trade && ask_gone) {
        let m = next(&mut spectator).await;
        match m["channel"].as_str().unwrap() {
            "trades:BTC/USD" => saw_trade = m["data"]["tradeId"] == trade["tradeId"],
            "depth:BTC/USD" => {
                let u = &m["data"];
                ask_gone |= u["side"] == "SELL"
                    && dec(&u["price"]) == Decimal::from(45_000)
                    && u["quantity"] == "0";
            }
            other => panic!("unexpected {other}"),
        }
    }
    // REST agrees.
    let (status, body) = sys
        .request(
            "GET",
            "/api/marketdata/trades?symbol=BTC/USD&limit=5",
            "",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["trades"][0]["tradeId"], trade["tradeId"]);
    let (_, body) = sys
        .request("GET", "/api/marketdata/ticker?symbol=BTC/USD", "", None)
        .await;
    assert_eq!(body["last"], "45000.00");
    assert_eq!(dec(&body["volume24h"]), dec(&json!("0.1")));
}

/// An idempotent request resumed after a crash appends its `OrderCreated` again, with the same
/// order id: once the order has traded, that repeat changes nothing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_order_created_changes_nothing() {
    let (sys, _seller, _buyer) = start().await;
    // The offer rests before the bid is sent: the two accounts' orders are decided in
    // different partitions, so the bid could otherwise reach the venue first and expire.
    let sell_id = sys.place("seller-key", order("SELL", "GTC")).await;
    sys.until(&sell_id, "seller-key", |o| o["status"] == "ACCEPTED")
        .await;
    let buy_id = sys.place("buyer-key", order("BUY", "IOC")).await;
    let filled = sys.settled(&buy_id).await;
    assert_eq!(filled["status"], "FILLED");
    let (_, balances) = sys
        .request("GET", "/api/accounts/me", "buyer-key", None)
        .await;
    let mut buyer_ws = sys.ws(Some("buyer-key"), &["orders"]).await;
    tokio::time::timeout(PATIENCE, async {
        while !sys.md.orders_feed_live() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the orders channel goes live");

    // The same OrderCreated once more, as a resumed request appends it: under the order's own
    // time, well after it (a resume waits for the idempotency lock to expire).
    let mut original = None;
    for p in 0..4 {
        for rec in sys.log.read(topics::ORDERS, p, 0, 10_000).await.unwrap() {
            let env = oms_services::codec::decode_event(&rec).unwrap();
            if let Event::OrderCreated(o) = &env.event {
                if o.order_id.to_string() == buy_id {
                    original = Some(o.clone());
                }
            }
        }
    }
    let original = original.expect("the buy's OrderCreated is in the log");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    publish_order_event(
        sys.log.as_ref(),
        topics::ORDERS,
        original.created_at,
        Event::OrderCreated(original),
    )
    .await
    .unwrap();
    // A later order of the same account (same partition, so handled after the repeat).
    let later =
        json!({"symbol":"BTC/USD","side":"BUY","quantity":"0.1","price":44000,"orderType":"LIMIT"});
    let later = sys.place("buyer-key", later).await;
    sys.settled(&later).await;
    // The buyer's channel carries the later order, and nothing on the filled one.
    loop {
        let o = next(&mut buyer_ws).await["data"]["order"].clone();
        assert_eq!(
            o["orderId"],
            later.as_str(),
            "no update of the filled order: {o}"
        );
        if o["status"] != "NEW" {
            assert_eq!(o["status"], "ACCEPTED", "{o}");
            break;
        }
    }
    let (_, again) = sys
        .request("GET", &format!("/api/orders/{buy_id}"), "buyer-key", None)
        .await;
    assert_eq!(again, filled, "the filled order is untouched");
    let (_, fills) = sys
        .request(
            "GET",
            &format!("/api/orders/{buy_id}/fills"),
            "buyer-key",
            None,
        )
        .await;
    assert_eq!(fills["fills"].as_array().map(Vec::len), Some(1), "{fills}");
    let (_, after) = sys
        .request("GET", "/api/accounts/me", "buyer-key", None)
        .await;
    let usd = |b: &Value| {
        b["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["asset"] == "USD")
            .cloned()
            .unwrap()
    };
    let (before, after) = (usd(&balances), usd(&after));
    assert_eq!(before["total"], after["total"], "no second debit");
    let reserved = dec(&after["reserved"]);
    assert_eq!(
        dec(&before["available"]) - dec(&after["available"]),
        reserved,
        "{before} {after}"
    );
    // The later order (4,400 USD and its fee) alone; the repeated 4,500 USD buy reserves nothing.
    assert!(
        reserved > "4400".parse::<Decimal>().unwrap()
            && reserved < "4500".parse::<Decimal>().unwrap(),
        "only the later order's reservation: {after}"
    );
}

/// A revoked key ends the private channel of the connections opened with it, by the key or by
/// a session signed in with it, and theirs only; the public channels go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_its_connections_private_channel() {
    let (sys, _seller, buyer) = start().await;
    let mut by_key = sys
        .ws(Some("buyer-key"), &["orders", "trades:BTC/USD"])
        .await;
    let cookie = sign_in(&sys, "buyer-key").await;
    let mut by_session = ws_with_cookie(&sys, &cookie).await;
    assert_eq!(next(&mut by_session).await["type"], "authenticated");
    send(
        &mut by_session,
        json!({"op":"subscribe","channels":["orders"]}),
    )
    .await;
    assert_eq!(next(&mut by_session).await["type"], "subscribed");
    let mut sellers = sys.ws(Some("seller-key"), &["orders"]).await;

    // Both connections still work after several checks.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = sys.place("buyer-key", order("BUY", "GTC")).await;
    for ws in [&mut by_key, &mut by_session] {
        // Until it rests: nothing of it is left to come before the revocation.
        loop {
            let update = next(ws).await;
            assert_eq!(update["channel"], "orders", "{update}");
            assert_eq!(update["data"]["order"]["orderId"], id.as_str());
            if update["data"]["order"]["status"] == "ACCEPTED" {
                break;
            }
        }
    }

    let key_id = oms_services::api::auth::hash_api_key("buyer-key");
    let (status, _, body) = sys
        .raw_request(
            "DELETE",
            &format!("/api/admin/accounts/{buyer}/api-keys/{key_id}"),
            &format!("X-Admin-Key: {ADMIN_KEY}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for ws in [&mut by_key, &mut by_session] {
        let ended = loop {
            let m = next(ws).await;
            if m["type"] == "error" {
                break m;
            }
            assert_ne!(
                m["channel"], "orders",
                "a private message after the revocation: {m}"
            );
        };
        assert_eq!(ended["code"], "UNAUTHORIZED", "{ended}");
        assert_eq!(ended["channel"], "orders", "{ended}");
        // Anonymous now: the private channel is refused.
        send(ws, json!({"op":"subscribe","channels":["orders"]})).await;
        let refused = next(ws).await;
        assert_eq!(
            (&refused["type"], &refused["code"]),
            (&json!("error"), &json!("UNAUTHORIZED")),
            "{refused}"
        );
    }
    // The public channel goes on, and the other account's private channel too. The sell
    // fills the buyer's resting order, whose updates must not reach the revoked connection.
    let sell = sys.place("seller-key", order("SELL", "GTC")).await;
    let update = next(&mut sellers).await;
    assert_eq!(
        update["data"]["order"]["orderId"],
        sell.as_str(),
        "{update}"
    );
    let trade = loop {
        let m = next(&mut by_key).await;
        assert_ne!(
            m["channel"], "orders",
            "a private message after the revocation: {m}"
        );
        if m["channel"] == "trades:BTC/USD" && m["data"]["tradeId"].is_u64() {
            break m;
        }
    };
    // The only bid was the buyer's: its fill's updates were kept from the revoked connection.
    assert_eq!(trade["data"]["price"], "45000.00", "{trade}");
}

/// `oms_session=...` for a session signed in with `key`.
async fn sign_in(sys: &System, key: &str) -> String {
    let (status, head, _) = sys
        .raw_request(
            "POST",
            "/api/session",
            "X-Unused: 1",
            Some(json!({ "apiKey": key })),
        )
        .await;
    assert_eq!(status, 204, "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// A WebSocket connection that sends `cookie` with its upgrade request.
async fn ws_with_cookie(sys: &System, cookie: &str) -> Ws {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            sys.addr
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Signing out ends the session everywhere: an open connection's private channel at its next
/// check, and a new connection with the same cookie is anonymous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_sessions_private_channel() {
    let (sys, _seller, _buyer) = start().await;
    let cookie = sign_in(&sys, "buyer-key").await;
    let mut open = ws_with_cookie(&sys, &cookie).await;
    assert_eq!(next(&mut open).await["type"], "authenticated");
    send(&mut open, json!({"op":"subscribe","channels":["orders"]})).await;
    assert_eq!(next(&mut open).await["type"], "subscribed");

    let (status, head, _) = sys
        .raw_request("DELETE", "/api/session", &format!("Cookie: {cookie}"), None)
        .await;
    assert_eq!(status, 204, "{head}");
    let ended = loop {
        let m = next(&mut open).await;
        if m["type"] == "error" {
            break m;
        }
    };
    assert_eq!(
        (&ended["code"], &ended["channel"]),
        (&json!("UNAUTHORIZED"), &json!("orders")),
        "{ended}"
    );

    let mut again = ws_with_cookie(&sys, &cookie).await;
    send(&mut again, json!({"op":"subscribe","channels":["orders"]})).await;
    let refused = next(&mut again).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("UNAUTHORIZED")),
        "a signed-out cookie opens no private channel: {refused}"
    );
}

/// An order that takes three resting orders at once: the processor applies the three fills in
/// one batch, and publishes each (the private channel of `oms serve` follows these), so a
/// client that sums the fills it is sent finds the order's filled quantity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fill_of_a_batch_is_published_not_only_the_last() {
    let (sys, _seller, _buyer) = start().await;
    let mut makers = Vec::new();
    for price in ["45000", "45001", "45002"] {
        let ask = json!({"symbol":"BTC/USD","side":"SELL","quantity":"0.1","price":price,"orderType":"LIMIT"});
        makers.push(sys.place("seller-key", ask).await);
    }
    for id in &makers {
        sys.until(id, "seller-key", |o| o["status"] == "ACCEPTED")
            .await;
    }
    let mut updates = sys.processor_updates.subscribe();
    let sweep = json!({"symbol":"BTC/USD","side":"BUY","quantity":"0.3","price":"45002","orderType":"LIMIT","timeInForce":"IOC"});
    let taker = sys.place("buyer-key", sweep).await;
    let (mut fills, mut filled) = (Vec::new(), Decimal::ZERO);
    let mut statuses = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let u = updates.recv().await.unwrap();
            if u.order.order_id.to_string() != taker {
                continue;
            }
            statuses.push(u.order.status);
            if let Event::OrderFilled(f) = &u.event.event {
                fills.push(f.trade_id);
                filled += f.quantity;
            }
            if u.order.status.is_final() {
                return;
            }
        }
    })
    .await
    .expect("the sweep finishes");
    assert_eq!(fills.len(), 3, "one update per fill: {fills:?}");
    assert_eq!(filled, "0.3".parse::<Decimal>().unwrap());
    assert_eq!(
        statuses.last(),
        Some(&oms_domain::order::OrderStatus::Filled),
        "{statuses:?}"
    );
}
