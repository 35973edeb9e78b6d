//! The demo market: a simulated market maker and takers trading from their own demo accounts,
//! so a fresh `oms serve` has live prices, candles and depth to show.
//!
//! The maker quotes a ladder on both sides of a random-walk fair price and requotes it every
//! few ticks (cancel, then place); takers send IOC orders across the spread now and then.
//! Orders go through the same validation, id generator and `orders` topic as the HTTP API's, so
//! they pass risk, the venue and the processor like anyone's. Decisions come from a seeded
//! generator ([`strategy`]): the same seed, the same orders.

pub mod gateway;
pub mod rng;
pub mod strategy;

pub use gateway::{ApiGateway, DemoGateway};
pub use strategy::{Action, DemoOrder, DemoSettings, DemoStrategy, MarketSeed, Role};

use crate::api::ApiState;
use crate::ingestion::publish::deposit_reference;
use crate::marketdata::MarketData;
use crate::pipeline::Shutdown;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol};
use oms_domain::instrument::Instrument;
use oms_domain::Decimal;
use oms_ports::PortError;
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DemoError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("order refused: {0}")]
    Rejected(String),
    #[error(
        "account {1} is named {0:?} and is not a demo account: the demo market needs that name (start with the demo market off)"
    )]
    NameTaken(String, AccountId),
}

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub settings: DemoSettings,
    /// Time between two strategy ticks.
    pub tick: Duration,
    pub maker_account: String,
    /// Takers are named this plus 1, 2, ...
    pub taker_account_prefix: String,
    /// What each demo account is funded with when created, and topped up to when it runs low.
    pub funding: Vec<(Asset, Decimal)>,
    /// Fair prices to start from when a symbol has not traded yet.
    pub start_prices: Vec<(Symbol, Decimal)>,
    /// A typical order size per symbol (the maker's levels grow from it).
    pub typical_quantities: Vec<(Symbol, Decimal)>,
    /// Ticks between balance checks.
    pub top_up_every_ticks: u64,
}

fn d(s: &str) -> Decimal {
    s.parse().expect("literal decimal")
}

impl Default for DemoConfig {
    fn default() -> Self {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(s, p)| (Symbol::new(*s), d(p)))
                .collect::<Vec<_>>()
        };
        DemoConfig {
            settings: DemoSettings::default(),
            tick: Duration::from_millis(250),
            maker_account: "demo-maker".into(),
            taker_account_prefix: "demo-taker-".into(),
            funding: [
                ("USD", "50000000"),
                ("BTC", "1000"),
                ("ETH", "20000"),
                ("SOL", "500000"),
            ]
            .iter()
            .map(|(a, n)| (Asset::new(*a), d(n)))
            .collect(),
            start_prices: pairs(&[
                ("BTC/USD", "45000"),
                ("ETH/USD", "2500"),
                ("ETH/BTC", "0.0555"),
                ("SOL/USD", "100"),
            ]),
            typical_quantities: pairs(&[
                ("BTC/USD", "0.05"),
                ("ETH/USD", "0.5"),
                ("ETH/BTC", "0.5"),
                ("SOL/USD", "10"),
            ]),
            top_up_every_ticks: 240,
        }
    }
}

/// The demo's accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccounts {
    pub maker: AccountId,
    pub takers: Vec<AccountId>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemoStats {
    pub placed: u64,
    pub cancels: u64,
    pub refused: u64,
}

/// The demo market driven one tick at a time (the timing is [`run_demo_market`]'s).
pub struct DemoMarket<G: DemoGateway> {
    config: DemoConfig,
    strategy: DemoStrategy,
    gateway: G,
    accounts: DemoAccounts,
    /// The maker's resting quotes per symbol, cancelled at the next requote.
    quotes: HashMap<Symbol, Vec<OrderId>>,
    ticks: u64,
    pub stats: DemoStats,
}

impl<G: DemoGateway> DemoMarket<G> {
    /// Finds or creates (and funds) the demo accounts, withdraws quotes left from an earlier
    /// run, and starts each symbol's fair price at `last_price` or the configured one.
    pub async fn setup(
        config: DemoConfig,
        gateway: G,
        instruments: &[Instrument],
        last_price: impl Fn(&Symbol) -> Option<Decimal>,
    ) -> Result<Self, DemoError> {
        let ensure = async |name: String| -> Result<AccountId, DemoError> {
            let (account, created) = gateway.find_or_create_account(&name).await?;
            if !account.demo {
                return Err(DemoError::NameTaken(name, account.id));
            }
            let id = account.id;
            if !created {
                return Ok(id);
            }
            for (asset, amount) in &config.funding {
                // Keyed as the admin API keys a deposit, so it reads back and lists the same way.
                let reference = deposit_reference(&format!("demo-funding:{name}"), asset);
                gateway.deposit(id, asset, *amount, &reference).await?;
            }
            tracing::info!(account = %id, %name, "demo account created and funded");
            Ok(id)
        };
        let maker = ensure(config.maker_account.clone()).await?;
        let mut takers = Vec::new();
        for i in 1..=config.settings.takers {
            takers.push(ensure(format!("{}{i}", config.taker_account_prefix)).await?);
        }
        let accounts = DemoAccounts { maker, takers };
        for account in std::iter::once(maker).chain(accounts.takers.iter().copied()) {
            for order in gateway.live_orders(account).await? {
                gateway.cancel(account, order).await?;
            }
        }
        let lookup =
            |v: &[(Symbol, Decimal)], s: &Symbol| v.iter().find(|(k, _)| k == s).map(|(_, p)| *p);
        let seeds = instruments
            .iter()
            .filter_map(|i| {
                let start_price =
                    last_price(&i.symbol).or(lookup(&config.start_prices, &i.symbol))?;
                let typical_quantity = lookup(&config.typical_quantities, &i.symbol)
                    .unwrap_or(i.step_size * Decimal::from(1_000));
                Some(MarketSeed {
                    instrument: i.clone(),
                    start_price,
                    typical_quantity,
                })
            })
            .collect();
        Ok(DemoMarket {
            strategy: DemoStrategy::new(config.settings.clone(), seeds),
            config,
            gateway,
            accounts,
            quotes: HashMap::new(),
            ticks: 0,
            stats: DemoStats::default(),
        })
    }

