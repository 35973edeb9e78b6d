//! Matching venue benchmarks, single-threaded, side by side with the `orderbook-rs` crate.
//!
//! Two workloads are generated once, up front, as plain operation lists; every engine runs the
//! same list on a fresh, identically pre-filled book:
//!
//! 1. exchange-core mix: 9% new GTC, 3% IOC, 6% cancel, 82% move (price amend) of resting orders;
//! 2. 60% new limit, 30% cancel, 10% marketable, with about 100,000 orders resting over 1,000
//!    price levels.
//!
//! Engines: `venue` is `Venue::handle` with events pushed into a reused `Vec<Event>` (what a
//! service calls); `book` is the integer `OrderBook` underneath (no decimals, no events);
//! `orderbook-rs` is the peer. Each engine runs a list twice: once untimed per operation for
//! throughput, once with a clock read around every operation for the latency histogram.
//! Memory per resting order is measured with a counting global allocator.
//!
//! Run: `cargo bench -p oms-domain --bench venue` (`-- --quick` for a short smoke run).

use hdrhistogram::Histogram;
use oms_domain::events::{CancelReason, Event};
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::instrument::Instrument;
use oms_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use oms_domain::venue::{
    BookEvent, BookOrder, BookOrderKind, OrderBook, Source, Venue, VenueCommand,
};
use oms_domain::Decimal;
use orderbook_rs::OrderBook as PeerBook;
use pricelevel::{Id, OrderUpdate, Price};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

// ---------------------------------------------------------------- counting allocator

/// Counts live bytes and allocations while `COUNTING` is on. It is switched off for the
/// throughput passes, so that the engines that allocate more are not charged the counting.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------- operations

/// Mid price in ticks (45,000.00 at a 0.01 tick).
const MID: i64 = 4_500_000;
/// Price levels per side the workloads spread over (1,000 in all).
const LEVELS_PER_SIDE: i64 = 500;
const ACCOUNTS: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Ioc,
    Cancel,
    Move,
}

const KINDS: [Kind; 4] = [Kind::New, Kind::Ioc, Kind::Cancel, Kind::Move];

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        match self {
            Kind::New => "new limit",
            Kind::Ioc => "marketable IOC",
            Kind::Cancel => "cancel",
            Kind::Move => "move",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Op {
    kind: Kind,
    id: u64,
    account: u64,
    side: Side,
    /// Ticks; the new price for a move.
    price: i64,
    lots: u64,
}

/// splitmix64: a small, fixed, dependency-free generator, so every run sees the same lists.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn side(&mut self) -> Side {
        if self.next() & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
}

/// A passive price `distance` ticks from the mid on `side`'s own side: it never crosses.
fn passive(side: Side, distance: i64) -> i64 {
    match side {
        Side::Buy => MID - distance,
        Side::Sell => MID + distance,
    }
}

struct Workload {
    name: &'static str,
    prefill: Vec<Op>,
    ops: Vec<Op>,
}

/// The live orders of a shadow book, to pick cancel and move targets that exist.
#[derive(Default)]
struct Live {
    ids: Vec<u64>,
    at: HashMap<u64, usize>,
    side: HashMap<u64, Side>,
}

impl Live {
    fn add(&mut self, id: u64, side: Side) {
        self.at.insert(id, self.ids.len());
        self.ids.push(id);
        self.side.insert(id, side);
    }
    fn remove(&mut self, id: u64) {
        if let Some(i) = self.at.remove(&id) {
            self.ids.swap_remove(i);
            if let Some(&moved) = self.ids.get(i) {
                self.at.insert(moved, i);
            }
            self.side.remove(&id);
        }
    }
    fn pick(&self, rng: &mut Rng) -> Option<u64> {
        (!self.ids.is_empty()).then(|| self.ids[rng.below(self.ids.len() as u64) as usize])
    }
}

