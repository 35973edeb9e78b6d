//! The SQL of an order listing: only the filters that are set, so each combination gets a
//! plan that uses the matching index (a generic `$1 IS NULL OR ...` plan would not).

use crate::batch::side_str;
use oms_ports::order_store::OrderQuery;
use tokio_postgres::types::ToSql;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The statement and its parameters, or `None` when nothing can match (an account id above
/// any stored one).
pub(crate) fn build(q: &OrderQuery) -> Option<(String, Vec<Param>)> {
    let mut sql = String::from("SELECT body FROM orders WHERE TRUE");
    let mut params: Vec<Param> = Vec::new();
    let mut filter = |sql: &mut String, clause: &str, p: Param| {
        params.push(p);
        sql.push_str(&format!(" AND {clause} ${}", params.len()));
    };
    if let Some(a) = q.account {
        filter(&mut sql, "account_id =", Box::new(i64::try_from(a.0).ok()?));
    }
    if let Some(s) = &q.symbol {
        filter(&mut sql, "symbol =", Box::new(s.0.clone()));
    }
    if let Some(s) = q.status {
        filter(&mut sql, "status =", Box::new(s.as_str()));
    }
    if let Some(s) = q.side {
        filter(&mut sql, "side =", Box::new(side_str(s)));
    }
    if let Some(t) = q.from {
        filter(&mut sql, "created_at >=", Box::new(t.0));
    }
    if let Some(t) = q.to {
        filter(&mut sql, "created_at <=", Box::new(t.0));
    }
    if let Some(b) = q.before {
        // An id above every stored one means "from the newest".
        let before = i64::try_from(b.0).unwrap_or(i64::MAX);
        filter(&mut sql, "order_id <", Box::new(before));
    }
    sql.push_str(" ORDER BY order_id DESC");
    // 0 means no limit.
    if q.limit > 0 {
        params.push(Box::new(i64::from(q.limit)));
        sql.push_str(&format!(" LIMIT ${}", params.len()));
    }
    Some((sql, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
    use oms_domain::order::{OrderStatus, Side};

    #[test]
    fn only_set_filters_appear_numbered_in_order() {
        let q = OrderQuery {
            account: Some(AccountId(3)),
            status: Some(OrderStatus::Filled),
            to: Some(Timestamp(9)),
            before: Some(OrderId(u64::MAX)),
            limit: 50,
            ..OrderQuery::default()
        };
        let (sql, params) = build(&q).unwrap();
        assert_eq!(
            sql,
            "SELECT body FROM orders WHERE TRUE AND account_id = $1 AND status = $2 \
             AND created_at <= $3 AND order_id < $4 ORDER BY order_id DESC LIMIT $5"
        );
        assert_eq!(params.len(), 5);
    }

    #[test]
    fn no_filters_and_no_limit() {
        let (sql, params) = build(&OrderQuery::default()).unwrap();
        assert_eq!(
            sql,
            "SELECT body FROM orders WHERE TRUE ORDER BY order_id DESC"
        );
        assert!(params.is_empty());
        let q = OrderQuery {
            symbol: Some(Symbol::new("BTC/USD")),
            side: Some(Side::Buy),
            from: Some(Timestamp(1)),
            ..OrderQuery::default()
        };
        let (sql, _) = build(&q).unwrap();
        assert!(
            sql.ends_with("symbol = $1 AND side = $2 AND created_at >= $3 ORDER BY order_id DESC")
        );
    }

    #[test]
    fn an_account_beyond_bigint_matches_nothing() {
        let q = OrderQuery {
            account: Some(AccountId(u64::MAX)),
            ..OrderQuery::default()
        };
        assert!(build(&q).is_none());
    }
}
