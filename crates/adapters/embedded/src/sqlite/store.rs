//! `SqliteStore`: the order store port on SQLite.

use super::db::{Db, SqliteOptions};
use super::{from_sql_int, now_ms, parse_decimal, to_sql_int, SqliteIdempotency};
use crate::error::{EmbeddedError, EmbeddedResult};
use async_trait::async_trait;
use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::instrument::TradingStatus;
use oms_domain::order::{Order, OrderStatus, Side};
use oms_ports::order_store::{
    Account, ApiKeyRecord, Balance, CancelAfterState, DepositRecord, FillCursor, FillQuery,
    InstrumentStatusRecord, KeyScope, OrderQuery, OrderStore, Position, StoreBatch,
    WithdrawalRecord, ENDED_SESSION_GRACE_MS, GLOBAL_KILL_SWITCH_ROW,
};
use oms_ports::PortResult;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The read model, accounts, API keys, client order ids, consumer positions and snapshots in
/// one SQLite file. Cheap to clone.
///
/// Ids (account, order, trade) and offsets are SQL integers: values above `i64::MAX` are
/// refused with `PortError::Invalid`.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
}

/// Pages of a new order store. A fill of an order that has rested a while changes a row and
/// three index entries on pages anywhere in the file, and each commit writes every page it
/// changed whole: with 2 KiB pages instead of SQLite's 4 KiB such a fill wrote 12 KiB instead
/// of 20 and cost 36–47 µs of CPU (median 43, seven runs) instead of 47–49 (three); new
/// orders cost the same (`cargo bench -p oms-embedded --bench embedded_stores`).
const PAGE_SIZE: u32 = 2048;

impl SqliteStore {
    /// The record of `account` with `reference` in `table` (one keyed by both, with the record
    /// as JSON in `body`), if any.
    async fn json_row<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<T>> {
        let account = to_sql_int(account.0, "account id")?;
        let reference = reference.to_string();
        Ok(self
            .db
            .read(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached(&format!(
                        "SELECT body FROM {table} WHERE account_id = ?1 AND reference = ?2"
                    ))?
                    .query_row(params![account, reference], |r| r.get(0))
                    .optional()?;
                body.map(|b| {
                    serde_json::from_str(&b)
                        .map_err(|e| EmbeddedError::Corrupt(format!("stored {table} row: {e}")))
                })
                .transpose()
            })
            .await?)
    }

    /// The JSON bodies of `table` for `account` with a reference after `after`, by reference.
    async fn json_rows<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        account: AccountId,
        after: Option<&str>,
        limit: u32,
    ) -> PortResult<Vec<T>> {
        let account = to_sql_int(account.0, "account id")?;
        // Every reference is longer than "", so "" starts at the first.
        let after = after.unwrap_or_default().to_string();
        Ok(self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT body FROM {table} WHERE account_id = ?1 AND reference > ?2
                     ORDER BY reference LIMIT ?3"
                ))?;
                let bodies =
                    stmt.query_map(params![account, after, limit], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for body in bodies {
                    out.push(
                        serde_json::from_str(&body?).map_err(|e| {
                            EmbeddedError::Corrupt(format!("stored {table} row: {e}"))
                        })?,
                    );
                }
                Ok(out)
            })
            .await?)
    }

    /// Opens (or creates) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path, options: SqliteOptions) -> EmbeddedResult<SqliteStore> {
        Ok(SqliteStore {
            db: Arc::new(Db::open(path, options, PAGE_SIZE).await?),
        })
    }

    /// The idempotency store on the same database file and writer.
    pub fn idempotency(&self) -> SqliteIdempotency {
        SqliteIdempotency::on(self.db.clone())
    }
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn parse_scope(s: &str) -> EmbeddedResult<KeyScope> {
    KeyScope::parse(s).ok_or_else(|| EmbeddedError::Corrupt(format!("API key scope {s:?}")))
}

