//! What the API needs to run: the ports, the instruments, its configuration and hooks.

use super::auth::KeyCache;
use super::hooks::{MetricsSource, NoExtraChecks, NoExtraMetrics, Readiness};
use super::metrics::HttpMetrics;
use super::pending::PendingResponses;
use super::rate_limit::{RequestLimiter, RequestRate};
use crate::ingestion::OrderIdGenerator;
use oms_domain::ids::AccountId;
use oms_domain::instrument::Instrument;
use oms_ports::event_log::EventLog;
use oms_ports::idempotency::IdempotencyStore;
use oms_ports::order_store::OrderStore;
use oms_ports::PortResult;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The default [`ApiConfig::idempotency_lock_ttl`].
pub const IDEMPOTENCY_LOCK_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct ApiConfig {
    /// How long a completed idempotent response is kept for replay.
    pub idempotency_ttl: Duration,
    /// How long a claimed key stays "in flight" if its request never finishes (the process
    /// died mid-request): after this a retry may run. Far longer than any request takes.
    pub idempotency_lock_ttl: Duration,
    /// Largest accepted request body, in bytes; larger is 413.
    pub body_limit: usize,
    /// Signs session cookies. Every instance behind one load balancer needs the same secret.
    pub session_secret: Vec<u8>,
    pub session_ttl: Duration,
    /// Adds `Secure` to the session cookie (set it when served over HTTPS).
    pub secure_cookies: bool,
    /// Topic the order-lifecycle events are published to.
    pub orders_topic: String,
    /// Partitions of the orders topic, used by [`ApiState::ensure_topics`].
    pub partitions: u32,
    /// How long a found API key is remembered before the store is asked again.
    pub key_cache_ttl: Duration,
    /// The order processor's consumer group, whose stored positions say which orders the
    /// store already lists.
    pub processor_group: String,
    /// SHA-256 (lower-case hex) of each operator key accepted by the admin API
    /// (`X-Admin-Key`). Empty: the admin API is off.
    pub operator_key_hashes: HashSet<String>,
    /// Requests per second per account in this instance; above it, `429 RATE_LIMITED`.
    pub request_rate: RequestRate,
    /// The account fees are credited to, if this process knows it. Its balance is spread
    /// over every partition's ledger, so a withdrawal from it, decided in one partition,
    /// would see only part of it: the admin API refuses those.
    pub fee_account: Option<AccountId>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            idempotency_ttl: Duration::from_secs(24 * 3600),
            idempotency_lock_ttl: IDEMPOTENCY_LOCK_TTL,
            body_limit: 64 * 1024,
            session_secret: random_secret(),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            orders_topic: "orders".to_string(),
            partitions: 8,
            key_cache_ttl: Duration::from_secs(30),
            processor_group: "processor".to_string(),
            operator_key_hashes: HashSet::new(),
            request_rate: RequestRate::default(),
            fee_account: None,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("idempotency_lock_ttl", &self.idempotency_lock_ttl)
            .field("body_limit", &self.body_limit)
            .field("session_secret", &"<redacted>")
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("orders_topic", &self.orders_topic)
            .field("partitions", &self.partitions)
            .field("key_cache_ttl", &self.key_cache_ttl)
            .field("processor_group", &self.processor_group)
            .field("operator_keys", &self.operator_key_hashes.len())
            .field("request_rate", &self.request_rate)
            .field("fee_account", &self.fee_account)
            .finish()
    }
}

/// A per-process secret for when none is configured: sessions then end with the process.
fn random_secret() -> Vec<u8> {
    // Each RandomState is keyed from OS randomness; four hashes give 32 unpredictable bytes.
    (0..4u8)
        .flat_map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(i);
            h.finish().to_le_bytes()
        })
        .collect()
}

/// Shared state of every handler. Cheap to clone: axum clones it for every request and
/// layer, so it is one `Arc` rather than a dozen.
#[derive(Clone)]
pub struct ApiState(Arc<ApiParts>);

