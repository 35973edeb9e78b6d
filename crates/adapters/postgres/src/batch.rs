//! A `StoreBatch` as column arrays for one bulk statement: converted and checked before
//! anything is sent, so a value that cannot be stored fails the batch with nothing written.

use oms_domain::ids::AccountId;
use oms_domain::order::Side;
use oms_ports::order_store::{StoreBatch, GLOBAL_KILL_SWITCH_ROW};
use oms_ports::{PortError, PortResult};
use std::collections::BTreeMap;

/// The writes of a batch, one array per column. Each table's rows are unique by key (a later
/// order, balance or position replaces an earlier one in the batch; a repeated fill keeps
/// the first copy, as the table does) and sorted by key, so concurrent batches lock rows in
/// the same order and cannot deadlock each other.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BatchColumns {
    pub order_id: Vec<i64>,
    pub order_account: Vec<i64>,
    pub order_symbol: Vec<String>,
    pub order_status: Vec<&'static str>,
    pub order_side: Vec<&'static str>,
    pub order_created_at: Vec<i64>,
    pub order_updated_at: Vec<i64>,
    pub order_body: Vec<String>,

    pub fill_order_id: Vec<i64>,
    pub fill_trade_id: Vec<i64>,
    pub fill_account: Vec<i64>,
    pub fill_body: Vec<String>,

    pub balance_account: Vec<i64>,
    pub balance_asset: Vec<String>,
    /// Exact decimal text, cast to NUMERIC by the statement.
    pub balance_available: Vec<String>,
    pub balance_reserved: Vec<String>,

    pub position_consumer: Vec<String>,
    pub position_topic: Vec<String>,
    pub position_partition: Vec<i64>,
    pub position_next_offset: Vec<i64>,

    pub kill_switch_account: Vec<i64>,
    pub kill_switch_enabled: Vec<bool>,
    /// 0 for an account's switch, which always takes the later entry.
    pub kill_switch_change: Vec<i64>,

    pub cancel_after_account: Vec<i64>,
    pub cancel_after_deadline: Vec<Option<i64>>,
    pub cancel_after_change: Vec<i64>,
    pub cancel_after_triggered: Vec<bool>,

    /// Triggers of settings stored before the batch (accounts without a setting in it).
    pub cancel_after_fired_account: Vec<i64>,
    pub cancel_after_fired_change: Vec<i64>,

    pub withdrawal_account: Vec<i64>,
    pub withdrawal_reference: Vec<String>,
    pub withdrawal_body: Vec<String>,

    pub deposit_account: Vec<i64>,
    pub deposit_reference: Vec<String>,
    pub deposit_body: Vec<String>,

    pub status_symbol: Vec<String>,
    pub status_status: Vec<&'static str>,
    pub status_change: Vec<i64>,
    pub status_set_at: Vec<i64>,
}

impl BatchColumns {
    pub fn is_empty(&self) -> bool {
        self.order_id.is_empty()
            && self.fill_order_id.is_empty()
            && self.balance_account.is_empty()
            && self.position_consumer.is_empty()
            && self.kill_switch_account.is_empty()
            && self.cancel_after_account.is_empty()
            && self.cancel_after_fired_account.is_empty()
            && self.withdrawal_account.is_empty()
            && self.deposit_account.is_empty()
            && self.status_symbol.is_empty()
    }
}

/// PostgreSQL's BIGINT is signed: ids and offsets above `i64::MAX` cannot be stored.
pub(crate) fn to_sql_int(v: u64, what: &str) -> PortResult<i64> {
    i64::try_from(v).map_err(|_| PortError::Invalid(format!("{what} {v} is above {}", i64::MAX)))
}

pub(crate) fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

