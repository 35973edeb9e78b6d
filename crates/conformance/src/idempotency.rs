//! The idempotency store suite.

use crate::support::{check, run_id, step};
use oms_ports::idempotency::{Claim, ClaimTerms, IdempotencyStore, StoredResponse};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const SUITE: &str = "idempotency";
const LONG: Duration = Duration::from_secs(3600);
/// Short enough to wait out; the suite sleeps well past it before checking expiry.
const SHORT: Duration = Duration::from_millis(300);
const PAST_SHORT: Duration = Duration::from_millis(1200);

/// Runs every idempotency store check against handles made by `make` (see the crate docs).
pub async fn idempotency_suite<F, Fut, S>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: IdempotencyStore,
{
    let run = run_id();
    let key = |k: &str| format!("conf:{run}:{k}");

    check(SUITE, "ping");
    make().await.ping().await.expect("ping");

    check(
        SUITE,
        "exactly one of 50 concurrent claims acquires the key",
    );
    concurrent_claims(Arc::new(make().await), &key("race")).await;

    check(
        SUITE,
        "in flight, then completed with fingerprint and response",
    );
    claim_then_complete(&make().await, &key("life"), &key("life-other")).await;

    check(SUITE, "release frees a claimed key");
    release_frees(&make().await, &key("release")).await;

    check(SUITE, "keys expire after their TTL");
    ttl_expiry(&make().await, &key("ttl-claim"), &key("ttl-done")).await;

    check(
        SUITE,
        "an abandoned claim is resumed once, with its intent, by the same body only",
    );
    abandoned_claims_resume(Arc::new(make().await), &key("resume"), &key("resume-race")).await;

    check(
        SUITE,
        "an abandoned claim is resumed at once by the same body; completed keys stay",
    );
    abandon_resumes_at_once(
        &make().await,
        &key("abandon"),
        &key("abandon-done"),
        &key("abandon-none"),
    )
    .await;

    check(SUITE, "completed keys survive a reopen");
    survives_reopen(&make, &key("reopen")).await;
}

