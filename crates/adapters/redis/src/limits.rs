//! `RedisRequestLimits`: the request limits port on Redis, one allowance per account shared by
//! every API instance that uses the same Redis.

use crate::store::within;
use async_trait::async_trait;
use oms_domain::ids::AccountId;
use oms_ports::request_limits::{Allowance, RequestLimits};
use oms_ports::PortResult;
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// The generic cell rate algorithm, in one script so that instances never race: the key holds
/// the account's theoretical arrival time, in microseconds of Redis's own clock (so instances
/// with skewed clocks agree). `n` requests move it `n` intervals on from now or from where it
/// was, whichever is later, and are admitted when that stays within `burst` intervals of now.
/// ARGV: the interval (µs), `burst` intervals (µs), `n`. Returns 1 when admitted, else 0.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
    tat = now
end
local after = tat + tonumber(ARGV[3]) * interval
if after - now > tolerance then
    return 0
end
-- Integer text: Redis would read a Lua number this large as 1.7e+15.
redis.call('SET', KEYS[1], string.format('%d', after), 'PX',
    string.format('%d', math.floor((after - now) / 1000) + 1))
return 1
";

/// Accounts' request allowances in Redis. Cheap to clone; shares its connection with the
/// idempotency store it came from ([`crate::RedisIdempotency::request_limits`]).
#[derive(Clone)]
pub struct RedisRequestLimits {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    script: Arc<Script>,
}

impl RedisRequestLimits {
    pub(crate) fn new(conn: ConnectionManager, prefix: &str, timeout: Duration) -> Self {
        RedisRequestLimits {
            conn,
            prefix: format!("{prefix}rate-limit:").into(),
            timeout,
            script: Arc::new(Script::new(GCRA)),
        }
    }
}

#[async_trait]
impl RequestLimits for RedisRequestLimits {
    async fn admit(&self, account: AccountId, n: u32, allowance: Allowance) -> PortResult<bool> {
        let interval = 1_000_000 / u64::from(allowance.per_second.max(1));
        let tolerance = interval.max(1) * u64::from(allowance.burst.max(1));
        let mut conn = self.conn.clone();
        let admitted: i64 = within(
            self.timeout,
            "take from the request allowance",
            self.script
                .key(format!("{}{account}", self.prefix))
                .arg(interval.max(1))
                .arg(tolerance)
                .arg(n)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(admitted == 1)
    }
}