    pub fn accounts(&self) -> &DemoAccounts {
        &self.accounts
    }

    pub fn strategy(&self) -> &DemoStrategy {
        &self.strategy
    }

    fn account(&self, role: Role) -> AccountId {
        match role {
            Role::Maker => self.accounts.maker,
            Role::Taker(i) => self.accounts.takers[i % self.accounts.takers.len()],
        }
    }

    /// One tick: the strategy's actions, carried out in order. A refused order or a failed
    /// call is logged and counted; the demo goes on.
    pub async fn step(&mut self) -> Vec<Action> {
        let actions = self.strategy.next_tick();
        for action in &actions {
            match action {
                Action::CancelQuotes { symbol } => {
                    for id in self.quotes.remove(symbol).unwrap_or_default() {
                        self.stats.cancels += 1;
                        if let Err(e) = self.gateway.cancel(self.accounts.maker, id).await {
                            tracing::warn!(error = %e, "demo cancel failed");
                        }
                    }
                }
                Action::Place { role, order } => {
                    let account = self.account(*role);
                    match self.gateway.place(account, &order.request()).await {
                        Ok(id) => {
                            self.stats.placed += 1;
                            if *role == Role::Maker {
                                self.quotes
                                    .entry(order.symbol.clone())
                                    .or_default()
                                    .push(id);
                            }
                        }
                        Err(e) => {
                            self.stats.refused += 1;
                            tracing::warn!(error = %e, ?order, "demo order refused");
                        }
                    }
                }
            }
        }
        self.ticks += 1;
        if self
            .ticks
            .is_multiple_of(self.config.top_up_every_ticks.max(1))
        {
            if let Err(e) = self.top_up().await {
                tracing::warn!(error = %e, "demo top-up failed");
            }
        }
        actions
    }

