//! `RedisIdempotency`: the idempotency store port on Redis.

use crate::limits::RedisRequestLimits;
use crate::record;
use async_trait::async_trait;
use oms_ports::idempotency::{Claim, ClaimTerms, IdempotencyStore, StoredResponse};
use oms_ports::{PortError, PortResult};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Put before every key (the seed's `Redis:IdempotencyKeyPrefix`), so one Redis can serve
    /// other uses and deployments side by side.
    pub key_prefix: String,
    /// How long one call may take, reconnecting included, before it fails as unavailable.
    /// Also the connect and response timeout of the connection.
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "idempotency:".into(),
            timeout: Duration::from_secs(1),
        }
    }
}

/// Idempotency keys in Redis. One multiplexed connection, re-established in the background
/// after it drops; cheap to clone. Needs Redis 7.0 or later (`SET` with both `NX` and `GET`).
///
/// - `claim`: one `SET key locked NX PX keep GET`. It claims a free key, or returns the value
///   already there. Only when that value is a claim in flight with the same fingerprint (a
///   retry, rare) does a script decide atomically whether its lock has expired, by the key's
///   time to live on Redis's clock, so instances with skewed clocks agree: if so it writes a new
///   lock in place (the key kept at least that long) and returns the old record as resumed. Of
///   concurrent claims exactly one sets or resumes the key.
/// - `complete`: `SET key completed PX ttl`.
/// - `release`: deletes the key only while it is still in flight (a script, so a response
///   completed meanwhile is never lost).
#[derive(Clone)]
pub struct RedisIdempotency {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    resume_script: Arc<Script>,
    release_script: Arc<Script>,
    abandon_script: Arc<Script>,
}

/// The claim's slow path, for a key found holding a claim in flight with the caller's
/// fingerprint. Returns nil when the key is free (again) and now claimed, `R` + the old record
/// when an abandoned claim was resumed, else the value that holds the key. ARGV: the new `L`
/// record, lock ms, keep ms, fingerprint. Redis runs a script alone, so nothing changes the key
/// in between.
fn resume_lua() -> String {
    let (lock, len) = (record::LOCK_DIGITS, record::LEN_DIGITS);
    format!(
        r"
local v = redis.call('GET', KEYS[1])
if not v then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
    return false
end
local tag = string.sub(v, 1, 1)
if tag ~= 'L' and tag ~= 'P' then
    return v
end
local pttl = redis.call('PTTL', KEYS[1])
local mark = tonumber(string.sub(v, 2, {lock_end}))
local expired
if tag == 'L' then
    expired = pttl <= mark
else
    local t = redis.call('TIME')
    expired = mark <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Resumable: past its lock but not at its very end (as SQLite counts it), same body.
if expired and pttl > 0 then
    local n = tonumber(string.sub(v, {len_start}, {len_end}))
    if string.sub(v, {fp_start}, {fp_start} + n - 1) == ARGV[4] then
        -- The key lives at least as long as the new lock.
        local lock = tonumber(ARGV[2])
        local ttl = math.max(pttl, lock)
        -- Numbers as integer text: Redis would read a Lua number as 2.3e+18 when it is large.
        redis.call('SET', KEYS[1], 'L' .. string.format('%0{lock}d', ttl - lock)
            .. string.sub(v, {len_start}), 'PX', string.format('%d', ttl))
        return 'R' .. v
    end
end
return v
",
        lock_end = 1 + lock,
        len_start = 2 + lock,
        len_end = 1 + lock + len,
        fp_start = 2 + lock + len,
    )
}

/// Ends the lock of a claim in flight (`L`, or the older `P`): rewritten as an `L` record whose
/// floor is the key's time to live now, so that from now on its lock has passed. Its time to
/// live is kept; anything else (completed, gone) is left alone.
fn abandon_lua() -> String {
    let lock = record::LOCK_DIGITS;
    format!(
        r"
local v = redis.call('GET', KEYS[1])
local tag = v and string.sub(v, 1, 1)
if tag ~= 'L' and tag ~= 'P' then
    return 0
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl <= 0 then
    return 0
end
redis.call('SET', KEYS[1], 'L' .. string.format('%0{lock}d', pttl) .. string.sub(v, {len_start}),
    'KEEPTTL')
return 1
",
        len_start = 2 + lock,
    )
}

fn release_lua() -> String {
    let [a, b, c] = record::IN_FLIGHT_TAGS;
    format!(
        r"
local v = redis.call('GET', KEYS[1])
local tag = v and string.sub(v, 1, 1)
if tag == '{a}' or tag == '{b}' or tag == '{c}' then
    return redis.call('DEL', KEYS[1])
end
return 0
"
    )
}

