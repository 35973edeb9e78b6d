//! `PgStore`: the order store port on PostgreSQL.

use crate::batch::{self, to_sql_int};
use crate::error::{self, corrupt};
use crate::{fills_query, migrations, orders_query};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::instrument::TradingStatus;
use oms_domain::order::{Order, OrderStatus};
use oms_domain::Decimal;
use oms_ports::order_store::{
    Account, ApiKeyRecord, Balance, CancelAfterState, DepositRecord, FillQuery,
    InstrumentStatusRecord, KeyScope, OrderQuery, OrderStore, Position, StoreBatch,
    WithdrawalRecord, ENDED_SESSION_GRACE_MS,
};
use oms_ports::{PortError, PortResult};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Connection pool settings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in the pool at most.
    pub max_connections: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long a call waits for a free pooled connection.
    pub acquire_timeout: Duration,
    /// How long one call (queries included) may take before it fails as unavailable. A write
    /// cut off this way may still commit; every write here is idempotent, so a retry is safe.
    pub operation_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// The read model, accounts, API keys, client order ids, consumer positions and snapshots in
/// PostgreSQL. Cheap to clone (the pool is shared).
///
/// Ids (account, order, trade) and offsets are BIGINT: values above `i64::MAX` are refused
/// with `PortError::Invalid`. A database that cannot be reached gives
/// `PortError::Unavailable`.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    operation_timeout: Duration,
}

/// One round trip writes a whole batch: data-modifying CTEs run as one statement, which is
/// atomic on its own.
const APPLY_SQL: &str = "
WITH
o AS (
    INSERT INTO orders (order_id, account_id, symbol, status, side, created_at, updated_at, body)
    SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::bigint[], $7::bigint[], $8::text[])
    ON CONFLICT (order_id) DO UPDATE SET
        account_id = EXCLUDED.account_id, symbol = EXCLUDED.symbol, status = EXCLUDED.status,
        side = EXCLUDED.side, created_at = EXCLUDED.created_at,
        updated_at = EXCLUDED.updated_at, body = EXCLUDED.body
),
f AS (
    INSERT INTO fills (order_id, trade_id, account_id, body)
    SELECT * FROM UNNEST($9::bigint[], $10::bigint[], $11::bigint[], $12::text[])
    ON CONFLICT (order_id, trade_id) DO NOTHING
),
b AS (
    INSERT INTO balances (account_id, asset, available, reserved)
    SELECT a, s, av::numeric, re::numeric
    FROM UNNEST($13::bigint[], $14::text[], $15::text[], $16::text[]) AS t (a, s, av, re)
    ON CONFLICT (account_id, asset) DO UPDATE SET
        available = EXCLUDED.available, reserved = EXCLUDED.reserved
),
p AS (
    INSERT INTO consumer_positions (consumer, topic, partition, next_offset)
    SELECT * FROM UNNEST($17::text[], $18::text[], $19::bigint[], $20::bigint[])
    ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset
),
k AS (
    INSERT INTO kill_switches (account_id, enabled, change)
    SELECT * FROM UNNEST($21::bigint[], $22::bool[], $23::bigint[])
    ON CONFLICT (account_id) DO UPDATE SET enabled = EXCLUDED.enabled, change = EXCLUDED.change
    WHERE EXCLUDED.change >= kill_switches.change
),
c AS (
    INSERT INTO cancel_afters (account_id, deadline, change, triggered)
    SELECT * FROM UNNEST($24::bigint[], $25::bigint[], $26::bigint[], $27::bool[])
    ON CONFLICT (account_id) DO UPDATE SET deadline = EXCLUDED.deadline,
        change = EXCLUDED.change, triggered = EXCLUDED.triggered
),
-- Accounts here have no setting in the batch (the processor folds a setting's own trigger
-- into it), so this and `c` never touch the same row.
t AS (
    UPDATE cancel_afters SET triggered = TRUE
    FROM UNNEST($28::bigint[], $29::bigint[]) AS fired (account_id, change)
    WHERE cancel_afters.account_id = fired.account_id AND cancel_afters.change = fired.change
),
w AS (
    INSERT INTO withdrawals (account_id, reference, body)
    SELECT * FROM UNNEST($30::bigint[], $31::text[], $32::text[])
    ON CONFLICT (account_id, reference) DO NOTHING
),
d AS (
    INSERT INTO deposits (account_id, reference, body)
    SELECT * FROM UNNEST($33::bigint[], $34::text[], $35::text[])
    ON CONFLICT (account_id, reference) DO NOTHING
),
s AS (
    INSERT INTO instrument_statuses (symbol, status, change, set_at)
    SELECT * FROM UNNEST($36::text[], $37::text[], $38::bigint[], $39::bigint[])
    ON CONFLICT (symbol) DO UPDATE SET status = EXCLUDED.status, change = EXCLUDED.change,
        set_at = EXCLUDED.set_at
    WHERE EXCLUDED.change >= instrument_statuses.change
)
SELECT 1";

