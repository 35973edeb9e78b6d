//! The SQL of an account's trade history: only the filters that are set, as for orders
//! ([`crate::orders_query`]), so each combination seeks `fills_by_account_time`.

use crate::batch::side_str;
use crate::orders_query::{Param, Statement};
use oms_ports::order_store::FillQuery;

/// The statement and its parameters, or `None` when nothing can match (an account id above
/// any stored one).
pub(crate) fn build(q: &FillQuery) -> Option<(String, Vec<Param>)> {
    let account = i64::try_from(q.account.0).ok()?;
    let mut st = Statement::new("SELECT body FROM fills WHERE TRUE");
    st.and("account_id =", Box::new(account));
    if let Some(s) = &q.symbol {
        st.and("symbol =", Box::new(s.0.clone()));
    }
    if let Some(s) = q.side {
        st.and("side =", Box::new(side_str(s)));
    }
    if let Some(t) = q.from {
        st.and("traded_at >=", Box::new(t.0));
    }
    if let Some(t) = q.to {
        st.and("traded_at <=", Box::new(t.0));
    }
    if let Some(c) = q.before {
        // A row comparison, which a B-tree index seeks; ids above every stored one mean
        // "from the newest" at that time.
        let at = st.param(Box::new(c.at.0));
        let order = st.param(Box::new(i64::try_from(c.order_id.0).unwrap_or(i64::MAX)));
        let trade = st.param(Box::new(i64::try_from(c.trade_id.0).unwrap_or(i64::MAX)));
        st.and_raw(&format!(
            "(traded_at, order_id, trade_id) < ({at}, {order}, {trade})"
        ));
    }
    Some(st.finish("traded_at DESC, order_id DESC, trade_id DESC", q.limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp, TradeId};
    use oms_domain::order::Side;
    use oms_ports::order_store::FillCursor;

    #[test]
    fn only_set_filters_appear_numbered_in_order() {
        let q = FillQuery {
            symbol: Some(Symbol::new("BTC/USD")),
            side: Some(Side::Sell),
            to: Some(Timestamp(9)),
            before: Some(FillCursor {
                at: Timestamp(5),
                order_id: OrderId(u64::MAX),
                trade_id: TradeId(3),
            }),
            limit: 50,
            ..FillQuery::of(AccountId(3))
        };
        let (sql, params) = build(&q).unwrap();
        assert_eq!(
            sql,
            "SELECT body FROM fills WHERE TRUE AND account_id = $1 AND symbol = $2 AND side = $3 \
             AND traded_at <= $4 AND (traded_at, order_id, trade_id) < ($5, $6, $7) \
             ORDER BY traded_at DESC, order_id DESC, trade_id DESC LIMIT $8"
        );
        assert_eq!(params.len(), 8);
    }

    #[test]
    fn no_filters_and_no_limit() {
        let (sql, params) = build(&FillQuery::of(AccountId(1))).unwrap();
        assert_eq!(
            sql,
            "SELECT body FROM fills WHERE TRUE AND account_id = $1 \
             ORDER BY traded_at DESC, order_id DESC, trade_id DESC"
        );
        assert_eq!(params.len(), 1);
        assert!(build(&FillQuery::of(AccountId(u64::MAX))).is_none());
    }
}