impl RedisIdempotency {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, or a bare `host:port`) and
    /// checks it answers: an unreachable Redis is `PortError::Unavailable`, one older than 7.0
    /// `PortError::Invalid`.
    pub async fn connect(url: &str, options: RedisOptions) -> PortResult<RedisIdempotency> {
        let client = client(url)?;
        let timeout = options.timeout;
        let conn = within(
            timeout,
            "connect",
            ConnectionManager::new_with_config(client, manager_config(timeout)),
        )
        .await?;
        let mut check = conn.clone();
        let info = tokio::time::timeout(
            timeout,
            redis::cmd("INFO")
                .arg("server")
                .query_async::<String>(&mut check),
        )
        .await;
        match info {
            Ok(Ok(info)) => check_version(&info)?,
            // `INFO` is in ACL category @dangerous, and some proxies hide it: a server that
            // refuses it is still used, and a claim on one older than 7.0 fails with its error.
            Ok(Err(e)) if e.kind() != ErrorKind::Io => {
                tracing::warn!(error = %e, "cannot read the Redis version; it must be 7.0 or later");
            }
            Ok(Err(e)) => return Err(map_err("read the server's version", e)),
            Err(_) => {
                return Err(PortError::Unavailable(format!(
                    "read the server's version: Redis did not answer within {timeout:?}"
                )))
            }
        }
        Ok(RedisIdempotency::with(conn, options))
    }

    /// Like [`RedisIdempotency::connect`] but without touching the network: the connection is
    /// made by the first call, so a process can start while Redis is down (its calls fail as
    /// unavailable until Redis is back).
    pub fn connect_lazy(url: &str, options: RedisOptions) -> PortResult<RedisIdempotency> {
        let conn =
            ConnectionManager::new_lazy_with_config(client(url)?, manager_config(options.timeout))
                .map_err(|e| map_err("connect", e))?;
        Ok(RedisIdempotency::with(conn, options))
    }

    fn with(conn: ConnectionManager, options: RedisOptions) -> RedisIdempotency {
        RedisIdempotency {
            conn,
            prefix: options.key_prefix.into(),
            timeout: options.timeout,
            resume_script: Arc::new(Script::new(&resume_lua())),
            release_script: Arc::new(Script::new(&release_lua())),
            abandon_script: Arc::new(Script::new(&abandon_lua())),
        }
    }

    /// The accounts' request limits, on this store's connection, under its key prefix
    /// (`{prefix}rate-limit:{account}`, apart from every idempotency key, which starts with
    /// its scope).
    pub fn request_limits(&self) -> RedisRequestLimits {
        RedisRequestLimits::new(self.conn.clone(), &self.prefix, self.timeout)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn run<T>(
        &self,
        what: &str,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> PortResult<T> {
        within(self.timeout, what, f).await
    }

    /// Runs a script of one key whose answer is only a count.
    async fn run_on_key(&self, what: &str, script: &Script, key: &str) -> PortResult<()> {
        let mut conn = self.conn.clone();
        self.run(
            what,
            script.key(self.key(key)).invoke_async::<i64>(&mut conn),
        )
        .await?;
        Ok(())
    }
}

/// Refuses a server older than 7.0, whose `SET` takes `NX` or `GET` but not both: every claim
/// would fail. A server that does not say its version (a proxy, a compatible server) is used,
/// with a warning.
fn check_version(info: &str) -> PortResult<()> {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(str::trim);
    let major = version.and_then(|v| v.split('.').next()?.parse::<u32>().ok());
    match (version, major) {
        (Some(v), Some(major)) if major < 7 => Err(PortError::Invalid(format!(
            "Redis {v} is too old: idempotency keys need Redis 7.0 or later \
             (SET with both NX and GET)"
        ))),
        (_, Some(_)) => Ok(()),
        _ => {
            tracing::warn!(?version, "unknown Redis version; it must be 7.0 or later");
            Ok(())
        }
    }
}

/// Takes a `redis://` or `unix://` URL (no TLS in this build), or a bare `host:port` as the seed's
/// `Redis:ConnectionString` has it.
fn client(url: &str) -> PortResult<redis::Client> {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("redis://{url}/")
    };
    redis::Client::open(url.as_str()).map_err(|e| PortError::Invalid(format!("Redis URL: {e}")))
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        // A couple of quick retries ride over a blip; a longer outage fails the calls waiting
        // on it, and the next call starts a new attempt.
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// Awaits `f` for at most `timeout`, whatever the connection is doing.
pub(crate) async fn within<T>(
    timeout: Duration,
    what: &str,
    f: impl Future<Output = redis::RedisResult<T>>,
) -> PortResult<T> {
    match tokio::time::timeout(timeout, f).await {
        Ok(res) => res.map_err(|e| map_err(what, e)),
        Err(_) => Err(PortError::Unavailable(format!(
            "{what}: Redis did not answer within {timeout:?}"
        ))),
    }
}

/// Anything Redis or the connection reports is unavailable (the caller answers 503 and the
/// client retries), except replies this adapter cannot read, and configuration mistakes.
fn map_err(what: &str, e: RedisError) -> PortError {
    let message = format!("{what}: {e}");
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => PortError::Corrupt(message),
        ErrorKind::InvalidClientConfig => PortError::Invalid(message),
        _ => PortError::Unavailable(message),
    }
}