/// Builds a workload by running it on a shadow integer book, so that cancels and moves target
/// orders that are live at that point. The lists are then fixed for every engine.
fn generate(
    name: &'static str,
    resting: usize,
    count: usize,
    mix: [(Kind, u64); 4],
    ioc_lots: u64,
    seed: u64,
) -> Workload {
    let mut rng = Rng(seed);
    let mut book = OrderBook::new(Default::default());
    let mut live = Live::default();
    let mut out = Vec::new();
    let mut next_id = 1u64;
    let mut apply = |op: &Op, book: &mut OrderBook, live: &mut Live| {
        out.clear();
        run_book_op(book, op, &mut out);
        for e in &out {
            match e {
                BookEvent::Filled(x) if x.maker.leaves == 0 => live.remove(x.maker.order_id),
                BookEvent::Canceled { order_id, .. } => live.remove(*order_id),
                _ => {}
            }
        }
        if op.kind == Kind::New && book.is_open(op.id) {
            live.add(op.id, op.side);
        }
    };

    // Pre-fill: the same number of orders on every level of both sides.
    let mut prefill = Vec::with_capacity(resting);
    let per_level = resting / (2 * LEVELS_PER_SIDE as usize);
    for distance in 1..=LEVELS_PER_SIDE {
        for side in [Side::Buy, Side::Sell] {
            for _ in 0..per_level {
                let op = Op {
                    kind: Kind::New,
                    id: next_id,
                    account: rng.below(ACCOUNTS),
                    side,
                    price: passive(side, distance),
                    lots: 1 + rng.below(10),
                };
                next_id += 1;
                apply(&op, &mut book, &mut live);
                prefill.push(op);
            }
        }
    }

    let total: u64 = mix.iter().map(|m| m.1).sum();
    let mut ops = Vec::with_capacity(count);
    while ops.len() < count {
        let mut roll = rng.below(total);
        let kind = mix
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map(|m| m.0)
            .expect("a kind for every roll");
        let side = rng.side();
        let op = match kind {
            Kind::New => {
                let op = Op {
                    kind,
                    id: next_id,
                    account: rng.below(ACCOUNTS),
                    side,
                    price: passive(side, 1 + rng.below(LEVELS_PER_SIDE as u64) as i64),
                    lots: 1 + rng.below(10),
                };
                next_id += 1;
                op
            }
            Kind::Ioc => {
                // Priced deep enough through the other side to always reach its best level.
                let op = Op {
                    kind,
                    id: next_id,
                    account: rng.below(ACCOUNTS),
                    side,
                    price: passive(side.opposite(), LEVELS_PER_SIDE),
                    lots: ioc_lots,
                };
                next_id += 1;
                op
            }
            Kind::Cancel | Kind::Move => {
                let Some(id) = live.pick(&mut rng) else {
                    continue;
                };
                let side = live.side[&id];
                Op {
                    kind,
                    id,
                    account: 0,
                    side,
                    price: passive(side, 1 + rng.below(LEVELS_PER_SIDE as u64) as i64),
                    lots: 0,
                }
            }
        };
        apply(&op, &mut book, &mut live);
        ops.push(op);
    }
    // Cancels and moves need the owner: fill it in from the orders' creation.
    let owner: HashMap<u64, u64> = prefill
        .iter()
        .chain(ops.iter())
        .filter(|o| o.kind == Kind::New)
        .map(|o| (o.id, o.account))
        .collect();
    for op in &mut ops {
        if matches!(op.kind, Kind::Cancel | Kind::Move) {
            op.account = owner[&op.id];
        }
    }
    Workload { name, prefill, ops }
}

// ---------------------------------------------------------------- engines

fn book_order(op: &Op) -> BookOrder {
    BookOrder {
        order_id: op.id,
        account: op.account,
        side: op.side,
        kind: BookOrderKind::Limit { price: op.price },
        quantity: op.lots,
        time_in_force: if op.kind == Kind::Ioc {
            TimeInForce::Ioc
        } else {
            TimeInForce::Gtc
        },
        expire_at: None,
        post_only: false,
    }
}

fn run_book_op(book: &mut OrderBook, op: &Op, out: &mut Vec<BookEvent>) {
    match op.kind {
        Kind::New | Kind::Ioc => book.submit(0, &book_order(op), out),
        Kind::Cancel => book.cancel(op.account, op.id, CancelReason::UserRequested, out),
        Kind::Move => book.amend(0, op.account, op.id, op.id, Some(op.price), None, out),
    }
}

fn instrument() -> Instrument {
    let mut i = Instrument::spot("BTC/USD", Decimal::new(1, 2), Decimal::new(1, 4));
    i.max_quantity = Decimal::from(1_000_000);
    i
}

