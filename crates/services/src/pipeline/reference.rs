//! Reference prices for the risk engine's price bands: the last trade and the best bid and ask
//! of each symbol, followed live from topic `marketdata`.
//!
//! Risk decisions are recorded as events, so replay never re-evaluates a band: it does not
//! matter that this view is only as fresh as the tail of the log.

use super::{stage, Shutdown};
use crate::codec::decode_event;
use oms_domain::events::Event;
use oms_domain::ids::Symbol;
use oms_domain::order::Side;
use oms_domain::Decimal;
use oms_ports::event_log::EventLog;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reference {
    pub last: Option<Decimal>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
}

#[derive(Default)]
struct Book {
    last: Option<Decimal>,
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
}

/// The latest reference of every symbol, shared between the tailer and the risk stage.
#[derive(Default, Clone)]
pub struct References {
    books: Arc<Mutex<HashMap<Symbol, Book>>>,
}

impl References {
    pub fn snapshot(&self) -> Vec<(Symbol, Reference)> {
        let books = self.books.lock().expect("reference lock");
        books
            .iter()
            .map(|(s, b)| {
                let r = Reference {
                    last: b.last,
                    best_bid: b.bids.keys().next_back().copied(),
                    best_ask: b.asks.keys().next().copied(),
                };
                (s.clone(), r)
            })
            .collect()
    }

    pub fn observe(&self, event: &Event) {
        let mut books = self.books.lock().expect("reference lock");
        match event {
            Event::Trade { symbol, price, .. } => {
                books.entry(symbol.clone()).or_default().last = Some(*price);
            }
            Event::BookChanged {
                symbol,
                side,
                price,
                quantity,
                ..
            } => {
                let book = books.entry(symbol.clone()).or_default();
                let levels = if *side == Side::Buy {
                    &mut book.bids
                } else {
                    &mut book.asks
                };
                if quantity.is_zero() {
                    levels.remove(price);
                } else {
                    levels.insert(*price, *quantity);
                }
            }
            _ => {}
        }
    }

    /// Follows `marketdata` from its start (the book needs every change) until shutdown.
    pub async fn follow(self, log: Arc<dyn EventLog>, topic: String, mut shutdown: Shutdown) {
        let partitions = match log.partition_count(&topic).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "reference prices: cannot read topic");
                return;
            }
        };
        let mut next = vec![0u64; partitions as usize];
        for (p, at) in next.iter_mut().enumerate() {
            // Records the log's retention deleted are gone: the book is rebuilt from the oldest
            // one left (reading before it would fail for ever).
            match log.first_offset(&topic, p as u32).await {
                Ok(0) => {}
                Ok(first) => {
                    tracing::warn!(partition = p, first, "reference prices: the log starts at {first}; its book misses what came before");
                    *at = first;
                }
                Err(e) => {
                    tracing::warn!(error = %e, partition = p, "reference prices: cannot read where the log starts")
                }
            }
        }
        let mut attempt = 0;
        while !*shutdown.borrow() {
            let mut read_any = false;
            for p in 0..partitions {
                match log.read(&topic, p, next[p as usize], stage::POLL_MAX).await {
                    Ok(records) => {
                        attempt = 0;
                        for rec in &records {
                            next[p as usize] = rec.offset + 1;
                            if let Ok(env) = decode_event(rec) {
                                self.observe(&env.event);
                            }
                        }
                        read_any |= !records.is_empty();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reference prices: read failed");
                        stage::backoff(attempt).await;
                        attempt += 1;
                    }
                }
            }
            if !read_any {
                tokio::select! {
                    _ = tokio::time::sleep(stage::POLL_TIMEOUT) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_prices_follow_book_changes() {
        let r = References::default();
        let s = Symbol::new("BTC/USD");
        let d = |v: i64| Decimal::new(v, 0);
        for (side, price, qty) in [
            (Side::Buy, 99, 1),
            (Side::Buy, 100, 2),
            (Side::Sell, 101, 1),
        ] {
            r.observe(&Event::BookChanged {
                symbol: s.clone(),
                seq: 0,
                side,
                price: d(price),
                quantity: d(qty),
            });
        }
        r.observe(&Event::BookChanged {
            symbol: s.clone(),
            seq: 0,
            side: Side::Buy,
            price: d(100),
            quantity: Decimal::ZERO,
        });
        let snap = r.snapshot();
        assert_eq!(
            snap[0].1,
            Reference {
                last: None,
                best_bid: Some(d(99)),
                best_ask: Some(d(101))
            }
        );
    }
}
