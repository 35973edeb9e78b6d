//! WebSocket fan-out: N clients subscribed to one symbol's trades while trades flow at a fixed
//! rate through the real path: embedded event log (fsync on) → market data consumer → hub →
//! axum WebSocket server on loopback → tokio-tungstenite clients.
//!
//! Latency of one delivery = the client's receive time − the time the trade was created, just
//! before it was appended to the log; so it includes the log's durable append, the consumer's
//! poll, the fan-out and the socket. Every client must receive every trade.
//!
//! `cargo bench -p oms-services --bench ws_fanout -- [clients] [trades_per_sec] [seconds]`
//! (defaults 1000 2000 20).

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{Symbol, Timestamp, TradeId};
use oms_domain::order::Side;
use oms_domain::Decimal;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::EventLog;
use oms_services::codec::encode_event;
use oms_services::marketdata::{
    marketdata_router, run_marketdata_consumer, MarketData, MarketDataConfig, NoAccounts,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Trades appended per batch; batches go out at rate / BATCH per second.
const BATCH: u64 = 10;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The trade id in a trades message, without parsing the whole JSON.
fn trade_id(text: &str) -> Option<u64> {
    let at = text.find("\"tradeId\":")? + "\"tradeId\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

struct ClientResult {
    hist: Histogram<u64>,
    received: u64,
}

fn main() {
    let clients = arg(0, 1000) as usize;
    let rate = arg(1, 2000);
    let seconds = arg(2, 20);
    let total = rate * seconds;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(clients, rate, seconds, total));
}

async fn run(clients: usize, rate: u64, seconds: u64, total: u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(&dir.path().join("log"), FileLogOptions::default())
        .await
        .unwrap();
    log.ensure_topic("marketdata", 4).await.unwrap();
    log.ensure_topic("orders", 4).await.unwrap();
    let log: Arc<dyn EventLog> = Arc::new(log);
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let md = MarketData::new(MarketDataConfig::default(), store, Arc::new(NoAccounts));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let consumer = tokio::spawn(run_marketdata_consumer(md.clone(), log.clone(), shutdown));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, marketdata_router(md)).await.unwrap() });

    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..=total).map(|_| AtomicU64::new(0)).collect());

    // Connect and subscribe every client, a hundred at a time.
    let url = format!("ws://{addr}/ws");
    let mut sockets = Vec::with_capacity(clients);
    for chunk in (0..clients).collect::<Vec<_>>().chunks(100) {
        let conns = futures_util::future::join_all(chunk.iter().map(|_| async {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap();
            ws.send(Message::text(
                r#"{"op":"subscribe","channels":["trades:BTC/USD"]}"#,
            ))
            .await
            .unwrap();
            loop {
                if let Some(Ok(Message::Text(t))) = ws.next().await {
                    if t.contains("subscribed") {
                        break;
                    }
                }
            }
            ws
        }))
        .await;
        sockets.extend(conns);
    }
    println!("ws fan-out: {clients} clients on trades:BTC/USD, {rate} trades/s for {seconds} s ({total} trades), batches of {BATCH}");

    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let sent_at = sent_at.clone();
            tokio::spawn(async move {
                let mut r = ClientResult {
                    hist: Histogram::new_with_bounds(1, 120_000_000, 3).unwrap(),
                    received: 0,
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(t) = msg else { continue };
                    let Some(id) = trade_id(&t) else { continue };
                    let now = epoch.elapsed().as_micros() as u64;
                    let sent = sent_at[id as usize].load(Ordering::Acquire);
                    r.hist.saturating_record(now.saturating_sub(sent).max(1));
                    r.received += 1;
                    if id == total {
                        break;
                    }
                }
                r
            })
        })
        .collect();

    // The producer: BATCH trades every BATCH/rate seconds.
    let symbol = Symbol::new("BTC/USD");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * BATCH / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut id = 0u64;
    while id < total {
        tick.tick().await;
        let mut records = Vec::with_capacity(BATCH as usize);
        let now_us = epoch.elapsed().as_micros() as u64;
        for _ in 0..BATCH.min(total - id) {
            id += 1;
            sent_at[id as usize].store(now_us, Ordering::Release);
            let event = Event::Trade {
                symbol: symbol.clone(),
                trade_id: TradeId(id),
                price: Decimal::new(4_500_000 + (id % 500) as i64, 2),
                quantity: Decimal::new(1 + (id % 100) as i64, 4),
                taker_side: if id.is_multiple_of(2) { Side::Buy } else { Side::Sell },
                at: Timestamp(1_764_057_600_000 + (now_us / 1000) as i64),
            };
            records.push(encode_event(&Envelope::new(Timestamp(0), event)));
        }
        log.append("marketdata", records).await.unwrap();
    }
    let produced_in = started.elapsed();

    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).unwrap();
    let mut received = 0u64;
    let mut complete = 0usize;
    for r in readers {
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(60), r).await {
            hist.add(&r.hist).unwrap();
            received += r.received;
            complete += (r.received == total) as usize;
        }
    }
    let _ = stop.send(true);
    let _ = consumer.await;
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "  produced {total} trades in {:.2} s ({:.0} trades/s); deliveries {received} of {} ({complete} of {clients} clients got every trade)",
        produced_in.as_secs_f64(),
        total as f64 / produced_in.as_secs_f64(),
        total * clients as u64,
    );
    println!(
        "  delivery latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        ms(hist.value_at_quantile(0.50)),
        ms(hist.value_at_quantile(0.90)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.value_at_quantile(0.999)),
        ms(hist.max()),
    );
}