/// The venue command for one operation; `offset` is its source offset.
fn command(op: &Op, offset: u64) -> VenueCommand {
    let symbol = Symbol::new("BTC/USD");
    let price = Decimal::from(op.price) * Decimal::new(1, 2);
    let source = Source {
        partition: 0,
        offset,
    };
    match op.kind {
        Kind::New | Kind::Ioc => VenueCommand::Submit {
            source,
            order: NewOrder {
                order_id: OrderId(op.id),
                client_order_id: None,
                account: AccountId(op.account),
                symbol,
                side: op.side,
                order_type: OrderType::Limit,
                time_in_force: if op.kind == Kind::Ioc {
                    TimeInForce::Ioc
                } else {
                    TimeInForce::Gtc
                },
                post_only: false,
                price: Some(price),
                stop_price: None,
                quantity: Decimal::from(op.lots) * Decimal::new(1, 4),
                expire_at: None,
                created_at: Timestamp(0),
            },
            protection_price: None,
            fee_rate_cap: None,
        },
        Kind::Cancel => VenueCommand::Cancel {
            source,
            symbol,
            account: AccountId(op.account),
            order_id: OrderId(op.id),
            reason: None,
        },
        Kind::Move => VenueCommand::Amend {
            source,
            symbol,
            account: AccountId(op.account),
            order_id: OrderId(op.id),
            amend_id: offset,
            price: Some(price),
            quantity: None,
            fee_rate_cap: None,
        },
    }
}

/// Operations are handed to the engines in batches of this many. The venue's commands are
/// built per batch, untimed, just before they are handled: a service decodes a batch of records
/// from the log and handles them while they are in cache, whereas a list of a million
/// pre-built commands (~200 MB) would charge the venue for streaming it from memory.
const BATCH: usize = 1_024;

/// One engine under test: a fresh pre-filled instance per pass, then one operation at a time.
trait Engine {
    fn name(&self) -> &'static str;
    /// Builds the engine and pre-fills it; returns the bytes its allocations grew by.
    fn prefill(&mut self, w: &Workload) -> i64;
    /// Gets operations `range` ready; not timed.
    fn prepare(&mut self, _range: std::ops::Range<usize>) {}
    fn run(&mut self, n: usize);
}

struct VenueEngine {
    venue: Option<Venue>,
    prefill: Vec<VenueCommand>,
    ops: Vec<Op>,
    /// Source offset of the first operation after the pre-fill.
    first_offset: u64,
    /// The commands of the current batch, starting at operation `batch_start`.
    batch: Vec<VenueCommand>,
    batch_start: usize,
    out: Vec<Event>,
}

impl VenueEngine {
    fn new(w: &Workload) -> Self {
        VenueEngine {
            venue: None,
            prefill: w
                .prefill
                .iter()
                .enumerate()
                .map(|(n, op)| command(op, 1 + n as u64))
                .collect(),
            ops: w.ops.clone(),
            first_offset: 1 + w.prefill.len() as u64,
            batch: Vec::with_capacity(BATCH),
            batch_start: 0,
            out: Vec::with_capacity(64),
        }
    }
}

impl Engine for VenueEngine {
    fn name(&self) -> &'static str {
        "venue (events)"
    }
    fn prefill(&mut self, _: &Workload) -> i64 {
        self.venue = None;
        let before = live_bytes();
        let mut venue = Venue::new(vec![instrument()], AccountId(1));
        for c in &self.prefill {
            venue.handle(Timestamp(0), c, &mut self.out);
            self.out.clear();
        }
        self.venue = Some(venue);
        live_bytes() - before
    }
    fn prepare(&mut self, range: std::ops::Range<usize>) {
        self.batch.clear();
        self.batch_start = range.start;
        for n in range {
            let cmd = command(&self.ops[n], self.first_offset + n as u64);
            self.batch.push(cmd);
        }
    }
    #[inline]
    fn run(&mut self, n: usize) {
        let venue = self.venue.as_mut().expect("prefilled");
        let cmd = &self.batch[n - self.batch_start];
        venue.handle(Timestamp(0), cmd, &mut self.out);
        black_box(&self.out);
        self.out.clear();
    }
}

struct BookEngine {
    book: Option<OrderBook>,
    ops: Vec<Op>,
    out: Vec<BookEvent>,
}

