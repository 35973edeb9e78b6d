//! `oms loadgen`: drives `POST /api/orders` (or, with `--batch N`, `POST /api/orders/batch`
//! with N orders a request) open-loop at a fixed rate of orders over many keep-alive
//! connections and reports acknowledgement latency from an HDR histogram.
//!
//! Open loop: every request has a scheduled send time, and its latency is measured from that
//! time, so a slow server shows up as latency rather than as a lower request rate (no
//! coordinated omission). At the end it checks that every acknowledged order left `NEW`, and it
//! measures a bare endpoint (`/health`) on the same server stack for comparison. With `--e2e`
//! it also follows the first account's private `orders` WebSocket channel for the end-to-end
//! latency ([`e2e`]).

mod client;
mod e2e;

use anyhow::{bail, Context, Result};
use clap::Args;
use client::Connection;
use hdrhistogram::Histogram;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct LoadgenArgs {
    /// Server address, host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// API keys of the accounts the orders are placed for, comma-separated; orders take turns,
    /// so with two accounts they trade with each other rather than being self-trade-cancelled.
    #[arg(long, env = "OMS_API_KEY", value_delimiter = ',', required = true)]
    pub api_key: Vec<String>,
    /// Send no `X-Idempotency-Key` (to measure its cost).
    #[arg(long)]
    pub no_idempotency_key: bool,
    /// Orders per second to send.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Orders per request: above 1, each request is a `POST /api/orders/batch` of this many
    /// orders of one account (at most 20), sent at `--rate` / this many requests a second, and
    /// every order of it counts the request's latency.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub batch: u64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long, default_value = "BTC/USD")]
    pub symbol: String,
    /// Centre price of the orders; prices spread ±0.5% around it in 1-unit steps.
    #[arg(long, default_value = "50000")]
    pub mid: u64,
    /// Quantity of every order.
    #[arg(long, default_value = "0.0001")]
    pub quantity: String,
    /// Time in force of every order. `IOC` leaves nothing resting, so the live state stays
    /// small however long the run: what then grows is only the history.
    #[arg(long, default_value = "GTC", value_parser = ["GTC", "IOC"])]
    pub time_in_force: String,
    /// Seconds to measure `GET /health` at the same rate afterwards (0 to skip).
    #[arg(long, default_value_t = 10)]
    pub bare_seconds: u64,
    /// Seconds to wait for every acknowledged order to leave NEW; 0 skips the check (for a
    /// server without the pipeline, such as `oms ingestion` alone).
    #[arg(long, default_value_t = 120)]
    pub settle_seconds: u64,
    /// Also measure end-to-end latency: follow the first account's `orders` WebSocket channel
    /// (half the orders with two accounts). The server then also serialises and pushes those
    /// updates, so acknowledgement latency near saturation is higher than without.
    #[arg(long)]
    pub e2e: bool,
    /// Where the WebSocket (`/ws`) is served, host:port; `--addr` by default (`oms serve`),
    /// `oms marketdata`'s address in distributed mode.
    #[arg(long)]
    pub ws_addr: Option<String>,
}

struct Totals {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    /// The worst latency (µs) of the requests scheduled in each second of the run: a tail
    /// made of a few stalls reads differently from one spread evenly.
    worst_per_second: Vec<AtomicU64>,
}

