//! `MarketData`: the market data of every symbol, the live fan-out hub and the settings.
//!
//! Events are applied and published under one write lock, and a subscription takes its
//! snapshot and registers under the read lock, so a subscriber sees a snapshot followed by
//! exactly the changes after it: none missed, none twice.

use super::auth::AccountResolver;
use super::hub::{ClientId, Hub};
use super::protocol::{self, Channel};
use super::views::{DepthLevels, StatusView};
use crate::api::rate_limit::RequestRate;
use crate::ingestion::clock;
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, Symbol, Timestamp};
use oms_domain::instrument::{default_instruments, Instrument, TradingStatus};
use oms_domain::marketdata::{
    depth::MAX_SNAPSHOT_LEVELS, BookStatus, Candle, DepthSnapshot, Interval, MarketUpdate,
    PublicTrade, SeqCheck, SymbolMarket, Ticker,
};
use oms_ports::order_store::OrderStore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MarketDataConfig {
    /// Symbols the REST API and the channels accept (others become known once they trade).
    pub instruments: Vec<Instrument>,
    pub topic: String,
    pub group: String,
    /// Order-lifecycle events for the private `orders` channel; read live (from the end).
    pub orders_topic: String,
    pub orders_group: String,
    /// Snapshot name in the order store.
    pub snapshot_name: String,
    /// A partition's state is saved after this many applied records...
    pub snapshot_every_records: u64,
    /// ...or this long after the last save, whichever comes first (if anything changed).
    pub snapshot_interval: Duration,
    /// Messages queued per WebSocket client before it counts as too slow and is cut off.
    pub client_buffer: usize,
    pub heartbeat_interval: Duration,
    /// Least time between two writes to one client: messages arriving meanwhile go out
    /// together. Bounds the added delay; saves most socket writes under a steady stream.
    pub flush_interval: Duration,
    pub max_channels_per_client: usize,
    /// Messages a client may send: `per_second` on average, `burst` at once (`per_second` 0:
    /// no limit). Beyond it a message is dropped with a `TOO_MANY_MESSAGES` error, and a client
    /// that sends `burst` more while refused is cut off: each message costs the server a parse,
    /// and an `auth` a look-up in the account store.
    pub client_message_rate: RequestRate,
    /// How often an authenticated connection checks its key or session again, so that a
    /// revoked key or an expired session ends its private channel.
    pub auth_recheck_interval: Duration,
}