/// Milliseconds for `PX`: at least 1 (Redis refuses 0), and far below the largest it takes.
fn ttl_ms(ttl: Duration) -> u64 {
    const MAX: u64 = i64::MAX as u64 / 4;
    u64::try_from(ttl.as_millis()).unwrap_or(MAX).clamp(1, MAX)
}

#[async_trait]
impl IdempotencyStore for RedisIdempotency {
    async fn claim_with(
        &self,
        key: &str,
        fingerprint: &str,
        terms: &ClaimTerms<'_>,
    ) -> PortResult<Claim> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        let lock = ttl_ms(terms.lock);
        let keep = ttl_ms(terms.keep).max(lock);
        let claim = record::locked(keep - lock, fingerprint, terms.intent);
        let mut holder: Option<Vec<u8>> = self
            .run(
                "claim an idempotency key",
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&claim)
                    .arg("NX")
                    .arg("PX")
                    .arg(keep)
                    .arg("GET")
                    .query_async(&mut conn),
            )
            .await?;
        if holder
            .as_deref()
            .is_some_and(|v| record::may_resume(v, fingerprint))
        {
            holder = self
                .run(
                    "resume an idempotency key",
                    self.resume_script
                        .key(&key)
                        .arg(&claim)
                        .arg(lock)
                        .arg(keep)
                        .arg(fingerprint)
                        .invoke_async(&mut conn),
                )
                .await?;
        }
        match holder {
            None => Ok(Claim::Acquired),
            Some(value) => record::decode(&value)
                .map_err(|e| PortError::Corrupt(format!("idempotency key {key:?}: {e}"))),
        }
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> PortResult<()> {
        let mut conn = self.conn.clone();
        self.run(
            "complete an idempotency key",
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(record::completed(fingerprint, response))
                .arg("PX")
                .arg(ttl_ms(ttl))
                .query_async::<()>(&mut conn),
        )
        .await
    }

    async fn release(&self, key: &str) -> PortResult<()> {
        self.run_on_key("release an idempotency key", &self.release_script, key)
            .await
    }

    async fn abandon(&self, key: &str) -> PortResult<()> {
        self.run_on_key("abandon an idempotency claim", &self.abandon_script, key)
            .await
    }

    async fn ping(&self) -> PortResult<()> {
        let mut conn = self.conn.clone();
        self.run("ping", redis::cmd("PING").query_async::<()>(&mut conn))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_become_positive_milliseconds_redis_accepts() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(10)), 1);
        assert_eq!(ttl_ms(Duration::from_millis(300)), 300);
        assert_eq!(ttl_ms(Duration::from_secs(86_400)), 86_400_000);
        assert_eq!(ttl_ms(Duration::MAX), i64::MAX as u64 / 4);
    }

    #[test]
    fn the_release_script_checks_the_in_flight_tag() {
        let lua = release_lua();
        for tag in ["'F'", "'L'", "'P'"] {
            assert!(lua.contains(tag), "{tag}");
        }
    }

    #[test]
    fn servers_older_than_7_are_refused() {
        let info = |v: &str| format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
        assert!(check_version(&info("7.0.15")).is_ok());
        assert!(check_version(&info("8.2.1")).is_ok());
        match check_version(&info("6.2.14")) {
            Err(PortError::Invalid(m)) => assert!(m.contains("6.2.14") && m.contains("7.0"), "{m}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert!(
            check_version("# Server\r\n").is_ok(),
            "a server that hides its version is used"
        );
        assert!(check_version(&info("unknown")).is_ok());
    }

    #[test]
    fn a_bare_host_and_port_is_a_redis_url() {
        let c = client("cache.internal:6380").unwrap();
        assert_eq!(
            c.get_connection_info().addr().to_string(),
            "cache.internal:6380"
        );
    }

    #[test]
    fn a_bad_url_is_invalid() {
        assert!(matches!(
            RedisIdempotency::connect_lazy("http://nope", RedisOptions::default()),
            Err(PortError::Invalid(_))
        ));
    }
}
