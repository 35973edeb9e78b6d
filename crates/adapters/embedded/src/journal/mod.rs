//! `JournalIdempotency`: idempotency keys in an append-only journal, indexed in memory.
//!
//! What a key costs in SQLite is mostly its insert into the key index, on a page anywhere in
//! it: a commit of *n* claims writes about *n* pages. Here a claim appends one small record
//! to a file that only grows, and a group of claims shares one write and one sync. The price
//! is memory: every kept key has an entry in a hash map (130–175 bytes with its name:
//! `cargo bench -p oms-embedded --bench embedded_stores`), as every key does in Redis; a
//! completed key's response stays on disk and is read back only when a retry replays it. Opening replays the journal's live segments, so it takes time in
//! proportion to the keys kept (the TTL's worth; 1.3 s per million), not to history: segments whose keys have
//! all expired or been written again later are deleted whole.
//!
//! Durability is the SQLite store's: a claim answers once its record is synced; completions,
//! releases and abandons are written without waiting for a sync. A power failure that undoes
//! one of those leaves the claim, which a retry after its lock resumes from its intent.

mod inbox;
mod record;
mod segments;

use crate::error::{EmbeddedError, EmbeddedResult};
use crate::purge::purge_periodically;
use crate::sqlite::now_ms;
use async_trait::async_trait;
use oms_ports::idempotency::{Claim, ClaimTerms, IdempotencyStore, StoredResponse};
use oms_ports::PortResult;
use record::Record;
use segments::{Location, Segments};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often expired keys are forgotten and dead segments deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// How a journal is kept.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// A new segment file is started once the current one holds this many bytes; segments
    /// are deleted whole.
    pub segment_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: 64 << 20,
        }
    }
}

#[derive(Clone)]
pub struct JournalIdempotency {
    inner: Arc<Inner>,
}

struct Inner {
    /// The index, in shards by key, so that a purge (which looks at every key) holds up the
    /// requests of one shard at a time, and the API's workers rarely wait for each other.
    shards: Vec<Mutex<HashMap<Box<str>, Slot>>>,
    segments: Segments,
}

type Shard = HashMap<Box<str>, Slot>;

const SHARDS: usize = 64;

/// The shard of a key (FNV-1a): the same on every call, cheap for short keys.
fn shard_of(key: &str) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % SHARDS as u64) as usize
}

/// A kept key.
struct Slot {
    state: State,
    expires_at: i64,
    /// The oldest segment the key still needs: its newest record's once written (until then,
    /// its previous record's, or the segment current when it was created).
    seg: u32,
}

/// Boxed where it is large, so that the many completed keys take little room each.
enum State {
    /// In flight.
    Claimed(Box<Claimed>),
    /// Completed, its record still being written: the response is served from here.
    Completing(Box<Completing>),
    /// Completed; the fingerprint and response are in the record at `at`.
    Completed { at: Location },
}

struct Claimed {
    fingerprint: Box<str>,
    lock_until: i64,
    intent: Box<[u8]>,
    /// Tells this claim's record from a later one of the same key.
    ticket: u64,
}

struct Completing {
    fingerprint: Box<str>,
    response: StoredResponse,
    ticket: u64,
}

impl JournalIdempotency {
    /// Opens (or creates) the journal in `dir` and starts its purge task; needs a tokio
    /// runtime. Only one handle may have a directory open; clone it to share.
    pub async fn open(dir: &Path, options: JournalOptions) -> EmbeddedResult<JournalIdempotency> {
        let dir = dir.to_path_buf();
        let inner = tokio::task::spawn_blocking(move || Inner::open(&dir, &options))
            .await
            .map_err(|e| EmbeddedError::Invalid(format!("open task failed: {e}")))??;
        let inner = Arc::new(inner);
        tokio::spawn(purge_periodically(
            Arc::downgrade(&inner),
            PURGE_INTERVAL,
            |inner| async move {
                tokio::task::spawn_blocking(move || inner.purge())
                    .await
                    .map_err(|e| EmbeddedError::Invalid(format!("purge task failed: {e}")))?
            },
        ));
        Ok(JournalIdempotency { inner })
    }

