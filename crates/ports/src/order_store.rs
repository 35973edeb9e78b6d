//! The order store port: the read model of orders, fills and balances, plus accounts and API
//! keys, the permanent (account, client order id) uniqueness, consumer positions and snapshots.

use crate::PortResult;
use async_trait::async_trait;
use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp, TradeId};
use oms_domain::instrument::TradingStatus;
use oms_domain::order::{Order, OrderStatus, RejectReason, Side};
use oms_domain::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub asset: Asset,
    pub available: Decimal,
    pub reserved: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Demo accounts belong to the simulated market.
    pub demo: bool,
    pub created_at: Timestamp,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyScope {
    /// Everything the account may do: place, amend and cancel orders, the kill switch.
    #[default]
    Trade,
    /// Read only: orders, fills, balances, market data; for monitoring and reconciliation
    /// tools that must never trade.
    Read,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Trade => "TRADE",
            KeyScope::Read => "READ",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TRADE" => Some(KeyScope::Trade),
            "READ" => Some(KeyScope::Read),
            _ => None,
        }
    }
}

/// An API key as stored: only its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    pub key_hash: String,
    pub scope: KeyScope,
    pub created_at: Timestamp,
}

/// Filters for listing one account's orders, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    pub account: Option<AccountId>,
    pub symbol: Option<Symbol>,
    pub status: Option<OrderStatus>,
    pub side: Option<Side>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Return orders with ids below this one (the last id of the previous page).
    pub before: Option<OrderId>,
    pub limit: u32,
}

/// Where a fill sits in an account's trade history, which runs newest first by (trade time,
/// order id, trade id): unique, since a fill is unique by (order id, trade id), and stable,
/// since a fill's time never changes. A page ends at a fill; the next starts below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FillCursor {
    pub at: Timestamp,
    pub order_id: OrderId,
    pub trade_id: TradeId,
}

impl FillCursor {
    /// The fill's place; a fill recorded before fills carried their time sorts as time 0.
    pub fn of(fill: &Fill) -> Self {
        FillCursor {
            at: fill.at.unwrap_or(Timestamp(0)),
            order_id: fill.order_id,
            trade_id: fill.trade_id,
        }
    }
}

/// Filters for listing one account's fills (its trade history), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillQuery {
    pub account: AccountId,
    pub symbol: Option<Symbol>,
    pub side: Option<Side>,
    /// Trade time at or after this.
    pub from: Option<Timestamp>,
    /// Trade time at or before this.
    pub to: Option<Timestamp>,
    /// Only fills below this place (the last fill of the previous page).
    pub before: Option<FillCursor>,
    /// At most this many; 0 means all.
    pub limit: u32,
}

impl FillQuery {
    /// Every fill of `account`.
    pub fn of(account: AccountId) -> Self {
        FillQuery {
            account,
            symbol: None,
            side: None,
            from: None,
            to: None,
            before: None,
            limit: 0,
        }
    }
}

/// A consumer's next offset for one partition, stored with the effects it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub consumer: String,
    pub topic: String,
    pub partition: u32,
    pub next_offset: u64,
}

/// Effects of a batch of events, written atomically with the consumer positions they cover:
/// either all of it is durable or none.
#[derive(Debug, Clone, Default)]
pub struct StoreBatch {
    pub orders: Vec<Order>,
    pub fills: Vec<Fill>,
    /// Full balances of an account's assets after the batch.
    pub balances: Vec<(AccountId, Balance)>,
    pub positions: Vec<Position>,
    /// Accounts' kill switches as the batch leaves them (a later entry for an account wins).
    pub kill_switches: Vec<(AccountId, bool)>,
    /// The newest global kill switch of the batch, if it has one: its `change` and state. The
    /// store keeps it only if its change is newer than the one it holds, since the switch's
    /// copies arrive through every partition, in any order and from any replica.
    pub global_kill_switch: Option<GlobalSwitch>,
    /// Accounts' dead man's switches as the batch leaves them, for the accounts with a
    /// `CancelAfterSet` in the batch (a trigger of that setting later in the batch folded in).
    pub cancel_afters: Vec<(AccountId, CancelAfterState)>,
    /// Triggers of settings recorded before the batch, as (account, change), for accounts
    /// without a setting in the batch: the stored setting is marked triggered if it is still
    /// the one with that change (a newer setting makes a trigger of an older one void).
    pub cancel_after_triggers: Vec<(AccountId, u64)>,
    /// Withdrawals the risk engine decided. The first record of an (account, reference)
    /// stands: a later one is ignored, as the ledger ignores a second decision.
    pub withdrawals: Vec<WithdrawalRecord>,
    /// Deposits the ledger credited (the first of a ledger reference; a repeat credits
    /// nothing and is not recorded).
    pub deposits: Vec<DepositRecord>,
    /// Operators' instrument statuses, the newest of the batch per symbol. The store keeps
    /// one only if its change is at least the one it holds: its copies arrive through every
    /// partition, in any order and from any replica.
    pub instrument_statuses: Vec<InstrumentStatusRecord>,
}