fn corrupt_json(what: &str) -> impl Fn(serde_json::Error) -> EmbeddedError + '_ {
    move |e| EmbeddedError::Corrupt(format!("{what}: {e}"))
}

fn write_batch(conn: &Connection, batch: &StoreBatch) -> EmbeddedResult<()> {
    // An update sets only what an order's life changes. SQLite rewrites the entries of every
    // index on a column the SET names, changed or not; naming the account, symbol and time
    // rewrote two index entries per update for nothing, on pages scattered over the index
    // when a long-resting order fills.
    let mut put_order = conn.prepare_cached(
        "INSERT INTO orders (order_id, account_id, symbol, status, side, created_at, updated_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (order_id) DO UPDATE SET
             status = excluded.status, updated_at = excluded.updated_at, body = excluded.body",
    )?;
    // Orders by status are counted here, from each order's status before and after; a
    // batch may hold an order twice, and its second lookup sees the first write.
    let mut status_of = conn.prepare_cached("SELECT status FROM orders WHERE order_id = ?1")?;
    let mut counted: HashMap<String, i64> = HashMap::new();
    for o in &batch.orders {
        let id = to_sql_int(o.order_id.0, "order id")?;
        let before: Option<String> = status_of.query_row([id], |r| r.get(0)).optional()?;
        let after = o.status.as_str();
        if before.as_deref() != Some(after) {
            if let Some(before) = before {
                *counted.entry(before).or_default() -= 1;
            }
            *counted.entry(after.to_string()).or_default() += 1;
        }
        let body = serde_json::to_string(o)
            .map_err(|e| EmbeddedError::Invalid(format!("order {}: {e}", o.order_id)))?;
        put_order.execute(params![
            id,
            to_sql_int(o.account.0, "account id")?,
            o.symbol.as_str(),
            o.status.as_str(),
            side_str(o.side),
            o.created_at.0,
            o.updated_at.0,
            body,
        ])?;
    }
    let mut count = conn.prepare_cached(
        "INSERT INTO order_status_counts (status, orders) VALUES (?1, ?2)
         ON CONFLICT (status) DO UPDATE SET orders = orders + excluded.orders",
    )?;
    for (status, delta) in counted.iter().filter(|(_, d)| **d != 0) {
        count.execute(params![status, delta])?;
    }
    // A fill seen again (redelivery) is ignored, never doubled.
    let mut put_fill = conn.prepare_cached(
        "INSERT INTO fills (order_id, trade_id, account_id, body, traded_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (order_id, trade_id) DO NOTHING",
    )?;
    for f in &batch.fills {
        let body = serde_json::to_string(f)
            .map_err(|e| EmbeddedError::Invalid(format!("fill {}: {e}", f.trade_id)))?;
        put_fill.execute(params![
            to_sql_int(f.order_id.0, "order id")?,
            to_sql_int(f.trade_id.0, "trade id")?,
            to_sql_int(f.account.0, "account id")?,
            body,
            FillCursor::of(f).at.0,
        ])?;
    }
    let mut put_balance = conn.prepare_cached(
        "INSERT INTO balances (account_id, asset, available, reserved) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id, asset) DO UPDATE SET
             available = excluded.available, reserved = excluded.reserved",
    )?;
    for (account, b) in &batch.balances {
        put_balance.execute(params![
            to_sql_int(account.0, "account id")?,
            b.asset.as_str(),
            b.available.to_string(),
            b.reserved.to_string(),
        ])?;
    }
    let mut put_position = conn.prepare_cached(
        "INSERT INTO consumer_positions (consumer, topic, partition, next_offset)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
    )?;
    for p in &batch.positions {
        put_position.execute(params![
            p.consumer,
            p.topic,
            p.partition,
            to_sql_int(p.next_offset, "offset")?,
        ])?;
    }
    let mut put_kill_switch = conn.prepare_cached(
        "INSERT INTO kill_switches (account_id, enabled) VALUES (?1, ?2)
         ON CONFLICT (account_id) DO UPDATE SET enabled = excluded.enabled",
    )?;
    for (account, on) in &batch.kill_switches {
        put_kill_switch.execute(params![to_sql_int(account.0, "account id")?, on])?;
    }
    if let Some(g) = batch.global_kill_switch {
        conn.prepare_cached(
            "INSERT INTO kill_switches (account_id, enabled, change) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id) DO UPDATE SET enabled = excluded.enabled,
                 change = excluded.change
             WHERE excluded.change >= kill_switches.change",
        )?
        .execute(params![
            to_sql_int(GLOBAL_KILL_SWITCH_ROW.0, "account id")?,
            g.on,
            to_sql_int(g.change, "switch change")?
        ])?;
    }
    if !batch.instrument_statuses.is_empty() {
        let mut put = conn.prepare_cached(
            "INSERT INTO instrument_statuses (symbol, status, change, set_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (symbol) DO UPDATE SET status = excluded.status,
                 change = excluded.change, set_at = excluded.set_at
             WHERE excluded.change >= instrument_statuses.change",
        )?;
        for s in &batch.instrument_statuses {
            put.execute(params![
                s.symbol.as_str(),
                s.status.as_str(),
                to_sql_int(s.change, "status change")?,
                s.set_at.0
            ])?;
        }
    }
    if !batch.cancel_afters.is_empty() {
        let mut put = conn.prepare_cached(
            "INSERT INTO cancel_afters (account_id, deadline, change, triggered)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id) DO UPDATE SET deadline = excluded.deadline,
                 change = excluded.change, triggered = excluded.triggered",
        )?;
        for (account, c) in &batch.cancel_afters {
            put.execute(params![
                to_sql_int(account.0, "account id")?,
                c.deadline.map(|d| d.0),
                to_sql_int(c.change, "switch change")?,
                c.triggered,
            ])?;
        }
    }
    put_json_rows(
        conn,
        "withdrawals",
        batch
            .withdrawals
            .iter()
            .map(|w| (w.account, &w.reference, w)),
    )?;
    put_json_rows(
        conn,
        "deposits",
        batch.deposits.iter().map(|d| (d.account, &d.reference, d)),
    )?;
    if !batch.cancel_after_triggers.is_empty() {
        let mut fire = conn.prepare_cached(
            "UPDATE cancel_afters SET triggered = 1 WHERE account_id = ?1 AND change = ?2",
        )?;
        for (account, change) in &batch.cancel_after_triggers {
            fire.execute(params![
                to_sql_int(account.0, "account id")?,
                to_sql_int(*change, "switch change")?,
            ])?;
        }
    }
    Ok(())
}

