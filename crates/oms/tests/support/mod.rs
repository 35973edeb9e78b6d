//! Starting real `oms serve` processes and talking HTTP to them, for the process tests.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ALICE_KEY: &str = "oms_test_alice_0000000000000000000000000000000000000000000000000000";
pub const BOB_KEY: &str = "oms_test_bob_00000000000000000000000000000000000000000000000000000000";
/// The operator key of the admin API in [`write_config`]'s configuration.
pub const ADMIN_KEY: &str = "oms_test_admin_0000000000000000000000000000000000000000000000000000";

/// A config with two funded accounts with known keys, limits high enough for load, and the
/// admin API on with [`ADMIN_KEY`].
pub fn write_config(dir: &Path, snapshot_every: u64) -> PathBuf {
    let path = dir.join("oms.toml");
    let admin_hash = oms_services::api::hash_api_key(ADMIN_KEY);
    let text = format!(
        r#"
[demo]
enabled = false

[server]
# The tests' load comes from few accounts; the request rate limit has tests of its own.
requestsPerSecond = 0

[admin]
keySha256 = ["{admin_hash}"]

[pipeline]
snapshotEvery = {snapshot_every}
tickMillis = 200

[risk]
maxOpenOrders = 1000000
ordersPerSecond = 1000000
burst = 1000000

[[accounts]]
name = "alice"
apiKey = "{ALICE_KEY}"
deposits = {{ USD = "100000000", BTC = "10000", SOL = "1000000" }}

[[accounts]]
name = "bob"
apiKey = "{BOB_KEY}"
deposits = {{ USD = "100000000", BTC = "10000", SOL = "1000000" }}
"#
    );
    std::fs::write(&path, text).expect("write config");
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub stdout: PathBuf,
}

impl Server {
    /// Starts `oms serve` and waits until `/ready` answers 200.
    pub async fn start(data: &Path, config: Option<&Path>, port: u16) -> Server {
        let stdout = data.with_extension(format!("out.{}", Instant::now().elapsed().as_nanos()));
        let out = std::fs::File::create(&stdout).unwrap();
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.with_extension("log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oms"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("OMS_SERVER__STATIC_DIR", "/nonexistent")
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().expect("spawn oms");
        let mut server = Server {
            child,
            addr: format!("127.0.0.1:{port}"),
            stdout,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = server.get("/ready", None).await {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "oms serve exited early: {status}; log: {}",
                    std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "oms serve did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .arg("-TERM")
            .arg(&pid)
            .status()
            .expect("kill -TERM");
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "oms serve exited with {status} after SIGTERM"
        );
    }

    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
        request(&self.addr, Method::GET, path, key, &[], None).await
    }

    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<(u16, Value)> {
        request(&self.addr, Method::POST, path, key, headers, Some(body)).await
    }

    pub async fn put(
        &self,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> anyhow::Result<(u16, Value)> {
        request(&self.addr, Method::PUT, path, key, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
        request(&self.addr, Method::DELETE, path, key, &[], None).await
    }
}

/// A request to the admin API with [`ADMIN_KEY`]; panics if it cannot be sent.
/// A test that fails part-way leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub async fn admin(addr: &str, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
    request(
        addr,
        method,
        path,
        None,
        &[("x-admin-key", ADMIN_KEY)],
        body,
    )
    .await
    .unwrap()
}

/// One request on a fresh connection (the tests care about correctness, not speed).
pub async fn request(
    addr: &str,
    method: Method,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or("").to_string())))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req)).await??;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Ok((status, value))
}

/// A WebSocket client subscribed to `status:{symbol}`, and the first status the venue
/// published that it hears of (the configured one shows first, without `since`, until market
/// data has one).
pub async fn status_watcher(addr: &str, symbol: &str) -> (StatusWatcher, String) {
    use futures_util::SinkExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let subscribe =
        serde_json::json!({"op": "subscribe", "channels": [format!("status:{symbol}")]});
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        subscribe.to_string(),
    ))
    .await
    .unwrap();
    let mut watcher = StatusWatcher {
        ws,
        last: String::new(),
    };
    loop {
        let data = watcher.next_data().await;
        if data["since"].is_i64() {
            watcher.last = data["status"].as_str().unwrap().to_string();
            let first = watcher.last.clone();
            return (watcher, first);
        }
    }
}

pub struct StatusWatcher {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    last: String,
}

impl StatusWatcher {
    async fn next_data(&mut self) -> serde_json::Value {
        use futures_util::StreamExt;
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let msg = self
                    .ws
                    .next()
                    .await
                    .expect("the socket stays open")
                    .unwrap();
                let Ok(text) = msg.to_text() else { continue };
                let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                if v["data"]["status"].is_string() {
                    return v["data"].clone();
                }
            }
        })
        .await
        .expect("a status message")
    }

    /// The next status the channel names that differs from the last one.
    pub async fn next_change(&mut self) -> String {
        loop {
            let status = self.next_data().await["status"]
                .as_str()
                .unwrap()
                .to_string();
            if status != self.last {
                self.last = status.clone();
                return status;
            }
        }
    }
}