/// Moves the status counts of connections that are gone into shard -1, so their rows do not
/// pile up. One statement: what the delete takes (as committed when it takes it) is what the
/// insert adds, so the sums stay exact even if a new connection reuses a pid meanwhile.
const FOLD_COUNTS_SQL: &str = "
WITH gone AS (
    DELETE FROM order_status_counts
    WHERE shard <> -1 AND shard NOT IN (SELECT pid FROM pg_stat_activity)
    RETURNING status, orders
)
INSERT INTO order_status_counts (shard, status, orders)
    SELECT -1, status, SUM(orders)::bigint FROM gone GROUP BY status
    ON CONFLICT (shard, status)
        DO UPDATE SET orders = order_status_counts.orders + EXCLUDED.orders";

/// Inserts the claim or, if taken, reads the holder, in one statement. A claim committed by
/// another transaction after this statement's snapshot shows as no row: the caller retries.
const CLAIM_COID_SQL: &str = "
WITH ins AS (
    INSERT INTO client_order_ids (account_id, client_order_id, order_id) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    RETURNING order_id
)
SELECT order_id FROM ins
UNION ALL
SELECT order_id FROM client_order_ids WHERE account_id = $1 AND client_order_id = $2";

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or the
    /// key=value form) with a pool of at most `max_connections`, and checks it answers. Does
    /// not touch the schema: call [`PgStore::migrate`].
    pub async fn connect(url: &str, max_connections: usize) -> PortResult<PgStore> {
        PgStore::connect_with(
            url,
            PgOptions {
                max_connections,
                ..PgOptions::default()
            },
        )
        .await
    }

    pub async fn connect_with(url: &str, options: PgOptions) -> PortResult<PgStore> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| PortError::Invalid(format!("PostgreSQL URL: {e}")))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(PortError::Invalid(
                "PostgreSQL URL asks for sslmode=require, but this build connects without TLS"
                    .into(),
            ));
        }
        config.connect_timeout(options.connect_timeout);
        // Finds a dead peer (a cut network) long before the kernel's default two hours.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("oms");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection the server closed is dropped when it comes back to the pool;
                // one that died silently fails its next call (Unavailable), and is dropped.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| PortError::Invalid(format!("PostgreSQL pool: {e}")))?;
        let store = PgStore {
            pool,
            operation_timeout: options.operation_timeout,
        };
        store.ping().await?;
        Ok(store)
    }

    /// Brings the schema up to date (safe to run from every replica at once); returns the
    /// migration versions applied now.
    pub async fn migrate(&self) -> PortResult<Vec<i64>> {
        let applied = self
            .timed("migrate", async {
                let mut client = self.client("migrate").await?;
                migrations::migrate(&mut client).await
            })
            .await?;
        // Every process migrates at start: a good moment to tidy the counts. Only tidying, so a
        // failure (a lock wait, a timeout) is logged and the process starts all the same.
        if let Err(e) = self
            .execute("fold order status counts", FOLD_COUNTS_SQL, &[])
            .await
        {
            tracing::warn!(error = %e, "order status counts of closed connections not folded");
        }
        Ok(applied)
    }

    async fn client(&self, context: &str) -> PortResult<Object> {
        self.pool.get().await.map_err(|e| error::pool(context, e))
    }

    /// Runs `f` within the operation timeout.
    async fn timed<T>(&self, what: &str, f: impl Future<Output = PortResult<T>>) -> PortResult<T> {
        match tokio::time::timeout(self.operation_timeout, f).await {
            Ok(res) => res,
            Err(_) => Err(PortError::Unavailable(format!(
                "{what}: PostgreSQL did not answer within {:?}",
                self.operation_timeout
            ))),
        }
    }

    /// Runs one cached statement and returns its rows.
    /// The JSON `body` of the row of `account` and `reference` that `sql` selects, if any.
    async fn json_row<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<T>> {
        let account = to_sql_int(account.0, "account id")?;
        let rows = self.query(what, sql, &[&account, &reference]).await?;
        rows.first()
            .map(|r| json(get(r, 0, "stored body")?, what))
            .transpose()
    }

    /// The JSON bodies of `table` for `account` with a reference after `after`, by reference.
    /// References compare byte by byte (the column's collation is "C" since migration 10, and
    /// the query says so too), as in the embedded store, so a cursor means the same on both
    /// and the primary key serves the range and the order.
    async fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        account: AccountId,
        after: Option<&str>,
        limit: u32,
    ) -> PortResult<Vec<T>> {
        let what = format!("list {table}");
        let account = to_sql_int(account.0, "account id")?;
        // Every reference is longer than "", so "" starts at the first.
        let after = after.unwrap_or_default();
        let limit = i64::from(limit);
        let sql = format!(
            "SELECT body FROM {table} WHERE account_id = $1 AND reference COLLATE \"C\" > $2
             ORDER BY reference COLLATE \"C\" LIMIT $3"
        );
        let rows = self.query(&what, &sql, &[&account, &after, &limit]).await?;
        rows.iter()
            .map(|r| json(get(r, 0, "stored body")?, &what))
            .collect()
    }

    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> PortResult<Vec<Row>> {
        self.timed(what, async {
            let client = self.client(what).await?;
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(|e| error::pg(what, e))?;
            client
                .query(&stmt, params)
                .await
                .map_err(|e| error::pg(what, e))
        })
        .await
    }

    async fn execute(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> PortResult<u64> {
        self.timed(what, async {
            let client = self.client(what).await?;
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(|e| error::pg(what, e))?;
            client
                .execute(&stmt, params)
                .await
                .map_err(|e| error::pg(what, e))
        })
        .await
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
    what: &str,
) -> PortResult<T> {
    row.try_get(idx).map_err(|e| corrupt(what, e))
}

fn from_sql_int(v: i64, what: &str) -> PortResult<u64> {
    u64::try_from(v).map_err(|_| PortError::Corrupt(format!("negative {what} {v}")))
}

fn parse_decimal(s: &str) -> PortResult<Decimal> {
    Decimal::from_str_exact(s).map_err(|e| corrupt(&format!("decimal {s:?}"), e))
}

fn parse_scope(s: &str) -> PortResult<KeyScope> {
    KeyScope::parse(s).ok_or_else(|| corrupt("API key scope", s))
}

fn json<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> PortResult<T> {
    serde_json::from_str(body).map_err(|e| corrupt(what, e))
}

#[async_trait]
impl OrderStore for PgStore {
    async fn apply(&self, batch: StoreBatch) -> PortResult<()> {
        let c = batch::columns(&batch)?;
        if c.is_empty() {
            return Ok(());
        }
        self.execute(
            "apply a batch",
            APPLY_SQL,
            &[
                &c.order_id,
                &c.order_account,
                &c.order_symbol,
                &c.order_status,
                &c.order_side,
                &c.order_created_at,
                &c.order_updated_at,
                &c.order_body,
                &c.fill_order_id,
                &c.fill_trade_id,
                &c.fill_account,
                &c.fill_body,
                &c.balance_account,
                &c.balance_asset,
                &c.balance_available,
                &c.balance_reserved,
                &c.position_consumer,
                &c.position_topic,
                &c.position_partition,
                &c.position_next_offset,
                &c.kill_switch_account,
                &c.kill_switch_enabled,
                &c.kill_switch_change,
                &c.cancel_after_account,
                &c.cancel_after_deadline,
                &c.cancel_after_change,
                &c.cancel_after_triggered,
                &c.cancel_after_fired_account,
                &c.cancel_after_fired_change,
                &c.withdrawal_account,
                &c.withdrawal_reference,
                &c.withdrawal_body,
                &c.deposit_account,
                &c.deposit_reference,
                &c.deposit_body,
                &c.status_symbol,
                &c.status_status,
                &c.status_change,
                &c.status_set_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn order(&self, account: AccountId, id: OrderId) -> PortResult<Option<Order>> {
        let (Ok(account), Ok(id)) = (i64::try_from(account.0), i64::try_from(id.0)) else {
            return Ok(None);
        };
        let rows = self
            .query(
                "read an order",
                "SELECT body FROM orders WHERE order_id = $1 AND account_id = $2",
                &[&id, &account],
            )
            .await?;
        rows.first()
            .map(|r| json(get(r, 0, "order body")?, "stored order"))
            .transpose()
    }

    async fn orders(&self, query: &OrderQuery) -> PortResult<Vec<Order>> {
        let Some((sql, params)) = orders_query::build(query) else {
            return Ok(Vec::new());
        };
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.query("list orders", &sql, &params).await?;
        rows.iter()
            .map(|r| json(get(r, 0, "order body")?, "stored order"))
            .collect()
    }

    async fn fills(&self, account: AccountId, id: OrderId) -> PortResult<Vec<Fill>> {
        let (Ok(account), Ok(id)) = (i64::try_from(account.0), i64::try_from(id.0)) else {
            return Ok(Vec::new());
        };
        let rows = self
            .query(
                "read fills",
                "SELECT body FROM fills WHERE order_id = $1 AND account_id = $2 ORDER BY trade_id",
                &[&id, &account],
            )
            .await?;
        rows.iter()
            .map(|r| json(get(r, 0, "fill body")?, "stored fill"))
            .collect()
    }

    async fn account_fills(&self, query: &FillQuery) -> PortResult<Vec<Fill>> {
        let Some((sql, params)) = fills_query::build(query) else {
            return Ok(Vec::new());
        };
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.query("list an account's fills", &sql, &params).await?;
        rows.iter()
            .map(|r| json(get(r, 0, "fill body")?, "stored fill"))
            .collect()
    }

    async fn balances(&self, account: AccountId) -> PortResult<Vec<Balance>> {
        let account = to_sql_int(account.0, "account id")?;
        let rows = self
            .query(
                "read balances",
                // NUMERIC as text: exact, scale included.
                "SELECT asset, available::text, reserved::text FROM balances
                 WHERE account_id = $1 ORDER BY asset",
                &[&account],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Balance {
                    asset: Asset(get(r, 0, "balance asset")?),
                    available: parse_decimal(get(r, 1, "available balance")?)?,
                    reserved: parse_decimal(get(r, 2, "reserved balance")?)?,
                })
            })
            .collect()
    }

    async fn instrument_statuses(&self) -> PortResult<Vec<InstrumentStatusRecord>> {
        let rows = self
            .query(
                "read instrument statuses",
                "SELECT symbol, status, change, set_at FROM instrument_statuses ORDER BY symbol",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let symbol: String = get(r, 0, "instrument status symbol")?;
                let status: String = get(r, 1, "instrument status")?;
                let status = TradingStatus::parse(&status).ok_or_else(|| {
                    PortError::Corrupt(format!("trading status {status:?} of {symbol}"))
                })?;
                Ok(InstrumentStatusRecord {
                    symbol: Symbol::new(symbol),
                    status,
                    change: from_sql_int(get(r, 2, "status change")?, "status change")?,
                    set_at: Timestamp(get(r, 3, "status time")?),
                })
            })
            .collect()
    }

    async fn kill_switch(&self, account: AccountId) -> PortResult<bool> {
        let account = to_sql_int(account.0, "account id")?;
        let rows = self
            .query(
                "read a kill switch",
                "SELECT enabled FROM kill_switches WHERE account_id = $1",
                &[&account],
            )
            .await?;
        rows.first().map_or(Ok(false), |r| get(r, 0, "kill switch"))
    }

    async fn deposit(
        &self,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<DepositRecord>> {
        self.json_row(
            "read a deposit",
            "SELECT body FROM deposits WHERE account_id = $1 AND reference = $2",
            account,
            reference,
        )
        .await
    }

    async fn withdrawal(
        &self,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<WithdrawalRecord>> {
        self.json_row(
            "read a withdrawal",
            "SELECT body FROM withdrawals WHERE account_id = $1 AND reference = $2",
            account,
            reference,
        )
        .await
    }

    async fn deposits_page(
        &self,
        account: AccountId,
        after: Option<&str>,
        limit: u32,
    ) -> PortResult<Vec<DepositRecord>> {
        self.json_rows("deposits", account, after, limit).await
    }

    async fn withdrawals_page(
        &self,
        account: AccountId,
        after: Option<&str>,
        limit: u32,
    ) -> PortResult<Vec<WithdrawalRecord>> {
        self.json_rows("withdrawals", account, after, limit).await
    }

    async fn cancel_after(&self, account: AccountId) -> PortResult<Option<CancelAfterState>> {
        let account = to_sql_int(account.0, "account id")?;
        let rows = self
            .query(
                "read a dead man's switch",
                "SELECT deadline, change, triggered FROM cancel_afters WHERE account_id = $1",
                &[&account],
            )
            .await?;
        rows.first()
            .map(|r| {
                let change: i64 = get(r, 1, "switch change")?;
                Ok(CancelAfterState {
                    deadline: get::<Option<i64>>(r, 0, "switch deadline")?.map(Timestamp),
                    change: u64::try_from(change)
                        .map_err(|e| corrupt("switch change", format!("{change}: {e}")))?,
                    triggered: get(r, 2, "switch triggered")?,
                })
            })
            .transpose()
    }

    async fn order_counts_by_status(&self) -> PortResult<Vec<(OrderStatus, u64)>> {
        let rows = self
            .query(
                "count orders",
                "SELECT status, SUM(orders)::bigint FROM order_status_counts GROUP BY status",
                &[],
            )
            .await?;
        let mut counts: Vec<(OrderStatus, u64)> =
            OrderStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for r in &rows {
            let status: &str = get(r, 0, "order status")?;
            let status: OrderStatus = status
                .parse()
                .map_err(|()| PortError::Corrupt(format!("unknown order status {status:?}")))?;
            let n = from_sql_int(get(r, 1, "order count")?, "count")?;
            if let Some(c) = counts.iter_mut().find(|c| c.0 == status) {
                c.1 = n;
            }
        }
        Ok(counts)
    }

    async fn claim_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
        order: OrderId,
    ) -> PortResult<Option<OrderId>> {
        let account = to_sql_int(account.0, "account id")?;
        let order = to_sql_int(order.0, "order id")?;
        // Each retry follows a claim committed or released by someone else in between; a
        // handful is plenty, the bound only guards against a bug looping for ever.
        for _ in 0..16 {
            let rows = self
                .query(
                    "claim a client order id",
                    CLAIM_COID_SQL,
                    &[&account, &client_order_id, &order],
                )
                .await?;
            if let Some(row) = rows.first() {
                let holder: i64 = get(row, 0, "client order id holder")?;
                // Claiming again for the same order is not a conflict.
                return (holder != order)
                    .then(|| from_sql_int(holder, "order id").map(OrderId))
                    .transpose();
            }
        }
        Err(PortError::Unavailable(
            "claim a client order id: kept racing with other claims".into(),
        ))
    }

    async fn order_for_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
    ) -> PortResult<Option<OrderId>> {
        let Ok(account) = i64::try_from(account.0) else {
            return Ok(None);
        };
        let rows = self
            .query(
                "read a client order id",
                "SELECT order_id FROM client_order_ids
                 WHERE account_id = $1 AND client_order_id = $2",
                &[&account, &client_order_id],
            )
            .await?;
        rows.first()
            .map(|r| from_sql_int(get(r, 0, "order id")?, "order id").map(OrderId))
            .transpose()
    }

    async fn release_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
    ) -> PortResult<()> {
        let account = to_sql_int(account.0, "account id")?;
        self.execute(
            "release a client order id",
            "DELETE FROM client_order_ids WHERE account_id = $1 AND client_order_id = $2",
            &[&account, &client_order_id],
        )
        .await?;
        Ok(())
    }

    async fn create_account(&self, name: &str, demo: bool, at: Timestamp) -> PortResult<Account> {
        let rows = self
            .query(
                "create an account",
                "INSERT INTO accounts (name, demo, created_at) VALUES ($1, $2, $3)
                 RETURNING account_id",
                &[&name, &demo, &at.0],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| PortError::Other("create an account: no id returned".into()))?;
        Ok(Account {
            id: AccountId(from_sql_int(get(row, 0, "account id")?, "account id")?),
            name: name.to_string(),
            demo,
            created_at: at,
        })
    }

    async fn accounts_page(
        &self,
        after: Option<AccountId>,
        limit: u32,
    ) -> PortResult<Vec<Account>> {
        let after = match after {
            Some(a) => to_sql_int(a.0, "account id")?,
            None => -1,
        };
        let limit = i64::from(limit);
        let rows = self
            .query(
                "list accounts",
                "SELECT account_id, name, demo, created_at FROM accounts
                 WHERE account_id > $1 ORDER BY account_id LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn account_named(&self, name: &str) -> PortResult<Option<Account>> {
        let rows = self
            .query(
                "find an account by name",
                "SELECT account_id, name, demo, created_at FROM accounts WHERE name = $1",
                &[&name],
            )
            .await?;
        rows.first().map(account_from_row).transpose()
    }

    async fn add_api_key(
        &self,
        account: AccountId,
        key_hash: &str,
        scope: KeyScope,
        at: Timestamp,
    ) -> PortResult<()> {
        let account = to_sql_int(account.0, "account id")?;
        self.execute(
            "add an API key",
            "INSERT INTO api_keys (key_hash, account_id, scope, created_at) VALUES ($1, $2, $3, $4)",
            &[&key_hash, &account, &scope.as_str(), &at.0],
        )
        .await?;
        Ok(())
    }

    async fn account_for_key(&self, key_hash: &str) -> PortResult<Option<(AccountId, KeyScope)>> {
        let rows = self
            .query(
                "look up an API key",
                "SELECT account_id, scope FROM api_keys WHERE key_hash = $1",
                &[&key_hash],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok((
                    AccountId(from_sql_int(get(r, 0, "account id")?, "account id")?),
                    parse_scope(get(r, 1, "key scope")?)?,
                ))
            })
            .transpose()
    }

    async fn api_keys(&self, account: AccountId) -> PortResult<Vec<ApiKeyRecord>> {
        let account = to_sql_int(account.0, "account id")?;
        let rows = self
            .query(
                "list API keys",
                "SELECT key_hash, scope, created_at FROM api_keys WHERE account_id = $1
                 ORDER BY created_at, key_hash",
                &[&account],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKeyRecord {
                    key_hash: get(r, 0, "key hash")?,
                    scope: parse_scope(get(r, 1, "key scope")?)?,
                    created_at: Timestamp(get(r, 2, "key time")?),
                })
            })
            .collect()
    }

    async fn revoke_api_key(&self, account: AccountId, key_hash: &str) -> PortResult<bool> {
        let account = to_sql_int(account.0, "account id")?;
        let deleted = self
            .execute(
                "revoke an API key",
                "DELETE FROM api_keys WHERE key_hash = $1 AND account_id = $2",
                &[&key_hash, &account],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn end_session(&self, token_hash: &str, expires_at: Timestamp) -> PortResult<()> {
        let forget_before = now_ms() - ENDED_SESSION_GRACE_MS;
        self.execute(
            "forget expired ended sessions",
            "DELETE FROM ended_sessions WHERE expires_at < $1",
            &[&forget_before],
        )
        .await?;
        self.execute(
            "end a session",
            "INSERT INTO ended_sessions (token_hash, expires_at) VALUES ($1, $2)
             ON CONFLICT (token_hash) DO NOTHING",
            &[&token_hash, &expires_at.0],
        )
        .await?;
        Ok(())
    }

    async fn session_ended(&self, token_hash: &str) -> PortResult<bool> {
        let rows = self
            .query(
                "look up an ended session",
                "SELECT 1 FROM ended_sessions WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn positions(&self, consumer: &str) -> PortResult<Vec<Position>> {
        let rows = self
            .query(
                "read consumer positions",
                "SELECT topic, partition, next_offset FROM consumer_positions
                 WHERE consumer = $1 ORDER BY topic, partition",
                &[&consumer],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let partition: i64 = get(r, 1, "partition")?;
                Ok(Position {
                    consumer: consumer.to_string(),
                    topic: get(r, 0, "topic")?,
                    partition: u32::try_from(partition)
                        .map_err(|_| PortError::Corrupt(format!("partition {partition}")))?,
                    next_offset: from_sql_int(get(r, 2, "offset")?, "offset")?,
                })
            })
            .collect()
    }

    async fn save_snapshot(
        &self,
        name: &str,
        partition: u32,
        next_offset: u64,
        state: &[u8],
    ) -> PortResult<()> {
        let next = to_sql_int(next_offset, "offset")?;
        self.execute(
            "save a snapshot",
            "INSERT INTO snapshots (name, partition, next_offset, state) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name, partition) DO UPDATE SET
                 next_offset = EXCLUDED.next_offset, state = EXCLUDED.state",
            &[&name, &i64::from(partition), &next, &state],
        )
        .await?;
        Ok(())
    }

    async fn load_snapshot(
        &self,
        name: &str,
        partition: u32,
    ) -> PortResult<Option<(u64, Vec<u8>)>> {
        let rows = self
            .query(
                "load a snapshot",
                "SELECT next_offset, state FROM snapshots WHERE name = $1 AND partition = $2",
                &[&name, &i64::from(partition)],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok((
                    from_sql_int(get(r, 0, "snapshot offset")?, "offset")?,
                    get(r, 1, "snapshot state")?,
                ))
            })
            .transpose()
    }

    async fn ping(&self) -> PortResult<()> {
        self.query("ping", "SELECT 1", &[]).await?;
        Ok(())
    }
}

fn account_from_row(r: &Row) -> PortResult<Account> {
    Ok(Account {
        id: AccountId(from_sql_int(get(r, 0, "account id")?, "account id")?),
        name: get(r, 1, "account name")?,
        demo: get(r, 2, "account demo flag")?,
        created_at: Timestamp(get(r, 3, "account creation time")?),
    })
}

/// Milliseconds since the epoch, by this machine's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
