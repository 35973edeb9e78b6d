//! Fan-out of live messages to WebSocket clients.
//!
//! Each client has a bounded queue. Publishing never waits: a message is serialised once and
//! offered to every subscriber's queue with `try_send`; a client whose queue is full is dropped
//! from every channel and told why ([`Kick`]), so a slow reader never slows the feed or anyone
//! else. Each channel numbers its messages, so a client can see if it missed one.

use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::{mpsc, Notify};

pub type ClientId = u64;

/// The reason a client is cut off: its queue overflowed.
pub const SLOW_CONSUMER: &str = "SLOW_CONSUMER";

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

/// What a connection gets from [`Hub::connect`].
pub struct ClientHandle {
    pub id: ClientId,
    pub rx: mpsc::Receiver<Utf8Bytes>,
    pub kick: Arc<Kick>,
}

#[derive(Debug, Default)]
pub struct HubStats {
    pub connected: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_sent: AtomicU64,
    pub slow_consumers: AtomicU64,
}

#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
    pub stats: HubStats,
}

#[derive(Default)]
struct HubState {
    next_id: ClientId,
    clients: HashMap<ClientId, Client>,
    channels: HashMap<String, Channel>,
}

struct Client {
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Kick>,
    channels: HashSet<String>,
}

#[derive(Default)]
struct Channel {
    seq: u64,
    subscribers: Vec<ClientId>,
}

enum Offer {
    Queued,
    Full,
    Gone,
}