pub(crate) fn columns(batch: &StoreBatch) -> PortResult<BatchColumns> {
    let mut c = BatchColumns::default();

    let mut orders = BTreeMap::new();
    for o in &batch.orders {
        orders.insert(to_sql_int(o.order_id.0, "order id")?, o);
    }
    for (id, o) in orders {
        c.order_id.push(id);
        c.order_account.push(to_sql_int(o.account.0, "account id")?);
        c.order_symbol.push(o.symbol.0.clone());
        c.order_status.push(o.status.as_str());
        c.order_side.push(side_str(o.side));
        c.order_created_at.push(o.created_at.0);
        c.order_updated_at.push(o.updated_at.0);
        c.order_body.push(
            serde_json::to_string(o)
                .map_err(|e| PortError::Invalid(format!("order {}: {e}", o.order_id)))?,
        );
    }

    let mut fills = BTreeMap::new();
    for f in &batch.fills {
        let key = (
            to_sql_int(f.order_id.0, "order id")?,
            to_sql_int(f.trade_id.0, "trade id")?,
        );
        fills.entry(key).or_insert(f);
    }
    for ((order_id, trade_id), f) in fills {
        c.fill_order_id.push(order_id);
        c.fill_trade_id.push(trade_id);
        c.fill_account.push(to_sql_int(f.account.0, "account id")?);
        c.fill_body.push(
            serde_json::to_string(f)
                .map_err(|e| PortError::Invalid(format!("fill {}: {e}", f.trade_id)))?,
        );
    }

    let mut balances = BTreeMap::new();
    for (account, b) in &batch.balances {
        balances.insert((to_sql_int(account.0, "account id")?, b.asset.as_str()), b);
    }
    for ((account, asset), b) in balances {
        c.balance_account.push(account);
        c.balance_asset.push(asset.to_string());
        c.balance_available.push(b.available.to_string());
        c.balance_reserved.push(b.reserved.to_string());
    }

    let mut positions = BTreeMap::new();
    for p in &batch.positions {
        let key = (
            p.consumer.as_str(),
            p.topic.as_str(),
            i64::from(p.partition),
        );
        positions.insert(key, to_sql_int(p.next_offset, "offset")?);
    }
    for ((consumer, topic, partition), next) in positions {
        c.position_consumer.push(consumer.to_string());
        c.position_topic.push(topic.to_string());
        c.position_partition.push(partition);
        c.position_next_offset.push(next);
    }

    let mut switches = BTreeMap::new();
    for (account, on) in &batch.kill_switches {
        switches.insert(to_sql_int(account.0, "account id")?, (*on, 0));
    }
    if let Some(g) = batch.global_kill_switch {
        switches.insert(
            to_sql_int(GLOBAL_KILL_SWITCH_ROW.0, "account id")?,
            (g.on, to_sql_int(g.change, "switch change")?),
        );
    }
    for (account, (on, change)) in switches {
        c.kill_switch_account.push(account);
        c.kill_switch_enabled.push(on);
        c.kill_switch_change.push(change);
    }

    let mut settings = BTreeMap::new();
    for (account, state) in &batch.cancel_afters {
        settings.insert(to_sql_int(account.0, "account id")?, *state);
    }
    for (account, state) in settings {
        c.cancel_after_account.push(account);
        c.cancel_after_deadline.push(state.deadline.map(|d| d.0));
        c.cancel_after_change
            .push(to_sql_int(state.change, "switch change")?);
        c.cancel_after_triggered.push(state.triggered);
    }
    let mut fired = std::collections::BTreeSet::new();
    for (account, change) in &batch.cancel_after_triggers {
        fired.insert((
            to_sql_int(account.0, "account id")?,
            to_sql_int(*change, "switch change")?,
        ));
    }
    for (account, change) in fired {
        c.cancel_after_fired_account.push(account);
        c.cancel_after_fired_change.push(change);
    }

    let withdrawals = first_by_reference(
        batch
            .withdrawals
            .iter()
            .map(|w| (w.account, w.reference.as_str(), w)),
        "withdrawal",
    )?;
    for ((account, reference), body) in withdrawals {
        c.withdrawal_account.push(account);
        c.withdrawal_reference.push(reference.to_string());
        c.withdrawal_body.push(body);
    }
    let deposits = first_by_reference(
        batch
            .deposits
            .iter()
            .map(|d| (d.account, d.reference.as_str(), d)),
        "deposit",
    )?;
    for ((account, reference), body) in deposits {
        c.deposit_account.push(account);
        c.deposit_reference.push(reference.to_string());
        c.deposit_body.push(body);
    }
    // The newest of the batch per symbol: one statement cannot update a row twice.
    let mut statuses = BTreeMap::new();
    for s in &batch.instrument_statuses {
        let change = to_sql_int(s.change, "status change")?;
        let slot = statuses.entry(s.symbol.as_str()).or_insert((change, s));
        if change >= slot.0 {
            *slot = (change, s);
        }
    }
    for (symbol, (change, s)) in statuses {
        c.status_symbol.push(symbol.to_string());
        c.status_status.push(s.status.as_str());
        c.status_change.push(change);
        c.status_set_at.push(s.set_at.0);
    }
    Ok(c)
}

