use super::*;
use std::fs;

const HOUR: Duration = Duration::from_secs(3600);

fn response(body: &str) -> StoredResponse {
    StoredResponse {
        status: 202,
        headers: vec![("location".into(), "/api/orders/1".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn terms(intent: &[u8], lock: Duration) -> ClaimTerms<'_> {
    ClaimTerms {
        intent,
        lock,
        keep: HOUR,
    }
}

async fn open(dir: &Path) -> JournalIdempotency {
    JournalIdempotency::open(dir, JournalOptions::default())
        .await
        .unwrap()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".keys"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = open(dir.path()).await;
        j.claim("done", "f", HOUR).await.unwrap();
        j.complete("done", "f", &response("{\"a\":1}"), HOUR)
            .await
            .unwrap();
        j.claim_with("flight", "f", &terms(b"order-7", HOUR))
            .await
            .unwrap();
        j.claim_with("dropped", "f", &terms(b"", HOUR))
            .await
            .unwrap();
        j.release("dropped").await.unwrap();
        j.claim_with("abandoned", "f", &terms(b"order-9", HOUR))
            .await
            .unwrap();
        j.abandon("abandoned").await.unwrap();
        j.claim("expired", "f", Duration::ZERO).await.unwrap();
    }
    let j = open(dir.path()).await;
    assert_eq!(
        j.claim("done", "f", HOUR).await.unwrap(),
        Claim::Completed {
            fingerprint: "f".into(),
            response: response("{\"a\":1}")
        }
    );
    assert_eq!(
        j.claim("flight", "g", HOUR).await.unwrap(),
        Claim::InFlight {
            fingerprint: "f".into()
        }
    );
    assert_eq!(
        j.claim("dropped", "g", HOUR).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        j.claim_with("abandoned", "f", &terms(b"other", HOUR))
            .await
            .unwrap(),
        Claim::Resumed {
            intent: b"order-9".to_vec()
        }
    );
    assert_eq!(
        j.claim("expired", "g", HOUR).await.unwrap(),
        Claim::Acquired
    );
    // A second handle on the same directory would keep a second, diverging index.
    assert!(matches!(
        JournalIdempotency::open(dir.path(), JournalOptions::default()).await,
        Err(EmbeddedError::Locked(_))
    ));
}

#[tokio::test]
async fn only_claims_wait_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path()).await;
    let syncs = || j.inner.segments.syncs();
    let before = syncs();
    j.claim("a", "f", HOUR).await.unwrap();
    assert_eq!(syncs(), before + 1, "a claim is synced");
    j.complete("a", "f", &response("{}"), HOUR).await.unwrap();
    j.claim("b", "f", HOUR).await.unwrap();
    j.release("b").await.unwrap();
    j.claim("c", "f", HOUR).await.unwrap();
    j.abandon("c").await.unwrap();
    assert_eq!(
        syncs(),
        before + 3,
        "completions, releases and abandons are not"
    );
}

#[tokio::test]
async fn a_torn_last_record_is_cut_off_and_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = open(dir.path()).await;
        j.claim("kept", "f", HOUR).await.unwrap();
        j.claim("torn", "f", HOUR).await.unwrap();
    }
    let seg = dir.path().join(&segment_files(dir.path())[0]);
    let len = fs::metadata(&seg).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    {
        let j = open(dir.path()).await;
        assert_eq!(
            j.claim("kept", "g", HOUR).await.unwrap(),
            Claim::InFlight {
                fingerprint: "f".into()
            }
        );
        assert_eq!(j.claim("torn", "g", HOUR).await.unwrap(), Claim::Acquired);
    }
    // Damage in the newest segment with whole records after it is not a torn write.
    {
        let j = open(dir.path()).await;
        j.claim("a", "f", HOUR).await.unwrap();
        j.claim("b", "f", HOUR).await.unwrap();
    }
    let files = segment_files(dir.path());
    let newest = dir.path().join(files.last().unwrap());
    let mut data = fs::read(&newest).unwrap();
    assert!(!data.is_empty());
    data[12] ^= 0xff;
    fs::write(&newest, &data).unwrap();
    assert!(matches!(
        JournalIdempotency::open(dir.path(), JournalOptions::default()).await,
        Err(EmbeddedError::Corrupt(_))
    ));
    // So is damage in an older segment, even at its end.
    data[12] ^= 0xff;
    fs::write(&newest, &data).unwrap();
    let mut older = fs::read(&seg).unwrap();
    let last = older.len() - 1;
    older[last] ^= 0xff;
    fs::write(&seg, older).unwrap();
    assert!(matches!(
        JournalIdempotency::open(dir.path(), JournalOptions::default()).await,
        Err(EmbeddedError::Corrupt(_))
    ));
}

#[tokio::test]
async fn segments_are_deleted_once_no_kept_key_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions { segment_bytes: 200 };
    let body = "x".repeat(150);
    {
        let j = JournalIdempotency::open(dir.path(), options.clone())
            .await
            .unwrap();
        // A claim that stays in flight, in the first segment; then keys that expire at once.
        j.claim_with("long", "f", &terms(b"order-1", HOUR))
            .await
            .unwrap();
        for i in 0..6 {
            let k = format!("short-{i}");
            j.claim(&k, "f", Duration::ZERO).await.unwrap();
            j.complete(&k, "f", &response(&body), Duration::ZERO)
                .await
                .unwrap();
        }
        // Completions are written behind; a claim is answered only after what came before.
        j.claim("barrier-1", "f", Duration::ZERO).await.unwrap();
        let before = segment_files(dir.path()).len();
        assert!(before > 3, "{before} segments");
        assert_eq!(j.purge_expired().await.unwrap(), 7);
        assert_eq!(
            segment_files(dir.path()).len(),
            before,
            "the first segment holds a live claim, so none may go"
        );
        j.complete("long", "f", &response(&body), HOUR)
            .await
            .unwrap();
        j.claim("barrier-2", "f", Duration::ZERO).await.unwrap();
        j.purge_expired().await.unwrap();
        let after = segment_files(dir.path());
        assert!(after.len() < before, "{after:?}");
        assert_eq!(j.len(), 1);
    }
    let j = JournalIdempotency::open(dir.path(), options).await.unwrap();
    assert_eq!(
        j.claim("long", "f", HOUR).await.unwrap(),
        Claim::Completed {
            fingerprint: "f".into(),
            response: response(&body)
        }
    );
    assert_eq!(j.len(), 1, "the expired keys stay forgotten");
}

#[tokio::test]
async fn kept_keys_move_to_another_journal() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = open(a.path()).await;
    from.claim("done", "f", HOUR).await.unwrap();
    from.complete("done", "f", &response("{}"), HOUR)
        .await
        .unwrap();
    from.claim_with("flight", "g", &terms(b"order-3", HOUR))
        .await
        .unwrap();
    let mut kept = from.kept_keys().await.unwrap();
    kept.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].response, Some(response("{}")));
    assert_eq!(kept[1].intent, b"order-3");
    {
        let to = open(b.path()).await;
        assert_eq!(to.import(kept).await.unwrap(), 2);
    }
    let to = open(b.path()).await;
    assert_eq!(
        to.claim("done", "f", HOUR).await.unwrap(),
        Claim::Completed {
            fingerprint: "f".into(),
            response: response("{}")
        }
    );
    assert_eq!(
        to.claim("flight", "x", HOUR).await.unwrap(),
        Claim::InFlight {
            fingerprint: "g".into()
        }
    );
}