fn offer(tx: &mpsc::Sender<Utf8Bytes>, msg: Utf8Bytes) -> Offer {
    match tx.try_send(msg) {
        Ok(()) => Offer::Queued,
        Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
        Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves plain maps behind; they stay usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new client with a queue of `buffer` messages.
    pub fn connect(&self, buffer: usize) -> ClientHandle {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let kick = Arc::new(Kick::default());
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.clients.insert(
            id,
            Client {
                tx,
                kick: kick.clone(),
                channels: HashSet::new(),
            },
        );
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        self.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        ClientHandle { id, rx, kick }
    }

    /// Forgets a client (its connection ended).
    pub fn disconnect(&self, id: ClientId) {
        let mut st = self.lock();
        if Self::remove_locked(&mut st, id).is_some() {
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn remove_locked(st: &mut HubState, id: ClientId) -> Option<Client> {
        let client = st.clients.remove(&id)?;
        for name in &client.channels {
            if let Some(ch) = st.channels.get_mut(name) {
                ch.subscribers.retain(|&c| c != id);
                if ch.subscribers.is_empty() {
                    st.channels.remove(name);
                }
            }
        }
        Some(client)
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
            .map_or(0, |c| c.subscribers.len())
    }

    pub fn is_subscribed(&self, id: ClientId, channel: &str) -> bool {
        self.lock()
            .clients
            .get(&id)
            .is_some_and(|c| c.channels.contains(channel))
    }

    pub fn channels_of(&self, id: ClientId) -> Vec<String> {
        self.lock()
            .clients
            .get(&id)
            .map(|c| c.channels.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Queues a message for one client; a full queue kicks it. False if the client is gone.
    pub fn send_to(&self, id: ClientId, msg: Utf8Bytes) -> bool {
        let mut st = self.lock();
        self.send_locked(&mut st, id, msg)
    }

    fn send_locked(&self, st: &mut HubState, id: ClientId, msg: Utf8Bytes) -> bool {
        let Some(client) = st.clients.get(&id) else {
            return false;
        };
        match offer(&client.tx, msg) {
            Offer::Queued => true,
            Offer::Full => {
                self.kick_locked(st, id, SLOW_CONSUMER);
                false
            }
            Offer::Gone => {
                self.kick_locked(st, id, "CLOSED");
                false
            }
        }
    }

    /// Subscribes a client. `initial` builds the messages the client gets first (a depth
    /// snapshot, the current candle) from the channel's current sequence; they are queued
    /// before any later publication on the channel. Subscribing twice only resends `initial`.
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
        let seq = st.channels.get(channel).map_or(0, |c| c.seq);
        if let Some(first) = initial(seq) {
            if !self.send_locked(&mut st, id, first.into()) {
                return false;
            }
        }
        let client = st.clients.get_mut(&id).expect("checked above");
        if client.channels.insert(channel.to_string()) {
            st.channels
                .entry(channel.to_string())
                .or_default()
                .subscribers
                .push(id);
        }
        true
    }

    pub fn unsubscribe(&self, id: ClientId, channel: &str) -> bool {
        let mut st = self.lock();
        let Some(client) = st.clients.get_mut(&id) else {
            return false;
        };
        if !client.channels.remove(channel) {
            return false;
        }
        if let Some(ch) = st.channels.get_mut(channel) {
            ch.subscribers.retain(|&c| c != id);
            if ch.subscribers.is_empty() {
                st.channels.remove(channel);
            }
        }
        true
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
        let msg = Utf8Bytes::from(build(ch.seq));
        let mut queued = 0;
        let mut dropped: Vec<(ClientId, &'static str)> = Vec::new();
        let HubState {
            clients, channels, ..
        } = &mut *st;
        for id in &channels[channel].subscribers {
            match clients.get(id).map(|c| offer(&c.tx, msg.clone())) {
                Some(Offer::Queued) => queued += 1,
                Some(Offer::Full) => dropped.push((*id, SLOW_CONSUMER)),
                Some(Offer::Gone) | None => dropped.push((*id, "CLOSED")),
            }
        }
        for (id, reason) in dropped {
            self.kick_locked(&mut st, id, reason);
        }
        self.stats
            .messages_sent
            .fetch_add(queued as u64, Ordering::Relaxed);
        queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fans_out_in_order_with_channel_sequences() {
        let hub = Hub::new();
        let mut a = hub.connect(8);
        let mut b = hub.connect(8);
        assert!(hub.subscribe(a.id, "trades:X", |_| None));
        assert!(hub.subscribe(b.id, "trades:X", |seq| Some(format!("hello {seq}"))));
        assert_eq!(hub.publish("trades:X", None, |s| format!("m{s}")), 2);
        assert_eq!(hub.publish("trades:Y", None, |s| format!("m{s}")), 0);
        assert_eq!(hub.publish("trades:X", None, |s| format!("m{s}")), 2);
        assert_eq!(&*a.rx.recv().await.unwrap(), "m1");
        assert_eq!(&*a.rx.recv().await.unwrap(), "m2");
        assert_eq!(&*b.rx.recv().await.unwrap(), "hello 0");
        assert_eq!(&*b.rx.recv().await.unwrap(), "m1");
        assert!(hub.unsubscribe(a.id, "trades:X"));
        assert_eq!(hub.publish("trades:X", Some(10), |s| format!("m{s}")), 1);
        assert_eq!(&*b.rx.recv().await.unwrap(), "m2");
        assert_eq!(&*b.rx.recv().await.unwrap(), "m10");
        assert!(a.rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_queue_kicks_only_that_client() {
        let hub = Hub::new();
        let slow = hub.connect(2);
        let mut fast = hub.connect(100);
        hub.subscribe(slow.id, "c", |_| None);
        hub.subscribe(fast.id, "c", |_| None);
        for _ in 0..3 {
            hub.publish("c", None, |s| s.to_string());
        }
        assert_eq!(slow.kick.reason(), Some(SLOW_CONSUMER));
        assert_eq!(slow.kick.wait().await, SLOW_CONSUMER);
        assert!(!hub.is_subscribed(slow.id, "c"));
        assert_eq!(hub.subscriber_count("c"), 1);
        assert_eq!(hub.stats.slow_consumers.load(Ordering::Relaxed), 1);
        for s in 1..=3 {
            assert_eq!(&*fast.rx.recv().await.unwrap(), s.to_string());
        }
        assert!(fast.kick.reason().is_none());
    }
}