/// What an [`ApiState`] holds; reached through its `Deref`.
#[derive(Clone)]
pub struct ApiParts {
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) store: Arc<dyn OrderStore>,
    pub(crate) idempotency: Arc<dyn IdempotencyStore>,
    pub(crate) instruments: Arc<Vec<Instrument>>,
    pub(crate) by_symbol: Arc<HashMap<String, Instrument>>,
    pub(crate) config: Arc<ApiConfig>,
    pub(crate) ids: Arc<OrderIdGenerator>,
    pub(crate) readiness: Arc<dyn Readiness>,
    pub(crate) metrics_source: Arc<dyn MetricsSource>,
    pub(crate) http_metrics: HttpMetrics,
    pub(crate) keys: Arc<KeyCache>,
    pub(crate) limiter: Arc<RequestLimiter>,
    pub(crate) account_names: Arc<Mutex<HashMap<AccountId, String>>>,
    pub(crate) pending: PendingResponses,
}

impl std::ops::Deref for ApiState {
    type Target = ApiParts;

    fn deref(&self) -> &ApiParts {
        &self.0
    }
}

impl ApiState {
    pub fn new(
        log: Arc<dyn EventLog>,
        store: Arc<dyn OrderStore>,
        idempotency: Arc<dyn IdempotencyStore>,
        instruments: Vec<Instrument>,
        config: ApiConfig,
        ids: Arc<OrderIdGenerator>,
    ) -> Self {
        let by_symbol = instruments
            .iter()
            .map(|i| (i.symbol.0.clone(), i.clone()))
            .collect();
        let keys = Arc::new(KeyCache::new(config.key_cache_ttl));
        ApiState(Arc::new(ApiParts {
            log,
            store,
            idempotency,
            instruments: Arc::new(instruments),
            by_symbol: Arc::new(by_symbol),
            config: Arc::new(config),
            ids,
            readiness: Arc::new(NoExtraChecks),
            metrics_source: Arc::new(NoExtraMetrics),
            http_metrics: HttpMetrics::default(),
            keys,
            limiter: Arc::new(RequestLimiter::default()),
            account_names: Arc::new(Mutex::new(HashMap::new())),
            pending: PendingResponses::default(),
        }))
    }

    /// Adds checks to `GET /ready`.
    pub fn with_readiness(mut self, readiness: Arc<dyn Readiness>) -> Self {
        Arc::make_mut(&mut self.0).readiness = readiness;
        self
    }

    /// Counts each account's requests in `limits`, shared with every other instance that
    /// uses them, rather than in this instance alone.
    pub fn with_shared_request_limits(
        mut self,
        limits: Arc<dyn oms_ports::request_limits::RequestLimits>,
    ) -> Self {
        Arc::make_mut(&mut self.0).limiter = Arc::new(RequestLimiter::shared(limits));
        self
    }

    /// Adds text to `GET /metrics`.
    pub fn with_metrics_source(mut self, source: Arc<dyn MetricsSource>) -> Self {
        Arc::make_mut(&mut self.0).metrics_source = source;
        self
    }

    /// Creates the orders topic with the configured partition count (or checks it has it).
    pub async fn ensure_topics(&self) -> PortResult<()> {
        self.log
            .ensure_topic(&self.config.orders_topic, self.config.partitions)
            .await
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    pub fn instrument(&self, symbol: &str) -> Option<&Instrument> {
        self.by_symbol.get(symbol)
    }

    /// Idempotent responses sent and still being stored; drained at shutdown.
    pub fn pending_responses(&self) -> PendingResponses {
        self.pending.clone()
    }

    pub fn http_metrics(&self) -> &HttpMetrics {
        &self.http_metrics
    }

    pub fn store(&self) -> &Arc<dyn OrderStore> {
        &self.store
    }

    /// The account's display name, from a cache filled from the store.
    pub(crate) async fn account_name(&self, account: AccountId) -> PortResult<String> {
        if let Some(n) = self.account_names.lock().expect("lock").get(&account) {
            return Ok(n.clone());
        }
        let name = self
            .store
            .account(account)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        if !name.is_empty() {
            let mut names = self.account_names.lock().expect("lock");
            names.insert(account, name.clone());
        }
        Ok(name)
    }
}