    /// Forgets expired keys and deletes the segments no kept key needs; returns how many keys
    /// were forgotten.
    pub async fn purge_expired(&self) -> EmbeddedResult<usize> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.purge())
            .await
            .map_err(|e| EmbeddedError::Invalid(format!("purge task failed: {e}")))?
    }

    /// How many keys are kept (expired ones until the next purge included).
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.inner.shard(i).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds keys kept by another store (one being replaced), each as its key's newest state;
    /// answers once they are all synced.
    pub async fn import(&self, keys: Vec<KeptKey>) -> EmbeddedResult<usize> {
        let n = keys.len();
        let mut pending = Vec::with_capacity(n);
        for (i, k) in keys.into_iter().enumerate() {
            let ticket = next_ticket();
            let expires_at = k.expires_at;
            let (record, state) = k.into_record(ticket);
            let mut keys = self.inner.keys(record.key());
            // Only the last is synced, and with it every one before: they are in the same
            // file, or in a segment synced when it filled.
            let seg = self.inner.segments.current();
            let written = self.inner.segments.append(&record, i + 1 == n)?;
            keys.insert(
                record.key().into(),
                Slot {
                    state,
                    expires_at,
                    seg,
                },
            );
            drop(keys);
            pending.push((record, ticket, written));
        }
        for (record, ticket, written) in pending {
            let at = wait(written).await?;
            self.inner.written(record.key(), ticket, at);
        }
        Ok(n)
    }

    /// Every kept key with its state, for a store that replaces this one.
    pub async fn kept_keys(&self) -> EmbeddedResult<Vec<KeptKey>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.kept_keys())
            .await
            .map_err(|e| EmbeddedError::Invalid(format!("export task failed: {e}")))?
    }
}

/// A key with its whole state, moved between stores when one replaces another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptKey {
    pub key: String,
    pub fingerprint: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    /// For a claim in flight: until when it keeps other requests out.
    pub lock_until: i64,
    pub intent: Vec<u8>,
    /// Present for a completed key.
    pub response: Option<StoredResponse>,
}

impl KeptKey {
    fn into_record(self, ticket: u64) -> (Record, State) {
        match self.response {
            Some(response) => (
                Record::Done {
                    key: self.key,
                    fingerprint: self.fingerprint.clone(),
                    expires_at: self.expires_at,
                    response: response.clone(),
                },
                State::Completing(Box::new(Completing {
                    fingerprint: self.fingerprint.into(),
                    response,
                    ticket,
                })),
            ),
            None => (
                Record::Claim {
                    key: self.key,
                    fingerprint: self.fingerprint.clone(),
                    expires_at: self.expires_at,
                    lock_until: self.lock_until,
                    intent: self.intent.clone(),
                },
                State::Claimed(Box::new(Claimed {
                    fingerprint: self.fingerprint.into(),
                    lock_until: self.lock_until,
                    intent: self.intent.into(),
                    ticket,
                })),
            ),
        }
    }
}

fn next_ticket() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn wait(
    written: tokio::sync::oneshot::Receiver<Result<Location, String>>,
) -> EmbeddedResult<Location> {
    written
        .await
        .map_err(|_| EmbeddedError::Closed("the idempotency journal writer"))?
        .map_err(|e| EmbeddedError::io(e, std::io::Error::other("journal write failed")))
}

impl Inner {
    fn open(dir: &Path, options: &JournalOptions) -> EmbeddedResult<Inner> {
        let now = now_ms();
        let mut shards: Vec<Shard> = (0..SHARDS).map(|_| HashMap::new()).collect();
        let segments = Segments::open(dir, options.segment_bytes, SHARDS, |at, record| {
            let keys = &mut shards[shard_of(record.key())];
            match record {
                Record::Claim {
                    key,
                    fingerprint,
                    expires_at,
                    lock_until,
                    intent,
                } => {
                    keys.insert(
                        key.into(),
                        Slot {
                            state: State::Claimed(Box::new(Claimed {
                                fingerprint: fingerprint.into(),
                                lock_until,
                                intent: intent.into(),
                                ticket: 0,
                            })),
                            expires_at,
                            seg: at.seg,
                        },
                    );
                }
                Record::Done {
                    key, expires_at, ..
                } => {
                    keys.insert(
                        key.into(),
                        Slot {
                            state: State::Completed { at },
                            expires_at,
                            seg: at.seg,
                        },
                    );
                }
                Record::Release { key } => {
                    if matches!(
                        keys.get(key.as_str()),
                        Some(Slot {
                            state: State::Claimed(_),
                            ..
                        })
                    ) {
                        keys.remove(key.as_str());
                    }
                }
            }
        })?;
        let mut kept = 0;
        for keys in &mut shards {
            keys.retain(|_, s| s.expires_at > now);
            kept += keys.len();
        }
        tracing::info!(keys = kept, dir = %dir.display(), "idempotency journal opened");
        Ok(Inner {
            shards: shards.into_iter().map(Mutex::new).collect(),
            segments,
        })
    }

