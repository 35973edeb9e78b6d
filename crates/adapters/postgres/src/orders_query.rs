//! The SQL of an order listing: only the filters that are set, so each combination gets a
//! plan that uses the matching index (a generic `$1 IS NULL OR ...` plan would not).

use crate::batch::side_str;
use oms_ports::order_store::OrderQuery;
use tokio_postgres::types::ToSql;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A `SELECT` growing one filter at a time, each value a numbered parameter.
pub(crate) struct Statement {
    sql: String,
    params: Vec<Param>,
}

impl Statement {
    /// `select` must end in a `WHERE` condition that the filters can follow with `AND`.
    pub fn new(select: &str) -> Self {
        Statement {
            sql: select.to_string(),
            params: Vec::new(),
        }
    }

    /// A parameter's placeholder (`$n`).
    pub fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    /// ` AND {clause} $n`.
    pub fn and(&mut self, clause: &str, p: Param) {
        let placeholder = self.param(p);
        self.sql.push_str(&format!(" AND {clause} {placeholder}"));
    }

    /// ` AND {text}` for a condition whose placeholders the caller made with [`Self::param`].
    pub fn and_raw(&mut self, text: &str) {
        self.sql.push_str(&format!(" AND {text}"));
    }

    /// The statement with its order and limit (0: none).
    pub fn finish(mut self, order_by: &str, limit: u32) -> (String, Vec<Param>) {
        self.sql.push_str(&format!(" ORDER BY {order_by}"));
        if limit > 0 {
            let placeholder = self.param(Box::new(i64::from(limit)));
            self.sql.push_str(&format!(" LIMIT {placeholder}"));
        }
        (self.sql, self.params)
    }
}

/// The statement and its parameters, or `None` when nothing can match (an account id above
/// any stored one).
pub(crate) fn build(q: &OrderQuery) -> Option<(String, Vec<Param>)> {
    let mut st = Statement::new("SELECT body FROM orders WHERE TRUE");
    if let Some(a) = q.account {
        st.and("account_id =", Box::new(i64::try_from(a.0).ok()?));
    }
    if let Some(s) = &q.symbol {
        st.and("symbol =", Box::new(s.0.clone()));
    }
    if let Some(s) = q.status {
        st.and("status =", Box::new(s.as_str()));
    }
    if let Some(s) = q.side {
        st.and("side =", Box::new(side_str(s)));
    }
    if let Some(t) = q.from {
        st.and("created_at >=", Box::new(t.0));
    }
    if let Some(t) = q.to {
        st.and("created_at <=", Box::new(t.0));
    }
    if let Some(b) = q.before {
        // An id above every stored one means "from the newest".
        let before = i64::try_from(b.0).unwrap_or(i64::MAX);
        st.and("order_id <", Box::new(before));
    }
    Some(st.finish("order_id DESC", q.limit))
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