/// An operator's trading status for an instrument as the processor records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentStatusRecord {
    pub symbol: Symbol,
    pub status: TradingStatus,
    /// The `change` of the `InstrumentStatusSet`: a newer setting has a higher one.
    pub change: u64,
    /// When it was appended to the log.
    pub set_at: Timestamp,
}

/// A deposit as the processor records its credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositRecord {
    pub account: AccountId,
    /// The reference as the ledger keys it (the admin API's reference with the asset).
    pub reference: String,
    pub asset: Asset,
    pub amount: Decimal,
    /// When it was appended to the log.
    pub credited_at: Timestamp,
}

/// A withdrawal as the processor records the risk engine's decision on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalRecord {
    pub account: AccountId,
    pub reference: String,
    pub asset: Asset,
    pub amount: Decimal,
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// When the risk engine decided it.
    pub decided_at: Timestamp,
}

/// An account's dead man's switch as the processor records it from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelAfterState {
    /// `None`: switched off.
    pub deadline: Option<Timestamp>,
    /// The `change` of the `CancelAfterSet` this is.
    pub change: u64,
    /// Whether its deadline passed and the risk stage fired it.
    pub triggered: bool,
}

/// A global kill switch as the processor records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalSwitch {
    pub change: u64,
    pub on: bool,
}

/// Where adapters keep the global kill switch: the accounts' switches' table, under an id no
/// account has (ids start at 1), with its change.
pub const GLOBAL_KILL_SWITCH_ROW: AccountId = AccountId(0);

/// How long an ended session is remembered past its expiry: an instance whose clock is behind
/// still takes the token for as long as it is behind.
pub const ENDED_SESSION_GRACE_MS: i64 = 10 * 60 * 1000;

