//! `RedisIdempotency` beyond the shared suite: failing closed when Redis is down or hung,
//! coming back after a restart, the key prefix and what release may delete; and the request
//! limits every instance shares through it.

use oms_domain::ids::AccountId;
use oms_ports::idempotency::{Claim, ClaimTerms, IdempotencyStore, StoredResponse};
use oms_ports::request_limits::{Allowance, RequestLimits};
use oms_ports::PortError;
use oms_redis::{RedisIdempotency, RedisOptions};
use oms_services::api::rate_limit::{RequestLimiter, RequestRate};
use oms_testkit::redis::RedisServer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(3600);
/// The adapter's per-call bound in these tests.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// A call that has not answered by then is stuck: the adapter failed to fail closed.
const STUCK: Duration = Duration::from_secs(10);

fn options() -> RedisOptions {
    RedisOptions {
        key_prefix: "test:".into(),
        timeout: CALL_TIMEOUT,
    }
}

/// Runs `f`, failing the test if it does not finish within [`STUCK`]; prints how long it took.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(STUCK, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STUCK:?}"));
    eprintln!("{what}: answered in {:?}", started.elapsed());
    out
}

fn expect_unavailable<T: std::fmt::Debug>(what: &str, res: Result<T, PortError>) {
    match res {
        Err(PortError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_fails_closed_and_a_restarted_one_serves_again() {
    let server = RedisServer::new();
    let store = RedisIdempotency::connect(&server.url(), options())
        .await
        .unwrap();
    assert_eq!(
        store.claim("before", "fp", TTL).await.unwrap(),
        Claim::Acquired
    );

    server.stop();
    for round in 0..3 {
        expect_unavailable(
            "claim with Redis down",
            bounded(
                &format!("claim, Redis down, round {round}"),
                store.claim("k", "fp", TTL),
            )
            .await,
        );
        expect_unavailable(
            "ping with Redis down",
            bounded("ping, Redis down", store.ping()).await,
        );
        expect_unavailable(
            "release with Redis down",
            bounded("release", store.release("k")).await,
        );
        let resp = StoredResponse {
            status: 201,
            headers: vec![],
            body: b"{}".to_vec(),
        };
        expect_unavailable(
            "complete with Redis down",
            bounded("complete", store.complete("k", "fp", &resp, TTL)).await,
        );
    }
    match bounded(
        "connect, Redis down",
        RedisIdempotency::connect(&server.url(), options()),
    )
    .await
    {
        Err(PortError::Unavailable(_)) => {}
        Err(e) => panic!("connect with Redis down: expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connect with Redis down succeeded"),
    }

    server.start();
    // The handle reconnects by itself; a call may still meet the dead connection first.
    let mut back = false;
    for _ in 0..20 {
        if bounded("ping after restart", store.ping()).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the store serves again after Redis restarts");
    // The restarted server kept nothing (no persistence), so the old claim is gone.
    assert_eq!(
        store.claim("before", "fp", TTL).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim("before", "other", TTL).await.unwrap(),
        Claim::InFlight {
            fingerprint: "fp".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_redis_under_load_fails_calls_closed_and_they_recover() {
    let server = RedisServer::new();
    let store = RedisIdempotency::connect(&server.url(), options())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acquired = Arc::new(AtomicU64::new(0));
    let unavailable = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            let (acquired, unavailable) = (acquired.clone(), unavailable.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let res = tokio::time::timeout(
                        STUCK,
                        store.claim(&format!("load-{w}-{i}"), "fp", TTL),
                    )
                    .await
                    .expect("a claim under load got stuck");
                    match res {
                        Ok(Claim::Acquired) => acquired.fetch_add(1, Ordering::SeqCst),
                        Err(PortError::Unavailable(_)) => {
                            unavailable.fetch_add(1, Ordering::SeqCst)
                        }
                        other => panic!("claim of a fresh key under load: {other:?}"),
                    };
                }
            })
        })
        .collect();

    let wait_for = |counter: Arc<AtomicU64>, at_least: u64| async move {
        bounded("waiting for calls", async {
            while counter.load(Ordering::SeqCst) < at_least {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    };
    wait_for(acquired.clone(), 200).await;
    server.stop();
    wait_for(unavailable.clone(), 20).await;
    server.start();
    let before = acquired.load(Ordering::SeqCst);
    wait_for(acquired.clone(), before + 200).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    eprintln!(
        "acquired {}, unavailable {}",
        acquired.load(Ordering::SeqCst),
        unavailable.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_times_out_as_unavailable() {
    // Accepts connections and never answers, like a server stuck or a network black hole.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => return,
            }
        }
    });
    let url = format!("redis://127.0.0.1:{port}/");
    match bounded(
        "connect to a hung server",
        RedisIdempotency::connect(&url, options()),
    )
    .await
    {
        Err(PortError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connect to a hung server succeeded"),
    }
    let store = RedisIdempotency::connect_lazy(&url, options()).unwrap();
    expect_unavailable(
        "claim on a hung server",
        bounded("claim on a hung server", store.claim("k", "fp", TTL)).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_store_started_before_redis_works_once_it_is_up() {
    let server = RedisServer::new();
    server.stop();
    let store = RedisIdempotency::connect_lazy(&server.url(), options()).unwrap();
    expect_unavailable(
        "claim before Redis is up",
        bounded("claim", store.claim("k", "a", TTL)).await,
    );
    server.start();
    let mut got = None;
    for _ in 0..20 {
        if let Ok(c) = bounded("claim once Redis is up", store.claim("k", "a", TTL)).await {
            got = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, Some(Claim::Acquired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_the_prefix_and_release_spares_completed_responses() {
    let server = RedisServer::new();
    let a = RedisIdempotency::connect(
        &server.url(),
        RedisOptions {
            key_prefix: "svc-a:".into(),
            ..options()
        },
    )
    .await
    .unwrap();
    let b = RedisIdempotency::connect(
        &server.url(),
        RedisOptions {
            key_prefix: "svc-b:".into(),
            ..options()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        a.claim("acct:1:key", "fp-a", TTL).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        b.claim("acct:1:key", "fp-b", TTL).await.unwrap(),
        Claim::Acquired,
        "prefixes keep deployments apart"
    );

    // The value really lives under the prefixed name, with its TTL.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let raw: Option<Vec<u8>> = redis::cmd("GET")
        .arg("svc-a:acct:1:key")
        .query_async(&mut conn)
        .await
        .unwrap();
    let raw = raw.expect("the key exists");
    assert_eq!(
        String::from_utf8_lossy(&raw),
        format!("L{:020}0000000004fp-a", 0),
        "a claim locked for as long as it is kept (lock floor 0), then the fingerprint with \
         its length and no intent"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg("svc-a:acct:1:key")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= TTL.as_millis() as i64, "PTTL {pttl}");

    let resp = StoredResponse {
        status: 201,
        headers: vec![("location".into(), "/api/v1/orders/1".into())],
        body: b"{\"orderId\":\"1\"}".to_vec(),
    };
    a.complete("acct:1:key", "fp-a", &resp, TTL).await.unwrap();
    a.release("acct:1:key").await.unwrap();
    assert_eq!(
        a.claim("acct:1:key", "fp-a", TTL).await.unwrap(),
        Claim::Completed {
            fingerprint: "fp-a".into(),
            response: resp
        },
        "release never deletes a completed response"
    );
    b.release("acct:1:key").await.unwrap();
    assert_eq!(
        b.claim("acct:1:key", "fp-c", TTL).await.unwrap(),
        Claim::Acquired
    );
    a.release("never-claimed").await.unwrap();

    // A value this adapter did not write is reported, not misread.
    let _: () = redis::cmd("SET")
        .arg("svc-a:foreign")
        .arg("not ours")
        .query_async(&mut conn)
        .await
        .unwrap();
    match a.claim("foreign", "fp", TTL).await {
        Err(PortError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A claim in flight as earlier versions wrote it (`P`: an absolute lock expiry by Redis's
/// clock) still holds its lock, and is resumed once that has passed, so a rolling upgrade
/// neither frees a locked key nor strands an abandoned one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_written_by_earlier_versions_lock_and_resume() {
    let server = RedisServer::new();
    let store = RedisIdempotency::connect(&server.url(), options())
        .await
        .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now_ms = secs * 1000 + micros / 1000;
    for (key, lock_until) in [("held", now_ms + 3_600_000), ("abandoned", now_ms - 1)] {
        let raw = format!("P{lock_until:020}0000000002fpintent-{key}");
        let _: () = redis::cmd("SET")
            .arg(format!("test:{key}"))
            .arg(raw)
            .arg("PX")
            .arg(7_200_000)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let terms = ClaimTerms {
        intent: b"new",
        lock: Duration::from_secs(60),
        keep: TTL,
    };
    let in_flight = Claim::InFlight {
        fingerprint: "fp".into(),
    };
    assert_eq!(
        store.claim_with("held", "fp", &terms).await.unwrap(),
        in_flight
    );
    assert_eq!(
        store
            .claim_with("abandoned", "other", &terms)
            .await
            .unwrap(),
        in_flight,
        "another body never resumes"
    );
    assert_eq!(
        store.claim_with("abandoned", "fp", &terms).await.unwrap(),
        Claim::Resumed {
            intent: b"intent-abandoned".to_vec()
        }
    );
    assert_eq!(
        store.claim_with("abandoned", "fp", &terms).await.unwrap(),
        in_flight,
        "the resumed claim holds a new lock"
    );
    let raw: Vec<u8> = redis::cmd("GET")
        .arg("test:abandoned")
        .query_async(&mut conn)
        .await
        .unwrap();
    let pttl: u64 = redis::cmd("PTTL")
        .arg("test:abandoned")
        .query_async(&mut conn)
        .await
        .unwrap();
    let floor: u64 = std::str::from_utf8(&raw[1..21]).unwrap().parse().unwrap();
    assert_eq!(raw[0], b'L', "rewritten in the current form");
    assert!(
        pttl > floor && pttl - floor <= 60_000 && floor + 60_000 > 7_100_000,
        "locked for the new 60 s within the key's remaining time: PTTL {pttl}, floor {floor}"
    );
    assert!(
        raw.ends_with(b"0000000002fpintent-abandoned"),
        "the first request's intent kept"
    );
}

fn allowance(per_second: u32, burst: u32) -> Allowance {
    Allowance { per_second, burst }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_draw_on_one_allowance_per_account() {
    let server = RedisServer::new();
    // Two API instances: two connections to the same Redis.
    let a = RedisIdempotency::connect(&server.url(), options())
        .await
        .unwrap()
        .request_limits();
    let b = RedisIdempotency::connect(&server.url(), options())
        .await
        .unwrap()
        .request_limits();
    // One a second, five at once: a refill takes a second, so none comes back mid-test.
    let rate = allowance(1, 5);
    let (alice, bob) = (AccountId(1), AccountId(2));
    for limits in [&a, &a, &b, &a, &b] {
        assert!(limits.admit(alice, 1, rate).await.unwrap());
    }
    assert!(
        !a.admit(alice, 1, rate).await.unwrap(),
        "the burst is spent"
    );
    assert!(!b.admit(alice, 1, rate).await.unwrap(), "on both instances");
    assert!(
        b.admit(bob, 5, rate).await.unwrap(),
        "another account's is its own"
    );
    assert!(!a.admit(bob, 1, rate).await.unwrap());
    let carol = AccountId(3);
    assert!(
        !a.admit(carol, 6, rate).await.unwrap(),
        "more than the burst"
    );
    assert!(a.admit(carol, 4, rate).await.unwrap());
    assert!(
        !b.admit(carol, 2, rate).await.unwrap(),
        "two more than the one left"
    );
    assert!(
        b.admit(carol, 1, rate).await.unwrap(),
        "a refused request took nothing"
    );
    // The allowance refills at its rate: one request a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(b.admit(alice, 1, rate).await.unwrap());
    assert!(!a.admit(alice, 1, rate).await.unwrap());
    // The counts live under the store's prefix, apart from every idempotency key.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "test:rate-limit:1",
            "test:rate-limit:2",
            "test:rate-limit:3"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_instance_counts_its_own_requests() {
    let server = RedisServer::new();
    let limits = RedisIdempotency::connect(&server.url(), options())
        .await
        .unwrap()
        .request_limits();
    let limiter = RequestLimiter::shared(Arc::new(limits));
    let rate = RequestRate {
        per_second: 1,
        burst: 2,
    };
    let alice = AccountId(1);
    assert!(limiter.admit(alice, rate, 2).await);
    assert!(!limiter.admit(alice, rate, 1).await, "shared: spent");
    server.stop();
    // Failing open to this instance's own count, which has not been drawn on: a limit is not
    // worth refusing every request while Redis is down, but it still holds.
    for _ in 0..2 {
        assert!(bounded("admit, Redis down", limiter.admit(alice, rate, 1)).await);
    }
    assert!(!limiter.admit(alice, rate, 1).await, "local: spent");
    // Redis back (empty: the test server keeps nothing): after the retry interval the shared
    // count is used again, and holds the request.
    server.start();
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    assert!(limiter.admit(alice, rate, 1).await, "shared again");
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let held: Option<String> = redis::cmd("GET")
        .arg("test:rate-limit:1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(held.is_some(), "the request was counted in Redis");
}