    /// The shard holding `key`, brought up to date with the records written behind.
    fn keys(&self, key: &str) -> MutexGuard<'_, Shard> {
        self.shard(shard_of(key))
    }

    /// Shard `i`, brought up to date with the records written behind.
    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        let mut keys = self.shards[i].lock().expect("idempotency keys");
        for (key, ticket, at) in self.segments.take_landed(i) {
            landed(&mut keys, &key, ticket, at);
        }
        keys
    }

    /// Records where the record of `ticket` landed, unless the key has moved on since.
    fn written(&self, key: &str, ticket: u64, at: Location) {
        landed(&mut self.keys(key), key, ticket, at);
    }

    /// Forgets a claim whose record could not be written, unless the key has moved on.
    fn unclaim(&self, key: &str, ticket: u64) {
        let mut keys = self.keys(key);
        if matches!(keys.get(key), Some(Slot { state: State::Claimed(c), .. }) if c.ticket == ticket)
        {
            keys.remove(key);
        }
    }

    fn kept_keys(&self) -> EmbeddedResult<Vec<KeptKey>> {
        let now = now_ms();
        let mut kept = Vec::new();
        for i in 0..SHARDS {
            let keys = self.shard(i);
            for (key, slot) in keys.iter().filter(|(_, s)| s.expires_at > now) {
                let (fingerprint, lock_until, intent, response) = match &slot.state {
                    State::Claimed(c) => (
                        c.fingerprint.to_string(),
                        c.lock_until,
                        c.intent.to_vec(),
                        None,
                    ),
                    State::Completing(c) => (
                        c.fingerprint.to_string(),
                        0,
                        Vec::new(),
                        Some(c.response.clone()),
                    ),
                    State::Completed { at } => match self.segments.read(*at)? {
                        Record::Done {
                            fingerprint,
                            response,
                            ..
                        } => (fingerprint, 0, Vec::new(), Some(response)),
                        other => {
                            return Err(EmbeddedError::Corrupt(format!(
                                "key {key:?} points at a {other:?}, not its completion"
                            )))
                        }
                    },
                };
                kept.push(KeptKey {
                    key: key.to_string(),
                    fingerprint,
                    expires_at: slot.expires_at,
                    lock_until,
                    intent,
                    response,
                });
            }
        }
        Ok(kept)
    }

    fn purge(&self) -> EmbeddedResult<usize> {
        let now = now_ms();
        // Read first: a key created (or moved to a newer record) while the shards are gone
        // through lands in this segment or a later one, and a key's segment only grows.
        let mut oldest = self.segments.current();
        let mut forgotten = 0;
        for i in 0..SHARDS {
            let mut keys = self.shard(i);
            let before = keys.len();
            keys.retain(|_, s| s.expires_at > now);
            forgotten += before - keys.len();
            if let Some(o) = keys.values().map(|s| s.seg).min() {
                oldest = oldest.min(o);
            }
        }
        let deleted = self.segments.delete_before(oldest)?;
        if forgotten > 0 || deleted > 0 {
            tracing::debug!(forgotten, deleted, "purged idempotency journal");
        }
        Ok(forgotten)
    }
}

