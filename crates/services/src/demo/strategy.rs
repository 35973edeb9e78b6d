//! The demo market's decisions, free of I/O and clocks: a market maker quoting a ladder around
//! a random-walk fair price, and takers crossing the spread now and then. The same seed gives
//! the same decisions, tick after tick.

use super::rng::SplitMix64;
use oms_domain::ids::Symbol;
use oms_domain::instrument::Instrument;
use oms_domain::order::Side;
use oms_domain::Decimal;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSettings {
    pub seed: u64,
    /// Maker levels per side.
    pub levels: u32,
    /// Half the maker's spread around the fair price, in basis points.
    pub half_spread_bps: i64,
    /// Distance between the maker's levels, in basis points.
    pub level_step_bps: i64,
    /// Largest move of the fair price per requote, in basis points.
    pub volatility_bps: i64,
    /// Part of the fair price's distance from where it started that is pulled back per requote,
    /// in basis points (keeps a long-running demo near sensible prices).
    pub reversion_bps: i64,
    /// Ticks between two requotes of one symbol (symbols are staggered).
    pub requote_every_ticks: u64,
    /// Number of taker accounts.
    pub takers: usize,
    /// Chance per tick that one taker sends an order, in percent.
    pub taker_chance_percent: u64,
    /// How far past the fair price a taker's IOC limit reaches, in basis points.
    pub taker_reach_bps: i64,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings {
            seed: 20_261_125,
            levels: 5,
            half_spread_bps: 5,
            level_step_bps: 4,
            volatility_bps: 8,
            reversion_bps: 50,
            requote_every_ticks: 8,
            takers: 2,
            taker_chance_percent: 60,
            taker_reach_bps: 30,
        }
    }
}

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Maker,
    Taker(usize),
}

/// A limit order the demo sends: GTC for the maker's quotes, IOC for takers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrder {
    pub symbol: Symbol,
    pub side: Side,
    pub price: Decimal,
    pub quantity: Decimal,
    pub ioc: bool,
}

