//! Fan-out of live messages to WebSocket clients.
//!
//! Each channel is one ring of recent messages (a `tokio::sync::broadcast`): publishing
//! serialises a message once and stores it once, whatever the number of subscribers, and never
//! waits. Each client reads every channel it subscribed to at its own pace. A client that falls
//! a whole ring behind on any channel (its buffer is full) is cut off and told why ([`Kick`]),
//! so a slow reader never slows the feed or anyone else. Each channel numbers its messages, so
//! a client can also see for itself that it missed none.
//!
//! Messages for one client only (acknowledgements, snapshots, errors) and changes to its
//! subscriptions travel on the client's own small command queue, in order: a subscription's
//! first message (a depth snapshot, say) is queued before the client starts reading the
//! channel's ring from the position it had when the snapshot was taken.

use axum::extract::ws::Utf8Bytes;
use futures_util::future::select_all;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, Notify};

pub type ClientId = u64;

/// The reason a client is cut off: it fell a whole buffer behind.
pub const SLOW_CONSUMER: &str = "SLOW_CONSUMER";
/// Messages a channel keeps for its slowest reader, unless configured otherwise.
pub const DEFAULT_BUFFER: usize = 4_096;
/// Commands (direct messages, subscription changes) queued per client.
const COMMAND_QUEUE: usize = 1_024;

/// A one-shot signal telling a client's writer to close the connection, with the reason.
#[derive(Default)]
pub struct Kick {
    reason: OnceLock<&'static str>,
    notify: Notify,
}

impl Kick {
    fn fire(&self, reason: &'static str) {
        if self.reason.set(reason).is_ok() {
            self.notify.notify_one();
        }
    }

    pub fn reason(&self) -> Option<&'static str> {
        self.reason.get().copied()
    }

    /// Resolves once the client has been kicked.
    pub async fn wait(&self) -> &'static str {
        loop {
            if let Some(r) = self.reason() {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

/// What the hub tells one client's writer.
pub enum Command {
    /// A message for this client only.
    Send(Utf8Bytes),
    /// Start reading a channel's ring (replacing an earlier reader of the same channel).
    Subscribe {
        key: String,
        feed: broadcast::Receiver<Utf8Bytes>,
    },
    Unsubscribe {
        key: String,
    },
}

/// The next thing for a client's socket.
pub enum Next {
    Message(Utf8Bytes),
    /// The client fell a whole buffer behind on a channel.
    Lagged,
    /// The hub forgot the client.
    Closed,
}

/// Everything one client reads: its command queue and the rings of its channels.
pub struct ClientFeed {
    commands: mpsc::Receiver<Command>,
    feeds: Vec<(String, broadcast::Receiver<Utf8Bytes>)>,
    /// Round-robin start, so one busy channel does not starve the others.
    turn: usize,
    capacity: usize,
}

impl ClientFeed {
    fn apply(&mut self, cmd: Command) -> Option<Utf8Bytes> {
        match cmd {
            Command::Send(m) => Some(m),
            Command::Subscribe { key, feed } => {
                self.feeds.retain(|(k, _)| *k != key);
                self.feeds.push((key, feed));
                None
            }
            Command::Unsubscribe { key } => {
                self.feeds.retain(|(k, _)| *k != key);
                None
            }
        }
    }

    /// The next message if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<Next> {
        loop {
            match self.commands.try_recv() {
                Ok(cmd) => {
                    if let Some(m) = self.apply(cmd) {
                        return Some(Next::Message(m));
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Some(Next::Closed),
            }
        }
        let n = self.feeds.len();
        let mut closed = None;
        for i in 0..n {
            let at = (self.turn + i) % n;
            match self.feeds[at].1.try_recv() {
                Ok(m) => {
                    self.turn = at + 1;
                    return Some(Next::Message(m));
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Lagged(_)) => return Some(Next::Lagged),
                Err(TryRecvError::Closed) => closed = Some(at),
            }
        }
        if let Some(at) = closed {
            self.feeds.remove(at);
        }
        None
    }

    /// Waits for the next message.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(n) = self.try_next() {
                return n;
            }
            let ClientFeed {
                commands, feeds, ..
            } = self;
            let got = if feeds.is_empty() {
                Err(commands.recv().await)
            } else {
                let any = select_all(feeds.iter_mut().map(|(_, rx)| Box::pin(rx.recv())));
                tokio::select! {
                    cmd = commands.recv() => Err(cmd),
                    (r, at, _) = any => Ok((r, at)),
                }
            };
            match got {
                Err(None) => return Next::Closed,
                Err(Some(cmd)) => {
                    if let Some(m) = self.apply(cmd) {
                        return Next::Message(m);
                    }
                }
                Ok((Ok(m), _)) => return Next::Message(m),
                Ok((Err(RecvError::Lagged(_)), _)) => return Next::Lagged,
                Ok((Err(RecvError::Closed), at)) => {
                    self.feeds.remove(at);
                }
            }
        }
    }

    /// True once a channel holds more unread messages than its ring keeps: the client will
    /// miss some. Checked while a write to the client is stuck.
    pub fn lagging(&self) -> bool {
        self.feeds.iter().any(|(_, rx)| rx.len() > self.capacity)
    }
}

