//! `GET /ws`: one WebSocket connection, a reader and a writer.
//!
//! The reader handles the client's operations; the writer drains the client's queue (in
//! batches, one flush per batch), sends heartbeats, and on a kick sends the reason and closes.

use super::auth::{cookie_value, SESSION_COOKIE};
use super::hub::{ClientFeed, ClientHandle, ClientId, Kick, Next, SLOW_CONSUMER};
use super::protocol::{self, ws_codes, Channel, ClientOp};
use super::state::MarketData;
use crate::api::rate_limit::RequestRate;
use crate::ingestion::clock;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use oms_domain::ids::AccountId;
use oms_domain::risk::TokenBucket;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// Largest client message; operations are small.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Messages written per flush.
const WRITE_BATCH: usize = 1_024;
/// How often a stuck write checks whether its client fell a whole buffer behind.
const LAG_CHECK: Duration = Duration::from_millis(50);
/// How long a kicked client gets to take its error message and close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub async fn ws_handler(
    State(md): State<MarketData>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let login = match session_cookie(&headers) {
        Some(c) => match md.resolver().account_for_session_cookie(c).await {
            Ok(Some(account)) => Login::As(account, Credential::Session(c.to_string())),
            Ok(None) => Login::Anonymous,
            Err(_) => Login::Unchecked,
        },
        None => Login::Anonymous,
    };
    ws.read_buffer_size(8 * 1024)
        .write_buffer_size(32 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session(md, socket, login))
}

/// What a connection authenticated with, checked again every
/// [`auth_recheck_interval`](super::MarketDataConfig::auth_recheck_interval).
#[derive(Clone)]
enum Credential {
    Session(String),
    ApiKey(String),
}

/// Who a connection is as it opens.
enum Login {
    As(AccountId, Credential),
    Anonymous,
    /// Its session cookie could not be checked: anonymous, and told so.
    Unchecked,
}

/// The `oms_session` cookie, unless the request comes from a page of another origin: a cookie
/// only authenticates a same-origin page (or a client that sends no Origin, which is no browser).
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, SESSION_COOKIE))?;
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if host != Some(origin_host) {
            tracing::debug!(
                origin,
                ?host,
                "ignoring the session cookie of a cross-origin WebSocket"
            );
            return None;
        }
    }
    Some(cookie)
}

async fn session(md: MarketData, socket: WebSocket, login: Login) {
    let ClientHandle { id, feed, kick } = md.hub().connect();
    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(write_loop(
        md.clone(),
        id,
        sink,
        feed,
        kick.clone(),
        md.config().heartbeat_interval,
    ));
    let mut conn = Conn {
        md: md.clone(),
        id,
        account: None,
        credential: None,
        channels: HashMap::new(),
    };
    match login {
        Login::As(account, credential) => {
            conn.account = Some(account);
            conn.credential = Some(credential);
            conn.send(protocol::authenticated(account));
        }
        Login::Anonymous => {}
        Login::Unchecked => conn.send(protocol::error(
            ws_codes::AUTH_UNAVAILABLE,
            "your session could not be checked right now; send auth with an API key, or reconnect shortly",
        )),
    }
    let every = md.config().auth_recheck_interval;
    let mut recheck = interval_at(Instant::now() + every, every);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut limit = MessageLimit::new(md.config().client_message_rate);
    loop {
        tokio::select! {
            _ = recheck.tick() => conn.recheck().await,
            msg = stream.next() => match msg {
                // Control frames pay too: a flood of pings costs a pong each.
                Some(Ok(ref m)) if !matches!(m, Message::Close(_)) && !limit.admit() => {
                    if limit.refused == 1 {
                        conn.send(protocol::error(
                            ws_codes::TOO_MANY_MESSAGES,
                            &format!(
                                "more than {} messages a second: this one was dropped, and a client that keeps on is disconnected",
                                limit.rate.per_second
                            ),
                        ));
                    }
                    if limit.refused > limit.rate.burst {
                        md.hub().kick(id, ws_codes::TOO_MANY_MESSAGES);
                    }
                }
                Some(Ok(Message::Text(text))) => conn.handle(&text).await,
                Some(Ok(Message::Binary(_))) => conn.send(protocol::error(
                    ws_codes::INVALID_MESSAGE,
                    "send JSON text messages",
                )),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(e)) => {
                    // The stream cannot be read past these: close, saying why.
                    if let Some(reason) = unreadable(e) {
                        md.hub().kick(id, reason);
                    }
                    break;
                }
                Some(Ok(Message::Close(_))) | None => break,
            },
            _ = kick.wait() => break,
        }
    }
    md.hub().disconnect(id);
    // The writer ends once the hub has dropped the queue, or after telling a kicked client why.
    let _ = writer.await;
}