impl DemoOrder {
    /// The order as a client would send it to `POST /api/orders`.
    pub fn request(&self) -> Value {
        json!({
            "symbol": self.symbol.as_str(),
            "side": match self.side { Side::Buy => "BUY", Side::Sell => "SELL" },
            "orderType": "LIMIT",
            "timeInForce": if self.ioc { "IOC" } else { "GTC" },
            "price": self.price.to_string(),
            "quantity": self.quantity.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Withdraw the maker's quotes in a symbol (a requote follows).
    CancelQuotes {
        symbol: Symbol,
    },
    Place {
        role: Role,
        order: DemoOrder,
    },
}

/// Where a symbol's fair price starts, and the size of a typical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketSeed {
    pub instrument: Instrument,
    pub start_price: Decimal,
    pub typical_quantity: Decimal,
}

#[derive(Debug, Clone)]
struct Market {
    instrument: Instrument,
    fair: Decimal,
    anchor: Decimal,
    size: Decimal,
}

pub struct DemoStrategy {
    settings: DemoSettings,
    rng: SplitMix64,
    markets: Vec<Market>,
    tick: u64,
}

fn bps(n: i64) -> Decimal {
    Decimal::new(n, 4)
}

/// `value` on a multiple of `unit`, rounded down or up, and at least one unit.
fn on_unit(value: Decimal, unit: Decimal, up: bool) -> Decimal {
    let n = value / unit;
    let n = if up { n.ceil() } else { n.floor() };
    (n * unit).max(unit).normalize()
}

impl DemoStrategy {
    pub fn new(settings: DemoSettings, seeds: Vec<MarketSeed>) -> Self {
        let rng = SplitMix64::new(settings.seed);
        let markets = seeds
            .into_iter()
            .map(|s| {
                let fair = on_unit(s.start_price, s.instrument.tick_size, false);
                Market {
                    instrument: s.instrument,
                    fair,
                    anchor: fair,
                    size: s.typical_quantity,
                }
            })
            .collect();
        DemoStrategy {
            settings,
            rng,
            markets,
            tick: 0,
        }
    }

    pub fn fair(&self, symbol: &Symbol) -> Option<Decimal> {
        self.markets
            .iter()
            .find(|m| m.instrument.symbol == *symbol)
            .map(|m| m.fair)
    }

    pub fn symbols(&self) -> Vec<Symbol> {
        self.markets
            .iter()
            .map(|m| m.instrument.symbol.clone())
            .collect()
    }

    /// What to do this tick.
    pub fn next_tick(&mut self) -> Vec<Action> {
        let s = self.settings.clone();
        let mut actions = Vec::new();
        let n = self.markets.len().max(1) as u64;
        for i in 0..self.markets.len() {
            let offset = i as u64 * s.requote_every_ticks / n;
            if (self.tick + offset).is_multiple_of(s.requote_every_ticks.max(1)) {
                self.step_fair(i);
                actions.push(Action::CancelQuotes {
                    symbol: self.markets[i].instrument.symbol.clone(),
                });
                for level in 0..s.levels {
                    for side in [Side::Buy, Side::Sell] {
                        let order = self.quote(i, side, level);
                        actions.push(Action::Place {
                            role: Role::Maker,
                            order,
                        });
                    }
                }
            }
        }
        if !self.markets.is_empty() && s.takers > 0 && self.rng.chance(s.taker_chance_percent) {
            let i = self.rng.range(0, self.markets.len() as i64 - 1) as usize;
            let taker = self.rng.range(0, s.takers as i64 - 1) as usize;
            let side = if self.rng.chance(50) {
                Side::Buy
            } else {
                Side::Sell
            };
            let m = &self.markets[i];
            let reach = bps(s.taker_reach_bps);
            let price = match side {
                Side::Buy => on_unit(
                    m.fair * (Decimal::ONE + reach),
                    m.instrument.tick_size,
                    true,
                ),
                Side::Sell => on_unit(
                    m.fair * (Decimal::ONE - reach),
                    m.instrument.tick_size,
                    false,
                ),
            };
            let factor = Decimal::new(self.rng.range(20, 150), 2);
            let quantity = self.quantity(i, m.size * factor, price);
            actions.push(Action::Place {
                role: Role::Taker(taker),
                order: DemoOrder {
                    symbol: m.instrument.symbol.clone(),
                    side,
                    price,
                    quantity,
                    ioc: true,
                },
            });
        }
        self.tick += 1;
        actions
    }

    fn step_fair(&mut self, i: usize) {
        let (vol, reversion) = (self.settings.volatility_bps, self.settings.reversion_bps);
        let moved = bps(self.rng.range(-vol, vol));
        let m = &mut self.markets[i];
        let pull = (m.fair - m.anchor) * bps(reversion);
        m.fair = on_unit(
            m.fair * (Decimal::ONE + moved) - pull,
            m.instrument.tick_size,
            false,
        );
    }

    fn quote(&mut self, i: usize, side: Side, level: u32) -> DemoOrder {
        let jitter = self.rng.range(0, 50);
        let s = &self.settings;
        let away = bps(s.half_spread_bps + s.level_step_bps * level as i64);
        let growth = Decimal::new(100 + 50 * level as i64 + jitter, 2);
        let m = &self.markets[i];
        let tick = m.instrument.tick_size;
        let price = match side {
            // Never at the fair price itself, so the two sides never meet.
            Side::Buy => on_unit(m.fair * (Decimal::ONE - away), tick, false).min(m.fair - tick),
            Side::Sell => on_unit(m.fair * (Decimal::ONE + away), tick, true).max(m.fair + tick),
        }
        .max(tick);
        let quantity = self.quantity(i, m.size * growth, price);
        DemoOrder {
            symbol: m.instrument.symbol.clone(),
            side,
            price,
            quantity,
            ioc: false,
        }
    }

    /// `wanted` on the step, inside the instrument's quantity limits and above its minimum
    /// notional at `price`.
    fn quantity(&self, i: usize, wanted: Decimal, price: Decimal) -> Decimal {
        let inst = &self.markets[i].instrument;
        let step = inst.step_size;
        let mut q = on_unit(wanted, step, false).max(inst.min_quantity);
        if q * price < inst.min_notional {
            q = on_unit(inst.min_notional / price, step, true);
        }
        q.min(on_unit(inst.max_quantity, step, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingestion::validate::validate_new_order;
    use oms_domain::ids::Timestamp;
    use oms_domain::instrument::default_instruments;
    use std::collections::HashMap;

    fn seeds() -> Vec<MarketSeed> {
        let prices = ["45000", "2500", "0.0555", "100"];
        let sizes = ["0.05", "0.5", "0.5", "10"];
        default_instruments()
            .into_iter()
            .zip(prices.iter().zip(sizes))
            .map(|(instrument, (p, q))| MarketSeed {
                instrument,
                start_price: p.parse().unwrap(),
                typical_quantity: q.parse().unwrap(),
            })
            .collect()
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let mut a = DemoStrategy::new(DemoSettings::default(), seeds());
        let mut b = DemoStrategy::new(DemoSettings::default(), seeds());
        for _ in 0..200 {
            assert_eq!(a.next_tick(), b.next_tick());
        }
        let mut c = DemoStrategy::new(
            DemoSettings {
                seed: 1,
                ..DemoSettings::default()
            },
            seeds(),
        );
        let mut a = DemoStrategy::new(DemoSettings::default(), seeds());
        let (xs, ys): (Vec<_>, Vec<_>) = (0..50).map(|_| (a.next_tick(), c.next_tick())).unzip();
        assert_ne!(xs, ys);
    }

    #[test]
    fn every_order_passes_the_api_validation_and_quotes_never_cross() {
        let by_symbol: HashMap<String, Instrument> = default_instruments()
            .into_iter()
            .map(|i| (i.symbol.0.clone(), i))
            .collect();
        let mut s = DemoStrategy::new(DemoSettings::default(), seeds());
        let (mut quotes, mut takes, mut requotes) = (0, 0, 0);
        for _ in 0..2_000 {
            let actions = s.next_tick();
            let mut best: HashMap<Symbol, (Decimal, Decimal)> = HashMap::new();
            for a in &actions {
                match a {
                    Action::CancelQuotes { .. } => requotes += 1,
                    Action::Place { role, order } => {
                        validate_new_order(&order.request(), &by_symbol, Timestamp(0))
                            .unwrap_or_else(|e| panic!("{order:?}: {e:?}"));
                        let fair = s.fair(&order.symbol).unwrap();
                        match role {
                            Role::Maker => {
                                quotes += 1;
                                let b = best
                                    .entry(order.symbol.clone())
                                    .or_insert((Decimal::ZERO, Decimal::MAX));
                                match order.side {
                                    Side::Buy => {
                                        assert!(order.price < fair);
                                        b.0 = b.0.max(order.price);
                                    }
                                    Side::Sell => {
                                        assert!(order.price > fair);
                                        b.1 = b.1.min(order.price);
                                    }
                                }
                            }
                            Role::Taker(t) => {
                                takes += 1;
                                assert!(*t < 2);
                                assert!(order.ioc);
                                // A taker reaches across the fair price into the maker's quotes.
                                match order.side {
                                    Side::Buy => assert!(order.price > fair),
                                    Side::Sell => assert!(order.price < fair),
                                }
                            }
                        }
                    }
                }
            }
            for (bid, ask) in best.values() {
                assert!(bid < ask);
            }
        }
        assert_eq!(requotes, 2_000 / 8 * 4);
        assert_eq!(quotes, requotes * 10);
        assert!(takes > 1_000, "{takes}");
        // The random walk stays near where it started.
        let btc = s.fair(&Symbol::new("BTC/USD")).unwrap();
        assert!(
            btc > Decimal::from(40_000) && btc < Decimal::from(50_000),
            "{btc}"
        );
    }
}