pub async fn run(args: LoadgenArgs) -> Result<()> {
    if args.rate == 0 || args.connections == 0 || args.duration == 0 {
        bail!("--rate, --connections and --duration must be positive");
    }
    if args.rate < args.batch {
        bail!("--rate must be at least --batch");
    }
    println!(
        "loadgen: {} orders/s for {} s over {} connections to {}{}",
        args.rate,
        args.duration,
        args.connections,
        args.addr,
        if args.batch > 1 {
            format!(", {} orders a request", args.batch)
        } else {
            String::new()
        }
    );
    let watch = if args.e2e {
        let ws = args.ws_addr.as_deref().unwrap_or(&args.addr);
        Some(e2e::Watch::start(ws, &args.api_key[0]).await?)
    } else {
        None
    };
    let ids = Arc::new(Mutex::new(Vec::with_capacity(
        (args.rate * args.duration) as usize,
    )));
    let (hist, totals, elapsed) = drive(&args, args.duration, Target::Orders(ids.clone())).await?;
    let acked = totals.acked.load(Ordering::Relaxed);
    println!(
        "\n== POST {} (open loop, {} orders scheduled) ==",
        if args.batch > 1 {
            "/api/orders/batch"
        } else {
            "/api/orders"
        },
        totals.sent.load(Ordering::Relaxed)
    );
    report(&hist, acked, totals.failed.load(Ordering::Relaxed), elapsed);
    let worst: Vec<String> = totals
        .worst_per_second
        .iter()
        .map(|w| (w.load(Ordering::Relaxed) / 1_000).to_string())
        .collect();
    println!("worst latency in each second, ms: {}", worst.join(" "));

    let bare = if args.bare_seconds > 0 {
        let (h, t, e) = drive(&args, args.bare_seconds, Target::Health).await?;
        println!("\n== GET /health (same stack, same rate of requests) ==");
        report(
            &h,
            t.acked.load(Ordering::Relaxed),
            t.failed.load(Ordering::Relaxed),
            e,
        );
        Some(h)
    } else {
        None
    };
    if let Some(b) = bare {
        println!(
            "\nratio orders/health: p50 {:.1}x, p99 {:.1}x",
            hist.value_at_quantile(0.5) as f64 / b.value_at_quantile(0.5).max(1) as f64,
            hist.value_at_quantile(0.99) as f64 / b.value_at_quantile(0.99).max(1) as f64
        );
    }
    let ids = std::mem::take(&mut *ids.lock().expect("ids"));
    if args.settle_seconds > 0 {
        settle(&args, ids.iter().map(|o| o.id.clone()).collect()).await?;
    } else {
        println!("\nsettle check skipped (--settle-seconds 0)");
    }
    if let Some(watch) = watch {
        watch.report(&ids, Duration::from_secs(5)).await?;
    }
    Ok(())
}

/// An acknowledged order.
pub(crate) struct AckedOrder {
    pub id: String,
    pub scheduled: Instant,
    /// Placed for the first account, whose `orders` channel `--e2e` follows.
    pub followed: bool,
}

type Acked = Arc<Mutex<Vec<AckedOrder>>>;

#[derive(Clone)]
enum Target {
    Orders(Acked),
    Health,
}

/// Sends at the fixed rate for `seconds`; returns latencies (µs, one per order or per health
/// request), totals (of orders or health requests) and elapsed time.
async fn drive(
    args: &LoadgenArgs,
    seconds: u64,
    target: Target,
) -> Result<(Histogram<u64>, Arc<Totals>, Duration)> {
    let per_request = args.batch;
    let requests_per_second = args.rate / per_request;
    let total = requests_per_second * seconds;
    let interval_ns = 1_000_000_000u64 / requests_per_second;
    let counted = match target {
        Target::Orders(_) => per_request,
        Target::Health => 1,
    };
    // Every connection is open before the clock starts: connecting on the first request put
    // the handshakes of hundreds of connections (and any SYN retried after a full accept
    // queue, a whole second later) into the measured latencies.
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        conns.push(Connection::open(&args.addr).await?);
    }
    let start = Instant::now() + Duration::from_millis(200);
    let next = Arc::new(AtomicU64::new(0));
    let totals = Arc::new(Totals {
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        worst_per_second: (0..seconds).map(|_| AtomicU64::new(0)).collect(),
    });
    let mut workers = Vec::new();
    for (worker, conn) in conns.into_iter().enumerate() {
        let (args, next, totals, target) =
            (args.clone(), next.clone(), totals.clone(), target.clone());
        workers.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut conn = Some(conn);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let scheduled = start + Duration::from_nanos(i * interval_ns);
                tokio::time::sleep_until(scheduled.into()).await;
                totals.sent.fetch_add(counted, Ordering::Relaxed);
                let request = build(&args, &target, i, worker);
                let followed = account_of(&args, i) == 0;
                let ok = send(&args, &mut conn, request, &target, scheduled, followed).await;
                let latency = scheduled.elapsed().as_micros() as u64;
                let _ = hist.record_n(latency.max(1), counted);
                let second = (i / requests_per_second) as usize;
                totals.worst_per_second[second].fetch_max(latency, Ordering::Relaxed);
                match ok {
                    Ok(()) => totals.acked.fetch_add(counted, Ordering::Relaxed),
                    Err(e) => {
                        if totals.failed.fetch_add(counted, Ordering::Relaxed) < 5 {
                            eprintln!("request failed: {e:#}");
                        }
                        conn = None;
                        0
                    }
                };
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for w in workers {
        hist.add(w.await?)?;
    }
    Ok((hist, totals, start.elapsed()))
}