/// Inserts records as JSON into `table` (keyed by account and reference, with the record in
/// `body`); the first record of a key stands.
fn put_json_rows<'a, T: serde::Serialize + 'a>(
    conn: &Connection,
    table: &'static str,
    rows: impl Iterator<Item = (AccountId, &'a String, &'a T)>,
) -> EmbeddedResult<()> {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut put = conn.prepare_cached(&format!(
        "INSERT INTO {table} (account_id, reference, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id, reference) DO NOTHING"
    ))?;
    for (account, reference, record) in rows {
        let body = serde_json::to_string(record)
            .map_err(|e| EmbeddedError::Corrupt(format!("{table} row to JSON: {e}")))?;
        put.execute(params![
            to_sql_int(account.0, "account id")?,
            reference,
            body
        ])?;
    }
    Ok(())
}

fn read_orders(conn: &Connection, q: &OrderQuery) -> EmbeddedResult<Vec<Order>> {
    let mut sql = String::from("SELECT body FROM orders WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(a) = q.account {
        sql.push_str(" AND account_id = ?");
        args.push(Value::Integer(to_sql_int(a.0, "account id")?));
    }
    if let Some(s) = &q.symbol {
        sql.push_str(" AND symbol = ?");
        args.push(Value::Text(s.0.clone()));
    }
    if let Some(s) = q.status {
        sql.push_str(" AND status = ?");
        args.push(Value::Text(s.as_str().into()));
    }
    if let Some(s) = q.side {
        sql.push_str(" AND side = ?");
        args.push(Value::Text(side_str(s).into()));
    }
    if let Some(t) = q.from {
        sql.push_str(" AND created_at >= ?");
        args.push(Value::Integer(t.0));
    }
    if let Some(t) = q.to {
        sql.push_str(" AND created_at <= ?");
        args.push(Value::Integer(t.0));
    }
    if let Some(b) = q.before {
        // An id above every stored one means "from the newest".
        sql.push_str(" AND order_id < ?");
        args.push(Value::Integer(i64::try_from(b.0).unwrap_or(i64::MAX)));
    }
    sql.push_str(" ORDER BY order_id DESC LIMIT ?");
    // 0 means no limit.
    args.push(Value::Integer(if q.limit == 0 {
        -1
    } else {
        q.limit as i64
    }));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        out.push(serde_json::from_str(&body?).map_err(corrupt_json("stored order"))?);
    }
    Ok(out)
}

