//! The WebSocket protocol: channel names, client operations and server messages.

use oms_domain::ids::{AccountId, Symbol};
use oms_domain::marketdata::Interval;
use serde::{Deserialize, Serialize};

/// Error codes sent in `{"type":"error","code":...}`.
pub mod ws_codes {
    pub const INVALID_MESSAGE: &str = "INVALID_MESSAGE";
    pub const INVALID_CHANNEL: &str = "INVALID_CHANNEL";
    pub const UNKNOWN_SYMBOL: &str = "UNKNOWN_SYMBOL";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// The credential could not be checked (the account store is unreachable); try again.
    pub const AUTH_UNAVAILABLE: &str = "AUTH_UNAVAILABLE";
    pub const TOO_MANY_CHANNELS: &str = "TOO_MANY_CHANNELS";
    /// Over the client's message rate: the message was dropped (and, kept up, the connection).
    pub const TOO_MANY_MESSAGES: &str = "TOO_MANY_MESSAGES";
    pub use super::super::hub::SLOW_CONSUMER;
    /// A message over 64 KiB: the connection is closed with code 1009.
    pub const MESSAGE_TOO_BIG: &str = "MESSAGE_TOO_BIG";
    /// A text message that is not UTF-8: the connection is closed with code 1007.
    pub const INVALID_UTF8: &str = "INVALID_UTF8";
}

/// A channel a client can subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    Trades(Symbol),
    Depth(Symbol),
    Ticker(Symbol),
    Candles(Symbol, Interval),
    /// The symbol's trading status (`TRADING`, `CANCEL_ONLY`, `HALTED`).
    Status(Symbol),
    /// The client's own order updates; needs authentication.
    Orders,
}

impl Channel {
    /// Parses `trades:BTC/USD`, `depth:BTC/USD`, `ticker:BTC/USD`, `candles:BTC/USD:1m`,
    /// `status:BTC/USD`, `orders`.
    pub fn parse(name: &str) -> Result<Channel, String> {
        if name == "orders" {
            return Ok(Channel::Orders);
        }
        let (kind, rest) = name
            .split_once(':')
            .ok_or_else(|| format!("unknown channel {name:?}"))?;
        let symbol = |s: &str| {
            if s.is_empty() {
                Err(format!("channel {name:?} names no symbol"))
            } else {
                Ok(Symbol::new(s))
            }
        };
        match kind {
            "trades" => Ok(Channel::Trades(symbol(rest)?)),
            "depth" => Ok(Channel::Depth(symbol(rest)?)),
            "ticker" => Ok(Channel::Ticker(symbol(rest)?)),
            "status" => Ok(Channel::Status(symbol(rest)?)),
            "candles" => {
                let (sym, interval) = rest.rsplit_once(':').ok_or_else(|| {
                    format!("channel {name:?} needs an interval: candles:SYMBOL:1m")
                })?;
                let interval = interval.parse::<Interval>().map_err(|e| e.to_string())?;
                Ok(Channel::Candles(symbol(sym)?, interval))
            }
            _ => Err(format!("unknown channel {name:?}")),
        }
    }

    pub fn symbol(&self) -> Option<&Symbol> {
        match self {
            Channel::Trades(s)
            | Channel::Depth(s)
            | Channel::Ticker(s)
            | Channel::Status(s)
            | Channel::Candles(s, _) => Some(s),
            Channel::Orders => None,
        }
    }

    /// The name clients see in messages.
    pub fn name(&self) -> String {
        match self {
            Channel::Trades(s) => trades_channel(s),
            Channel::Depth(s) => depth_channel(s),
            Channel::Ticker(s) => ticker_channel(s),
            Channel::Candles(s, i) => candles_channel(s, *i),
            Channel::Status(s) => status_channel(s),
            Channel::Orders => "orders".to_string(),
        }
    }

    /// The hub's key: public channels are shared, `orders` is one per account.
    pub fn hub_key(&self, account: Option<AccountId>) -> Option<String> {
        match self {
            Channel::Orders => account.map(orders_key),
            other => Some(other.name()),
        }
    }
}

pub fn trades_channel(s: &Symbol) -> String {
    format!("trades:{s}")
}
pub fn depth_channel(s: &Symbol) -> String {
    format!("depth:{s}")
}
pub fn ticker_channel(s: &Symbol) -> String {
    format!("ticker:{s}")
}
pub fn status_channel(s: &Symbol) -> String {
    format!("status:{s}")
}
pub fn candles_channel(s: &Symbol, i: Interval) -> String {
    format!("candles:{s}:{i}")
}
/// The hub key of one account's private channel.
pub fn orders_key(a: AccountId) -> String {
    format!("orders:{a}")
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ClientOp {
    Subscribe {
        channels: Vec<String>,
    },
    Unsubscribe {
        channels: Vec<String>,
    },
    Auth {
        #[serde(rename = "apiKey")]
        api_key: String,
    },
    Ping,
}

#[derive(Serialize)]
struct DataMessage<'a, T: Serialize> {
    channel: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    seq: u64,
    data: &'a T,
}