/// The account (index into `--api-key`) that request `i` places its orders for: they take
/// turns.
fn account_of(args: &LoadgenArgs, i: u64) -> usize {
    (i % args.api_key.len() as u64) as usize
}

/// The part of a `202` the load generator keeps (decoding only it, the rest is skipped).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Acknowledged {
    order_id: String,
}

/// The part of a batch's `202` the load generator keeps.
#[derive(serde::Deserialize)]
struct BatchAcknowledged {
    results: Vec<BatchItem>,
}

#[derive(serde::Deserialize)]
struct BatchItem {
    status: u16,
    order: Option<Acknowledged>,
}

/// One request to send: what `build` decided, before it is written out.
struct Outgoing {
    path: &'static str,
    /// Index into `--api-key`, for an order.
    account: Option<usize>,
    idempotency_key: Option<String>,
    body: String,
}

fn build(args: &LoadgenArgs, target: &Target, i: u64, worker: usize) -> Outgoing {
    match target {
        Target::Health => Outgoing {
            path: "/health",
            account: None,
            idempotency_key: None,
            body: String::new(),
        },
        Target::Orders(_) => {
            let account = account_of(args, i);
            let orders: Vec<String> = (0..args.batch)
                .map(|k| order_body(args, account, i * args.batch + k))
                .collect();
            let (path, body) = if args.batch > 1 {
                (
                    "/api/orders/batch",
                    format!(r#"{{"orders":[{}]}}"#, orders.join(",")),
                )
            } else {
                ("/api/orders", orders.concat())
            };
            Outgoing {
                path,
                account: Some(account),
                idempotency_key: (!args.no_idempotency_key)
                    .then(|| format!("loadgen-{worker}-{i}-{}", std::process::id())),
                body,
            }
        }
    }
}

/// The body of order `n` (counted over the whole run) for `account`.
fn order_body(args: &LoadgenArgs, account: usize, n: u64) -> String {
    // A deterministic spread of prices around the mid so that some orders trade.
    let spread = (args.mid / 200).max(1);
    let step = (n.wrapping_mul(2654435761) >> 7) % (2 * spread + 1);
    let price = args.mid - spread + step;
    // With several accounts, even ones buy and odd ones sell, so they trade with each other
    // instead of meeting self-trade prevention; one account alternates.
    let buy = if args.api_key.len() > 1 {
        account.is_multiple_of(2)
    } else {
        (n ^ (n >> 3)).is_multiple_of(2)
    };
    let side = if buy { "BUY" } else { "SELL" };
    format!(
        r#"{{"symbol":"{}","side":"{side}","quantity":{},"price":{price},"orderType":"LIMIT","timeInForce":"{}"}}"#,
        args.symbol, args.quantity, args.time_in_force
    )
}

async fn send(
    args: &LoadgenArgs,
    conn: &mut Option<Connection>,
    request: Outgoing,
    target: &Target,
    scheduled: Instant,
    followed: bool,
) -> Result<()> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = Some(Connection::open(&args.addr).await?);
    }
    let connection = conn.as_mut().expect("connected");
    let (method, expected) = match target {
        Target::Health => ("GET", 200),
        Target::Orders(_) => ("POST", 202),
    };
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3);
    if let Some(a) = request.account {
        headers.push(("x-api-key", &args.api_key[a]));
        headers.push(("content-type", "application/json"));
    }
    if let Some(k) = &request.idempotency_key {
        headers.push(("x-idempotency-key", k));
    }
    let response = connection
        .request(
            method,
            request.path,
            &args.addr,
            &headers,
            request.body.as_bytes(),
        )
        .await?;
    let body = response.body;
    if response.status != expected {
        bail!(
            "status {}: {}",
            response.status,
            String::from_utf8_lossy(&body)
        );
    }
    if let Target::Orders(ids) = target {
        let acked: Vec<String> = if args.batch > 1 {
            let batch: BatchAcknowledged =
                serde_json::from_slice(&body).context("batch response without results")?;
            batch
                .results
                .into_iter()
                .map(|item| match item.order {
                    Some(order) if item.status == 202 => Ok(order.order_id),
                    _ => Err(anyhow::anyhow!(
                        "an order of the batch was refused with status {}",
                        item.status
                    )),
                })
                .collect::<Result<_>>()?
        } else {
            let ack: Acknowledged =
                serde_json::from_slice(&body).context("response without orderId")?;
            vec![ack.order_id]
        };
        ids.lock()
            .expect("ids")
            .extend(acked.into_iter().map(|id| AckedOrder {
                id,
                scheduled,
                followed,
            }));
    }
    Ok(())
}