fn response(status: u16, body: &str) -> StoredResponse {
    StoredResponse {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("location".into(), "/api/v1/orders/123".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

async fn concurrent_claims<S: IdempotencyStore>(store: Arc<S>, key: &str) {
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let (store, key, start) = (store.clone(), key.to_string(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                (
                    i,
                    store
                        .claim(&key, &format!("fp-{i}"), LONG)
                        .await
                        .expect("claim"),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(step("concurrent claim", h).await.unwrap());
    }
    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, c)| *c == Claim::Acquired)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one Acquired, got {winners:?}");
    let winner_fp = format!("fp-{}", winners[0]);
    for (i, c) in &results {
        if *i != winners[0] {
            assert_eq!(
                c,
                &Claim::InFlight {
                    fingerprint: winner_fp.clone()
                },
                "claim {i} sees the winner's request in flight"
            );
        }
    }
}

async fn claim_then_complete(store: &impl IdempotencyStore, key: &str, other: &str) {
    assert_eq!(
        store.claim(key, "body-1", LONG).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(key, "body-2", LONG).await.unwrap(),
        Claim::InFlight {
            fingerprint: "body-1".into()
        },
        "in flight, with the first request's fingerprint"
    );
    assert_eq!(
        store.claim(other, "body-1", LONG).await.unwrap(),
        Claim::Acquired,
        "keys are independent"
    );
    let resp = response(201, r#"{"orderId":"123"}"#);
    store.complete(key, "body-1", &resp, LONG).await.unwrap();
    let done = Claim::Completed {
        fingerprint: "body-1".into(),
        response: resp,
    };
    assert_eq!(
        store.claim(key, "body-1", LONG).await.unwrap(),
        done,
        "replay"
    );
    assert_eq!(
        store.claim(key, "body-2", LONG).await.unwrap(),
        done,
        "a different body sees the stored fingerprint (the caller answers 422)"
    );
    // Binary bodies and no headers round trip too.
    let raw = StoredResponse {
        status: 400,
        headers: vec![],
        body: vec![0, 159, 146, 150, 255],
    };
    store.complete(other, "body-1", &raw, LONG).await.unwrap();
    assert_eq!(
        store.claim(other, "body-1", LONG).await.unwrap(),
        Claim::Completed {
            fingerprint: "body-1".into(),
            response: raw
        }
    );
}

async fn release_frees(store: &impl IdempotencyStore, key: &str) {
    assert_eq!(store.claim(key, "a", LONG).await.unwrap(), Claim::Acquired);
    store.release(key).await.unwrap();
    assert_eq!(
        store.claim(key, "b", LONG).await.unwrap(),
        Claim::Acquired,
        "a released key can be claimed again"
    );
    assert_eq!(
        store.claim(key, "c", LONG).await.unwrap(),
        Claim::InFlight {
            fingerprint: "b".into()
        }
    );
}

async fn ttl_expiry(store: &impl IdempotencyStore, claimed: &str, completed: &str) {
    assert_eq!(
        store.claim(claimed, "a", SHORT).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(completed, "a", LONG).await.unwrap(),
        Claim::Acquired
    );
    store
        .complete(completed, "a", &response(200, "{}"), SHORT)
        .await
        .unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        store.claim(claimed, "b", LONG).await.unwrap(),
        Claim::Acquired,
        "an expired claim can be taken again"
    );
    assert_eq!(
        store.claim(completed, "b", LONG).await.unwrap(),
        Claim::Acquired,
        "an expired response is forgotten"
    );
}

async fn survives_reopen<F, Fut, S>(make: &F, key: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: IdempotencyStore,
{
    let store = make().await;
    assert_eq!(store.claim(key, "fp", LONG).await.unwrap(), Claim::Acquired);
    let resp = response(201, "created");
    store.complete(key, "fp", &resp, LONG).await.unwrap();
    drop(store);
    let store = make().await;
    assert_eq!(
        store.claim(key, "fp", LONG).await.unwrap(),
        Claim::Completed {
            fingerprint: "fp".into(),
            response: resp
        }
    );
}

async fn abandon_resumes_at_once(store: &impl IdempotencyStore, key: &str, done: &str, none: &str) {
    let terms = |intent: &'static [u8]| ClaimTerms {
        intent,
        lock: LONG,
        keep: LONG,
    };
    let in_flight = Claim::InFlight {
        fingerprint: "fp".into(),
    };
    assert_eq!(
        store.claim_with(key, "fp", &terms(b"first")).await.unwrap(),
        Claim::Acquired
    );
    store.abandon(key).await.unwrap();
    assert_eq!(
        store.claim_with(key, "other", &terms(b"x")).await.unwrap(),
        in_flight,
        "another body still finds the key held"
    );
    assert_eq!(
        store
            .claim_with(key, "fp", &terms(b"second"))
            .await
            .unwrap(),
        Claim::Resumed {
            intent: b"first".to_vec()
        },
        "the same body resumes the first request without waiting out its lock"
    );
    assert_eq!(
        store.claim_with(key, "fp", &terms(b"third")).await.unwrap(),
        in_flight,
        "the resumed request holds a lock of its own"
    );

    assert_eq!(
        store.claim(done, "fp", LONG).await.unwrap(),
        Claim::Acquired
    );
    let answer = response(202, "{}");
    store.complete(done, "fp", &answer, LONG).await.unwrap();
    store.abandon(done).await.unwrap();
    assert_eq!(
        store.claim(done, "fp", LONG).await.unwrap(),
        Claim::Completed {
            fingerprint: "fp".into(),
            response: answer
        },
        "a completed key is left as it is"
    );

    store.abandon(none).await.unwrap();
    assert_eq!(
        store.claim(none, "fp", LONG).await.unwrap(),
        Claim::Acquired,
        "abandoning a key never claimed leaves it free"
    );
}

async fn abandoned_claims_resume<S: IdempotencyStore>(store: Arc<S>, key: &str, race: &str) {
    let terms = |intent: &'static [u8]| ClaimTerms {
        intent,
        lock: SHORT,
        keep: LONG,
    };
    let first: &[u8] = &[b'o', 0, b'\n', 255, b'7'];
    assert_eq!(
        store.claim_with(key, "fp", &terms(first)).await.unwrap(),
        Claim::Acquired
    );
    let in_flight = Claim::InFlight {
        fingerprint: "fp".into(),
    };
    assert_eq!(
        store
            .claim_with(key, "fp", &terms(b"second"))
            .await
            .unwrap(),
        in_flight,
        "locked"
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        store.claim_with(key, "other", &terms(b"x")).await.unwrap(),
        in_flight,
        "past the lock, another body still finds the key held (the caller answers 422)"
    );
    assert_eq!(
        store.claim_with(key, "fp", &terms(b"third")).await.unwrap(),
        Claim::Resumed {
            intent: first.to_vec()
        },
        "past the lock, the same body resumes the first request's intent"
    );
    assert_eq!(
        store
            .claim_with(key, "fp", &terms(b"fourth"))
            .await
            .unwrap(),
        in_flight,
        "the resumed claim holds a new lock"
    );
    let resp = response(202, r#"{"orderId":"7"}"#);
    store.complete(key, "fp", &resp, LONG).await.unwrap();
    assert_eq!(
        store.claim_with(key, "fp", &terms(b"fifth")).await.unwrap(),
        Claim::Completed {
            fingerprint: "fp".into(),
            response: resp
        }
    );

    // A resumed claim keeps the key at least as long as its new lock, even past the first
    // claim's `keep`.
    let late = format!("{key}-late");
    let short_keep = ClaimTerms {
        intent: b"late",
        lock: SHORT,
        keep: PAST_SHORT + SHORT,
    };
    assert_eq!(
        store.claim_with(&late, "fp", &short_keep).await.unwrap(),
        Claim::Acquired
    );
    tokio::time::sleep(PAST_SHORT).await;
    let long_lock = ClaimTerms {
        intent: b"again",
        lock: LONG,
        keep: LONG,
    };
    assert_eq!(
        store.claim_with(&late, "fp", &long_lock).await.unwrap(),
        Claim::Resumed {
            intent: b"late".to_vec()
        }
    );
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(
        store.claim_with(&late, "fp", &long_lock).await.unwrap(),
        in_flight,
        "past the first claim's keep, the resumed request still holds the key"
    );

    // Of many retries of an abandoned request, exactly one resumes it.
    assert_eq!(
        store.claim_with(race, "fp", &terms(b"i")).await.unwrap(),
        Claim::Acquired
    );
    tokio::time::sleep(PAST_SHORT).await;
    let start = Arc::new(tokio::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (store, key, start) = (store.clone(), race.to_string(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let terms = ClaimTerms {
                    intent: b"retry",
                    lock: LONG,
                    keep: LONG,
                };
                store.claim_with(&key, "fp", &terms).await.expect("claim")
            })
        })
        .collect();
    let mut resumed = 0;
    for h in handles {
        match step("concurrent resume", h).await.unwrap() {
            Claim::Resumed { intent } => {
                assert_eq!(intent, b"i");
                resumed += 1;
            }
            other => assert_eq!(
                other,
                Claim::InFlight {
                    fingerprint: "fp".into()
                }
            ),
        }
    }
    assert_eq!(resumed, 1, "exactly one retry resumes the request");
}
