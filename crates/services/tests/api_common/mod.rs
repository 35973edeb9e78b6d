//! A real API server for tests: the router on 127.0.0.1:0 over the embedded adapters (file
//! log, SQLite store and idempotency) in a temp dir, and a small HTTP/1 client.
#![allow(dead_code)]

use async_trait::async_trait;
use axum::body::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::instrument::default_instruments;
use oms_domain::order::{NewOrder, Order, OrderStatus, OrderType, Side, TimeInForce};
use oms_domain::Decimal;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::{Appended, Consumer, EventLog, NewRecord, Record};
use oms_ports::idempotency::IdempotencyStore;
use oms_ports::order_store::{KeyScope, OrderStore, StoreBatch};
use oms_ports::{PortError, PortResult};
use oms_services::api::{self, hash_api_key, ApiConfig, ApiState};
use oms_services::ingestion::OrderIdGenerator;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tempfile::TempDir;

pub const KEY: &str = "demo-key-1";
pub const OTHER_KEY: &str = "other-key-2";

pub struct TestApp {
    pub addr: SocketAddr,
    pub log: Arc<dyn EventLog>,
    pub store: Arc<SqliteStore>,
    pub account: AccountId,
    pub other: AccountId,
    pub partitions: u32,
    _dir: TempDir,
}

pub struct Ports {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<SqliteStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub dir: TempDir,
}