fn report(hist: &Histogram<u64>, acked: u64, failed: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "acknowledged: {acked} ({:.0}/s), failed: {failed}",
        acked as f64 / secs
    );
    println!(
        "latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.9),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
}

/// Pages through the account's orders until every acknowledged one has left NEW.
async fn settle(args: &LoadgenArgs, acked: Vec<String>) -> Result<()> {
    let mut waiting: HashSet<String> = acked.into_iter().collect();
    let total = waiting.len();
    let deadline = Instant::now() + Duration::from_secs(args.settle_seconds);
    let started = Instant::now();
    let mut conn = None;
    let mut statuses: std::collections::BTreeMap<String, u64> = Default::default();
    while !waiting.is_empty() && Instant::now() < deadline {
        for key in &args.api_key {
            let mut cursor: Option<String> = None;
            loop {
                let uri = match &cursor {
                    Some(c) => format!("/api/orders?limit=500&cursor={c}"),
                    None => "/api/orders?limit=500".to_string(),
                };
                if conn.as_ref().is_none_or(|c: &Connection| c.is_closed()) {
                    conn = Some(Connection::open(&args.addr).await?);
                }
                let response = conn
                    .as_mut()
                    .expect("connected")
                    .request("GET", &uri, &args.addr, &[("x-api-key", key)], b"")
                    .await?;
                if response.status != 200 {
                    bail!(
                        "listing orders: status {}: {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
                let page: serde_json::Value = serde_json::from_slice(&response.body)?;
                for o in page["orders"].as_array().into_iter().flatten() {
                    let status = o["status"].as_str().unwrap_or("?");
                    if status != "NEW" {
                        if let Some(id) = o["orderId"].as_str() {
                            if waiting.remove(id) {
                                *statuses.entry(status.to_string()).or_default() += 1;
                            }
                        }
                    }
                }
                match page["nextCursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
        }
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "\nsettled: {} of {total} acknowledged orders left NEW within {:.1} s",
        total - waiting.len(),
        started.elapsed().as_secs_f64()
    );
    if !waiting.is_empty() {
        bail!(
            "{} acknowledged orders never left NEW (e.g. {:?})",
            waiting.len(),
            waiting.iter().next()
        );
    }
    println!("all acknowledged orders reached a resting or final state: {statuses:?}");
    Ok(())
}
