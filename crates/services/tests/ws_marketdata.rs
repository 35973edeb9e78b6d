//! Market data over a real server and real WebSocket clients, fed from an embedded event log.

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use oms_domain::events::{Envelope, Event, Fill};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp, TradeId};
use oms_domain::instrument::TradingStatus;
use oms_domain::order::{Liquidity, NewOrder, OrderType, Side, TimeInForce};
use oms_domain::Decimal;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::EventLog;
use oms_ports::order_store::OrderStore;
use oms_services::api::rate_limit::RequestRate;
use oms_services::codec::encode_event;
use oms_services::marketdata::{
    marketdata_router, run_marketdata_consumer, run_orders_feed, AccountResolver,
    AccountsUnavailable, MarketData, MarketDataConfig, Resolved,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Guards against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Keys;

#[async_trait]
impl AccountResolver for Keys {
    async fn account_for_api_key(&self, key: &str) -> Resolved {
        match key {
            "key-1" => Ok(Some(AccountId(1))),
            "key-2" => Ok(Some(AccountId(2))),
            "key-while-down" => Err(AccountsUnavailable),
            _ => Ok(None),
        }
    }
    async fn account_for_session_cookie(&self, cookie: &str) -> Resolved {
        match cookie {
            "session-while-down" => Err(AccountsUnavailable),
            _ => Ok((cookie == "session-of-2").then_some(AccountId(2))),
        }
    }
}

struct Server {
    _dir: tempfile::TempDir,
    log: Arc<dyn EventLog>,
    store: Arc<SqliteStore>,
    md: MarketData,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    consumer: JoinHandle<()>,
    orders_feed: JoinHandle<()>,
}

async fn open_log(dir: &std::path::Path) -> Arc<dyn EventLog> {
    let log = FileLog::open(
        &dir.join("log"),
        FileLogOptions {
            fsync: false,
            ..FileLogOptions::default()
        },
    )
    .await
    .unwrap();
    log.ensure_topic("marketdata", 4).await.unwrap();
    // One partition, so events of different accounts arrive in append order.
    log.ensure_topic("orders", 1).await.unwrap();
    Arc::new(log)
}

async fn start(config: MarketDataConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    start_on(dir, log, store, config).await
}

async fn start_on(
    dir: tempfile::TempDir,
    log: Arc<dyn EventLog>,
    store: Arc<SqliteStore>,
    config: MarketDataConfig,
) -> Server {
    let md = MarketData::new(config, store.clone(), Arc::new(Keys));
    let (stop, shutdown) = watch::channel(false);
    let consumer = tokio::spawn({
        let (md, log, shutdown) = (md.clone(), log.clone(), shutdown.clone());
        async move { run_marketdata_consumer(md, log, shutdown).await.unwrap() }
    });
    let orders_feed = tokio::spawn({
        let (md, log) = (md.clone(), log.clone());
        async move { run_orders_feed(md, log, shutdown).await.unwrap() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = marketdata_router(md.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        _dir: dir,
        log,
        store,
        md,
        addr,
        stop,
        consumer,
        orders_feed,
    }
}

impl Server {
    async fn append(&self, topic: &str, events: Vec<Event>) {
        let records = events
            .into_iter()
            .map(|e| encode_event(&Envelope::new(Timestamp(1_764_057_600_000), e)))
            .collect();
        self.log.append(topic, records).await.unwrap();
    }

    async fn connect(&self) -> Ws {
        self.connect_with(None).await
    }

    async fn connect_with(&self, cookie: Option<&str>) -> Ws {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(c) = cookie {
            req.headers_mut().insert("cookie", c.parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        ws
    }

    /// GET over plain HTTP/1.1: (status, content type, JSON body).
    async fn get(&self, path_and_query: &str) -> (u16, String, Value) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        let ctype = head
            .lines()
            .find_map(|l| l.strip_prefix("content-type: "))
            .unwrap_or("")
            .to_string();
        (
            status,
            ctype,
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    async fn wait_until(&self, what: &str, mut done: impl FnMut(&MarketData) -> bool) {
        tokio::time::timeout(PATIENCE, async {
            while !done(&self.md) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"));
    }

    async fn shutdown(self) -> (tempfile::TempDir, Arc<dyn EventLog>, Arc<SqliteStore>) {
        self.stop.send(true).unwrap();
        self.consumer.await.unwrap();
        self.orders_feed.await.unwrap();
        (self._dir, self.log, self.store)
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

fn btc() -> Symbol {
    Symbol::new("BTC/USD")
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn trade(id: u64, price: &str, qty: &str, at: i64) -> Event {
    Event::Trade {
        symbol: btc(),
        trade_id: TradeId(id),
        price: d(price),
        quantity: d(qty),
        taker_side: Side::Buy,
        at: Timestamp(at),
    }
}

fn level(seq: u64, side: Side, price: &str, qty: &str) -> Event {
    Event::BookChanged {
        symbol: btc(),
        seq,
        side,
        price: d(price),
        quantity: d(qty),
    }
}

const T0: i64 = 1_764_057_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_trades_candles_ticker_and_a_depth_snapshot_then_updates() {
    let srv = start(MarketDataConfig::default()).await;
    srv.append(
        "marketdata",
        vec![
            level(1, Side::Buy, "44999.00", "1.5"),
            level(2, Side::Sell, "45001.00", "2"),
            level(3, Side::Buy, "44998.00", "0.5"),
        ],
    )
    .await;
    let mut ws = srv.connect().await;
    send(
        &mut ws,
        json!({"op":"subscribe","channels":["depth:BTC/USD","trades:BTC/USD","candles:BTC/USD:1m","ticker:BTC/USD","trades:NOPE/USD","orders"]}),
    )
    .await;
    // Refusals come first, one per bad channel, then the acknowledgement.
    let e1 = next(&mut ws).await;
    assert_eq!(
        (e1["type"].as_str(), e1["code"].as_str()),
        (Some("error"), Some("UNKNOWN_SYMBOL"))
    );
    let e2 = next(&mut ws).await;
    assert_eq!(e2["code"], "UNAUTHORIZED");
    assert_eq!(e2["channel"], "orders");
    let ack = next(&mut ws).await;
    assert_eq!(ack["type"], "subscribed");
    assert_eq!(
        ack["channels"],
        json!([
            "depth:BTC/USD",
            "trades:BTC/USD",
            "candles:BTC/USD:1m",
            "ticker:BTC/USD"
        ])
    );
    let snap = next(&mut ws).await;
    assert_eq!(snap["channel"], "depth:BTC/USD");
    assert_eq!(snap["type"], "snapshot");
    // The client's book: the snapshot, then every update after it.
    let mut book: BTreeMap<(String, String), String> = BTreeMap::new();
    for (side, key) in [("BUY", "bids"), ("SELL", "asks")] {
        for l in snap["data"][key].as_array().unwrap() {
            book.insert(
                (side.into(), l[0].as_str().unwrap().into()),
                l[1].as_str().unwrap().into(),
            );
        }
    }
    let mut seq = snap["seq"].as_u64().unwrap();
    srv.append(
        "marketdata",
        vec![
            level(4, Side::Buy, "44999.00", "0"),
            trade(1, "45001.00", "0.25", T0 + 1_000),
            trade(2, "45002.50", "0.5", T0 + 2_000),
        ],
    )
    .await;
    let mut trades = Vec::new();
    let mut candle = Value::Null;
    let mut ticker = Value::Null;
    while seq < 4 || trades.len() < 2 || candle["trades"] != 2 || ticker["last"] != "45002.50" {
        let m = next(&mut ws).await;
        match m["channel"].as_str().unwrap() {
            "depth:BTC/USD" => {
                assert_eq!(m["type"], "update");
                let u = &m["data"];
                assert_eq!(u["seq"].as_u64().unwrap(), seq + 1, "no gap, no repeat");
                assert_eq!(m["seq"], u["seq"]);
                seq += 1;
                let k = (
                    u["side"].as_str().unwrap().to_string(),
                    u["price"].as_str().unwrap().to_string(),
                );
                if u["quantity"] == "0" {
                    book.remove(&k);
                } else {
                    book.insert(k, u["quantity"].as_str().unwrap().into());
                }
            }
            "trades:BTC/USD" => trades.push(m),
            "candles:BTC/USD:1m" => candle = m["data"].clone(),
            "ticker:BTC/USD" => ticker = m["data"].clone(),
            other => panic!("unexpected channel {other}"),
        }
    }
    let expected: BTreeMap<(String, String), String> = [
        (
            ("BUY".to_string(), "44998.00".to_string()),
            "0.5".to_string(),
        ),
        (
            ("SELL".to_string(), "45001.00".to_string()),
            "2".to_string(),
        ),
    ]
    .into();
    assert_eq!(book, expected);
    assert_eq!(trades[0]["data"]["tradeId"], 1);
    assert_eq!(trades[1]["data"]["price"], "45002.50");
    assert_eq!(trades[1]["data"]["takerSide"], "BUY");
    assert_eq!(
        trades[1]["seq"].as_u64(),
        Some(trades[0]["seq"].as_u64().unwrap() + 1)
    );
    assert_eq!(candle["openTime"], T0);
    assert_eq!(candle["open"], "45001.00");
    assert_eq!(candle["close"], "45002.50");
    assert_eq!(candle["volume"], "0.75");
    assert_eq!(candle["quoteVolume"], "33751.5000");
    assert_eq!(ticker["bestBid"], "44998.00");
    assert_eq!(ticker["bestAsk"], "45001.00");

    // The same state over REST.
    let (status, ctype, body) = srv
        .get("/api/marketdata/candles?symbol=BTC/USD&interval=1s")
        .await;
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    assert_eq!(body["interval"], "1s");
    let opens: Vec<i64> = body["candles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["openTime"].as_i64().unwrap())
        .collect();
    assert_eq!(opens, vec![T0 + 1_000, T0 + 2_000]);
    let (_, _, body) = srv
        .get("/api/marketdata/candles?symbol=BTC%2FUSD&interval=1s&from=1764057602000")
        .await;
    assert_eq!(body["candles"].as_array().unwrap().len(), 1);
    let (_, _, body) = srv
        .get("/api/marketdata/depth?symbol=BTC/USD&levels=1")
        .await;
    assert_eq!(
        body,
        json!({"symbol":"BTC/USD","seq":4,"bids":[["44998.00","0.5"]],"asks":[["45001.00","2"]]})
    );
    let (_, _, body) = srv
        .get("/api/marketdata/trades?symbol=BTC/USD&limit=1")
        .await;
    assert_eq!(body["trades"].as_array().unwrap().len(), 1);
    assert_eq!(body["trades"][0]["tradeId"], 2);
    let (_, _, body) = srv.get("/api/marketdata/ticker?symbol=BTC/USD").await;
    assert_eq!(body["symbol"], "BTC/USD");
    assert_eq!(body["last"], "45002.50");
    let (_, _, body) = srv.get("/api/marketdata/ticker?symbol=ETH/USD").await;
    assert_eq!(body["last"], Value::Null);
    assert_eq!(body["volume24h"], "0");

    // Unsubscribing stops the channel; ping still answers.
    send(&mut ws, json!({"op":"unsubscribe","channels":["trades:BTC/USD","candles:BTC/USD:1m","ticker:BTC/USD"]})).await;
    assert_eq!(next(&mut ws).await["type"], "unsubscribed");
    srv.append(
        "marketdata",
        vec![
            trade(3, "45000.00", "1", T0 + 3_000),
            level(5, Side::Sell, "45003.00", "1"),
        ],
    )
    .await;
    let m = next(&mut ws).await;
    assert_eq!(
        (m["channel"].as_str(), m["seq"].as_u64()),
        (Some("depth:BTC/USD"), Some(5))
    );
    send(&mut ws, json!({"op":"ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");
    // Messages that are not operations: told so in the protocol's terms.
    for (bad, says) in [
        (json!({"op":"dance"}), "unknown op \"dance\""),
        (json!({"channels":["trades:BTC/USD"]}), "op is missing"),
        (json!({"op":"subscribe"}), "missing field `channels`"),
        (json!({"op":"subscribe","channels":[]}), "channels is empty"),
        (json!(["ping"]), "op is missing"),
        (
            json!({"op":"subscribe","channels":"x".repeat(10_000)}),
            "invalid type",
        ),
    ] {
        send(&mut ws, bad.clone()).await;
        let m = next(&mut ws).await;
        assert_eq!(m["code"], "INVALID_MESSAGE", "{bad}");
        let message = m["message"].as_str().unwrap();
        assert!(message.contains(says), "{bad}: {message}");
        assert!(!message.contains("ClientOp"), "{bad}: {message}");
        assert!(
            message.len() < 500,
            "not echoed back whole: {}",
            message.len()
        );
    }
    // A channel name longer than any channel is refused, and not echoed back whole.
    let long = format!("trades:{}", "X".repeat(10_000));
    send(&mut ws, json!({"op":"subscribe","channels":[long]})).await;
    let m = next(&mut ws).await;
    assert_eq!(m["code"], "INVALID_CHANNEL");
    assert_eq!(m["channel"].as_str().map(str::len), Some(64), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_400_problems() {
    let srv = start(MarketDataConfig::default()).await;
    let cases = [
        (
            "/api/marketdata/candles?symbol=BTC/USD&interval=2m",
            "INVALID_INTERVAL",
            "interval",
        ),
        (
            "/api/marketdata/candles?symbol=DOGE/USD",
            "UNKNOWN_SYMBOL",
            "symbol",
        ),
        (
            "/api/marketdata/candles?interval=1m",
            "MISSING_FIELD",
            "symbol",
        ),
        (
            "/api/marketdata/candles?symbol=BTC/USD&from=20&to=10",
            "INVALID_RANGE",
            "from",
        ),
        (
            "/api/marketdata/candles?symbol=BTC/USD&from=yesterday",
            "INVALID_TIMESTAMP",
            "from",
        ),
        (
            "/api/marketdata/candles?symbol=BTC/USD&limit=0",
            "INVALID_LIMIT",
            "limit",
        ),
        (
            "/api/marketdata/candles?symbol=BTC/USD&limit=1001",
            "INVALID_LIMIT",
            "limit",
        ),
        (
            "/api/marketdata/trades?symbol=BTC/USD&limit=-1",
            "INVALID_LIMIT",
            "limit",
        ),
        (
            "/api/marketdata/depth?symbol=BTC/USD&levels=1001",
            "INVALID_LIMIT",
            "levels",
        ),
        ("/api/marketdata/ticker?symbol=", "MISSING_FIELD", "symbol"),
        // Not a parameter of depth (`levels` is): refused, not ignored.
        (
            "/api/marketdata/depth?symbol=BTC/USD&limit=abc",
            "UNKNOWN_FIELD",
            "limit",
        ),
        (
            "/api/marketdata/trades?symbol=BTC/USD&limit=5&limit=6",
            "DUPLICATE_FIELD",
            "limit",
        ),
        (
            "/api/marketdata/ticker?symbol=BTC/USD&symbol=ETH/USD",
            "DUPLICATE_FIELD",
            "symbol",
        ),
    ];
    for (path, code, field) in cases {
        let (status, ctype, body) = srv.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(ctype, "application/problem+json", "{path}");
        assert_eq!(body["code"], code, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}");
        assert_eq!(body["status"], 400);
        assert_eq!(
            body["type"],
            format!(
                "https://crypto-oms.dev/problems/{}",
                code.to_lowercase().replace('_', "-")
            )
        );
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let (status, _, body) = srv
        .get("/api/marketdata/candles?symbol=BTC/USD&interval=1d&from=10&to=10&limit=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["candles"], json!([]));
}

fn new_order(id: u64, account: u64) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account: AccountId(account),
        symbol: btc(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(d("45000")),
        stop_price: None,
        quantity: d("0.1"),
        expire_at: None,
        created_at: Timestamp(T0),
    }
}

fn fill(order: u64, account: u64, qty: &str, leaves: &str) -> Fill {
    Fill {
        account: AccountId(account),
        order_id: OrderId(order),
        symbol: btc(),
        side: Side::Buy,
        trade_id: TradeId(order * 10),
        price: d("45000.00"),
        quantity: d(qty),
        liquidity: Liquidity::Taker,
        fee: d("9.00"),
        base: Asset::new("BTC"),
        quote: Asset::new("USD"),
        cumulative_quantity: d(qty),
        leaves_quantity: d(leaves),
        fee_account: AccountId(0),
        at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_order_updates_reach_only_their_account() {
    let srv = start(MarketDataConfig::default()).await;
    let mut one = srv.connect().await;
    let mut two = srv.connect().await;
    let mut two_by_cookie = srv
        .connect_with(Some("theme=dark; oms_session=session-of-2"))
        .await;
    let mut nobody = srv.connect().await;

    send(&mut one, json!({"op":"auth","apiKey":"wrong"})).await;
    assert_eq!(next(&mut one).await["code"], "UNAUTHORIZED");
    // A key or session that cannot be checked is told apart from an unknown one.
    send(&mut one, json!({"op":"auth","apiKey":"key-while-down"})).await;
    assert_eq!(next(&mut one).await["code"], "AUTH_UNAVAILABLE");
    let mut unchecked = srv
        .connect_with(Some("oms_session=session-while-down"))
        .await;
    assert_eq!(next(&mut unchecked).await["code"], "AUTH_UNAVAILABLE");
    send(
        &mut unchecked,
        json!({"op":"subscribe","channels":["orders"]}),
    )
    .await;
    assert_eq!(next(&mut unchecked).await["code"], "UNAUTHORIZED");
    send(&mut one, json!({"op":"auth","apiKey":"key-1"})).await;
    assert_eq!(
        next(&mut one).await,
        json!({"type":"authenticated","accountId":1})
    );
    send(&mut two, json!({"op":"auth","apiKey":"key-2"})).await;
    assert_eq!(next(&mut two).await["accountId"], 2);
    assert_eq!(
        next(&mut two_by_cookie).await,
        json!({"type":"authenticated","accountId":2})
    );
    for ws in [&mut one, &mut two, &mut two_by_cookie] {
        send(ws, json!({"op":"subscribe","channels":["orders"]})).await;
        assert_eq!(
            next(ws).await,
            json!({"type":"subscribed","channels":["orders"]})
        );
    }
    send(&mut nobody, json!({"op":"subscribe","channels":["orders"]})).await;
    assert_eq!(next(&mut nobody).await["code"], "UNAUTHORIZED");
    srv.wait_until("the orders feed", |md| md.orders_feed_live())
        .await;

    srv.append(
        "orders",
        vec![
            Event::OrderCreated(new_order(7, 1)),
            // Risk's approval is not sent: nothing a client sees changes.
            Event::RiskValidated {
                account: AccountId(1),
                order_id: OrderId(7),
                symbol: btc(),
                approved: true,
                reason: None,
                reservation: None,
                protection_price: None,
            },
            Event::OrderAccepted {
                account: AccountId(1),
                order_id: OrderId(7),
                symbol: btc(),
            },
            Event::OrderFilled(fill(7, 1, "0.1", "0")),
            Event::OrderCreated(new_order(8, 2)),
        ],
    )
    .await;
    let statuses: Vec<Value> = [
        next(&mut one).await,
        next(&mut one).await,
        next(&mut one).await,
    ]
    .into();
    for (i, (m, status)) in statuses
        .iter()
        .zip(["NEW", "ACCEPTED", "FILLED"])
        .enumerate()
    {
        assert_eq!(m["channel"], "orders");
        assert_eq!(m["seq"], i as u64 + 1);
        assert_eq!(m["data"]["order"]["orderId"], "7");
        assert_eq!(m["data"]["order"]["accountId"], 1);
        assert_eq!(m["data"]["order"]["status"], status);
    }
    let filled = &statuses[2]["data"];
    assert_eq!(filled["fill"]["tradeId"], 70);
    assert_eq!(filled["fill"]["liquidity"], "TAKER");
    assert_eq!(filled["fill"]["feeAsset"], "USD");
    assert_eq!(filled["order"]["filledQuantity"], "0.10000");
    assert_eq!(filled["order"]["price"], "45000.00");
    // Account 2's first message is its own order: none of account 1's came before it, on the
    // key-authenticated connection or the cookie-authenticated one.
    for ws in [&mut two, &mut two_by_cookie] {
        let m = next(ws).await;
        assert_eq!(m["data"]["order"]["orderId"], "8");
        assert_eq!(m["data"]["order"]["accountId"], 2);
        assert_eq!(m["seq"], 1);
    }
    // Re-authenticating as another account moves the private channel with it.
    send(&mut one, json!({"op":"auth","apiKey":"key-2"})).await;
    assert_eq!(next(&mut one).await["accountId"], 2);
    // A refused one after that leaves it where it is.
    send(&mut one, json!({"op":"auth","apiKey":"wrong"})).await;
    assert_eq!(next(&mut one).await["code"], "UNAUTHORIZED");
    srv.append(
        "orders",
        vec![
            Event::OrderCreated(new_order(9, 1)),
            Event::OrderCanceled {
                account: AccountId(2),
                order_id: OrderId(8),
                reason: oms_domain::events::CancelReason::UserRequested,
                leaves_quantity: d("0.1"),
            },
        ],
    )
    .await;
    let m = next(&mut one).await;
    assert_eq!(m["data"]["order"]["orderId"], "8");
    assert_eq!(m["data"]["order"]["status"], "CANCELED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_and_the_others_keep_receiving() {
    let srv = start(MarketDataConfig {
        client_buffer: 256,
        ..MarketDataConfig::default()
    })
    .await;
    // The slow client's socket takes little before its server-side queue has to hold the rest.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4_096).unwrap();
    let stream = socket.connect(srv.addr).await.unwrap();
    let url = format!("ws://{}/ws", srv.addr);
    let (mut slow, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    let mut healthy = srv.connect().await;
    for ws in [&mut slow, &mut healthy] {
        send(ws, json!({"op":"subscribe","channels":["trades:BTC/USD"]})).await;
        assert_eq!(next(ws).await["type"], "subscribed");
    }
    // Enough trades to fill the slow client's socket buffers and then its queue, sent in chunks
    // smaller than a queue, each once the healthy client has read the one before.
    const N: u64 = 60_000;
    const CHUNK: u64 = 200;
    let (progress, mut read_up_to) = watch::channel(0u64);
    let reader = tokio::spawn(async move {
        let mut expected = 1;
        while expected <= N {
            let m = next(&mut healthy).await;
            assert_eq!(m["data"]["tradeId"], expected);
            assert_eq!(m["seq"], expected, "the healthy client misses nothing");
            if expected % CHUNK == 0 {
                progress.send(expected).unwrap();
            }
            expected += 1;
        }
        healthy
    });
    for start in (1..=N).step_by(CHUNK as usize) {
        let events = (start..start + CHUNK)
            .map(|i| trade(i, "45000.00", "0.001", T0 + i as i64))
            .collect();
        srv.append("marketdata", events).await;
        read_up_to
            .wait_for(|&n| n >= start + CHUNK - 1)
            .await
            .expect("the healthy client keeps reading");
    }
    let _healthy = reader.await.unwrap();
    srv.wait_until("the slow client to be cut off", |md| {
        md.hub().stats.slow_consumers.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(srv.md.hub().subscriber_count("trades:BTC/USD"), 1);
    // The slow client finds, after what it had buffered, the reason and the end.
    let ended = tokio::time::timeout(PATIENCE, async {
        let mut last_seq = 0;
        loop {
            match slow.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "error" {
                        assert_eq!(v["code"], "SLOW_CONSUMER");
                    } else if let Some(s) = v["seq"].as_u64() {
                        assert_eq!(s, last_seq + 1);
                        last_seq = s;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    if let Some(f) = frame {
                        assert_eq!(f.reason.as_str(), "SLOW_CONSUMER");
                    }
                    return last_seq;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return last_seq,
            }
        }
    })
    .await
    .expect("the slow client's connection ends");
    assert!(
        ended < N,
        "the slow client was cut off before the end ({ended})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshot_rebuilds_exactly_what_a_full_replay_does() {
    let config = MarketDataConfig {
        snapshot_every_records: 100,
        ..MarketDataConfig::default()
    };
    let srv = start(config.clone()).await;
    let mut events = Vec::new();
    let mut seq = 0;
    for i in 1..=1_500u64 {
        let price = format!("{}.{:02}", 45_000 + (i * 7919 % 300), i % 100);
        events.push(trade(i, &price, "0.013", T0 + (i as i64) * 1_700));
        seq += 1;
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let qty = if i % 5 == 0 { "0" } else { "1.25" };
        events.push(level(seq, side, &format!("{}.00", 44_000 + i % 40), qty));
    }
    for chunk in events.chunks(500) {
        srv.append("marketdata", chunk.to_vec()).await;
    }
    srv.wait_until("all trades", |md| {
        md.market(&btc()).and_then(|m| m.last_trade_id()) == Some(TradeId(1_500))
    })
    .await;
    let before = srv.md.market(&btc()).unwrap();
    let snapshots = srv.md.metrics().snapshots_saved.load(Ordering::Relaxed);
    assert!(snapshots > 0, "snapshots were taken while consuming");
    let (dir, log, store) = srv.shutdown().await;
    let partition = oms_ports::event_log::partition_for(b"BTC/USD", 4);
    let (offset, _) = store
        .load_snapshot("marketdata", partition)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offset, 3_000, "the final snapshot covers every record");

    // Restart on the same log and store: restored from the snapshot.
    let srv = start_on(dir, log.clone(), store, config.clone()).await;
    srv.wait_until("the restored market", |md| {
        md.is_caught_up() && md.market(&btc()).is_some()
    })
    .await;
    assert_eq!(srv.md.market(&btc()).unwrap(), before);
    assert_eq!(
        srv.md.metrics().events_applied.load(Ordering::Relaxed),
        0,
        "nothing replayed"
    );

    // A from-scratch replay of the same log (no snapshot) gives the same state.
    let scratch_dir = tempfile::tempdir().unwrap();
    let scratch_store = Arc::new(
        SqliteStore::open(&scratch_dir.path().join("oms.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let replay_config = MarketDataConfig {
        group: "marketdata-replay".into(),
        orders_group: "marketdata-orders-replay".into(),
        ..config
    };
    let replay = start_on(scratch_dir, log, scratch_store, replay_config).await;
    replay
        .wait_until("the replay", |md| {
            md.market(&btc()).and_then(|m| m.last_trade_id()) == Some(TradeId(1_500))
        })
        .await;
    assert_eq!(replay.md.market(&btc()).unwrap(), before);

    // Both continue identically.
    let more = vec![
        trade(1_501, "45123.45", "2", T0 + 1_501 * 1_700),
        level(1_501, Side::Buy, "44500.00", "3"),
    ];
    srv.append("marketdata", more).await;
    for s in [&srv, &replay] {
        s.wait_until("the new trade", |md| {
            md.market(&btc()).and_then(|m| m.last_trade_id()) == Some(TradeId(1_501))
        })
        .await;
        s.wait_until("the new level", |md| {
            md.market(&btc()).is_some_and(|m| m.depth().seq() == 1_501)
        })
        .await;
    }
    assert_eq!(
        srv.md.market(&btc()).unwrap(),
        replay.md.market(&btc()).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_updates_reach_only_their_account() {
    use oms_services::pipeline::processor::OrderUpdate;
    let srv = start(MarketDataConfig::default()).await;
    let (tx, rx) = tokio::sync::broadcast::channel(16);
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(oms_services::marketdata::run_processor_updates(
        srv.md.clone(),
        rx,
        shutdown,
    ));
    let mut one = srv.connect().await;
    let mut two = srv.connect().await;
    for (ws, key) in [(&mut one, "key-1"), (&mut two, "key-2")] {
        send(ws, json!({"op":"auth","apiKey":key})).await;
        assert_eq!(next(ws).await["type"], "authenticated");
        send(ws, json!({"op":"subscribe","channels":["orders"]})).await;
        assert_eq!(next(ws).await["type"], "subscribed");
    }
    let update = |order: u64, account: u64, event: Event| {
        let mut o = oms_domain::order::Order::from_new(&new_order(order, account));
        o.status = oms_domain::order::OrderStatus::Accepted;
        OrderUpdate {
            order: o,
            event: Arc::new(Envelope::new(Timestamp(T0 + 5), event)),
        }
    };
    tx.send(update(
        11,
        1,
        Event::OrderAccepted {
            account: AccountId(1),
            order_id: OrderId(11),
            symbol: btc(),
        },
    ))
    .unwrap();
    tx.send(update(
        12,
        2,
        Event::OrderFilled(fill(12, 2, "0.05", "0.05")),
    ))
    .unwrap();
    let m = next(&mut one).await;
    assert_eq!(m["data"]["order"]["orderId"], "11");
    assert_eq!(m["data"]["order"]["status"], "ACCEPTED");
    assert!(m["data"].get("fill").is_none());
    let m = next(&mut two).await;
    assert_eq!(m["data"]["order"]["orderId"], "12");
    assert_eq!(m["data"]["fill"]["tradeId"], 120);
    assert_eq!(m["data"]["fill"]["at"], "2025-11-25T08:00:00.005Z");
    // Account 1's next message is its own next update: account 2's fill never reached it.
    tx.send(update(
        13,
        1,
        Event::OrderAccepted {
            account: AccountId(1),
            order_id: OrderId(13),
            symbol: btc(),
        },
    ))
    .unwrap();
    let m = next(&mut one).await;
    assert_eq!(m["data"]["order"]["orderId"], "13");
    assert_eq!(m["seq"], 2);
}

/// A client over its message rate gets one error for the first message dropped, and is cut off
/// once it sends `burst` more while refused; another client is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_message_rate_is_refused_then_cut_off() {
    let srv = start(MarketDataConfig {
        client_message_rate: RequestRate {
            per_second: 1,
            burst: 5,
        },
        ..MarketDataConfig::default()
    })
    .await;
    let mut flooder = srv.connect().await;
    let mut calm = srv.connect().await;
    for _ in 0..5 {
        send(&mut flooder, json!({"op":"ping"})).await;
        assert_eq!(next(&mut flooder).await["type"], "pong", "within the burst");
    }
    send(&mut flooder, json!({"op":"ping"})).await;
    let refused = next(&mut flooder).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "TOO_MANY_MESSAGES");
    // Three bursts' worth: the connection is closed whatever the one refill a second lets in.
    for _ in 0..15 {
        if flooder
            .send(Message::text(json!({"op":"ping"}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (mut pongs, mut errors) = (0, 0);
    let reason = tokio::time::timeout(PATIENCE, async {
        loop {
            match flooder.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("pong") => pongs += 1,
                        Some("error") => {
                            assert_eq!(v["code"], "TOO_MANY_MESSAGES");
                            errors += 1;
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| f.reason.to_string()).unwrap_or_default();
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    })
    .await
    .expect("the flooder is cut off");
    assert_eq!(reason, "TOO_MANY_MESSAGES");
    assert!(
        pongs <= 1,
        "at most the one message a second refilled: {pongs}"
    );
    // The closing reason, plus one error each time refusals start again after a refill; not
    // one per dropped message.
    assert!(
        (1..=1 + pongs).contains(&errors),
        "{errors} errors, {pongs} pongs"
    );
    send(&mut calm, json!({"op":"ping"})).await;
    assert_eq!(
        next(&mut calm).await["type"],
        "pong",
        "the other client is served"
    );
}

/// WebSocket ping frames count against the message rate like text messages (each costs the
/// server a pong): a client flooding pings is cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_ping_frames_is_cut_off() {
    let srv = start(MarketDataConfig {
        client_message_rate: RequestRate {
            per_second: 1,
            burst: 5,
        },
        ..MarketDataConfig::default()
    })
    .await;
    let mut flooder = srv.connect().await;
    // The burst, then one more refused than the burst: the last is the one that cuts the
    // client off. No more than that, since pings the server never reads when it closes would
    // reset the connection before the client reads the close frame.
    for _ in 0..5 + 6 {
        flooder.send(Message::Ping(vec![1].into())).await.unwrap();
    }
    let mut errors = 0;
    let reason = tokio::time::timeout(PATIENCE, async {
        loop {
            // A slow run may have earned a refill: then one more ping is refused.
            let Ok(msg) = tokio::time::timeout(Duration::from_millis(500), flooder.next()).await
            else {
                flooder.send(Message::Ping(vec![1].into())).await.unwrap();
                continue;
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "error" {
                        assert_eq!(v["code"], "TOO_MANY_MESSAGES");
                        errors += 1;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| f.reason.to_string()).unwrap_or_default();
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    })
    .await
    .expect("the ping flooder is cut off");
    assert_eq!(reason, "TOO_MANY_MESSAGES");
    assert!(errors >= 1, "the first refused ping is reported");
}

/// How the server ended the connection: the error code it sent, then its close frame's code
/// and reason.
async fn closing_words(ws: &mut Ws) -> (String, u16, String) {
    let mut said = String::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "error" {
                        said = v["code"].as_str().unwrap().to_string();
                    }
                }
                Some(Ok(Message::Close(Some(f)))) => {
                    return (said, u16::from(f.code), f.reason.to_string())
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the server closes the connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_close_with_their_own_codes() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let srv = start(MarketDataConfig::default()).await;

    // Over 64 KiB in all, in two frames of 40 KiB (each read whole, so the close is clean).
    let mut big = srv.connect().await;
    let part = vec![b' '; 40 * 1024];
    big.send(Message::Frame(Frame::message(
        part.clone(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    big.send(Message::Frame(Frame::message(
        part,
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(
        closing_words(&mut big).await,
        ("MESSAGE_TOO_BIG".into(), 1009, "MESSAGE_TOO_BIG".into())
    );

    // A text message that is not UTF-8.
    let mut garbled = srv.connect().await;
    garbled
        .send(Message::Frame(Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            OpCode::Data(Data::Text),
            true,
        )))
        .await
        .unwrap();
    assert_eq!(
        closing_words(&mut garbled).await,
        ("INVALID_UTF8".into(), 1007, "INVALID_UTF8".into())
    );

    // The server goes on for everyone else.
    let mut ok = srv.connect().await;
    send(&mut ok, json!({"op":"ping"})).await;
    assert_eq!(next(&mut ok).await["type"], "pong");
}

fn status(status: TradingStatus, change: Option<u64>, at: i64) -> Event {
    Event::TradingStatusChanged {
        symbol: btc(),
        status,
        change,
        at: Timestamp(at),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_subscriber_learns_of_a_halt_as_the_book_takes_it() {
    let mut config = MarketDataConfig::default();
    // The configured status shows until the venue publishes one.
    config.instruments[1].status = TradingStatus::CancelOnly;
    let eth = config.instruments[1].symbol.clone();
    let srv = start(config.clone()).await;
    let mut ws = srv.connect().await;
    send(
        &mut ws,
        json!({"op":"subscribe","channels":["status:BTC/USD", format!("status:{eth}"), "status:DOGE/USD"]}),
    )
    .await;
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(next(&mut ws).await);
    }
    let find = |name: &str| {
        first
            .iter()
            .find(|m| m["channel"] == name)
            .unwrap_or_else(|| panic!("no {name} message in {first:?}"))
            .clone()
    };
    assert_eq!(
        find("status:BTC/USD")["data"],
        json!({"symbol":"BTC/USD","status":"TRADING"})
    );
    assert_eq!(
        find(&format!("status:{eth}"))["data"],
        json!({"symbol": eth.as_str(),"status":"CANCEL_ONLY"})
    );
    let refused = first
        .iter()
        .find(|m| m["type"] == "error")
        .expect("the unknown symbol is refused");
    assert_eq!(refused["code"], "UNKNOWN_SYMBOL");
    assert_eq!(refused["channel"], "status:DOGE/USD");

    // A venue start publishes the configured status, an operator's halt follows, and the
    // next start publishes the halt again: the subscriber hears of each change once.
    srv.append(
        "marketdata",
        vec![
            status(TradingStatus::Trading, None, T0),
            status(TradingStatus::Halted, Some(7), T0 + 5_000),
            status(TradingStatus::Halted, Some(7), T0 + 9_000),
            trade(1, "45000.00", "0.1", T0 + 9_500),
        ],
    )
    .await;
    // The first publication tells when the status came into force.
    let known = next(&mut ws).await;
    assert_eq!(
        known["data"],
        json!({"symbol":"BTC/USD","status":"TRADING","since": T0})
    );
    let halted = next(&mut ws).await;
    assert_eq!(halted["channel"], "status:BTC/USD");
    assert_eq!(
        halted["data"],
        json!({"symbol":"BTC/USD","status":"HALTED","since": T0 + 5_000})
    );
    srv.wait_until("the trade", |md| {
        md.market(&btc()).and_then(|m| m.last_trade_id()) == Some(TradeId(1))
    })
    .await;
    srv.append(
        "marketdata",
        vec![status(TradingStatus::Trading, Some(8), T0 + 10_000)],
    )
    .await;
    let lifted = next(&mut ws).await;
    assert_eq!(
        lifted["data"],
        json!({"symbol":"BTC/USD","status":"TRADING","since": T0 + 10_000}),
        "the second HALTED published nothing: {lifted}"
    );

    // A later subscriber (after a restart from the snapshot) starts from the status in force.
    let (dir, log, store) = srv.shutdown().await;
    let srv = start_on(dir, log, store, config).await;
    srv.wait_until("the restored market", |md| {
        md.is_caught_up() && md.market(&btc()).is_some_and(|m| m.status().is_some())
    })
    .await;
    let mut late = srv.connect().await;
    send(
        &mut late,
        json!({"op":"subscribe","channels":["status:BTC/USD"]}),
    )
    .await;
    let mut got = next(&mut late).await;
    if got["type"] == "subscribed" {
        got = next(&mut late).await;
    }
    assert_eq!(
        got["data"],
        json!({"symbol":"BTC/USD","status":"TRADING","since": T0 + 10_000})
    );
}