/// Only the filters that are set, as for orders. The cursor is a row value, which SQLite
/// compares column by column and seeks in `fills_by_account_time`.
fn read_account_fills(conn: &Connection, q: &FillQuery) -> EmbeddedResult<Vec<Fill>> {
    let Ok(account) = i64::try_from(q.account.0) else {
        return Ok(Vec::new());
    };
    let mut sql = String::from("SELECT body FROM fills WHERE account_id = ?");
    let mut args: Vec<Value> = vec![Value::Integer(account)];
    if let Some(s) = &q.symbol {
        sql.push_str(" AND symbol = ?");
        args.push(Value::Text(s.0.clone()));
    }
    if let Some(s) = q.side {
        sql.push_str(" AND side = ?");
        args.push(Value::Text(side_str(s).into()));
    }
    if let Some(t) = q.from {
        sql.push_str(" AND traded_at >= ?");
        args.push(Value::Integer(t.0));
    }
    if let Some(t) = q.to {
        sql.push_str(" AND traded_at <= ?");
        args.push(Value::Integer(t.0));
    }
    if let Some(c) = q.before {
        // Ids above every stored one mean "from the newest" at that time.
        sql.push_str(" AND (traded_at, order_id, trade_id) < (?, ?, ?)");
        args.push(Value::Integer(c.at.0));
        args.push(Value::Integer(
            i64::try_from(c.order_id.0).unwrap_or(i64::MAX),
        ));
        args.push(Value::Integer(
            i64::try_from(c.trade_id.0).unwrap_or(i64::MAX),
        ));
    }
    sql.push_str(" ORDER BY traded_at DESC, order_id DESC, trade_id DESC LIMIT ?");
    // 0 means no limit.
    args.push(Value::Integer(if q.limit == 0 {
        -1
    } else {
        i64::from(q.limit)
    }));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        out.push(serde_json::from_str(&body?).map_err(corrupt_json("stored fill"))?);
    }
    Ok(out)
}

#[async_trait]
impl OrderStore for SqliteStore {
    async fn apply(&self, batch: StoreBatch) -> PortResult<()> {
        Ok(self.db.write(move |conn| write_batch(conn, &batch)).await?)
    }

