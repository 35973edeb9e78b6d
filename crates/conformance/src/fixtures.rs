//! Orders, fills and balances as the suites and the stores' benchmarks build them.

use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp, TradeId};
use oms_domain::order::{Liquidity, NewOrder, Order, OrderType, Side, TimeInForce};
use oms_domain::Decimal;
use oms_ports::order_store::Balance;

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// A new GTC limit order: 0.25 at 45000.5.
pub fn order(id: u64, account: AccountId, symbol: &str, side: Side, created_at: i64) -> Order {
    Order::from_new(&NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account,
        symbol: Symbol::new(symbol),
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(dec("45000.5")),
        stop_price: None,
        quantity: dec("0.25"),
        expire_at: None,
        created_at: Timestamp(created_at),
    })
}

/// A taker fill of `qty` at `price`, the order's first.
pub fn fill(o: &Order, trade: u64, price: &str, qty: &str) -> Fill {
    Fill {
        account: o.account,
        order_id: o.order_id,
        symbol: o.symbol.clone(),
        side: o.side,
        trade_id: TradeId(trade),
        price: dec(price),
        quantity: dec(qty),
        liquidity: Liquidity::Taker,
        fee: dec("0.01"),
        base: Asset::new("BTC"),
        quote: Asset::new("USD"),
        cumulative_quantity: dec(qty),
        leaves_quantity: o.quantity - dec(qty),
        fee_account: AccountId(0),
        at: Some(Timestamp(1_764_057_600_000 + trade as i64)),
    }
}

pub fn balance(asset: &str, available: &str, reserved: &str) -> Balance {
    Balance {
        asset: Asset::new(asset),
        available: dec(available),
        reserved: dec(reserved),
    }
}