/// `{"channel":..., "type":..., "seq":..., "data":...}`; `kind` is "snapshot" or "update" on
/// channels that start with a snapshot.
pub fn data_message<T: Serialize>(
    channel: &str,
    kind: Option<&'static str>,
    seq: u64,
    data: &T,
) -> String {
    serde_json::to_string(&DataMessage {
        channel,
        kind,
        seq,
        data,
    })
    .expect("market data serialises")
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control<'a> {
    Subscribed {
        channels: &'a [String],
    },
    Unsubscribed {
        channels: &'a [String],
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<&'a str>,
    },
    Heartbeat {
        ts: i64,
    },
    Pong {
        ts: i64,
    },
    Authenticated {
        #[serde(rename = "accountId")]
        account_id: u64,
    },
}

fn control(c: &Control<'_>) -> String {
    serde_json::to_string(c).expect("control messages serialise")
}

pub fn subscribed(channels: &[String]) -> String {
    control(&Control::Subscribed { channels })
}
pub fn unsubscribed(channels: &[String]) -> String {
    control(&Control::Unsubscribed { channels })
}
pub fn error(code: &str, message: &str) -> String {
    control(&Control::Error {
        code,
        message,
        channel: None,
    })
}
pub fn channel_error(code: &str, message: &str, channel: &str) -> String {
    control(&Control::Error {
        code,
        message,
        channel: Some(channel),
    })
}
pub fn heartbeat(ts: i64) -> String {
    control(&Control::Heartbeat { ts })
}
pub fn pong(ts: i64) -> String {
    control(&Control::Pong { ts })
}
pub fn authenticated(account: AccountId) -> String {
    control(&Control::Authenticated {
        account_id: account.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_channels() {
        let btc = Symbol::new("BTC/USD");
        assert_eq!(
            Channel::parse("trades:BTC/USD"),
            Ok(Channel::Trades(btc.clone()))
        );
        assert_eq!(
            Channel::parse("candles:BTC/USD:15m"),
            Ok(Channel::Candles(btc.clone(), Interval::M15))
        );
        assert_eq!(Channel::parse("orders"), Ok(Channel::Orders));
        assert_eq!(
            Channel::parse("status:BTC/USD"),
            Ok(Channel::Status(btc.clone()))
        );
        assert_eq!(Channel::Status(btc.clone()).name(), "status:BTC/USD");
        assert!(Channel::parse("status:").is_err());
        assert!(Channel::parse("candles:BTC/USD").is_err());
        assert!(Channel::parse("candles:BTC/USD:7m").is_err());
        assert!(Channel::parse("trades:").is_err());
        assert!(Channel::parse("news:BTC/USD").is_err());
        assert_eq!(
            Channel::Candles(btc.clone(), Interval::H1).name(),
            "candles:BTC/USD:1h"
        );
        assert_eq!(Channel::Orders.hub_key(None), None);
        assert_eq!(
            Channel::Orders.hub_key(Some(AccountId(3))).as_deref(),
            Some("orders:3")
        );
    }

    #[test]
    fn reads_client_ops_and_writes_messages() {
        let op: ClientOp =
            serde_json::from_str(r#"{"op":"subscribe","channels":["trades:BTC/USD"]}"#).unwrap();
        assert_eq!(
            op,
            ClientOp::Subscribe {
                channels: vec!["trades:BTC/USD".into()]
            }
        );
        let op: ClientOp = serde_json::from_str(r#"{"op":"auth","apiKey":"k"}"#).unwrap();
        assert_eq!(
            op,
            ClientOp::Auth {
                api_key: "k".into()
            }
        );
        assert!(serde_json::from_str::<ClientOp>(r#"{"op":"dance"}"#).is_err());
        assert_eq!(heartbeat(5), r#"{"type":"heartbeat","ts":5}"#);
        assert_eq!(
            error("SLOW_CONSUMER", "x"),
            r#"{"type":"error","code":"SLOW_CONSUMER","message":"x"}"#
        );
        assert_eq!(
            data_message(
                "depth:X",
                Some("snapshot"),
                3,
                &serde_json::json!({"bids":[]})
            ),
            r#"{"channel":"depth:X","type":"snapshot","seq":3,"data":{"bids":[]}}"#
        );
        assert_eq!(
            authenticated(AccountId(2)),
            r#"{"type":"authenticated","accountId":2}"#
        );
    }
}