#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// Writes a batch atomically. Fills are unique by (order id, trade id): a repeated fill is
    /// ignored, never doubled.
    async fn apply(&self, batch: StoreBatch) -> PortResult<()>;

    async fn order(&self, account: AccountId, id: OrderId) -> PortResult<Option<Order>>;
    async fn orders(&self, query: &OrderQuery) -> PortResult<Vec<Order>>;
    async fn fills(&self, account: AccountId, id: OrderId) -> PortResult<Vec<Fill>>;
    /// The account's fills across its orders, newest first by [`FillCursor`].
    async fn account_fills(&self, query: &FillQuery) -> PortResult<Vec<Fill>>;
    async fn balances(&self, account: AccountId) -> PortResult<Vec<Balance>>;
    /// Whether the account's kill switch is on, as last recorded (off if never set).
    async fn kill_switch(&self, account: AccountId) -> PortResult<bool>;
    /// Operators' instrument statuses as last recorded, by symbol; a symbol no operator set
    /// has none (its configured status applies).
    async fn instrument_statuses(&self) -> PortResult<Vec<InstrumentStatusRecord>>;
    /// Whether the global kill switch is on, as last recorded (off if never set).
    async fn global_kill_switch(&self) -> PortResult<bool> {
        self.kill_switch(GLOBAL_KILL_SWITCH_ROW).await
    }
    /// The credited deposit of `account` with `reference` (as the ledger keys it), if any.
    async fn deposit(
        &self,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<DepositRecord>>;
    /// The decided withdrawal of `account` with `reference`, if any.
    async fn withdrawal(
        &self,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<WithdrawalRecord>>;
    /// The account's recorded deposit credits whose reference (the ledger's) sorts after
    /// `after` (from the first, if `None`), by reference in byte order, at most `limit`.
    async fn deposits_page(
        &self,
        account: AccountId,
        after: Option<&str>,
        limit: u32,
    ) -> PortResult<Vec<DepositRecord>>;
    /// The account's decided withdrawals whose reference sorts after `after`, by reference in
    /// byte order, at most `limit`.
    async fn withdrawals_page(
        &self,
        account: AccountId,
        after: Option<&str>,
        limit: u32,
    ) -> PortResult<Vec<WithdrawalRecord>>;
    /// The account's dead man's switch as last recorded, `None` if it was never set.
    async fn cancel_after(&self, account: AccountId) -> PortResult<Option<CancelAfterState>>;
    async fn order_counts_by_status(&self) -> PortResult<Vec<(OrderStatus, u64)>>;

    /// Claims (account, client order id) for `order` for ever. Returns the order that already
    /// holds it, if any.
    async fn claim_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
        order: OrderId,
    ) -> PortResult<Option<OrderId>>;
    /// The order that holds (account, client order id), if any.
    async fn order_for_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
    ) -> PortResult<Option<OrderId>>;
    /// Frees a claim whose order was never published.
    async fn release_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
    ) -> PortResult<()>;

    /// A new account; `Conflict` when an account of that name exists.
    async fn create_account(&self, name: &str, demo: bool, at: Timestamp) -> PortResult<Account>;
    /// Accounts with an id above `after` (all, if `None`), by id, at most `limit`.
    async fn accounts_page(&self, after: Option<AccountId>, limit: u32)
        -> PortResult<Vec<Account>>;
    /// The account named `name`, if any (names are unique: a second `create_account` of one
    /// name is a [`PortError::Conflict`](crate::PortError::Conflict)).
    async fn account_named(&self, name: &str) -> PortResult<Option<Account>>;
    /// The account named `name`, created (with `demo` and `at`) if there is none; `true` if
    /// this call created it. Two callers at once both find none, and the store lets only one
    /// of them create it: the other finds the winner's.
    async fn find_or_create_account(
        &self,
        name: &str,
        demo: bool,
        at: Timestamp,
    ) -> PortResult<(Account, bool)> {
        if let Some(a) = self.account_named(name).await? {
            return Ok((a, false));
        }
        match self.create_account(name, demo, at).await {
            Ok(a) => Ok((a, true)),
            Err(crate::PortError::Conflict(e)) => match self.account_named(name).await? {
                Some(a) => Ok((a, false)),
                None => Err(crate::PortError::Conflict(e)),
            },
            Err(e) => Err(e),
        }
    }
    /// Every account, by id (read a page at a time).
    async fn accounts(&self) -> PortResult<Vec<Account>> {
        const PAGE: u32 = 1_000;
        let mut all: Vec<Account> = Vec::new();
        loop {
            let page = self.accounts_page(all.last().map(|a| a.id), PAGE).await?;
            let done = page.len() < PAGE as usize;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }
    /// The account with this id, if any.
    async fn account(&self, id: AccountId) -> PortResult<Option<Account>> {
        let after = id.0.checked_sub(1).map(AccountId);
        Ok(self
            .accounts_page(after, 1)
            .await?
            .into_iter()
            .next()
            .filter(|a| a.id == id))
    }
    /// Stores the hash of an API key for an account, with what the key may do.
    async fn add_api_key(
        &self,
        account: AccountId,
        key_hash: &str,
        scope: KeyScope,
        at: Timestamp,
    ) -> PortResult<()>;
    /// The account a key names, and what the key may do.
    async fn account_for_key(&self, key_hash: &str) -> PortResult<Option<(AccountId, KeyScope)>>;
    /// The account's API keys, oldest first.
    async fn api_keys(&self, account: AccountId) -> PortResult<Vec<ApiKeyRecord>>;
    /// Deletes one of the account's keys; whether it had it.
    async fn revoke_api_key(&self, account: AccountId, key_hash: &str) -> PortResult<bool>;
    /// Ends a signed-in session (by its token's hash) before its expiry, `expires_at`; ended
    /// sessions more than [`ENDED_SESSION_GRACE_MS`] past their expiry are forgotten
    /// meanwhile, since they are refused anyway.
    async fn end_session(&self, token_hash: &str, expires_at: Timestamp) -> PortResult<()>;
    /// Whether the session with this token hash was ended.
    async fn session_ended(&self, token_hash: &str) -> PortResult<bool>;

    /// Consumer positions stored with effects by [`OrderStore::apply`].
    async fn positions(&self, consumer: &str) -> PortResult<Vec<Position>>;

    /// Saves a service's state as of `next_offset` of a partition, replacing older ones.
    async fn save_snapshot(
        &self,
        name: &str,
        partition: u32,
        next_offset: u64,
        state: &[u8],
    ) -> PortResult<()>;
    /// The latest snapshot: (next offset, state).
    async fn load_snapshot(&self, name: &str, partition: u32)
        -> PortResult<Option<(u64, Vec<u8>)>>;

    /// Checks the store is reachable (for `/ready`).
    async fn ping(&self) -> PortResult<()>;
}
