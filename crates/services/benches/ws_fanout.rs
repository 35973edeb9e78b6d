//! WebSocket fan-out: N clients subscribed to one symbol's trades while trades flow at a fixed
//! rate into the real market data server (`MarketData` → hub → axum WebSocket on loopback).
//!
//! Two sources, each measured:
//! - `direct`: trades are handed to `MarketData::apply` as the consumer would; latency runs from
//!   just before that call to the client's read: the fan-out itself.
//! - `log`: trades are appended to the embedded event log (fsync on) and read by the real
//!   market data consumer; latency runs from just before the append: the whole path.
//!
//! The clients do the WebSocket handshake and then read frames off the socket with a minimal
//! parser (server frames are unmasked), so the load machine spends its CPU on the server rather
//! than on client-side message handling. Every client must receive every trade, in order.
//!
//! `cargo bench -p oms-services --bench ws_fanout -- [clients] [trades_per_sec] [seconds] [direct|log|both]`
//! (defaults 1000 2000 20 both).

use hdrhistogram::Histogram;
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{Symbol, Timestamp, TradeId};
use oms_domain::order::Side;
use oms_domain::Decimal;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::{partition_for, EventLog};
use oms_services::codec::encode_event;
use oms_services::marketdata::{
    marketdata_router, run_marketdata_consumer, MarketData, MarketDataConfig, NoAccounts,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Trades per batch; batches go out at rate / BATCH per second (one every 5 ms at 2000/s).
const BATCH: u64 = 10;
const SUBSCRIBE: &str = r#"{"op":"subscribe","channels":["trades:BTC/USD"]}"#;

fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

fn arg(i: usize, default: u64) -> u64 {
    args()
        .get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let clients = arg(0, 1000) as usize;
    let rate = arg(1, 2000);
    let seconds = arg(2, 20);
    let mode = args().get(3).cloned().unwrap_or_else(|| "both".into());
    // The server and the clients get runtimes (and threads) of their own, so the CPU each
    // side uses can be told apart.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("md-server")
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("md-client")
        .enable_all()
        .build()
        .unwrap();
    for source in ["direct", "log"] {
        if mode == source || mode == "both" {
            server.block_on(run(
                client.handle(),
                clients,
                rate,
                seconds,
                source == "log",
            ));
        }
    }
}

/// CPU seconds used so far by this process's client threads and by all its other threads.
fn cpu_seconds() -> (f64, f64) {
    let tick = 100.0; // USER_HZ: /proc reports CPU time in 1/100 s on Linux.
    let (mut client, mut other) = (0u64, 0u64);
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let used: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        if name.starts_with("md-client") {
            client += used;
        } else {
            other += used;
        }
    }
    (client as f64 / tick, other as f64 / tick)
}