impl Engine for BookEngine {
    fn name(&self) -> &'static str {
        "book (raw)"
    }
    fn prefill(&mut self, w: &Workload) -> i64 {
        self.book = None;
        let before = live_bytes();
        let mut book = OrderBook::new(Default::default());
        for op in &w.prefill {
            run_book_op(&mut book, op, &mut self.out);
            self.out.clear();
        }
        self.book = Some(book);
        live_bytes() - before
    }
    #[inline]
    fn run(&mut self, n: usize) {
        let book = self.book.as_mut().expect("prefilled");
        run_book_op(book, &self.ops[n], &mut self.out);
        black_box(&self.out);
        self.out.clear();
    }
}

struct PeerEngine {
    book: Option<PeerBook<()>>,
    ops: Vec<Op>,
}

fn peer_side(side: Side) -> pricelevel::Side {
    match side {
        Side::Buy => pricelevel::Side::Buy,
        Side::Sell => pricelevel::Side::Sell,
    }
}

fn run_peer_op(book: &PeerBook<()>, op: &Op) {
    let id = Id::Sequential(op.id);
    match op.kind {
        Kind::New => {
            let _ = black_box(book.add_limit_order(
                id,
                op.price as u128,
                op.lots,
                peer_side(op.side),
                pricelevel::TimeInForce::Gtc,
                None,
            ));
        }
        Kind::Ioc => {
            let _ = black_box(book.add_limit_order(
                id,
                op.price as u128,
                op.lots,
                peer_side(op.side),
                pricelevel::TimeInForce::Ioc,
                None,
            ));
        }
        Kind::Cancel => {
            let _ = black_box(book.cancel_order(id));
        }
        Kind::Move => {
            let _ = black_box(book.update_order(OrderUpdate::UpdatePrice {
                order_id: id,
                new_price: Price::new(op.price as u128),
            }));
        }
    }
}

impl Engine for PeerEngine {
    fn name(&self) -> &'static str {
        "orderbook-rs 0.15"
    }
    fn prefill(&mut self, w: &Workload) -> i64 {
        self.book = None;
        let before = live_bytes();
        let book = PeerBook::<()>::new("BTC/USD");
        for op in &w.prefill {
            run_peer_op(&book, op);
        }
        self.book = Some(book);
        live_bytes() - before
    }
    #[inline]
    fn run(&mut self, n: usize) {
        run_peer_op(self.book.as_ref().expect("prefilled"), &self.ops[n]);
    }
}

// ---------------------------------------------------------------- measurement

struct Measured {
    name: &'static str,
    ops_per_sec: f64,
    allocs_per_op: f64,
    bytes_per_resting: f64,
    all: Histogram<u64>,
    per_kind: Vec<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Throughput passes per engine; the best is reported, as the machine is shared and a pass
/// can lose the CPU to other work.
const THROUGHPUT_PASSES: usize = 3;

fn measure(engine: &mut dyn Engine, w: &Workload) -> Measured {
    // Throughput: no clock reads between operations, no allocation counting.
    let mut best = f64::INFINITY;
    for _ in 0..THROUGHPUT_PASSES {
        engine.prefill(w);
        let mut elapsed = 0.0;
        for from in (0..w.ops.len()).step_by(BATCH) {
            let range = from..(from + BATCH).min(w.ops.len());
            engine.prepare(range.clone());
            let start = Instant::now();
            for n in range {
                engine.run(n);
            }
            elapsed += start.elapsed().as_secs_f64();
        }
        best = best.min(elapsed);
    }

    // Memory of the pre-filled book, then latency of every operation and allocations.
    engine.prefill(w);
    counting(true);
    let bytes = engine.prefill(w);
    let allocs_before = allocations();
    let mut all = histogram();
    let mut per_kind: Vec<Histogram<u64>> = KINDS.iter().map(|_| histogram()).collect();
    for (n, op) in w.ops.iter().enumerate() {
        if n % BATCH == 0 {
            counting(false);
            engine.prepare(n..(n + BATCH).min(w.ops.len()));
            counting(true);
        }
        let t = Instant::now();
        engine.run(n);
        let ns = (t.elapsed().as_nanos() as u64).max(1);
        all.saturating_record(ns);
        per_kind[op.kind.index()].saturating_record(ns);
    }
    let allocs = allocations() - allocs_before;
    counting(false);
    Measured {
        name: engine.name(),
        ops_per_sec: w.ops.len() as f64 / best,
        allocs_per_op: allocs as f64 / w.ops.len() as f64,
        bytes_per_resting: bytes as f64 / w.prefill.len() as f64,
        all,
        per_kind,
    }
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1_000.0)
}