/// The embedded adapters in a fresh temp dir.
pub async fn embedded_ports() -> Ports {
    let dir = tempfile::tempdir().unwrap();
    // No fsync: these tests check behaviour, not crash safety, and the disk is shared.
    let log = FileLog::open(
        &dir.path().join("log"),
        FileLogOptions {
            fsync: false,
            ..FileLogOptions::default()
        },
    )
    .await
    .unwrap();
    let store = SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
        .await
        .unwrap();
    let idempotency = Arc::new(store.idempotency());
    Ports {
        log: Arc::new(log),
        store: Arc::new(store),
        idempotency,
        dir,
    }
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(embedded_ports().await, |s| s).await
    }

    /// Starts the server over `ports`; `customise` may add hooks or swap parts of the state.
    pub async fn start_with(ports: Ports, customise: impl FnOnce(ApiState) -> ApiState) -> TestApp {
        Self::start_configured(ports, |_| {}, customise).await
    }

    /// [`TestApp::start_with`], with `configure` adjusting the API's configuration first.
    pub async fn start_configured(
        ports: Ports,
        configure: impl FnOnce(&mut ApiConfig),
        customise: impl FnOnce(ApiState) -> ApiState,
    ) -> TestApp {
        let store = ports.store.clone();
        let now = Timestamp(0);
        let demo = store.create_account("demo", true, now).await.unwrap();
        let other = store.create_account("other", true, now).await.unwrap();
        store
            .add_api_key(demo.id, &hash_api_key(KEY), KeyScope::Trade, now)
            .await
            .unwrap();
        store
            .add_api_key(other.id, &hash_api_key(OTHER_KEY), KeyScope::Trade, now)
            .await
            .unwrap();
        let mut config = ApiConfig {
            session_secret: b"test-secret".to_vec(),
            partitions: 4,
            ..ApiConfig::default()
        };
        configure(&mut config);
        let state = ApiState::new(
            ports.log.clone(),
            store.clone(),
            ports.idempotency.clone(),
            default_instruments(),
            config,
            Arc::new(OrderIdGenerator::new(1).unwrap()),
        );
        state.ensure_topics().await.unwrap();
        let router = api::router(customise(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestApp {
            addr,
            log: ports.log,
            store,
            account: demo.id,
            other: other.id,
            partitions: 4,
            _dir: ports.dir,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        send(self.addr, method, path, headers, body).await
    }

    /// A request as the demo account (API key), JSON body.
    pub async fn as_demo(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let mut h = vec![("x-api-key", KEY)];
        if bytes.is_some() {
            h.push(("content-type", "application/json"));
        }
        self.send(method, path, &h, bytes.as_deref()).await
    }

    /// Every record of the orders topic, decoded.
    pub async fn order_records(&self) -> Vec<(Record, Envelope)> {
        let mut out = Vec::new();
        for p in 0..self.partitions {
            let recs = self.log.read("orders", p, 0, 100_000).await.unwrap();
            for r in recs {
                let env: Envelope = serde_json::from_slice(&r.value).unwrap();
                out.push((r, env));
            }
        }
        out
    }

    /// The events on `orders`, each with its record's key.
    pub async fn keyed_order_events(&self) -> Vec<(String, Event)> {
        self.order_records()
            .await
            .into_iter()
            .map(|(r, e)| (String::from_utf8(r.key.to_vec()).unwrap(), e.event))
            .collect()
    }

    /// Adds `key` to the demo account as a read-only key.
    pub async fn add_read_only_key(&self, key: &str) {
        self.store
            .add_api_key(
                self.account,
                &hash_api_key(key),
                KeyScope::Read,
                Timestamp(0),
            )
            .await
            .unwrap();
    }

    /// Signs in with `key` (`POST /api/session`): the `Cookie` header value of the session.
    #[allow(dead_code)] // not every test binary signs in
    pub async fn sign_in(&self, key: &str) -> String {
        let signed_in = self
            .send(
                "POST",
                "/api/session",
                &[("content-type", "application/json")],
                Some(format!(r#"{{"apiKey":"{key}"}}"#).as_bytes()),
            )
            .await;
        assert_eq!(signed_in.status, 204, "{signed_in:?}");
        signed_in
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    /// Puts an order straight into the read model, as the processor would.
    pub async fn put_order(&self, order: Order) {
        self.store
            .apply(StoreBatch {
                orders: vec![order],
                ..StoreBatch::default()
            })
            .await
            .unwrap();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// (status, code, field) of a problem response, checking its media type.
    pub fn problem(&self) -> (u16, String, Option<String>) {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let j = self.json();
        assert_eq!(j["status"], self.status, "{j}");
        assert!(j["requestId"].is_string(), "{j}");
        (
            self.status,
            j["code"].as_str().unwrap().to_string(),
            j["field"].as_str().map(str::to_string),
        )
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(
            body.map(<[u8]>::to_vec).unwrap_or_default(),
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// What a [`HookedLog`] does before an append: it gets the append's number (0 for the first)
/// and fails it by returning an error (nothing is written), or holds it.
pub type AppendHook = Box<dyn Fn(usize) -> BoxFuture<'static, PortResult<()>> + Send + Sync>;

/// An event log whose appends go through a hook first: to fail them, or hold them.
pub struct HookedLog {
    inner: Arc<dyn EventLog>,
    appends: AtomicUsize,
    hook: AppendHook,
    /// This append (by number) is written and then reported failed, as a broker that timed
    /// out after writing reports it.
    lands_then_fails: Option<usize>,
    /// Reported as every partition's first offset, as a Kafka topic whose retention deleted
    /// the records before it reports its low watermark.
    deleted_before: u64,
}

impl HookedLog {
    pub fn wrap(inner: Arc<dyn EventLog>, hook: AppendHook) -> Arc<dyn EventLog> {
        Arc::new(HookedLog {
            inner,
            appends: AtomicUsize::new(0),
            hook,
            lands_then_fails: None,
            deleted_before: 0,
        })
    }

    /// A log that says the records before `offset` of every partition were deleted (reads
    /// still return them: only what a stage checks before replaying changes).
    pub fn deleted_before(inner: Arc<dyn EventLog>, offset: u64) -> Arc<dyn EventLog> {
        Arc::new(HookedLog {
            inner,
            appends: AtomicUsize::new(0),
            hook: Box::new(|_| Box::pin(async { Ok(()) })),
            lands_then_fails: None,
            deleted_before: offset,
        })
    }

    /// A log whose append number `n` is written and then reported failed.
    pub fn landing_then_failing(inner: Arc<dyn EventLog>, n: usize) -> Arc<dyn EventLog> {
        Arc::new(HookedLog {
            inner,
            appends: AtomicUsize::new(0),
            hook: Box::new(|_| Box::pin(async { Ok(()) })),
            lands_then_fails: Some(n),
            deleted_before: 0,
        })
    }
}

#[async_trait]
impl EventLog for HookedLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> PortResult<()> {
        self.inner.ensure_topic(topic, partitions).await
    }
    async fn partition_count(&self, topic: &str) -> PortResult<u32> {
        self.inner.partition_count(topic).await
    }
    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> PortResult<Vec<Appended>> {
        let n = self.appends.fetch_add(1, Ordering::SeqCst);
        (self.hook)(n).await?;
        let appended = self.inner.append(topic, records).await?;
        if self.lands_then_fails == Some(n) {
            return Err(PortError::Unavailable(
                "message timed out (possibly persisted)".into(),
            ));
        }
        Ok(appended)
    }
    async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> PortResult<Vec<Record>> {
        self.inner.read(topic, partition, offset, max).await
    }
    async fn end_offset(&self, topic: &str, partition: u32) -> PortResult<u64> {
        self.inner.end_offset(topic, partition).await
    }
    async fn first_offset(&self, topic: &str, partition: u32) -> PortResult<u64> {
        let first = self.inner.first_offset(topic, partition).await?;
        Ok(first.max(self.deleted_before))
    }
    async fn committed(&self, group: &str, topic: &str, partition: u32) -> PortResult<Option<u64>> {
        self.inner.committed(group, topic, partition).await
    }
    async fn subscribe(&self, group: &str, topics: &[&str]) -> PortResult<Box<dyn Consumer>> {
        self.inner.subscribe(group, topics).await
    }
}

/// A BTC/USD sell of 0.5 at 46000 of `account` in `status`, as the processor would record it.
pub fn stored_order(id: u64, account: AccountId, status: OrderStatus) -> Order {
    let mut o = Order::from_new(&NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account,
        symbol: Symbol::new("BTC/USD"),
        side: Side::Sell,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(Decimal::from(46_000)),
        stop_price: None,
        quantity: Decimal::new(5, 1),
        expire_at: None,
        created_at: Timestamp(1_764_057_600_000 + id as i64),
    });
    o.status = status;
    o
}

/// The idempotency store of a process killed between appending and storing its response: the
/// first `complete` is lost, so the key stays in flight and a retry after its lock resumes it.
pub struct LosesFirstResponse {
    inner: Arc<dyn IdempotencyStore>,
    lost: std::sync::atomic::AtomicBool,
}

impl LosesFirstResponse {
    pub fn wrap(inner: Arc<dyn IdempotencyStore>) -> Arc<dyn IdempotencyStore> {
        Arc::new(LosesFirstResponse {
            inner,
            lost: Default::default(),
        })
    }
}

#[async_trait]
impl IdempotencyStore for LosesFirstResponse {
    async fn claim_with(
        &self,
        key: &str,
        fingerprint: &str,
        terms: &oms_ports::idempotency::ClaimTerms<'_>,
    ) -> PortResult<oms_ports::idempotency::Claim> {
        self.inner.claim_with(key, fingerprint, terms).await
    }
    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: &oms_ports::idempotency::StoredResponse,
        ttl: std::time::Duration,
    ) -> PortResult<()> {
        if !self.lost.swap(true, Ordering::SeqCst) {
            return Ok(()); // the process died before this write
        }
        self.inner.complete(key, fingerprint, response, ttl).await
    }
    async fn release(&self, key: &str) -> PortResult<()> {
        self.inner.release(key).await
    }
    async fn abandon(&self, key: &str) -> PortResult<()> {
        self.inner.abandon(key).await
    }
    async fn ping(&self) -> PortResult<()> {
        self.inner.ping().await
    }
}