/// Points a key at its record once written, unless the key has moved on since (`ticket`).
fn landed(keys: &mut HashMap<Box<str>, Slot>, key: &str, ticket: u64, at: Location) {
    let Some(slot) = keys.get_mut(key) else {
        return;
    };
    match &slot.state {
        State::Claimed(c) if c.ticket == ticket => slot.seg = at.seg,
        State::Completing(c) if c.ticket == ticket => {
            slot.state = State::Completed { at };
            slot.seg = at.seg;
        }
        _ => {}
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// What a claim found, decided under the lock.
enum Found {
    Answer(Claim),
    /// Completed: the response is in the record there.
    Read(Location),
    /// Claimed (afresh, or resumed with this intent): wait for the record's sync.
    Wait {
        resumed: Option<Vec<u8>>,
        ticket: u64,
        written: tokio::sync::oneshot::Receiver<Result<Location, String>>,
    },
}

impl Inner {
    fn claim(&self, key: &str, fingerprint: &str, terms: &ClaimTerms<'_>) -> EmbeddedResult<Found> {
        let now = now_ms();
        let (lock, keep) = (ttl_ms(terms.lock), ttl_ms(terms.keep));
        let mut keys = self.keys(key);
        if let Some(slot) = keys.get_mut(key).filter(|s| s.expires_at > now) {
            match &mut slot.state {
                State::Completing(c) => {
                    return Ok(Found::Answer(Claim::Completed {
                        fingerprint: c.fingerprint.to_string(),
                        response: c.response.clone(),
                    }))
                }
                // Read once the lock is released: it may go to the disk.
                State::Completed { at } => return Ok(Found::Read(*at)),
                State::Claimed(c) => {
                    let Claimed {
                        fingerprint: held,
                        lock_until,
                        intent,
                        ticket,
                    } = &mut **c;
                    if *lock_until > now || **held != *fingerprint {
                        return Ok(Found::Answer(Claim::InFlight {
                            fingerprint: held.to_string(),
                        }));
                    }
                    // Abandoned: the retry takes it over as the same request, and the key
                    // lives at least as long as the new lock. Changed only once queued, so a
                    // refused write leaves the key as it was.
                    let new_lock = now.saturating_add(lock);
                    let expires_at = slot.expires_at.max(new_lock);
                    let record = Record::Claim {
                        key: key.to_string(),
                        fingerprint: fingerprint.to_string(),
                        expires_at,
                        lock_until: new_lock,
                        intent: intent.to_vec(),
                    };
                    let written = self.segments.append(&record, true)?;
                    let ticket_now = next_ticket();
                    (*lock_until, *ticket) = (new_lock, ticket_now);
                    slot.expires_at = expires_at;
                    let ticket = ticket_now;
                    return Ok(Found::Wait {
                        resumed: Some(intent.to_vec()),
                        ticket,
                        written,
                    });
                }
            }
        }
        let (lock_until, expires_at) =
            (now.saturating_add(lock), now.saturating_add(keep.max(lock)));
        let ticket = next_ticket();
        let record = Record::Claim {
            key: key.to_string(),
            fingerprint: fingerprint.to_string(),
            expires_at,
            lock_until,
            intent: terms.intent.to_vec(),
        };
        // Read before queuing: the record lands in this segment or a later one.
        let seg = self.segments.current();
        // Queued under the lock, so a key's records reach the journal in the order its
        // states change here.
        let written = self.segments.append(&record, true)?;
        keys.insert(
            key.into(),
            Slot {
                state: State::Claimed(Box::new(Claimed {
                    fingerprint: fingerprint.into(),
                    lock_until,
                    intent: terms.intent.into(),
                    ticket,
                })),
                expires_at,
                seg,
            },
        );
        Ok(Found::Wait {
            resumed: None,
            ticket,
            written,
        })
    }
}

#[async_trait]
impl IdempotencyStore for JournalIdempotency {
    async fn claim_with(
        &self,
        key: &str,
        fingerprint: &str,
        terms: &ClaimTerms<'_>,
    ) -> PortResult<Claim> {
        let mut found = self.inner.claim(key, fingerprint, terms)?;
        // A key found completed may expire, and its segment go, before its record is read;
        // it is then looked up again (and found free).
        for _ in 0..3 {
            let Found::Read(at) = found else { break };
            match self.inner.segments.read(at) {
                Ok(Record::Done {
                    fingerprint,
                    response,
                    ..
                }) => {
                    return Ok(Claim::Completed {
                        fingerprint,
                        response,
                    })
                }
                Ok(other) => {
                    return Err(EmbeddedError::Corrupt(format!(
                        "key {key:?} points at a {other:?}, not its completion"
                    ))
                    .into())
                }
                Err(EmbeddedError::Io { .. }) => {
                    found = self.inner.claim(key, fingerprint, terms)?
                }
                Err(e) => return Err(e.into()),
            }
        }
        match found {
            Found::Answer(claim) => Ok(claim),
            Found::Read(at) => Err(EmbeddedError::Corrupt(format!(
                "key {key:?}: its completion in segment {} cannot be read",
                at.seg
            ))
            .into()),
            Found::Wait {
                resumed,
                ticket,
                written,
            } => match wait(written).await {
                Ok(at) => {
                    self.inner.written(key, ticket, at);
                    Ok(match resumed {
                        Some(intent) => Claim::Resumed { intent },
                        None => Claim::Acquired,
                    })
                }
                Err(e) => {
                    // Not durable, so not held: the request must not run on it.
                    self.inner.unclaim(key, ticket);
                    Err(e.into())
                }
            },
        }
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> PortResult<()> {
        self.complete_at_once(key, fingerprint, response, ttl)
            .expect("the journal completes at once")
    }

    /// The response is served from memory at once and written behind; the key points at its
    /// record once written.
    fn complete_at_once(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> Option<PortResult<()>> {
        let expires_at = now_ms().saturating_add(ttl_ms(ttl));
        let ticket = next_ticket();
        let mut keys = self.inner.keys(key);
        let record = Record::Done {
            key: key.to_string(),
            fingerprint: fingerprint.to_string(),
            expires_at,
            response: response.clone(),
        };
        // Until the record is written its key still needs its claim's segment.
        let seg = keys
            .get(key)
            .map_or_else(|| self.inner.segments.current(), |s| s.seg);
        if let Err(e) = self
            .inner
            .segments
            .append_behind(&record, shard_of(key), ticket)
        {
            return Some(Err(e.into()));
        }
        let Record::Done { response, .. } = record else {
            unreachable!("built above")
        };
        keys.insert(
            key.into(),
            Slot {
                state: State::Completing(Box::new(Completing {
                    fingerprint: fingerprint.into(),
                    response,
                    ticket,
                })),
                expires_at,
                seg,
            },
        );
        Some(Ok(()))
    }

    async fn release(&self, key: &str) -> PortResult<()> {
        let written = {
            let mut keys = self.inner.keys(key);
            // Only a claim in flight is freed: a completed response stays for replays.
            if !matches!(
                keys.get(key),
                Some(Slot {
                    state: State::Claimed(_),
                    ..
                })
            ) {
                return Ok(());
            }
            keys.remove(key);
            self.inner.segments.append(
                &Record::Release {
                    key: key.to_string(),
                },
                false,
            )?
        };
        wait(written).await?;
        Ok(())
    }

    async fn abandon(&self, key: &str) -> PortResult<()> {
        let now = now_ms();
        let (ticket, written) = {
            let mut keys = self.inner.keys(key);
            let Some(slot) = keys.get_mut(key) else {
                return Ok(());
            };
            let State::Claimed(claimed) = &mut slot.state else {
                return Ok(());
            };
            let Claimed {
                fingerprint,
                lock_until,
                intent,
                ticket,
            } = &mut **claimed;
            let new_lock = (*lock_until).min(now);
            // The whole claim again, not a change to it: its older record may be deleted.
            let record = Record::Claim {
                key: key.to_string(),
                fingerprint: fingerprint.to_string(),
                expires_at: slot.expires_at,
                lock_until: new_lock,
                intent: intent.to_vec(),
            };
            // Unsynced: if a crash undoes this, the lock simply runs its course.
            let written = self.inner.segments.append(&record, false)?;
            (*lock_until, *ticket) = (new_lock, next_ticket());
            (*ticket, written)
        };
        let at = wait(written).await?;
        self.inner.written(key, ticket, at);
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        if self.inner.segments.healthy() {
            Ok(())
        } else {
            Err(EmbeddedError::Closed(
                "the idempotency journal (a write failed; restart to recover)",
            )
            .into())
        }
    }
}

#[cfg(test)]
mod tests;