fn report(w: &Workload, results: &[Measured]) {
    let counts: Vec<usize> = KINDS
        .iter()
        .map(|k| w.ops.iter().filter(|o| o.kind == *k).count())
        .collect();
    println!();
    println!(
        "== {}: {} operations on {} pre-filled resting orders ({} new, {} marketable IOC, {} cancel, {} move)",
        w.name,
        w.ops.len(),
        w.prefill.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3]
    );
    println!(
        "{:<20} {:>12} {:>9} {:>9} {:>9} {:>9} {:>11} {:>12}",
        "engine", "ops/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "allocs/op", "B/resting"
    );
    for r in results {
        println!(
            "{:<20} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>11.2} {:>12.1}",
            r.name,
            r.ops_per_sec,
            us(r.all.value_at_quantile(0.5)),
            us(r.all.value_at_quantile(0.99)),
            us(r.all.value_at_quantile(0.999)),
            us(r.all.max()),
            r.allocs_per_op,
            r.bytes_per_resting
        );
    }
    println!("per operation (p50 / p99 / p99.9 µs):");
    for k in KINDS {
        if counts[k.index()] == 0 {
            continue;
        }
        let cells: Vec<String> = results
            .iter()
            .map(|r| {
                let h = &r.per_kind[k.index()];
                format!(
                    "{}: {} / {} / {}",
                    r.name,
                    us(h.value_at_quantile(0.5)),
                    us(h.value_at_quantile(0.99)),
                    us(h.value_at_quantile(0.999))
                )
            })
            .collect();
        println!("  {:<15} {}", k.name(), cells.join("   "));
    }
    let Some(peer) = results
        .last()
        .filter(|r| r.name.starts_with("orderbook-rs"))
    else {
        return;
    };
    for r in &results[..results.len() - 1] {
        println!(
            "ratio {} / {}: {:.2}x throughput, {:.2}x lower p99",
            r.name,
            peer.name,
            r.ops_per_sec / peer.ops_per_sec,
            peer.all.value_at_quantile(0.99) as f64 / r.all.value_at_quantile(0.99) as f64
        );
    }
}

/// What the figures were measured on: cores, CPU model and how busy the machine was.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, {model}, load average {}", load.join(" "))
}

fn main() {
    // `cargo bench` passes `--bench`; `--quick` shortens the lists for a smoke run.
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    println!("machine: {}", machine());

    let workloads = [
        generate(
            "workload 1, exchange-core mix (9% GTC, 3% IOC, 6% cancel, 82% move)",
            10_000 / scale,
            1_000_000 / scale,
            [
                (Kind::New, 9),
                (Kind::Ioc, 3),
                (Kind::Cancel, 6),
                (Kind::Move, 82),
            ],
            6,
            1,
        ),
        generate(
            "workload 2 (60% new limit, 30% cancel, 10% marketable)",
            100_000 / scale,
            1_000_000 / scale,
            [
                (Kind::New, 60),
                (Kind::Ioc, 10),
                (Kind::Cancel, 30),
                (Kind::Move, 0),
            ],
            17,
            2,
        ),
    ];

    // `-- --workload N` runs only workload N (for profiling).
    let only_workload: Option<usize> = std::env::args()
        .skip_while(|a| a != "--workload")
        .nth(1)
        .and_then(|n| n.parse().ok());
    for (i, w) in workloads.iter().enumerate() {
        if only_workload.is_some_and(|n| n != i + 1) {
            continue;
        }
        let mut engines: Vec<Box<dyn Engine>> = vec![
            Box::new(VenueEngine::new(w)),
            Box::new(BookEngine {
                book: None,
                ops: w.ops.clone(),
                out: Vec::with_capacity(64),
            }),
            Box::new(PeerEngine {
                book: None,
                ops: w.ops.clone(),
            }),
        ];
        // `-- --only NAME` runs the engines whose name contains NAME (for profiling).
        let only = std::env::args()
            .skip_while(|a| a != "--only")
            .nth(1)
            .unwrap_or_default();
        let results: Vec<Measured> = engines
            .iter_mut()
            .filter(|e| e.name().contains(only.as_str()))
            .map(|e| measure(e.as_mut(), w))
            .collect();
        report(w, &results);
    }
}
