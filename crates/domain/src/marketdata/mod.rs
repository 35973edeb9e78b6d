//! Market data as pure folds of the venue's public events: OHLCV candles, the 24 h ticker, the
//! L2 depth book and the recent trades. No I/O, no clock: "now" comes in as a value.

pub mod candle;
pub mod depth;
pub mod interval;
pub mod market;
pub mod ticker;
pub mod trades;

pub use candle::{candles_from_trades, merge_candles, Candle, CandleAggregator, CandleSeries};
pub use depth::{BookChange, DepthBook, DepthSnapshot, Level, SeqCheck};
pub use interval::{Interval, ParseIntervalError};
pub use market::{BookStatus, MarketUpdate, SymbolMarket};
pub use ticker::Ticker;
pub use trades::{PublicTrade, TradeRing};