    async fn order(&self, account: AccountId, id: OrderId) -> PortResult<Option<Order>> {
        let (Ok(account), Ok(id)) = (i64::try_from(account.0), i64::try_from(id.0)) else {
            return Ok(None);
        };
        Ok(self
            .db
            .read(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached(
                        "SELECT body FROM orders WHERE order_id = ?1 AND account_id = ?2",
                    )?
                    .query_row(params![id, account], |r| r.get(0))
                    .optional()?;
                body.map(|b| serde_json::from_str(&b).map_err(corrupt_json("stored order")))
                    .transpose()
            })
            .await?)
    }

    async fn orders(&self, query: &OrderQuery) -> PortResult<Vec<Order>> {
        let q = query.clone();
        Ok(self.db.read(move |conn| read_orders(conn, &q)).await?)
    }

    async fn fills(&self, account: AccountId, id: OrderId) -> PortResult<Vec<Fill>> {
        let (Ok(account), Ok(id)) = (i64::try_from(account.0), i64::try_from(id.0)) else {
            return Ok(Vec::new());
        };
        Ok(self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT body FROM fills WHERE order_id = ?1 AND account_id = ?2 ORDER BY trade_id",
                )?;
                let rows = stmt.query_map(params![id, account], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for body in rows {
                    out.push(serde_json::from_str(&body?).map_err(corrupt_json("stored fill"))?);
                }
                Ok(out)
            })
            .await?)
    }

    async fn account_fills(&self, query: &FillQuery) -> PortResult<Vec<Fill>> {
        let q = query.clone();
        Ok(self
            .db
            .read(move |conn| read_account_fills(conn, &q))
            .await?)
    }

    async fn instrument_statuses(&self) -> PortResult<Vec<InstrumentStatusRecord>> {
        Ok(self
            .db
            .read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT symbol, status, change, set_at FROM instrument_statuses ORDER BY symbol",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (symbol, status, change, set_at) = row?;
                    let status = TradingStatus::parse(&status).ok_or_else(|| {
                        EmbeddedError::Corrupt(format!("trading status {status:?} of {symbol}"))
                    })?;
                    out.push(InstrumentStatusRecord {
                        symbol: Symbol::new(symbol),
                        status,
                        change: from_sql_int(change, "status change")?,
                        set_at: Timestamp(set_at),
                    });
                }
                Ok(out)
            })
            .await?)
    }

    async fn kill_switch(&self, account: AccountId) -> PortResult<bool> {
        let account = to_sql_int(account.0, "account id")?;
        Ok(self
            .db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT enabled FROM kill_switches WHERE account_id = ?1")?
                    .query_row([account], |r| r.get::<_, bool>(0))
                    .optional()?
                    .unwrap_or(false))
            })
            .await?)
    }

    async fn deposit(
        &self,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<DepositRecord>> {
        self.json_row("deposits", account, reference).await
    }

    async fn withdrawal(
        &self,
        account: AccountId,
        reference: &str,
    ) -> PortResult<Option<WithdrawalRecord>> {
        self.json_row("withdrawals", account, reference).await
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
        Ok(self
            .db
            .read(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT deadline, change, triggered FROM cancel_afters
                         WHERE account_id = ?1",
                    )?
                    .query_row([account], |r| {
                        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
                    })
                    .optional()?;
                row.map(|(deadline, change, triggered)| {
                    Ok(CancelAfterState {
                        deadline: deadline.map(Timestamp),
                        change: from_sql_int(change, "switch change")?,
                        triggered,
                    })
                })
                .transpose()
            })
            .await?)
    }

    async fn balances(&self, account: AccountId) -> PortResult<Vec<Balance>> {
        let account = to_sql_int(account.0, "account id")?;
        Ok(self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT asset, available, reserved FROM balances WHERE account_id = ?1
                     ORDER BY asset",
                )?;
                let rows = stmt.query_map([account], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (asset, available, reserved) = row?;
                    out.push(Balance {
                        asset: Asset(asset),
                        available: parse_decimal(&available)?,
                        reserved: parse_decimal(&reserved)?,
                    });
                }
                Ok(out)
            })
            .await?)
    }

    async fn order_counts_by_status(&self) -> PortResult<Vec<(OrderStatus, u64)>> {
        Ok(self
            .db
            .read(|conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT status, orders FROM order_status_counts")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut counts: Vec<(OrderStatus, u64)> =
                    OrderStatus::ALL.iter().map(|s| (*s, 0)).collect();
                for row in rows {
                    let (status, n) = row?;
                    let status: OrderStatus = status.parse().map_err(|()| {
                        EmbeddedError::Corrupt(format!("unknown order status {status:?}"))
                    })?;
                    if let Some(c) = counts.iter_mut().find(|c| c.0 == status) {
                        c.1 = from_sql_int(n, "count")?;
                    }
                }
                Ok(counts)
            })
            .await?)
    }

    async fn claim_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
        order: OrderId,
    ) -> PortResult<Option<OrderId>> {
        let account = to_sql_int(account.0, "account id")?;
        let order = to_sql_int(order.0, "order id")?;
        let coid = client_order_id.to_string();
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO client_order_ids (account_id, client_order_id, order_id)
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![account, coid, order])?;
                let holder: i64 = conn
                    .prepare_cached(
                        "SELECT order_id FROM client_order_ids
                         WHERE account_id = ?1 AND client_order_id = ?2",
                    )?
                    .query_row(params![account, coid], |r| r.get(0))?;
                // Claiming again for the same order is not a conflict.
                (holder != order)
                    .then(|| from_sql_int(holder, "order id").map(OrderId))
                    .transpose()
            })
            .await?)
    }

    async fn order_for_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
    ) -> PortResult<Option<OrderId>> {
        let Ok(account) = i64::try_from(account.0) else {
            return Ok(None);
        };
        let coid = client_order_id.to_string();
        Ok(self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT order_id FROM client_order_ids
                     WHERE account_id = ?1 AND client_order_id = ?2",
                )?
                .query_row(params![account, coid], |r| r.get::<_, i64>(0))
                .optional()?
                .map(|id| from_sql_int(id, "order id").map(OrderId))
                .transpose()
            })
            .await?)
    }

    async fn release_client_order_id(
        &self,
        account: AccountId,
        client_order_id: &str,
    ) -> PortResult<()> {
        let account = to_sql_int(account.0, "account id")?;
        let coid = client_order_id.to_string();
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached(
                    "DELETE FROM client_order_ids WHERE account_id = ?1 AND client_order_id = ?2",
                )?
                .execute(params![account, coid])?;
                Ok(())
            })
            .await?)
    }

    async fn create_account(&self, name: &str, demo: bool, at: Timestamp) -> PortResult<Account> {
        let name = name.to_string();
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO accounts (name, demo, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![name, demo, at.0])?;
                Ok(Account {
                    id: AccountId(from_sql_int(conn.last_insert_rowid(), "account id")?),
                    name,
                    demo,
                    created_at: at,
                })
            })
            .await?)
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
        Ok(self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT account_id, name, demo, created_at FROM accounts
                     WHERE account_id > ?1 ORDER BY account_id LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![after, limit], account_row)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(account_from_row(row?)?);
                }
                Ok(out)
            })
            .await?)
    }

    async fn account_named(&self, name: &str) -> PortResult<Option<Account>> {
        let name = name.to_string();
        Ok(self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT account_id, name, demo, created_at FROM accounts WHERE name = ?1",
                )?
                .query_row(params![name], account_row)
                .optional()?
                .map(account_from_row)
                .transpose()
            })
            .await?)
    }

    async fn add_api_key(
        &self,
        account: AccountId,
        key_hash: &str,
        scope: KeyScope,
        at: Timestamp,
    ) -> PortResult<()> {
        let account = to_sql_int(account.0, "account id")?;
        let hash = key_hash.to_string();
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO api_keys (key_hash, account_id, scope, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![hash, account, scope.as_str(), at.0])?;
                Ok(())
            })
            .await?)
    }

    async fn account_for_key(&self, key_hash: &str) -> PortResult<Option<(AccountId, KeyScope)>> {
        let hash = key_hash.to_string();
        Ok(self
            .db
            .read(move |conn| {
                let found: Option<(i64, String)> = conn
                    .prepare_cached("SELECT account_id, scope FROM api_keys WHERE key_hash = ?1")?
                    .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                found
                    .map(|(id, scope)| {
                        Ok((
                            AccountId(from_sql_int(id, "account id")?),
                            parse_scope(&scope)?,
                        ))
                    })
                    .transpose()
            })
            .await?)
    }

    async fn api_keys(&self, account: AccountId) -> PortResult<Vec<ApiKeyRecord>> {
        let account = to_sql_int(account.0, "account id")?;
        Ok(self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT key_hash, scope, created_at FROM api_keys WHERE account_id = ?1
                     ORDER BY created_at, key_hash",
                )?;
                let rows = stmt.query_map([account], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (key_hash, scope, at) = row?;
                    out.push(ApiKeyRecord {
                        key_hash,
                        scope: parse_scope(&scope)?,
                        created_at: Timestamp(at),
                    });
                }
                Ok(out)
            })
            .await?)
    }

    async fn revoke_api_key(&self, account: AccountId, key_hash: &str) -> PortResult<bool> {
        let account = to_sql_int(account.0, "account id")?;
        let hash = key_hash.to_string();
        Ok(self
            .db
            .write(move |conn| {
                Ok(conn
                    .prepare_cached("DELETE FROM api_keys WHERE key_hash = ?1 AND account_id = ?2")?
                    .execute(params![hash, account])?
                    > 0)
            })
            .await?)
    }

    async fn end_session(&self, token_hash: &str, expires_at: Timestamp) -> PortResult<()> {
        let hash = token_hash.to_string();
        let forget_before = now_ms() - ENDED_SESSION_GRACE_MS;
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM ended_sessions WHERE expires_at < ?1")?
                    .execute([forget_before])?;
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO ended_sessions (token_hash, expires_at) VALUES (?1, ?2)",
                )?
                .execute(params![hash, expires_at.0])?;
                Ok(())
            })
            .await?)
    }

    async fn session_ended(&self, token_hash: &str) -> PortResult<bool> {
        let hash = token_hash.to_string();
        Ok(self
            .db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT 1 FROM ended_sessions WHERE token_hash = ?1")?
                    .query_row([hash], |_| Ok(()))
                    .optional()?
                    .is_some())
            })
            .await?)
    }

    async fn positions(&self, consumer: &str) -> PortResult<Vec<Position>> {
        let consumer = consumer.to_string();
        Ok(self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT topic, partition, next_offset FROM consumer_positions
                     WHERE consumer = ?1 ORDER BY topic, partition",
                )?;
                let rows = stmt.query_map([&consumer], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (topic, partition, next) = row?;
                    out.push(Position {
                        consumer: consumer.clone(),
                        topic,
                        partition,
                        next_offset: from_sql_int(next, "offset")?,
                    });
                }
                Ok(out)
            })
            .await?)
    }

    async fn save_snapshot(
        &self,
        name: &str,
        partition: u32,
        next_offset: u64,
        state: &[u8],
    ) -> PortResult<()> {
        let name = name.to_string();
        let next = to_sql_int(next_offset, "offset")?;
        let state = state.to_vec();
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO snapshots (name, partition, next_offset, state)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name, partition) DO UPDATE SET
                         next_offset = excluded.next_offset, state = excluded.state",
                )?
                .execute(params![name, partition, next, state])?;
                Ok(())
            })
            .await?)
    }

    async fn load_snapshot(
        &self,
        name: &str,
        partition: u32,
    ) -> PortResult<Option<(u64, Vec<u8>)>> {
        let name = name.to_string();
        Ok(self
            .db
            .read(move |conn| {
                let row: Option<(i64, Vec<u8>)> = conn
                    .prepare_cached(
                        "SELECT next_offset, state FROM snapshots WHERE name = ?1 AND partition = ?2",
                    )?
                    .query_row(params![name, partition], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                row.map(|(next, state)| Ok((from_sql_int(next, "offset")?, state)))
                    .transpose()
            })
            .await?)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(self
            .db
            .read(|conn| {
                conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
                Ok(())
            })
            .await?)
    }
}

type AccountRow = (i64, String, bool, i64);

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn account_from_row((id, name, demo, at): AccountRow) -> EmbeddedResult<Account> {
    Ok(Account {
        id: AccountId(from_sql_int(id, "account id")?),
        name,
        demo,
        created_at: Timestamp(at),
    })
}