impl Default for MarketDataConfig {
    fn default() -> Self {
        MarketDataConfig {
            instruments: default_instruments(),
            topic: "marketdata".into(),
            group: "marketdata".into(),
            orders_topic: "orders".into(),
            orders_group: "marketdata-orders".into(),
            snapshot_name: "marketdata".into(),
            snapshot_every_records: 50_000,
            snapshot_interval: Duration::from_secs(30),
            client_buffer: 4_096,
            heartbeat_interval: Duration::from_secs(10),
            flush_interval: Duration::from_millis(10),
            max_channels_per_client: 64,
            client_message_rate: RequestRate {
                per_second: 50,
                burst: 100,
            },
            auth_recheck_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default)]
pub struct MarketDataMetrics {
    pub events_applied: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub book_gaps: AtomicU64,
    pub bad_records: AtomicU64,
    pub snapshots_saved: AtomicU64,
    pub order_updates_sent: AtomicU64,
}

/// Channel names of one symbol, built once.
struct Names {
    trades: String,
    depth: String,
    ticker: String,
    status: String,
    candles: [String; 6],
}

impl Names {
    fn new(s: &Symbol) -> Self {
        Names {
            trades: protocol::trades_channel(s),
            depth: protocol::depth_channel(s),
            ticker: protocol::ticker_channel(s),
            status: protocol::status_channel(s),
            candles: Interval::ALL.map(|i| protocol::candles_channel(s, i)),
        }
    }
}

struct Slot {
    market: SymbolMarket,
    names: Names,
    /// The log partition this symbol's events come from (known once one arrived).
    partition: Option<u32>,
}

impl Slot {
    fn new(market: SymbolMarket) -> Self {
        Slot {
            names: Names::new(&market.symbol),
            market,
            partition: None,
        }
    }
}

/// What a batch changed in one symbol's state channels, published once at its end.
#[derive(Default)]
struct Pending {
    candles: [bool; 6],
    ticker: bool,
}

/// A partition's saved state: the markets of the symbols it carries.
#[derive(Serialize, Deserialize)]
struct PartitionSnapshot<M> {
    version: u32,
    markets: Vec<M>,
}

const SNAPSHOT_VERSION: u32 = 1;

/// The market data service's state. Cheap to clone.
#[derive(Clone)]
pub struct MarketData {
    inner: Arc<Inner>,
}

struct Inner {
    config: MarketDataConfig,
    instruments: HashMap<Symbol, Instrument>,
    markets: RwLock<BTreeMap<Symbol, Slot>>,
    hub: Hub,
    store: Arc<dyn OrderStore>,
    resolver: Arc<dyn AccountResolver>,
    caught_up: AtomicBool,
    orders_live: AtomicBool,
    metrics: MarketDataMetrics,
}

/// Why a subscription was refused: an error code and a message for the client.
pub type Refusal = (&'static str, String);

impl MarketData {
    pub fn new(
        config: MarketDataConfig,
        store: Arc<dyn OrderStore>,
        resolver: Arc<dyn AccountResolver>,
    ) -> Self {
        let instruments = config
            .instruments
            .iter()
            .map(|i| (i.symbol.clone(), i.clone()))
            .collect();
        let hub = Hub::new(config.client_buffer);
        MarketData {
            inner: Arc::new(Inner {
                config,
                instruments,
                markets: RwLock::new(BTreeMap::new()),
                hub,
                store,
                resolver,
                caught_up: AtomicBool::new(false),
                orders_live: AtomicBool::new(false),
                metrics: MarketDataMetrics::default(),
            }),
        }
    }

    pub fn config(&self) -> &MarketDataConfig {
        &self.inner.config
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn store(&self) -> &Arc<dyn OrderStore> {
        &self.inner.store
    }

    pub fn resolver(&self) -> &dyn AccountResolver {
        &*self.inner.resolver
    }

    pub fn metrics(&self) -> &MarketDataMetrics {
        &self.inner.metrics
    }

    pub fn instrument(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.inner.instruments.get(symbol)
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Symbol, Slot>> {
        self.inner.markets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Symbol, Slot>> {
        self.inner
            .markets
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A configured instrument, or a symbol that has traded.
    pub fn knows(&self, symbol: &Symbol) -> bool {
        self.inner.instruments.contains_key(symbol) || self.read().contains_key(symbol)
    }

    /// True once the consumer has replayed the log up to where it stood at start.
    pub fn is_caught_up(&self) -> bool {
        self.inner.caught_up.load(Ordering::Acquire)
    }

    pub(crate) fn set_caught_up(&self, v: bool) {
        self.inner.caught_up.store(v, Ordering::Release);
    }

    /// True once the private orders feed reads its topic live.
    pub fn orders_feed_live(&self) -> bool {
        self.inner.orders_live.load(Ordering::Acquire)
    }

    pub(crate) fn set_orders_feed_live(&self, v: bool) {
        self.inner.orders_live.store(v, Ordering::Release);
    }

    // ---- the fold ----

    /// Applies market events (from `partition` of the topic) and publishes what changed.
    ///
    /// Trades and depth changes are deltas: each one is published. Candles and the ticker are
    /// states: each is published once per batch, after its last change, so a burst of trades
    /// costs a subscriber one candle message, not one per trade (a candle whose bucket closed
    /// inside the batch still goes out in its final state).
    pub fn apply(&self, partition: u32, events: &[Arc<Envelope>]) {
        let now = clock::now();
        let hub = &self.inner.hub;
        let metrics = &self.inner.metrics;
        let mut markets = self.write();
        let mut pending: Vec<(Symbol, Pending)> = Vec::new();
        for env in events {
            let symbol = match &env.event {
                Event::Trade { symbol, .. }
                | Event::BookChanged { symbol, .. }
                | Event::TradingStatusChanged { symbol, .. } => symbol,
                _ => continue,
            };
            let slot = markets
                .entry(symbol.clone())
                .or_insert_with(|| Slot::new(SymbolMarket::new(symbol.clone())));
            slot.partition = Some(partition);
            let m = &slot.market;
            let bbo = (m.depth().best_bid(), m.depth().best_ask());
            let opens = Interval::ALL.map(|i| m.candles().current(i).map(|c| c.open_time));
            let Some(update) = slot.market.apply(&env.event) else {
                metrics.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            metrics.events_applied.fetch_add(1, Ordering::Relaxed);
            let m = &slot.market;
            let p = match pending.iter().position(|(s, _)| s == symbol) {
                Some(i) => &mut pending[i].1,
                None => {
                    pending.push((symbol.clone(), Pending::default()));
                    &mut pending.last_mut().expect("just pushed").1
                }
            };
            match update {
                MarketUpdate::Trade(trade) => {
                    let name = &slot.names.trades;
                    hub.publish(name, None, |seq| {
                        protocol::data_message(name, None, seq, &trade)
                    });
                    for i in Interval::ALL {
                        let series = m.candles().series(i);
                        let rolled = series.last().map(|c| c.open_time) != opens[i.index()];
                        if rolled && p.candles[i.index()] {
                            if let Some(closed) = series.iter().rev().nth(1) {
                                let name = &slot.names.candles[i.index()];
                                hub.publish(name, None, |seq| {
                                    protocol::data_message(name, None, seq, closed)
                                });
                            }
                        }
                        p.candles[i.index()] = true;
                    }
                    p.ticker = true;
                }
                MarketUpdate::Book(change, check) => {
                    if let SeqCheck::Gap { expected, got } = check {
                        metrics.book_gaps.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%symbol, expected, got, "depth changes missing");
                    }
                    let name = &slot.names.depth;
                    hub.publish(name, Some(change.seq), |seq| {
                        protocol::data_message(name, Some("update"), seq, &change)
                    });
                    p.ticker |= (m.depth().best_bid(), m.depth().best_ask()) != bbo;
                }
                MarketUpdate::Status(now) => {
                    let name = &slot.names.status;
                    let view = StatusView {
                        symbol,
                        status: now.status,
                        since: Some(now.since.0),
                    };
                    hub.publish(name, None, |seq| {
                        protocol::data_message(name, None, seq, &view)
                    });
                }
            }
        }
        for (symbol, p) in pending {
            let Some(slot) = markets.get(&symbol) else {
                continue;
            };
            let m = &slot.market;
            for i in Interval::ALL {
                if p.candles[i.index()] {
                    if let Some(c) = m.candles().current(i) {
                        let name = &slot.names.candles[i.index()];
                        hub.publish(name, None, |seq| protocol::data_message(name, None, seq, c));
                    }
                }
            }
            if p.ticker {
                let name = &slot.names.ticker;
                hub.publish(name, None, |seq| {
                    protocol::data_message(name, None, seq, &m.ticker(now))
                });
            }
        }
    }

    // ---- queries ----

    pub fn candles(
        &self,
        symbol: &Symbol,
        interval: Interval,
        from: Option<i64>,
        to: Option<i64>,
        limit: usize,
    ) -> Vec<Candle> {
        self.read().get(symbol).map_or_else(Vec::new, |s| {
            s.market.candles().series(interval).range(from, to, limit)
        })
    }

    pub fn ticker(&self, symbol: &Symbol, now: Timestamp) -> Ticker {
        match self.read().get(symbol) {
            Some(s) => s.market.ticker(now),
            None => SymbolMarket::new(symbol.clone()).ticker(now),
        }
    }

    pub fn depth(&self, symbol: &Symbol, levels: usize) -> DepthSnapshot {
        self.read().get(symbol).map_or(
            DepthSnapshot {
                seq: 0,
                bids: Vec::new(),
                asks: Vec::new(),
            },
            |s| s.market.depth().snapshot(levels),
        )
    }

    pub fn trades(&self, symbol: &Symbol, limit: usize) -> Vec<PublicTrade> {
        self.read()
            .get(symbol)
            .map_or_else(Vec::new, |s| s.market.trades().latest(limit))
    }

    /// A copy of one symbol's whole state (for tests and diagnostics).
    pub fn market(&self, symbol: &Symbol) -> Option<SymbolMarket> {
        self.read().get(symbol).map(|s| s.market.clone())
    }

    // ---- subscriptions ----

    /// Checks that a client may subscribe to a channel; returns the hub's key for it.
    pub fn check_subscription(
        &self,
        channel: &Channel,
        account: Option<AccountId>,
    ) -> Result<String, Refusal> {
        if let Some(symbol) = channel.symbol() {
            if !self.knows(symbol) {
                return Err((
                    protocol::ws_codes::UNKNOWN_SYMBOL,
                    format!("unknown symbol {symbol}"),
                ));
            }
        }
        channel.hub_key(account).ok_or((
            protocol::ws_codes::UNAUTHORIZED,
            "the orders channel needs authentication: send {\"op\":\"auth\",\"apiKey\":\"...\"} \
             or connect with the session cookie"
                .to_string(),
        ))
    }

    /// Subscribes a client to a channel under the hub key from [`Self::check_subscription`].
    /// Its first messages (depth snapshot, current candle, ticker, status) are queued before any later
    /// update of the channel.
    pub fn subscribe(&self, client: ClientId, channel: &Channel, key: &str) -> bool {
        let markets = self.read();
        let slot = channel.symbol().and_then(|s| markets.get(s));
        let name = channel.name();
        let now = clock::now();
        self.inner.hub.subscribe(client, key, |seq| match channel {
            Channel::Depth(_) => {
                let snap = slot.map_or(
                    DepthSnapshot {
                        seq: 0,
                        bids: Vec::new(),
                        asks: Vec::new(),
                    },
                    |s| s.market.depth().snapshot(MAX_SNAPSHOT_LEVELS),
                );
                let levels = DepthLevels {
                    bids: snap.bids,
                    asks: snap.asks,
                };
                Some(protocol::data_message(
                    &name,
                    Some("snapshot"),
                    snap.seq,
                    &levels,
                ))
            }
            Channel::Candles(_, i) => slot
                .and_then(|s| s.market.candles().current(*i))
                .map(|c| protocol::data_message(&name, None, seq, c)),
            Channel::Ticker(s) => {
                let t = slot.map_or_else(
                    || SymbolMarket::new(s.clone()).ticker(now),
                    |s| s.market.ticker(now),
                );
                Some(protocol::data_message(&name, None, seq, &t))
            }
            Channel::Status(s) => {
                let view = self.status_view(s, slot.and_then(|s| s.market.status()));
                Some(protocol::data_message(&name, None, seq, &view))
            }
            Channel::Trades(_) | Channel::Orders => None,
        })
    }

    /// The status the venue last published for `symbol`, or until it has published one, the
    /// configured status (a symbol known only from its trades: `TRADING`).
    fn status_view<'a>(&self, symbol: &'a Symbol, published: Option<BookStatus>) -> StatusView<'a> {
        match published {
            Some(p) => StatusView {
                symbol,
                status: p.status,
                since: Some(p.since.0),
            },
            None => StatusView {
                symbol,
                status: self
                    .instrument(symbol)
                    .map_or(TradingStatus::Trading, |i| i.status),
                since: None,
            },
        }
    }

    // ---- snapshots ----

    /// The saved form of the markets carried by `partition`.
    pub(crate) fn export_partition(&self, partition: u32) -> Vec<u8> {
        let markets = self.read();
        let snap = PartitionSnapshot {
            version: SNAPSHOT_VERSION,
            markets: markets
                .values()
                .filter(|s| s.partition == Some(partition))
                .map(|s| &s.market)
                .collect(),
        };
        serde_json::to_vec(&snap).expect("market data serialises")
    }

    /// Replaces the markets of `partition` with saved ones.
    pub(crate) fn restore_partition(&self, partition: u32, saved: &[u8]) -> Result<usize, String> {
        let snap: PartitionSnapshot<SymbolMarket> =
            serde_json::from_slice(saved).map_err(|e| e.to_string())?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot version {} is not {SNAPSHOT_VERSION}",
                snap.version
            ));
        }
        let n = snap.markets.len();
        let mut markets = self.write();
        markets.retain(|_, s| s.partition != Some(partition));
        for m in snap.markets {
            let mut slot = Slot::new(m);
            slot.partition = Some(partition);
            markets.insert(slot.market.symbol.clone(), slot);
        }
        Ok(n)
    }

    /// Forgets the markets of a partition (it was revoked, or is about to be replayed).
    pub(crate) fn drop_partition(&self, partition: u32) {
        self.write().retain(|_, s| s.partition != Some(partition));
    }

    /// Prometheus text for `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        let m = &self.inner.metrics;
        let h = &self.inner.hub.stats;
        let counters = [
            (
                "oms_marketdata_events_applied_total",
                "Market events applied",
                m.events_applied.load(Ordering::Relaxed),
            ),
            (
                "oms_marketdata_duplicates_dropped_total",
                "Redelivered market events dropped",
                m.duplicates_dropped.load(Ordering::Relaxed),
            ),
            (
                "oms_marketdata_book_gaps_total",
                "Depth sequence gaps seen",
                m.book_gaps.load(Ordering::Relaxed),
            ),
            (
                "oms_marketdata_bad_records_total",
                "Records that could not be decoded",
                m.bad_records.load(Ordering::Relaxed),
            ),
            (
                "oms_marketdata_snapshots_saved_total",
                "Market data snapshots saved",
                m.snapshots_saved.load(Ordering::Relaxed),
            ),
            (
                "oms_ws_order_updates_total",
                "Private order updates queued",
                m.order_updates_sent.load(Ordering::Relaxed),
            ),
            (
                "oms_ws_connections_total",
                "WebSocket connections opened",
                h.connections_total.load(Ordering::Relaxed),
            ),
            (
                "oms_ws_messages_total",
                "WebSocket messages queued to clients",
                h.messages_sent.load(Ordering::Relaxed),
            ),
            (
                "oms_ws_slow_consumers_total",
                "WebSocket clients cut off for not keeping up",
                h.slow_consumers.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP oms_ws_clients WebSocket clients connected.\n# TYPE oms_ws_clients gauge\noms_ws_clients {}",
            h.connected.load(Ordering::Relaxed)
        );
    }
}