/// Opens a WebSocket by hand and subscribes; returns the socket positioned after the upgrade.
async fn connect(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A client frame is masked: FIN + text, mask bit + length, the key, the masked payload.
    let key = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | SUBSCRIBE.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(SUBSCRIBE.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    s.write_all(&frame).await.unwrap();
    s
}

/// The trade id in a trades message, without parsing the whole JSON: messages start
/// `{"channel":"trades:BTC/USD","seq":N,"data":{"tradeId":ID,...`.
fn trade_id(text: &[u8]) -> Option<u64> {
    const HEAD: &[u8] = br#"{"channel":"trades:BTC/USD","seq":"#;
    const MID: &[u8] = br#","data":{"tradeId":"#;
    let rest = text.strip_prefix(HEAD)?;
    let seq_digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let rest = rest[seq_digits..].strip_prefix(MID)?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    (digits > 0).then(|| {
        rest[..digits]
            .iter()
            .fold(0u64, |n, c| n * 10 + u64::from(c - b'0'))
    })
}

struct ClientResult {
    hist: Histogram<u64>,
    received: u64,
    in_order: bool,
}

/// Reads frames until the last trade; records each trade's latency.
async fn read_trades(
    mut s: TcpStream,
    total: u64,
    epoch: Instant,
    sent_at: Arc<Vec<AtomicU64>>,
) -> ClientResult {
    let mut r = ClientResult {
        hist: Histogram::new_with_bounds(1, 120_000_000, 3).unwrap(),
        received: 0,
        in_order: true,
    };
    let mut buf = vec![0u8; 256 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut last = 0u64;
    loop {
        if start == end {
            start = 0;
            end = 0;
        } else if end == buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match s.read(&mut buf[end..]).await {
            Ok(0) | Err(_) => return r,
            Ok(n) => n,
        };
        end += n;
        let now = epoch.elapsed().as_micros() as u64;
        // Every whole frame in the buffer.
        loop {
            let avail = &buf[start..end];
            if avail.len() < 2 {
                break;
            }
            let opcode = avail[0] & 0x0f;
            let (len, header) = match avail[1] & 0x7f {
                126 if avail.len() >= 4 => (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4),
                127 if avail.len() >= 10 => (
                    u64::from_be_bytes(avail[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if avail.len() < header + len {
                if header + len > buf.len() {
                    buf.resize(header + len, 0);
                }
                break;
            }
            let payload = &avail[header..header + len];
            start += header + len;
            if opcode == 0x8 {
                return r;
            }
            if let Some(id) = trade_id(payload) {
                r.in_order &= id == last + 1;
                last = id;
                let sent = sent_at[id as usize].load(Ordering::Acquire);
                r.hist.saturating_record(now.saturating_sub(sent).max(1));
                r.received += 1;
                if id == total {
                    return r;
                }
            }
        }
    }
}

async fn run(
    client_rt: &tokio::runtime::Handle,
    clients: usize,
    rate: u64,
    seconds: u64,
    via_log: bool,
) {
    let total = rate * seconds;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(&dir.path().join("log"), FileLogOptions::default())
        .await
        .unwrap();
    log.ensure_topic("marketdata", 4).await.unwrap();
    let log: Arc<dyn EventLog> = Arc::new(log);
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let mut config = MarketDataConfig::default();
    if let Some(ms) = std::env::var("OMS_FLUSH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.flush_interval = Duration::from_millis(ms);
    }
    let flush_ms = config.flush_interval.as_millis();
    let md = MarketData::new(config, store, Arc::new(NoAccounts));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let consumer =
        via_log.then(|| tokio::spawn(run_marketdata_consumer(md.clone(), log.clone(), shutdown)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn({
        let app = marketdata_router(md.clone());
        async move { axum::serve(listener, app).await.unwrap() }
    });

    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..=total).map(|_| AtomicU64::new(0)).collect());
    let mut sockets = Vec::with_capacity(clients);
    for chunk in (0..clients).collect::<Vec<_>>().chunks(100) {
        let conns =
            futures_util::future::join_all(chunk.iter().map(|_| client_rt.spawn(connect(addr))))
                .await;
        let conns: Vec<TcpStream> = conns.into_iter().map(|c| c.unwrap()).collect();
        sockets.extend(conns);
    }
    let symbol = Symbol::new("BTC/USD");
    let channel = "trades:BTC/USD";
    while md.hub().subscriber_count(channel) < clients {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|s| {
            // A socket belongs to the runtime that opened it: the client runtime.
            client_rt.spawn(read_trades(s, total, epoch, sent_at.clone()))
        })
        .collect();
    let cpu_before = cpu_seconds();
    let measured = Instant::now();

    let partition = partition_for(symbol.as_str().as_bytes(), 4);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * BATCH / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut id = 0u64;
    while id < total {
        tick.tick().await;
        let now_us = epoch.elapsed().as_micros() as u64;
        let mut batch = Vec::with_capacity(BATCH as usize);
        for _ in 0..BATCH.min(total - id) {
            id += 1;
            sent_at[id as usize].store(now_us, Ordering::Release);
            batch.push(Arc::new(Envelope::new(
                Timestamp(0),
                Event::Trade {
                    symbol: symbol.clone(),
                    trade_id: TradeId(id),
                    price: Decimal::new(4_500_000 + (id % 500) as i64, 2),
                    quantity: Decimal::new(1 + (id % 100) as i64, 4),
                    taker_side: if id.is_multiple_of(2) {
                        Side::Buy
                    } else {
                        Side::Sell
                    },
                    at: Timestamp(1_764_057_600_000 + (now_us / 1000) as i64),
                },
            )));
        }
        if via_log {
            let records = batch.iter().map(|e| encode_event(e)).collect();
            log.append("marketdata", records).await.unwrap();
        } else {
            md.apply(partition, &batch);
        }
    }
    let produced_in = started.elapsed();

    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).unwrap();
    let (mut received, mut complete, mut ordered) = (0u64, 0usize, 0usize);
    for r in readers {
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(60), r).await {
            hist.add(&r.hist).unwrap();
            received += r.received;
            complete += (r.received == total) as usize;
            ordered += r.in_order as usize;
        }
    }
    let cpu_after = cpu_seconds();
    let measured = measured.elapsed().as_secs_f64();
    let _ = stop.send(true);
    if let Some(c) = consumer {
        let _ = c.await;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "ws fan-out [{}]: {clients} clients on {channel}, {rate} trades/s for {seconds} s, batches of {BATCH}, flush interval {flush_ms} ms",
        if via_log { "log → consumer → hub, fsync on" } else { "direct → hub" },
    );
    println!(
        "  produced {total} trades in {:.2} s ({:.0} trades/s); deliveries {received} of {} ({complete} of {clients} clients got every trade, {ordered} in order); slow consumers cut off: {}",
        produced_in.as_secs_f64(),
        total as f64 / produced_in.as_secs_f64(),
        total * clients as u64,
        md.hub().stats.slow_consumers.load(Ordering::Relaxed),
    );
    let (client_cpu, server_cpu) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    println!(
        "  CPU: server {server_cpu:.1} s ({:.2} µs per delivery, {:.0}% of one core), clients {client_cpu:.1} s; load average at the end {}",
        server_cpu * 1e6 / received.max(1) as f64,
        server_cpu * 100.0 / measured,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
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