/// Records as JSON by (account, reference), the first of each kept, as the tables keep it.
fn first_by_reference<'a, T: serde::Serialize + 'a>(
    records: impl Iterator<Item = (AccountId, &'a str, &'a T)>,
    what: &str,
) -> PortResult<BTreeMap<(i64, &'a str), String>> {
    let mut out = BTreeMap::new();
    for (account, reference, record) in records {
        let key = (to_sql_int(account.0, "account id")?, reference);
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(key) {
            let body = serde_json::to_string(record)
                .map_err(|e| PortError::Invalid(format!("{what} to JSON: {e}")))?;
            slot.insert(body);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
    use oms_domain::order::{NewOrder, Order, OrderStatus, OrderType, TimeInForce};
    use oms_domain::Decimal;
    use oms_ports::order_store::{Balance, Position};

    fn order(id: u64, status: OrderStatus) -> Order {
        let mut o = Order::from_new(&NewOrder {
            order_id: OrderId(id),
            client_order_id: None,
            account: AccountId(7),
            symbol: Symbol::new("BTC/USD"),
            side: Side::Sell,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            price: Some(Decimal::from_str_exact("45000.50").unwrap()),
            stop_price: None,
            quantity: Decimal::from_str_exact("0.1").unwrap(),
            expire_at: None,
            created_at: Timestamp(1),
        });
        o.status = status;
        o
    }

    fn position(partition: u32, next_offset: u64) -> Position {
        Position {
            consumer: "c".into(),
            topic: "orders".into(),
            partition,
            next_offset,
        }
    }

    #[test]
    fn later_rows_replace_earlier_ones_and_rows_are_sorted_by_key() {
        let batch = StoreBatch {
            orders: vec![
                order(9, OrderStatus::New),
                order(3, OrderStatus::New),
                order(9, OrderStatus::Accepted),
            ],
            balances: vec![
                (AccountId(2), balance("USD", "1")),
                (AccountId(1), balance("USD", "2")),
                (AccountId(2), balance("USD", "3.10")),
            ],
            positions: vec![position(1, 5), position(0, 4), position(1, 6)],
            ..StoreBatch::default()
        };
        let c = columns(&batch).unwrap();
        assert_eq!(c.order_id, vec![3, 9]);
        assert_eq!(c.order_status, vec!["NEW", "ACCEPTED"]);
        assert_eq!(c.order_side, vec!["SELL", "SELL"]);
        assert!(
            c.order_body[1].contains("\"45000.50\""),
            "{}",
            c.order_body[1]
        );
        assert_eq!(c.balance_account, vec![1, 2]);
        assert_eq!(c.balance_available, vec!["2", "3.10"]);
        assert_eq!(c.position_partition, vec![0, 1]);
        assert_eq!(c.position_next_offset, vec![4, 6]);
    }

    fn balance(asset: &str, available: &str) -> Balance {
        Balance {
            asset: Asset::new(asset),
            available: Decimal::from_str_exact(available).unwrap(),
            reserved: Decimal::ZERO,
        }
    }

    #[test]
    fn values_above_bigint_fail_the_whole_batch() {
        let batch = StoreBatch {
            orders: vec![order(1, OrderStatus::New)],
            positions: vec![position(0, u64::MAX)],
            ..StoreBatch::default()
        };
        assert!(matches!(columns(&batch), Err(PortError::Invalid(_))));
        let batch = StoreBatch {
            orders: vec![order(u64::MAX, OrderStatus::New)],
            ..StoreBatch::default()
        };
        assert!(matches!(columns(&batch), Err(PortError::Invalid(_))));
        assert!(columns(&StoreBatch::default()).unwrap().is_empty());
    }
}