    /// Refunds any demo account whose holdings of a funded asset fell below a quarter.
    pub async fn top_up(&self) -> Result<(), DemoError> {
        let all = std::iter::once(self.accounts.maker).chain(self.accounts.takers.iter().copied());
        for account in all {
            let balances = self.gateway.balances(account).await?;
            for (asset, amount) in &self.config.funding {
                let held: Decimal = balances
                    .iter()
                    .filter(|b| b.asset == *asset)
                    .map(|b| b.available + b.reserved)
                    .sum();
                if held * Decimal::from(4) < *amount {
                    let reference =
                        deposit_reference(&format!("demo-topup:{account}:{}", self.ticks), asset);
                    self.gateway
                        .deposit(account, asset, *amount - held, &reference)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// Runs the demo market until `shutdown` turns true. `market` (when given) supplies the last
/// traded prices, so a restarted demo carries on where the market stands.
pub async fn run_demo_market(
    config: DemoConfig,
    api: ApiState,
    market: Option<MarketData>,
    mut shutdown: Shutdown,
) -> Result<(), DemoError> {
    if let Some(md) = &market {
        // Wait (briefly) for the replay, so the last prices are known.
        for _ in 0..100 {
            if md.is_caught_up() || *shutdown.borrow() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let last_price = |s: &Symbol| {
        market
            .as_ref()
            .and_then(|md| md.trades(s, 1).first().map(|t| t.price))
    };
    let instruments = api.instruments.as_ref().clone();
    let tick = config.tick;
    let mut demo = DemoMarket::setup(config, ApiGateway(api), &instruments, last_price).await?;
    tracing::info!(accounts = ?demo.accounts(), symbols = ?demo.strategy().symbols(), "demo market running");
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*shutdown.borrow() {
        tokio::select! {
            _ = every.tick() => {
                demo.step().await;
            }
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!(stats = ?demo.stats, "demo market stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use oms_domain::ids::Timestamp;
    use oms_domain::instrument::default_instruments;
    use oms_ports::order_store::{Account, Balance};
    use serde_json::Value;
    use std::sync::Mutex;

    /// Records every call; knows accounts it created and orders it was told are live.
    #[derive(Default)]
    struct Fake {
        accounts: Mutex<Vec<Account>>,
        live: Mutex<Vec<(AccountId, OrderId)>>,
        placed: Mutex<Vec<(AccountId, Value)>>,
        cancels: Mutex<Vec<(AccountId, OrderId)>>,
        deposits: Mutex<Vec<(AccountId, Asset, Decimal, String)>>,
        next_id: Mutex<u64>,
    }

    #[async_trait]
    impl DemoGateway for &Fake {
        async fn place(&self, account: AccountId, request: &Value) -> Result<OrderId, DemoError> {
            self.placed.lock().unwrap().push((account, request.clone()));
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            Ok(OrderId(*n))
        }
        async fn cancel(&self, account: AccountId, order: OrderId) -> Result<(), DemoError> {
            self.cancels.lock().unwrap().push((account, order));
            Ok(())
        }
        async fn live_orders(&self, account: AccountId) -> Result<Vec<OrderId>, DemoError> {
            let live = self.live.lock().unwrap();
            Ok(live
                .iter()
                .filter(|(a, _)| *a == account)
                .map(|(_, o)| *o)
                .collect())
        }
        async fn find_or_create_account(&self, name: &str) -> Result<(Account, bool), DemoError> {
            let mut accounts = self.accounts.lock().unwrap();
            if let Some(a) = accounts.iter().find(|a| a.name == name) {
                return Ok((a.clone(), false));
            }
            let account = Account {
                id: AccountId(100 + accounts.len() as u64),
                name: name.into(),
                demo: true,
                created_at: Timestamp(0),
            };
            accounts.push(account.clone());
            Ok((account, true))
        }
        async fn balances(&self, _account: AccountId) -> Result<Vec<Balance>, DemoError> {
            Ok(vec![Balance {
                asset: Asset::new("USD"),
                available: Decimal::from(1_000),
                reserved: Decimal::ZERO,
            }])
        }
        async fn deposit(
            &self,
            account: AccountId,
            asset: &Asset,
            amount: Decimal,
            reference: &str,
        ) -> Result<(), DemoError> {
            self.deposits
                .lock()
                .unwrap()
                .push((account, asset.clone(), amount, reference.into()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn accounts_are_made_once_and_quotes_are_replaced_at_each_requote() {
        let fake = Fake::default();
        let config = DemoConfig::default();
        let instruments = default_instruments();
        let mut demo = DemoMarket::setup(config.clone(), &fake, &instruments, |_| None)
            .await
            .unwrap();
        let accounts = demo.accounts().clone();
        assert_eq!(accounts.takers.len(), 2);
        assert_eq!(
            fake.deposits.lock().unwrap().len(),
            3 * config.funding.len()
        );
        // Eight ticks requote every symbol once; eight more requote them again.
        for _ in 0..8 {
            demo.step().await;
        }
        let first_round: Vec<(AccountId, Value)> = fake
            .placed
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == accounts.maker)
            .cloned()
            .collect();
        assert_eq!(first_round.len(), 4 * 10);
        assert!(fake.cancels.lock().unwrap().is_empty());
        for _ in 0..8 {
            demo.step().await;
        }
        let cancels = fake.cancels.lock().unwrap().clone();
        assert_eq!(
            cancels.len(),
            40,
            "every quote of the first round is withdrawn"
        );
        assert!(cancels
            .iter()
            .all(|(a, o)| *a == accounts.maker && o.0 <= 60));
        let takers = fake
            .placed
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, r)| accounts.takers.contains(a) && r["timeInForce"] == "IOC")
            .count() as u64;
        assert_eq!(demo.stats.placed, 80 + takers);
        assert!(takers > 0);

        // A restart finds the accounts, funds nobody again, and withdraws leftover orders.
        fake.live.lock().unwrap().push((accounts.maker, OrderId(7)));
        let again = DemoMarket::setup(config, &fake, &instruments, |s| {
            (s.as_str() == "BTC/USD").then(|| Decimal::from(50_000))
        })
        .await
        .unwrap();
        assert_eq!(again.accounts(), &accounts);
        assert_eq!(fake.deposits.lock().unwrap().len(), 12);
        assert_eq!(
            fake.cancels.lock().unwrap().last(),
            Some(&(accounts.maker, OrderId(7)))
        );
        assert_eq!(
            again.strategy().fair(&Symbol::new("BTC/USD")),
            Some(Decimal::from(50_000))
        );
    }

    #[tokio::test]
    async fn top_up_refunds_what_ran_low() {
        let fake = Fake::default();
        let demo = DemoMarket::setup(DemoConfig::default(), &fake, &default_instruments(), |_| {
            None
        })
        .await
        .unwrap();
        fake.deposits.lock().unwrap().clear();
        demo.top_up().await.unwrap();
        let deposits = fake.deposits.lock().unwrap().clone();
        // The fake holds 1,000 USD and nothing else: every funded asset of every account is low.
        assert_eq!(deposits.len(), 3 * 4);
        let usd = deposits.iter().find(|d| d.1.as_str() == "USD").unwrap();
        assert_eq!(usd.2, d("50000000") - Decimal::from(1_000));
    }
}
