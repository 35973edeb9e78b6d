//! Against a real `oms serve` process: the seed's curl sequence, and 50 concurrent POSTs with
//! one idempotency key making exactly one order and one event.

mod support;

use oms_embedded::{FileLog, FileLogOptions};
use oms_ports::event_log::EventLog;
use oms_services::codec::{decode_event, topics};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{admin, Server, ALICE_KEY, BOB_KEY};

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// Polls the order with curl until it has `status`, for up to 20 s.
async fn wait_for_status(base: &str, auth: &str, id: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = curl(&[&format!("{base}/api/orders/{id}"), "-H", auth]);
        let o: serde_json::Value = serde_json::from_str(&body).unwrap();
        if o["status"] == status {
            return o;
        }
        assert!(Instant::now() < deadline, "order never {status}: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The account's reserved USD, read with curl.
fn usd_reserved(base: &str, auth: &str) -> String {
    let (_, me) = curl(&[&format!("{base}/api/accounts/me"), "-H", auth]);
    let me: serde_json::Value = serde_json::from_str(&me).unwrap();
    let usd = me["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "USD")
        .unwrap_or_else(|| panic!("no USD balance: {me}"));
    usd["reserved"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_curl_sequence_works_against_oms_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = support::free_port();
    let server = Server::start(&data, None, port).await;
    // The demo account's key is printed once, on the first start.
    let printed = server.printed();
    let key = printed
        .split_whitespace()
        .find(|w| w.starts_with("oms_"))
        .expect("demo key printed")
        .to_string();
    let base = format!("http://localhost:{port}");
    let auth = format!("X-API-Key: {key}");

    // "Test health endpoint"
    let (head, body) = curl(&[&format!("{base}/health")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("healthy"), "{body}");

    // "Test order placement", as the seed writes it, with the account's key.
    let order =
        r#"{"symbol":"BTC/USD","side":"BUY","quantity":0.1,"price":45000,"orderType":"LIMIT"}"#;
    let args = [
        "-X",
        "POST",
        &format!("{base}/api/orders"),
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-Idempotency-Key: test-123",
        "-H",
        &auth,
        "-d",
        order,
    ];
    let (head, body) = curl(&args);
    assert!(head.starts_with("HTTP/1.1 202"), "{head}\n{body}");
    assert!(
        head.to_lowercase().contains("location: /api/orders/"),
        "{head}"
    );
    let placed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(placed["status"], "NEW");
    assert_eq!(placed["price"], "45000.00");
    assert_eq!(placed["quantity"], "0.10000");
    let id = placed["orderId"].as_str().unwrap().to_string();

    // The same request again replays the first answer.
    let (head, again) = curl(&args);
    assert!(
        head.to_lowercase().contains("idempotent-replayed: true"),
        "{head}"
    );
    assert_eq!(again, body);

    // The order is risk-checked and rests; GET shows it, with its reserved funds.
    wait_for_status(&base, &auth, &id, "ACCEPTED").await;
    // 0.1 × 45000 plus the maximum fee (0.2%) is reserved.
    assert_eq!(usd_reserved(&base, &auth), "4509");

    // Cancel all, right after placing another order: both are cancelled, whether or not the
    // processor had recorded the second yet, and their funds are released.
    let (head, body) = curl(&[
        "-X",
        "POST",
        &format!("{base}/api/orders"),
        "-H",
        "Content-Type: application/json",
        "-H",
        &auth,
        "-d",
        order,
    ]);
    assert!(head.starts_with("HTTP/1.1 202"), "{head}\n{body}");
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    let second = second["orderId"].as_str().unwrap().to_string();
    let (head, body) = curl(&["-X", "DELETE", &format!("{base}/api/orders"), "-H", &auth]);
    assert!(head.starts_with("HTTP/1.1 202"), "{head}\n{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut listed: Vec<&str> = listed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut both = vec![id.as_str(), second.as_str()];
    both.sort_unstable();
    assert_eq!(listed, both);
    for order_id in [&id, &second] {
        let o = wait_for_status(&base, &auth, order_id, "CANCELED").await;
        assert_eq!(o["cancelReason"], "USER_REQUESTED", "{o}");
    }
    assert_eq!(usd_reserved(&base, &auth), "0");
    // Nothing is open any more.
    let (_, body) = curl(&["-X", "DELETE", &format!("{base}/api/orders"), "-H", &auth]);
    assert_eq!(body, r#"{"orders":[]}"#);
    server.stop();
}

/// Places an order as the account of `key`; returns its path.
async fn place(server: &Server, key: &str, body: &str) -> String {
    let (status, v) = server
        .post("/api/orders", Some(key), &[], body)
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    format!("/api/orders/{}", v["orderId"].as_str().unwrap())
}

/// A SELL that rests in the test configuration's SOL/USD book.
const RESTING_SOL_SELL: &str =
    r#"{"symbol":"SOL/USD","side":"SELL","quantity":"1.5","price":"150.000","orderType":"LIMIT"}"#;

/// A started `oms serve` on the test configuration and a fresh data directory.
struct Configured {
    /// Holds the data directory and the configuration file.
    _tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    server: Server,
}

async fn start_configured() -> Configured {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = support::write_config(tmp.path(), 1000);
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    Configured {
        _tmp: tmp,
        data,
        config,
        server,
    }
}

/// Polls `GET path` as Alice until `done` holds for its body, for up to 20 s.
async fn until(server: &Server, path: &str, done: impl Fn(&serde_json::Value) -> bool) {
    until_as(server, ALICE_KEY, path, done).await
}

/// [`until`] as the account of `key`.
async fn until_as(
    server: &Server,
    key: &str,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = server.get(path, Some(key)).await.unwrap();
        if done(&v) {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_refuses_new_orders_until_it_is_turned_off() {
    let Configured {
        _tmp,
        data,
        config,
        server,
    } = start_configured().await;
    let body = RESTING_SOL_SELL;
    let switch = |on: bool| format!(r#"{{"enabled":{on}}}"#);

    let (status, v) = server
        .put(
            "/api/accounts/me/kill-switch",
            Some(ALICE_KEY),
            &switch(true),
        )
        .await
        .unwrap();
    assert_eq!((status, v), (202, serde_json::json!({"killSwitch": true})));
    let refused = place(&server, ALICE_KEY, body).await;
    until(&server, &refused, |o| o["status"] == "REJECTED").await;
    let (_, o) = server.get(&refused, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(o["rejectReason"], "ACCOUNT_KILL_SWITCH", "{o}");
    until(&server, "/api/accounts/me", |me| me["killSwitch"] == true).await;

    // Killed and restarted, the process still refuses the account's orders.
    server.kill9();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    let refused = place(&server, ALICE_KEY, body).await;
    until(&server, &refused, |o| o["status"] == "REJECTED").await;

    let (status, _) = server
        .put(
            "/api/accounts/me/kill-switch",
            Some(ALICE_KEY),
            &switch(false),
        )
        .await
        .unwrap();
    assert_eq!(status, 202);
    let taken = place(&server, ALICE_KEY, body).await;
    until(&server, &taken, |o| o["status"] == "ACCEPTED").await;
    until(&server, "/api/accounts/me", |me| me["killSwitch"] == false).await;
    server.stop();
}

/// Amends the order at `path` as Alice; returns the `amendId` it was answered with.
async fn amend(server: &Server, path: &str, body: &str) -> String {
    let (status, v) = support::request(
        &server.addr,
        hyper::Method::PATCH,
        path,
        Some(ALICE_KEY),
        &[],
        Some(body),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{v}");
    v["amendId"].as_str().expect("an amendId").to_string()
}

/// An amend is answered `202` before risk and the venue decide it; the order then says what
/// became of it, refused or applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_of_an_amend_shows_on_the_order() {
    let Configured { _tmp, server, .. } = start_configured().await;
    let path = place(&server, ALICE_KEY, RESTING_SOL_SELL).await;
    until(&server, &path, |o| o["status"] == "ACCEPTED").await;

    // 1.5 at 10,000,000 is over risk's notional limit (10,000,000 an order by default).
    let refused = amend(&server, &path, r#"{"price":"10000000.000"}"#).await;
    until(&server, &path, |o| {
        o["lastAmend"]["amendId"] == refused.as_str()
    })
    .await;
    let (_, o) = server.get(&path, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(o["lastAmend"]["status"], "REJECTED", "{o}");
    assert_eq!(o["lastAmend"]["rejectReason"], "NOTIONAL_ABOVE_MAX", "{o}");
    assert_eq!(o["price"], "150.000", "the order is as it was: {o}");
    assert_eq!(o["status"], "ACCEPTED", "{o}");

    let applied = amend(&server, &path, r#"{"price":"151.000"}"#).await;
    until(&server, &path, |o| {
        o["lastAmend"]["amendId"] == applied.as_str()
    })
    .await;
    let (_, o) = server.get(&path, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(o["lastAmend"]["status"], "APPLIED", "{o}");
    assert_eq!(
        o["lastAmend"]["rejectReason"],
        serde_json::Value::Null,
        "{o}"
    );
    assert_eq!(o["price"], "151.000", "{o}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_orders_rests_and_trades_like_single_orders() {
    let Configured { _tmp, server, .. } = start_configured().await;
    let body = format!(r#"{{"orders":[{RESTING_SOL_SELL},{RESTING_SOL_SELL}]}}"#);
    let (status, v) = server
        .post("/api/orders/batch", Some(ALICE_KEY), &[], &body)
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    let paths: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("/api/orders/{}", r["order"]["orderId"].as_str().unwrap()))
        .collect();
    for path in &paths {
        until(&server, path, |o| o["status"] == "ACCEPTED").await;
    }
    // They rest in the batch's order: Bob's BUY for one of them takes the first.
    let taker = r#"{"symbol":"SOL/USD","side":"BUY","quantity":"1.5","price":"150.000","orderType":"LIMIT","timeInForce":"IOC"}"#;
    let bought = place(&server, BOB_KEY, taker).await;
    until_as(&server, BOB_KEY, &bought, |o| o["status"] == "FILLED").await;
    until(&server, &paths[0], |o| o["status"] == "FILLED").await;
    let (_, second) = server.get(&paths[1], Some(ALICE_KEY)).await.unwrap();
    assert_eq!(second["status"], "ACCEPTED", "{second}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_places_single_and_batched_orders_and_checks_they_settle() {
    let Configured { _tmp, server, .. } = start_configured().await;
    for batch in ["1", "5"] {
        let out = Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(["loadgen", "--addr", &server.addr, "--api-key"])
            .arg(format!("{ALICE_KEY},{BOB_KEY}"))
            .args(["--rate", "200", "--duration", "1", "--connections", "4"])
            .args([
                "--bare-seconds",
                "1",
                "--settle-seconds",
                "30",
                "--batch",
                batch,
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "batch {batch}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("acknowledged: 200 ("),
            "batch {batch}: {stdout}"
        );
        assert!(
            stdout.contains("settled: 200 of 200 acknowledged orders left NEW"),
            "batch {batch}: {stdout}"
        );
    }
    server.stop();
}

/// Sets Alice's dead man's switch to `ms` (0: off).
async fn cancel_after(server: &Server, ms: u64) -> serde_json::Value {
    let body = format!(r#"{{"timeoutMs":{ms}}}"#);
    let (status, v) = server
        .put("/api/accounts/me/cancel-after", Some(ALICE_KEY), &body)
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["enabled"], ms > 0, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_mans_switch_cancels_the_orders_of_a_client_that_stops_refreshing_it() {
    let Configured {
        _tmp,
        data,
        config,
        server,
    } = start_configured().await;
    let v = cancel_after(&server, 3_000).await;
    assert!(v["triggerTime"].is_string(), "{v}");
    let kept = place(&server, ALICE_KEY, RESTING_SOL_SELL).await;
    until(&server, &kept, |o| o["status"] == "ACCEPTED").await;

    // Refreshed well within its timeout, the switch never fires.
    let mut last = v;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = cancel_after(&server, 3_000).await;
    }
    let (_, o) = server.get(&kept, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(o["status"], "ACCEPTED", "fired while refreshed: {o}");
    // The account shows the newest deadline once the processor has recorded it (well
    // within the 3 s before it fires).
    let armed = serde_json::json!({"enabled": true, "triggerTime": last["triggerTime"], "triggered": false});
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let (_, me) = server
            .get("/api/accounts/me", Some(ALICE_KEY))
            .await
            .unwrap();
        if me["cancelAfter"] == armed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{me}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The client stops refreshing, and the process is even killed meanwhile: the deadline is
    // on the log, so the restarted process fires it and cancels the order.
    server.kill9();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    until(&server, &kept, |o| o["status"] == "CANCELED").await;
    let (_, o) = server.get(&kept, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(o["cancelReason"], "CANCEL_AFTER", "{o}");
    let (_, me) = server
        .get("/api/accounts/me", Some(ALICE_KEY))
        .await
        .unwrap();
    let sol = me["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "SOL")
        .cloned();
    assert_eq!(sol.map(|b| b["reserved"].clone()), Some("0".into()), "{me}");
    // The trigger precedes the cancel in the account's partition, so it is recorded already.
    assert_eq!(
        me["cancelAfter"],
        serde_json::json!({"enabled": false, "triggerTime": last["triggerTime"], "triggered": true}),
        "{me}"
    );

    // Fired once: an order placed afterwards rests, and so does one placed while it is off.
    let later = place(&server, ALICE_KEY, RESTING_SOL_SELL).await;
    cancel_after(&server, 1_000).await;
    cancel_after(&server, 0).await;
    until(&server, &later, |o| o["status"] == "ACCEPTED").await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (_, o) = server.get(&later, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(
        o["status"], "ACCEPTED",
        "fired after it was turned off: {o}"
    );
    let off = serde_json::json!({"enabled": false, "triggerTime": null, "triggered": false});
    until(&server, "/api/accounts/me", |me| me["cancelAfter"] == off).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_opens_and_funds_an_account_while_oms_serve_runs() {
    let Configured {
        _tmp,
        data,
        config,
        server,
    } = start_configured().await;
    let (status, opened) = admin(
        &server.addr,
        hyper::Method::POST,
        "/api/admin/accounts",
        Some(r#"{"name":"carol"}"#),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let account = format!("/api/admin/accounts/{}", opened["accountId"]);
    let (status, issued) = admin(
        &server.addr,
        hyper::Method::POST,
        &format!("{account}/api-keys"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let carol = issued["apiKey"].as_str().unwrap().to_string();
    let buy =
        r#"{"symbol":"SOL/USD","side":"BUY","quantity":"2","price":"100.000","orderType":"LIMIT"}"#;

    // Unfunded, the new account's order is refused.
    let refused = place(&server, &carol, buy).await;
    until_as(&server, &carol, &refused, |o| o["status"] == "REJECTED").await;
    let (_, o) = server.get(&refused, Some(&carol)).await.unwrap();
    assert_eq!(o["rejectReason"], "INSUFFICIENT_BALANCE", "{o}");

    // Funded while the process runs, twice with one reference: credited once.
    let wire = r#"{"asset":"USD","amount":"250.5","reference":"wire-001"}"#;
    for _ in 0..2 {
        let (status, v) = admin(
            &server.addr,
            hyper::Method::POST,
            &format!("{account}/deposits"),
            Some(wire),
        )
        .await;
        assert_eq!(status, 202, "{v}");
    }
    let taken = place(&server, &carol, buy).await;
    until_as(&server, &carol, &taken, |o| o["status"] == "ACCEPTED").await;
    let usd = |v: &serde_json::Value| {
        v["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == "USD")
            .map(|b| (b["available"].clone(), b["reserved"].clone()))
    };
    // 2 × 100 reserved, plus the most fee it can pay (0.2%); the deposit counted once.
    let funded = Some((serde_json::json!("50.1"), serde_json::json!("200.4")));
    let (_, listed) = admin(&server.addr, hyper::Method::GET, &account, None).await;
    assert_eq!(usd(&listed), funded, "{listed}");
    let (status, credit) = admin(
        &server.addr,
        hyper::Method::GET,
        &format!("{account}/deposits?reference=wire-001&asset=USD"),
        None,
    )
    .await;
    assert_eq!(
        (status, &credit["amount"], &credit["reference"]),
        (200, &"250.5".into(), &"wire-001".into()),
        "credited once: {credit}"
    );

    // After kill -9 and a restart the account, its key and its funds are all still there.
    server.kill9();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    let (_, me) = server.get("/api/accounts/me", Some(&carol)).await.unwrap();
    assert_eq!(usd(&me), funded, "{me}");

    // Paid out: what the orders hold cannot leave; what is available can, once per reference.
    let withdraw = |body: &'static str| {
        let (addr, path) = (server.addr.clone(), format!("{account}/withdrawals"));
        async move {
            let (status, v) = admin(&addr, hyper::Method::POST, &path, Some(body)).await;
            assert_eq!(status, 202, "{v}");
            assert_eq!(v["status"], "PENDING", "{v}");
        }
    };
    let decision = |reference: &'static str| {
        let (addr, path) = (
            server.addr.clone(),
            format!("{account}/withdrawals?reference={reference}"),
        );
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (status, v) = admin(&addr, hyper::Method::GET, &path, None).await;
                if status == 200 {
                    return v;
                }
                assert_eq!(status, 404, "{v}");
                assert!(Instant::now() < deadline, "{reference} never decided");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    withdraw(r#"{"asset":"USD","amount":"50.11","reference":"payout-1"}"#).await;
    let refused = decision("payout-1").await;
    assert_eq!(
        (&refused["status"], &refused["rejectReason"]),
        (&"REJECTED".into(), &"INSUFFICIENT_BALANCE".into()),
        "{refused}"
    );
    withdraw(r#"{"asset":"USD","amount":"50.1","reference":"payout-2"}"#).await;
    assert_eq!(decision("payout-2").await["status"], "APPROVED");
    // The same reference again, for more: refused, the first decision stands, nothing more
    // leaves.
    let (status, v) = admin(
        &server.addr,
        hyper::Method::POST,
        &format!("{account}/withdrawals"),
        Some(r#"{"asset":"USD","amount":"1","reference":"payout-2"}"#),
    )
    .await;
    assert_eq!(
        (status, &v["code"]),
        (409, &"WITHDRAWAL_REFERENCE_REUSED".into()),
        "{v}"
    );
    let paid = Some((serde_json::json!("0"), serde_json::json!("200.4")));
    until_as(&server, &carol, "/api/accounts/me", |me| usd(me) == paid).await;
    let (_, v) = admin(
        &server.addr,
        hyper::Method::GET,
        &format!("{account}/withdrawals?reference=payout-2"),
        None,
    )
    .await;
    assert_eq!(v["amount"], "50.1", "{v}");

    // Replayed after kill -9, nothing is paid out twice.
    server.kill9();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    let (_, me) = server.get("/api/accounts/me", Some(&carol)).await.unwrap();
    assert_eq!(usd(&me), paid, "{me}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_kill_switch_stops_every_account_until_it_is_turned_off() {
    let Configured {
        _tmp,
        data,
        config,
        server,
    } = start_configured().await;
    let switch = |server: &Server, on: bool| {
        let addr = server.addr.clone();
        async move {
            let body = format!(r#"{{"enabled":{on}}}"#);
            let answer = admin(
                &addr,
                hyper::Method::PUT,
                "/api/admin/kill-switch",
                Some(&body),
            )
            .await;
            assert_eq!(answer, (202, serde_json::json!({ "killSwitch": on })));
        }
    };

    switch(&server, true).await;
    for key in [ALICE_KEY, BOB_KEY] {
        let refused = place(&server, key, RESTING_SOL_SELL).await;
        until_as(&server, key, &refused, |o| o["status"] == "REJECTED").await;
        let (_, o) = server.get(&refused, Some(key)).await.unwrap();
        assert_eq!(o["rejectReason"], "GLOBAL_KILL_SWITCH", "{o}");
    }
    until(&server, "/api/accounts/me", |me| {
        me["globalKillSwitch"] == true
    })
    .await;
    let (_, v) = admin(
        &server.addr,
        hyper::Method::GET,
        "/api/admin/kill-switch",
        None,
    )
    .await;
    assert_eq!(v, serde_json::json!({ "killSwitch": true }));

    // Killed and restarted, the process still refuses everyone's orders.
    server.kill9();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    let refused = place(&server, BOB_KEY, RESTING_SOL_SELL).await;
    until_as(&server, BOB_KEY, &refused, |o| o["status"] == "REJECTED").await;

    switch(&server, false).await;
    for key in [ALICE_KEY, BOB_KEY] {
        let taken = place(&server, key, RESTING_SOL_SELL).await;
        until_as(&server, key, &taken, |o| o["status"] == "ACCEPTED").await;
    }
    until(&server, "/api/accounts/me", |me| {
        me["globalKillSwitch"] == false
    })
    .await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_posts_with_one_key_make_one_order_and_one_event() {
    let Configured {
        _tmp, data, server, ..
    } = start_configured().await;
    let body = RESTING_SOL_SELL;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let addr = server.addr.clone();
        tasks.push(tokio::spawn(async move {
            support::request(
                &addr,
                hyper::Method::POST,
                "/api/orders",
                Some(ALICE_KEY),
                &[("x-idempotency-key", "one-key")],
                Some(body),
            )
            .await
            .unwrap()
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let (mut accepted, mut in_flight) = (0, 0);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            202 => {
                accepted += 1;
                ids.insert(v["orderId"].as_str().unwrap().to_string());
            }
            409 => {
                assert_eq!(v["code"], "IDEMPOTENCY_REQUEST_IN_FLIGHT", "{v}");
                in_flight += 1;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(accepted + in_flight, 50);
    assert_eq!(
        ids.len(),
        1,
        "replays must all name the same order: {ids:?}"
    );
    server.stop();

    let log = FileLog::open(&data.join("log"), FileLogOptions::default())
        .await
        .unwrap();
    let mut created = 0;
    for p in 0..log.partition_count(topics::ORDERS).await.unwrap() {
        for rec in log.read(topics::ORDERS, p, 0, 100_000).await.unwrap() {
            if let oms_domain::events::Event::OrderCreated(o) = &decode_event(&rec).unwrap().event {
                assert_eq!(ids.first().unwrap(), &o.order_id.to_string());
                created += 1;
            }
        }
    }
    assert_eq!(created, 1, "exactly one OrderCreated in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_consumer_groups_take_their_configured_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = support::write_config(tmp.path(), 1000);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        r#"
[log.names]
ordersTopic = "desk1.orders"
venueTopic = "desk1.venue"
marketdataTopic = "desk1.marketdata"
processorGroup = "order-processor-group"
riskGroup = "desk1-risk"
"#,
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    let order = |side: &str| {
        format!(
            r#"{{"symbol":"SOL/USD","side":"{side}","quantity":"2","price":"150.000","orderType":"LIMIT"}}"#
        )
    };
    let (status, sell) = server
        .post("/api/orders", Some(support::BOB_KEY), &[], &order("SELL"))
        .await
        .unwrap();
    assert_eq!(status, 202, "{sell}");
    let (status, buy) = server
        .post("/api/orders", Some(ALICE_KEY), &[], &order("BUY"))
        .await
        .unwrap();
    assert_eq!(status, 202, "{buy}");
    let path = format!("/api/orders/{}", buy["orderId"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, o) = server.get(&path, Some(ALICE_KEY)).await.unwrap();
        if o["status"] == "FILLED" {
            break;
        }
        assert!(Instant::now() < deadline, "never filled: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, fills) = server
        .get(&format!("{path}/fills"), Some(ALICE_KEY))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let fill = &fills["fills"][0];
    assert_eq!(fill["quantity"], "2", "{fills}");
    assert!(
        fill["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "a fill carries its time: {fills}"
    );
    server.stop();

    let log = FileLog::open(&data.join("log"), FileLogOptions::default())
        .await
        .unwrap();
    for topic in ["desk1.orders", "desk1.venue", "desk1.marketdata"] {
        assert!(log.partition_count(topic).await.is_ok(), "{topic} exists");
    }
    for topic in [topics::ORDERS, topics::VENUE, topics::MARKETDATA] {
        assert!(
            log.partition_count(topic).await.is_err(),
            "no {topic} topic"
        );
    }
    let committed = |group: &'static str| {
        let log = &log;
        async move {
            let mut any = false;
            for p in 0..log.partition_count("desk1.orders").await.unwrap() {
                any |= log
                    .committed(group, "desk1.orders", p)
                    .await
                    .unwrap()
                    .is_some();
            }
            any
        }
    };
    assert!(committed("order-processor-group").await);
    assert!(committed("desk1-risk").await);
    assert!(!committed("processor").await && !committed("risk").await);
}

/// Sets the trading status of `symbol` as the operator.
async fn set_instrument_status(server: &Server, symbol: &str, status: &str) {
    let body = format!(r#"{{"symbol":"{symbol}","status":"{status}"}}"#);
    let (code, v) = admin(
        &server.addr,
        hyper::Method::PUT,
        "/api/admin/instruments/status",
        Some(&body),
    )
    .await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(
        (v["symbol"].as_str(), v["status"].as_str()),
        (Some(symbol), Some(status))
    );
}

/// Polls until `key`'s order at `path` is REJECTED, and returns its reason.
async fn rejected(server: &Server, key: &str, path: &str) -> String {
    until_as(server, key, path, |o| o["status"] == "REJECTED").await;
    let (_, o) = server.get(path, Some(key)).await.unwrap();
    o["rejectReason"].as_str().unwrap_or_default().to_string()
}

fn listed_status(instruments: &serde_json::Value, symbol: &str) -> serde_json::Value {
    instruments["instruments"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["symbol"] == symbol))
        .map_or(serde_json::Value::Null, |i| i["status"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_halts_one_instrument_and_a_restart_keeps_it_but_takes_the_new_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Snapshots at once, so the restart below restores them rather than replaying the log.
    let config = support::write_config(tmp.path(), 1);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace(
            "tickMillis = 200",
            "tickMillis = 200\nsnapshotMaxAgeSecs = 1",
        )
        .replace("[server]\n", "[server]\nlogFormat = \"json\"\n");
    std::fs::write(&config, &text).unwrap();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    const RESTING_BTC_BUY: &str = r#"{"symbol":"BTC/USD","side":"BUY","quantity":"0.01","price":"1000.00","orderType":"LIMIT"}"#;

    let resting_sol = place(&server, ALICE_KEY, RESTING_SOL_SELL).await;
    until(&server, &resting_sol, |o| o["status"] == "ACCEPTED").await;
    // Market data clients hear of the halt when the book takes it.
    let (mut watcher, first) = support::status_watcher(&server.addr, "SOL/USD").await;
    assert_eq!(first, "TRADING");
    set_instrument_status(&server, "SOL/USD", "HALTED").await;
    assert_eq!(watcher.next_change().await, "HALTED");
    let refused = place(&server, BOB_KEY, RESTING_SOL_SELL).await;
    assert_eq!(
        rejected(&server, BOB_KEY, &refused).await,
        "INSTRUMENT_HALTED"
    );
    // Another symbol trades on.
    let resting_btc = place(&server, ALICE_KEY, RESTING_BTC_BUY).await;
    until(&server, &resting_btc, |o| o["status"] == "ACCEPTED").await;
    until(&server, "/api/instruments", |v| {
        listed_status(v, "SOL/USD") == "HALTED" && listed_status(v, "BTC/USD") == "TRADING"
    })
    .await;
    // Snapshots are at most a second old: taken after all of the above.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Killed, and started again with a lower limit of open orders and SOL/USD's taker fee
    // doubled: the operator's halt outlives the restart and the new configuration applies,
    // although risk and the books come back from snapshots.
    server.kill9();
    let instruments = r#"
[[instruments]]
symbol = "BTC/USD"
base = "BTC"
quote = "USD"
tickSize = "0.01"
stepSize = "0.00001"
minQuantity = "0.00001"
maxQuantity = "1000"
minNotional = "1"
status = "TRADING"
makerFee = "0.001"
takerFee = "0.002"
priceBand = "0.1"

[[instruments]]
symbol = "SOL/USD"
base = "SOL"
quote = "USD"
tickSize = "0.001"
stepSize = "0.01"
minQuantity = "0.01"
maxQuantity = "1000000"
minNotional = "1"
status = "TRADING"
makerFee = "0.001"
takerFee = "0.004"
priceBand = "0.1"
"#;
    std::fs::write(
        &config,
        text.replace("maxOpenOrders = 1000000", "maxOpenOrders = 2") + instruments,
    )
    .unwrap();
    let server = Server::start(&data, Some(&config), support::free_port()).await;
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    let restored_from_snapshot = |stage: &str| {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|l| {
                l["fields"]["message"] == format!("{stage}: partition restored")
                    && l["fields"]["from"].as_u64() > Some(0)
            })
    };
    assert!(
        restored_from_snapshot("risk") && restored_from_snapshot("venue"),
        "the restart restored snapshots of risk and the venue: {log}"
    );
    let refused = place(&server, BOB_KEY, RESTING_SOL_SELL).await;
    assert_eq!(
        rejected(&server, BOB_KEY, &refused).await,
        "INSTRUMENT_HALTED"
    );
    let (mut watcher, first) = support::status_watcher(&server.addr, "SOL/USD").await;
    assert_eq!(first, "HALTED", "after the restart");
    // Alice's own cancel is taken (202) and refused by the halted book: the order says so.
    let (code, _) = server.delete(&resting_sol, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(code, 202);
    until(&server, &resting_sol, |o| {
        o["lastCancelReject"]["rejectReason"] == "INSTRUMENT_HALTED"
    })
    .await;
    let (_, order) = server.get(&resting_sol, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(order["status"], "ACCEPTED", "{order}");
    let third = place(&server, ALICE_KEY, RESTING_BTC_BUY).await;
    assert_eq!(
        rejected(&server, ALICE_KEY, &third).await,
        "TOO_MANY_OPEN_ORDERS"
    );

    // Cancel-only: new orders are refused, cancels go through.
    set_instrument_status(&server, "SOL/USD", "CANCEL_ONLY").await;
    assert_eq!(watcher.next_change().await, "CANCEL_ONLY");
    let refused = place(&server, BOB_KEY, RESTING_SOL_SELL).await;
    assert_eq!(
        rejected(&server, BOB_KEY, &refused).await,
        "INSTRUMENT_CANCEL_ONLY"
    );
    let (code, _) = server.delete(&resting_sol, Some(ALICE_KEY)).await.unwrap();
    assert_eq!(code, 202);
    until(&server, &resting_sol, |o| o["status"] == "CANCELED").await;

    // Trading again, at the configured fee: Alice's BUY takes Bob's resting SELL.
    set_instrument_status(&server, "SOL/USD", "TRADING").await;
    assert_eq!(watcher.next_change().await, "TRADING");
    let taken = place(&server, BOB_KEY, RESTING_SOL_SELL).await;
    until_as(&server, BOB_KEY, &taken, |o| o["status"] == "ACCEPTED").await;
    until(&server, "/api/instruments", |v| {
        listed_status(v, "SOL/USD") == "TRADING"
    })
    .await;
    let taker = place(
        &server,
        ALICE_KEY,
        r#"{"symbol":"SOL/USD","side":"BUY","quantity":"1.5","price":"150.000","orderType":"LIMIT"}"#,
    )
    .await;
    until(&server, &taker, |o| o["status"] == "FILLED").await;
    let (_, fills) = server
        .get(&format!("{taker}/fills"), Some(ALICE_KEY))
        .await
        .unwrap();
    let fee: oms_domain::Decimal = fills["fills"][0]["fee"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        fee,
        "0.9".parse().unwrap(),
        "225 USD at the new 40 bps: {fills}"
    );
    server.stop();
}