/// The reason to give a client whose message could not be read, if it is the client's fault
/// (not a dropped connection).
fn unreadable(e: axum::Error) -> Option<&'static str> {
    match e
        .into_inner()
        .downcast::<tungstenite::Error>()
        .ok()?
        .as_ref()
    {
        tungstenite::Error::Capacity(_) => Some(ws_codes::MESSAGE_TOO_BIG),
        tungstenite::Error::Utf8(_) => Some(ws_codes::INVALID_UTF8),
        _ => None,
    }
}

/// Longest channel name a client may send (the longest real one is a few dozen bytes); a
/// longer one is refused without being echoed back whole.
const MAX_CHANNEL_NAME: usize = 64;

/// The first [`MAX_CHANNEL_NAME`] bytes of `name`, cut at a character boundary.
fn clipped(name: &str) -> &str {
    clip(name, MAX_CHANNEL_NAME)
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn clip(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A client's message as an operation, or why it is not one, in the protocol's terms (not
/// the decoder's: its errors name the project's types).
fn parse_op(text: &str) -> Result<ClientOp, String> {
    const EXPECTED: &str = r#"send {"op": "subscribe" | "unsubscribe" | "auth" | "ping", ...}"#;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e}); {EXPECTED}"))?;
    match value.get("op") {
        Some(serde_json::Value::String(op))
            if ["subscribe", "unsubscribe", "auth", "ping"].contains(&op.as_str()) => {}
        Some(serde_json::Value::String(op)) => {
            return Err(format!("unknown op {:?}; {EXPECTED}", clipped(op)))
        }
        _ => return Err(format!("op is missing; {EXPECTED}")),
    }
    // The decoder's message may quote the offending value whole.
    serde_json::from_value(value).map_err(|e| format!("{}; {EXPECTED}", clip(&e.to_string(), 200)))
}

/// The client's message allowance, and how many it sent in a row while refused.
struct MessageLimit {
    rate: RequestRate,
    bucket: TokenBucket,
    refused: u32,
}

impl MessageLimit {
    fn new(rate: RequestRate) -> Self {
        MessageLimit {
            rate,
            bucket: TokenBucket::default(),
            refused: 0,
        }
    }

    fn admit(&mut self) -> bool {
        let admitted = self.rate.per_second == 0
            || self
                .bucket
                .take(clock::now(), self.rate.per_second, self.rate.burst.max(1));
        self.refused = if admitted { 0 } else { self.refused + 1 };
        admitted
    }
}

/// One connection's reader side.
struct Conn {
    md: MarketData,
    id: ClientId,
    account: Option<AccountId>,
    /// What `account` was established with (`None` while anonymous).
    credential: Option<Credential>,
    /// Subscribed channels: public name → hub key.
    channels: HashMap<String, (Channel, String)>,
}

impl Conn {
    fn send(&self, text: String) {
        self.md.hub().send_to(self.id, Utf8Bytes::from(text));
    }

    async fn handle(&mut self, text: &str) {
        let op = match parse_op(text) {
            Ok(op) => op,
            Err(why) => return self.send(protocol::error(ws_codes::INVALID_MESSAGE, &why)),
        };
        match op {
            ClientOp::Subscribe { channels } => self.subscribe(channels),
            ClientOp::Unsubscribe { channels } => self.unsubscribe(channels),
            ClientOp::Auth { api_key } => self.auth(&api_key).await,
            ClientOp::Ping => self.send(protocol::pong(clock::now().0)),
        }
    }

    fn subscribe(&mut self, names: Vec<String>) {
        if names.is_empty() {
            // Otherwise nothing at all would answer it.
            return self.send(protocol::error(
                ws_codes::INVALID_MESSAGE,
                "channels is empty: name at least one channel to subscribe to",
            ));
        }
        let max = self.md.config().max_channels_per_client;
        let mut accepted: Vec<(String, Channel, String)> = Vec::new();
        for name in names {
            if name.len() > MAX_CHANNEL_NAME {
                self.send(protocol::channel_error(
                    ws_codes::INVALID_CHANNEL,
                    &format!("a channel name is at most {MAX_CHANNEL_NAME} bytes"),
                    clipped(&name),
                ));
                continue;
            }
            let channel = match Channel::parse(&name) {
                Ok(c) => c,
                Err(e) => {
                    self.send(protocol::channel_error(
                        ws_codes::INVALID_CHANNEL,
                        &e,
                        &name,
                    ));
                    continue;
                }
            };
            let name = channel.name();
            if accepted.iter().any(|(n, ..)| *n == name) {
                continue;
            }
            if !self.channels.contains_key(&name) && self.channels.len() + accepted.len() >= max {
                self.send(protocol::channel_error(
                    ws_codes::TOO_MANY_CHANNELS,
                    &format!("at most {max} channels per connection"),
                    &name,
                ));
                continue;
            }
            match self.md.check_subscription(&channel, self.account) {
                Ok(key) => accepted.push((name, channel, key)),
                Err((code, msg)) => self.send(protocol::channel_error(code, &msg, &name)),
            }
        }
        if accepted.is_empty() {
            return;
        }
        let names: Vec<String> = accepted.iter().map(|(n, ..)| n.clone()).collect();
        self.send(protocol::subscribed(&names));
        for (name, channel, key) in accepted {
            if self.md.subscribe(self.id, &channel, &key) {
                self.channels.insert(name, (channel, key));
            }
        }
    }

    fn unsubscribe(&mut self, names: Vec<String>) {
        let mut done = Vec::new();
        // A name too long to be a channel was never subscribed: not echoed back.
        for name in names.into_iter().filter(|n| n.len() <= MAX_CHANNEL_NAME) {
            let name = Channel::parse(&name).map_or(name, |c| c.name());
            if let Some((_, key)) = self.channels.remove(&name) {
                self.md.hub().unsubscribe(self.id, &key);
            }
            done.push(name);
        }
        self.send(protocol::unsubscribed(&done));
    }

    async fn auth(&mut self, api_key: &str) {
        let account = match self.md.resolver().account_for_api_key(api_key).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                return self.send(protocol::error(ws_codes::UNAUTHORIZED, "unknown API key"))
            }
            Err(_) => {
                return self.send(protocol::error(
                    ws_codes::AUTH_UNAVAILABLE,
                    "the API key could not be checked right now; send auth again shortly",
                ))
            }
        };
        self.credential = Some(Credential::ApiKey(api_key.to_string()));
        let previous = self.account.replace(account);
        self.send(protocol::authenticated(account));
        if previous != Some(account) {
            // Never keep delivering the previous account's private messages.
            if let Some((channel, old)) = self.channels.remove("orders") {
                self.md.hub().unsubscribe(self.id, &old);
                let key = protocol::orders_key(account);
                if self.md.subscribe(self.id, &channel, &key) {
                    self.channels.insert("orders".into(), (channel, key));
                }
            }
        }
    }
}

impl Conn {
    /// Checks the connection's key or session again: once it no longer names the account (the
    /// key revoked, the session expired or signed out), the private channel ends and the
    /// connection is anonymous. If it cannot be checked, nothing changes until the next check:
    /// the account store being down is no reason to cut off a client whose key was good a
    /// moment ago.
    async fn recheck(&mut self) {
        let (Some(account), Some(credential)) = (self.account, self.credential.clone()) else {
            return;
        };
        let resolver = self.md.resolver();
        let now = match &credential {
            Credential::Session(cookie) => resolver.account_for_session_cookie(cookie).await,
            Credential::ApiKey(key) => resolver.account_for_api_key(key).await,
        };
        match now {
            Ok(Some(a)) if a == account => {}
            Ok(_) => self.sign_out(account),
            Err(_) => {}
        }
    }

    fn sign_out(&mut self, account: AccountId) {
        tracing::info!(client = self.id, account = %account, "a WebSocket client's key or session is no longer valid; its private channel ends");
        self.account = None;
        self.credential = None;
        if let Some((_, key)) = self.channels.remove("orders") {
            self.md.hub().unsubscribe(self.id, &key);
        }
        self.send(protocol::channel_error(
            ws_codes::UNAUTHORIZED,
            "your API key or session is no longer valid (revoked, or the session expired or signed out): the orders channel has ended; authenticate again to resubscribe",
            "orders",
        ));
    }
}

type Sink = SplitSink<WebSocket, Message>;

async fn write_loop(
    md: MarketData,
    id: ClientId,
    mut sink: Sink,
    mut feed: ClientFeed,
    kick: Arc<Kick>,
    heartbeat: Duration,
) {
    let flush_every = md.config().flush_interval;
    let mut last_write = Instant::now() - flush_every;
    let mut beat = interval_at(Instant::now() + heartbeat, heartbeat);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // At most one write per interval: under a steady stream everything that came meanwhile
        // goes out together (one wake-up and one socket write instead of many), for a delay
        // of at most the interval. After a quiet spell a message goes out at once.
        if let Some(wait) = (last_write + flush_every).checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        if let Some(reason) = kick.reason() {
            return close_with(&mut sink, reason).await;
        }
        // A kick drops the client's command queue, which ends `next` with `Closed`.
        let first = tokio::select! {
            biased;
            next = feed.next() => match next {
                Next::Message(m) => m,
                Next::Lagged => {
                    md.hub().kick(id, SLOW_CONSUMER);
                    continue;
                }
                Next::Closed => match kick.reason() {
                    Some(reason) => return close_with(&mut sink, reason).await,
                    None => {
                        let _ = sink.close().await;
                        return;
                    }
                },
            },
            _ = beat.tick() => Utf8Bytes::from(protocol::heartbeat(clock::now().0)),
        };
        let mut batch = vec![first];
        let mut lagged = false;
        while batch.len() < WRITE_BATCH {
            match feed.try_next() {
                Some(Next::Message(m)) => batch.push(m),
                Some(Next::Lagged) => {
                    lagged = true;
                    break;
                }
                Some(Next::Closed) | None => break,
            }
        }
        if lagged {
            md.hub().kick(id, SLOW_CONSUMER);
            continue;
        }
        last_write = Instant::now();
        let written = {
            let write = write_all(&mut sink, batch);
            tokio::pin!(write);
            match (&mut write).now_or_never() {
                Some(r) => Ok(r),
                // A client that stops reading blocks the write. Meanwhile the kick still gets
                // through, and falling a whole buffer behind is noticed.
                None => {
                    let mut check = interval_at(Instant::now() + LAG_CHECK, LAG_CHECK);
                    loop {
                        tokio::select! {
                            biased;
                            reason = kick.wait() => break Err(reason),
                            r = &mut write => break Ok(r),
                            _ = check.tick() => {
                                if feed.lagging() {
                                    md.hub().kick(id, SLOW_CONSUMER);
                                }
                            }
                        }
                    }
                }
            }
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(reason) => return close_with(&mut sink, reason).await,
        }
    }
}

/// Writes a batch of messages with one flush.
async fn write_all(sink: &mut Sink, batch: Vec<Utf8Bytes>) -> Result<(), axum::Error> {
    for m in batch {
        sink.feed(Message::Text(m)).await?;
    }
    sink.flush().await
}

/// Tells the client why it is dropped, then closes; gives up after a grace period (a client
/// that does not read cannot be told).
async fn close_with(sink: &mut Sink, reason: &'static str) {
    let (code, message) = match reason {
        ws_codes::SLOW_CONSUMER => (
            close_code::POLICY,
            "the client did not keep up with its messages",
        ),
        ws_codes::TOO_MANY_MESSAGES => (
            close_code::POLICY,
            "the client kept sending over its message rate",
        ),
        ws_codes::MESSAGE_TOO_BIG => (
            close_code::SIZE,
            "a message to the server is at most 64 KiB",
        ),
        ws_codes::INVALID_UTF8 => (close_code::INVALID, "a text message must be UTF-8"),
        _ => (close_code::POLICY, "connection closed by the server"),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        sink.send(Message::Text(protocol::error(reason, message).into()))
            .await?;
        sink.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await
    })
    .await;
}
