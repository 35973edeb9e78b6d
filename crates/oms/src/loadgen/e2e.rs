//! End-to-end latency, as a trading client sees it: from an order's scheduled send time to
//! the moment its update arrives on the account's private `orders` WebSocket channel, once
//! when it leaves `NEW` (risk-checked and live at the venue, or already done: the whole
//! pipeline) and once when it reaches a final state (which includes any time it rested on the
//! book waiting for a counterparty).

use super::AckedOrder;
use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const FINAL: [&str; 4] = ["FILLED", "CANCELED", "EXPIRED", "REJECTED"];

/// When an order's updates were first seen.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    left_new: Option<Instant>,
    done: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<HashMap<String, Seen>>,
    /// Why a channel ended early (a slow-consumer cut-off would make the figures partial).
    closed: Mutex<Option<String>>,
}

/// One account's `orders` channel, followed while the load runs.
pub struct Watch {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    order: Option<OrderState<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderState<'a> {
    order_id: &'a str,
    status: &'a str,
}

impl Watch {
    /// Subscribes the account of `api_key` to its `orders` channel on `ws://{addr}/ws`.
    ///
    /// The channel is read on the load generator's one thread, between sends, so an update is
    /// timed when that thread gets to it: never early, at worst late by the thread's backlog.
    /// A thread of its own was tried: it woke for every update, and in paired runs of the
    /// distributed setup at 5,000 orders/s acknowledgement p99 was worse (228 and 326 ms
    /// against 168 and 84).
    pub async fn start(addr: &str, api_key: &str) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let auth = serde_json::json!({"op": "auth", "apiKey": api_key}).to_string();
        ws.send(Message::text(auth)).await?;
        await_control(&mut ws, "authenticated").await?;
        let subscribe = r#"{"op":"subscribe","channels":["orders"]}"#;
        ws.send(Message::text(subscribe)).await?;
        await_control(&mut ws, "subscribed").await?;
        let reader = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Some(msg) = ws.next().await {
                    let ended = match msg {
                        Ok(Message::Text(text)) => {
                            record(&shared, text.as_str(), Instant::now());
                            continue;
                        }
                        Ok(Message::Close(frame)) => {
                            frame.map_or("closed".into(), |f| f.reason.to_string())
                        }
                        Ok(_) => continue,
                        Err(e) => e.to_string(),
                    };
                    *shared.closed.lock().expect("closed") = Some(ended);
                    return;
                }
            }
        });
        Ok(Watch { shared, reader })
    }

    /// Prints the end-to-end figures of the acknowledged orders of the followed account once
    /// updates stop: 300 ms without one after every order has left `NEW` (fills of the last
    /// ones may still come), or `quiet` while some have not. The channel runs behind the
    /// store under load, so stopping at the first pause would leave the slowest orders out
    /// of the figures; any never seen are counted and reported.
    pub async fn report(self, acked: &[AckedOrder], quiet: Duration) -> Result<()> {
        let followed: Vec<&AckedOrder> = acked.iter().filter(|o| o.followed).collect();
        let settled = Duration::from_millis(300);
        let (mut last, mut changed) = (self.seen(), Instant::now());
        loop {
            let patience = if last.0 >= followed.len() {
                settled
            } else {
                quiet
            };
            if changed.elapsed() >= patience {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.seen();
            if now != last {
                (last, changed) = (now, Instant::now());
            }
        }
        self.reader.abort();
        let seen = self.shared.seen.lock().expect("seen");
        let mut left_new = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut done = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        for o in &followed {
            let Some(s) = seen.get(&o.id) else { continue };
            if let Some(t) = s.left_new {
                left_new
                    .record(t.saturating_duration_since(o.scheduled).as_micros().max(1) as u64)?;
            }
            if let Some(t) = s.done {
                done.record(t.saturating_duration_since(o.scheduled).as_micros().max(1) as u64)?;
            }
        }
        println!(
            "\n== end to end: scheduled POST → update on the `orders` WebSocket channel ({} acknowledged orders of the first account) ==",
            followed.len()
        );
        line(
            "left NEW (risk-checked, live at the venue or done)",
            &left_new,
        );
        line(
            "final (FILLED, ...; includes time resting on the book)",
            &done,
        );
        let missing = followed.len() as u64 - left_new.len();
        if missing > 0 {
            println!(
                "never seen leaving NEW on the channel ({} s without a new update): {missing}",
                quiet.as_secs()
            );
        }
        if let Some(reason) = self.shared.closed.lock().expect("closed").as_ref() {
            bail!("an `orders` channel ended during the run ({reason}): end-to-end figures are partial");
        }
        Ok(())
    }

    /// Updates seen so far (a new order, or one becoming final).
    fn seen(&self) -> (usize, usize) {
        let seen = self.shared.seen.lock().expect("seen");
        (
            seen.len(),
            seen.values().filter(|s| s.done.is_some()).count(),
        )
    }
}

fn line(what: &str, h: &Histogram<u64>) {
    println!(
        "{what}: {}; latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

fn record(shared: &Shared, text: &str, now: Instant) {
    let Ok(Frame {
        channel: Some("orders"),
        data: Some(Data { order: Some(o) }),
        ..
    }) = serde_json::from_str::<Frame>(text)
    else {
        return;
    };
    if o.status == "NEW" {
        return;
    }
    let mut seen = shared.seen.lock().expect("seen");
    let s = seen.entry(o.order_id.to_string()).or_default();
    s.left_new.get_or_insert(now);
    if FINAL.contains(&o.status) {
        s.done.get_or_insert(now);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads until a control message of type `kind`; an error message fails.
async fn await_control(ws: &mut Socket, kind: &str) -> Result<()> {
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            if let Message::Text(text) = msg? {
                let frame: Frame = serde_json::from_str(text.as_str())?;
                match frame.kind {
                    Some(k) if k == kind => return Ok(()),
                    Some("error") => bail!("the server refused: {}", text.as_str()),
                    _ => {}
                }
            }
        }
        bail!("the WebSocket closed before {kind:?}")
    });
    wait.await
        .with_context(|| format!("no {kind:?} from the WebSocket within 10 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_when_an_order_leaves_new_and_when_it_is_done() {
        let shared = Shared::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let t2 = t0 + Duration::from_millis(9);
        let update = |id: &str, status: &str| {
            format!(
                r#"{{"channel":"orders","seq":1,"data":{{"order":{{"orderId":"{id}","status":"{status}","price":"1"}}}}}}"#
            )
        };
        record(&shared, &update("7", "NEW"), t0);
        assert!(shared.seen.lock().unwrap().is_empty(), "NEW is not news");
        record(&shared, &update("7", "ACCEPTED"), t1);
        record(&shared, &update("7", "PARTIALLY_FILLED"), t2);
        record(&shared, &update("7", "FILLED"), t2);
        record(&shared, &update("7", "FILLED"), t2 + Duration::from_secs(1));
        record(
            &shared,
            r#"{"channel":"trades:BTC/USD","seq":3,"data":[1,2]}"#,
            t2,
        );
        record(&shared, r#"{"type":"heartbeat","ts":1}"#, t2);
        let s = shared.seen.lock().unwrap()["7"];
        assert_eq!(s.left_new, Some(t1));
        assert_eq!(s.done, Some(t2), "the first final update counts");
        assert_eq!(shared.seen.lock().unwrap().len(), 1);
    }
}