/// What a connection gets from [`Hub::connect`].
pub struct ClientHandle {
    pub id: ClientId,
    pub feed: ClientFeed,
    pub kick: Arc<Kick>,
}

#[derive(Debug, Default)]
pub struct HubStats {
    pub connected: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_sent: AtomicU64,
    pub slow_consumers: AtomicU64,
}

pub struct Hub {
    state: Mutex<HubState>,
    /// Ring size of every channel (a power of two).
    capacity: usize,
    pub stats: HubStats,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(DEFAULT_BUFFER)
    }
}

#[derive(Default)]
struct HubState {
    next_id: ClientId,
    clients: HashMap<ClientId, Client>,
    channels: HashMap<String, Channel>,
}

struct Client {
    commands: mpsc::Sender<Command>,
    kick: Arc<Kick>,
    channels: HashSet<String>,
}

struct Channel {
    seq: u64,
    ring: broadcast::Sender<Utf8Bytes>,
    subscribers: usize,
}

impl Hub {
    /// A hub whose channels keep `buffer` messages for their slowest reader.
    pub fn new(buffer: usize) -> Self {
        Hub {
            state: Mutex::new(HubState::default()),
            capacity: buffer.max(2).next_power_of_two(),
            stats: HubStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves plain maps behind; they stay usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn connect(&self) -> ClientHandle {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let kick = Arc::new(Kick::default());
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.clients.insert(
            id,
            Client {
                commands: tx,
                kick: kick.clone(),
                channels: HashSet::new(),
            },
        );
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        self.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        ClientHandle {
            id,
            feed: ClientFeed {
                commands: rx,
                feeds: Vec::new(),
                turn: 0,
                capacity: self.capacity,
            },
            kick,
        }
    }

    /// Forgets a client (its connection ended).
    pub fn disconnect(&self, id: ClientId) {
        let mut st = self.lock();
        if Self::remove_locked(&mut st, id).is_some() {
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Cuts a client off: it leaves every channel and its writer closes with `reason`.
    pub fn kick(&self, id: ClientId, reason: &'static str) {
        let mut st = self.lock();
        self.kick_locked(&mut st, id, reason);
    }

    fn remove_locked(st: &mut HubState, id: ClientId) -> Option<Client> {
        let client = st.clients.remove(&id)?;
        for name in &client.channels {
            Self::leave_locked(st, name);
        }
        Some(client)
    }

    fn leave_locked(st: &mut HubState, name: &str) {
        if let Some(ch) = st.channels.get_mut(name) {
            ch.subscribers -= 1;
            if ch.subscribers == 0 {
                st.channels.remove(name);
            }
        }
    }

    fn kick_locked(&self, st: &mut HubState, id: ClientId, reason: &'static str) {
        if let Some(client) = Self::remove_locked(st, id) {
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
            if reason == SLOW_CONSUMER {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
            client.kick.fire(reason);
        }
    }

    pub fn has_subscribers(&self, channel: &str) -> bool {
        self.lock().channels.contains_key(channel)
    }

    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.lock()
            .channels
            .get(channel)
            .map_or(0, |c| c.subscribers)
    }

    pub fn is_subscribed(&self, id: ClientId, channel: &str) -> bool {
        self.lock()
            .clients
            .get(&id)
            .is_some_and(|c| c.channels.contains(channel))
    }

    fn command_locked(&self, st: &mut HubState, id: ClientId, cmd: Command) -> bool {
        let Some(client) = st.clients.get(&id) else {
            return false;
        };
        match client.commands.try_send(cmd) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick_locked(st, id, SLOW_CONSUMER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.kick_locked(st, id, "CLOSED");
                false
            }
        }
    }

    /// Queues a message for one client; a full queue kicks it. False if the client is gone.
    pub fn send_to(&self, id: ClientId, msg: Utf8Bytes) -> bool {
        let mut st = self.lock();
        self.command_locked(&mut st, id, Command::Send(msg))
    }

    /// Subscribes a client. `initial` builds the client's first message on the channel (a
    /// depth snapshot, the current candle) from the channel's current sequence; the client
    /// then reads every message published after it. Subscribing again restarts the channel.
    pub fn subscribe(
        &self,
        id: ClientId,
        channel: &str,
        initial: impl FnOnce(u64) -> Option<String>,
    ) -> bool {
        let mut st = self.lock();
        if !st.clients.contains_key(&id) {
            return false;
        }
        let capacity = self.capacity;
        let ch = st
            .channels
            .entry(channel.to_string())
            .or_insert_with(|| Channel {
                seq: 0,
                ring: broadcast::channel(capacity).0,
                subscribers: 0,
            });
        let feed = ch.ring.subscribe();
        let seq = ch.seq;
        let fresh = st
            .clients
            .get_mut(&id)
            .expect("checked above")
            .channels
            .insert(channel.to_string());
        if fresh {
            st.channels.get_mut(channel).expect("just made").subscribers += 1;
        }
        if let Some(first) = initial(seq) {
            if !self.command_locked(&mut st, id, Command::Send(first.into())) {
                return false;
            }
        }
        let key = channel.to_string();
        self.command_locked(&mut st, id, Command::Subscribe { key, feed })
    }

    pub fn unsubscribe(&self, id: ClientId, channel: &str) -> bool {
        let mut st = self.lock();
        let Some(client) = st.clients.get_mut(&id) else {
            return false;
        };
        if !client.channels.remove(channel) {
            return false;
        }
        Self::leave_locked(&mut st, channel);
        let key = channel.to_string();
        self.command_locked(&mut st, id, Command::Unsubscribe { key })
    }

    /// Publishes on a channel. The message is built once, from the channel's next sequence
    /// (or `seq` when the source numbers its messages itself, as the depth book does), and
    /// only when someone listens. Returns how many clients it was queued for.
    pub fn publish(
        &self,
        channel: &str,
        seq: Option<u64>,
        build: impl FnOnce(u64) -> String,
    ) -> usize {
        let mut st = self.lock();
        let Some(ch) = st.channels.get_mut(channel) else {
            return 0;
        };
        ch.seq = seq.unwrap_or(ch.seq + 1);
        let n = ch.ring.send(Utf8Bytes::from(build(ch.seq))).unwrap_or(0);
        self.stats
            .messages_sent
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(feed: &mut ClientFeed) -> String {
        match feed.next().await {
            Next::Message(m) => m.to_string(),
            Next::Lagged => "LAGGED".into(),
            Next::Closed => "CLOSED".into(),
        }
    }

    #[tokio::test]
    async fn fans_out_in_order_with_channel_sequences() {
        let hub = Hub::new(8);
        let mut a = hub.connect();
        let mut b = hub.connect();
        assert!(hub.subscribe(a.id, "trades:X", |_| None));
        assert_eq!(hub.publish("trades:X", None, |s| format!("m{s}")), 1);
        assert!(hub.subscribe(b.id, "trades:X", |seq| Some(format!("hello {seq}"))));
        assert_eq!(hub.publish("trades:Y", None, |s| format!("m{s}")), 0);
        assert_eq!(hub.publish("trades:X", None, |s| format!("m{s}")), 2);
        assert_eq!(text(&mut a.feed).await, "m1");
        assert_eq!(text(&mut a.feed).await, "m2");
        // b joined after m1: its first message says so, then it reads what came after.
        assert_eq!(text(&mut b.feed).await, "hello 1");
        assert_eq!(text(&mut b.feed).await, "m2");
        assert!(hub.unsubscribe(a.id, "trades:X"));
        assert_eq!(hub.subscriber_count("trades:X"), 1);
        hub.publish("trades:X", Some(10), |s| format!("m{s}"));
        assert_eq!(text(&mut b.feed).await, "m10");
        // a leaves the channel before reading on: it never sees m10.
        assert!(a.feed.try_next().is_none());
        assert!(hub.send_to(a.id, "direct".into()));
        assert_eq!(text(&mut a.feed).await, "direct");
        hub.disconnect(a.id);
        assert_eq!(text(&mut a.feed).await, "CLOSED");
    }

    #[tokio::test]
    async fn a_reader_a_whole_ring_behind_is_kicked_and_the_others_read_on() {
        let hub = Hub::new(4);
        let mut slow = hub.connect();
        let mut fast = hub.connect();
        hub.subscribe(slow.id, "c", |_| None);
        hub.subscribe(fast.id, "c", |_| None);
        // Both apply their subscriptions.
        assert!(slow.feed.try_next().is_none());
        for i in 1..=6 {
            hub.publish("c", None, |s| s.to_string());
            if i <= 4 {
                assert_eq!(text(&mut fast.feed).await, i.to_string());
            }
        }
        assert!(slow.feed.lagging());
        assert!(matches!(slow.feed.next().await, Next::Lagged));
        hub.kick(slow.id, SLOW_CONSUMER);
        assert_eq!(slow.kick.wait().await, SLOW_CONSUMER);
        assert!(!hub.is_subscribed(slow.id, "c"));
        assert_eq!(hub.subscriber_count("c"), 1);
        assert_eq!(hub.stats.slow_consumers.load(Ordering::Relaxed), 1);
        assert_eq!(text(&mut fast.feed).await, "5");
        assert_eq!(text(&mut fast.feed).await, "6");
        assert!(!fast.feed.lagging());
        assert!(fast.kick.reason().is_none());
    }
}
