//! Placing, reading, listing, cancelling and amending orders through the real HTTP server.

mod api_common;

use api_common::{stored_order, LosesFirstResponse, TestApp, KEY, OTHER_KEY};
use oms_domain::events::Event;
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::order::{OrderStatus, Side};
use oms_domain::Decimal;
use oms_ports::order_store::OrderStore;
use serde_json::{json, Value};
use std::str::FromStr;

const SEED_BODY: &str =
    r#"{"symbol":"BTC/USD","side":"BUY","quantity":0.1,"price":45000,"orderType":"LIMIT"}"#;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn post_seed(app: &TestApp, idem_key: &str) -> api_common::Resp {
    app.send(
        "POST",
        "/api/orders",
        &[
            ("x-api-key", KEY),
            ("content-type", "application/json"),
            ("x-idempotency-key", idem_key),
        ],
        Some(SEED_BODY.as_bytes()),
    )
    .await
}

#[tokio::test]
async fn seed_curl_body_is_accepted_and_published_durably() {
    let app = TestApp::start().await;
    let r = post_seed(&app, "test-123").await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let order = r.json();
    let id = order["orderId"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/orders/{id}").as_str())
    );
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(order["status"], "NEW");
    assert_eq!(order["price"], "45000.00");
    assert_eq!(order["quantity"], "0.10000");
    assert_eq!(order["timeInForce"], "GTC");
    assert_eq!(order["accountId"], app.account.0);

    // The 202 came after the append: the record is already in the log.
    let records = app.order_records().await;
    assert_eq!(records.len(), 1);
    let (rec, env) = &records[0];
    assert_eq!(rec.key, app.account.to_string().into_bytes());
    assert_eq!(rec.header("event-type"), Some(&b"OrderCreated"[..]));
    assert_eq!(
        rec.header("event-id"),
        Some(format!("o:{id}:created").as_bytes())
    );
    assert_eq!(rec.header("schema-version"), Some(&b"1"[..]));
    let Event::OrderCreated(n) = &env.event else {
        panic!("{env:?}")
    };
    assert_eq!(n.order_id.to_string(), id);
    assert_eq!(n.account, app.account);
    assert_eq!(n.quantity, dec("0.1"));
    assert_eq!(n.price, Some(dec("45000")));
}

#[tokio::test]
async fn fifty_concurrent_posts_with_one_key_create_one_order() {
    let app = TestApp::start().await;
    let addr = app.addr;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async move {
                api_common::send(
                    addr,
                    "POST",
                    "/api/orders",
                    &[
                        ("x-api-key", KEY),
                        ("content-type", "application/json"),
                        ("x-idempotency-key", "same-key"),
                    ],
                    Some(SEED_BODY.as_bytes()),
                )
                .await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    let mut in_flight = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match (r.status, r.header("idempotent-replayed")) {
            (202, None) => created.push(r.json()["orderId"].clone()),
            (202, Some("true")) => replayed.push(r.json()["orderId"].clone()),
            (409, _) => {
                assert_eq!(r.problem().1, "IDEMPOTENCY_REQUEST_IN_FLIGHT");
                assert_eq!(r.header("retry-after"), Some("1"));
                in_flight += 1;
            }
            other => panic!("unexpected {other:?}: {:?}", r.body),
        }
    }
    assert_eq!(created.len(), 1, "exactly one request ran");
    assert!(
        replayed.iter().all(|id| *id == created[0]),
        "replays carry the same order"
    );
    assert_eq!(created.len() + replayed.len() + in_flight, 50);
    let records = app.order_records().await;
    assert_eq!(records.len(), 1, "exactly one OrderCreated in the log");

    // Once done, a retry is always a replay of the same order.
    let again = post_seed(&app, "same-key").await;
    assert_eq!(again.status, 202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["orderId"], created[0]);
}

#[tokio::test]
async fn replay_is_marked_and_a_different_body_is_422() {
    let app = TestApp::start().await;
    let first = post_seed(&app, "k-1").await;
    assert_eq!(first.status, 202);
    let replay = post_seed(&app, "k-1").await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(replay.body, first.body);

    let other_body = SEED_BODY.replace("0.1", "0.2");
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", "k-1"),
            ],
            Some(other_body.as_bytes()),
        )
        .await;
    assert_eq!(
        r.problem(),
        (
            422,
            "IDEMPOTENCY_KEY_REUSED".into(),
            Some("X-Idempotency-Key".into())
        )
    );

    // Keys are scoped to the account: another account's same key is a fresh request.
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", OTHER_KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", "k-1"),
            ],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_ne!(r.json()["orderId"], first.json()["orderId"]);
    assert_eq!(app.order_records().await.len(), 2);

    // A 400 did nothing and is not kept: the same bad body is refused again (not replayed),
    // and the corrected body under the same key is placed.
    let bad =
        br#"{"symbol":"BTC/USD","side":"BUY","quantity":0,"price":45000,"orderType":"LIMIT"}"#;
    let h = [
        ("x-api-key", KEY),
        ("content-type", "application/json"),
        ("x-idempotency-key", "k-bad"),
    ];
    let r1 = app.send("POST", "/api/orders", &h, Some(bad)).await;
    let r2 = app.send("POST", "/api/orders", &h, Some(bad)).await;
    assert_eq!(r1.problem().1, "NON_POSITIVE");
    assert_eq!(r2.problem().1, "NON_POSITIVE");
    assert_eq!(r2.header("idempotent-replayed"), None);
    let fixed = app
        .send("POST", "/api/orders", &h, Some(SEED_BODY.as_bytes()))
        .await;
    assert_eq!(fixed.status, 202, "{:?}", fixed.body);
    let again = app
        .send("POST", "/api/orders", &h, Some(SEED_BODY.as_bytes()))
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, fixed.body);

    // Two keys: which one the request is known by is unknown. Two API keys likewise.
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", "dup-a"),
                ("x-idempotency-key", "dup-b"),
            ],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(r.problem().1, "INVALID_IDEMPOTENCY_KEY");
    let r = app
        .send(
            "GET",
            "/api/orders",
            &[("x-api-key", KEY), ("x-api-key", OTHER_KEY)],
            None,
        )
        .await;
    assert_eq!(
        r.problem(),
        (401, "UNAUTHORIZED".into(), Some("X-API-Key".into()))
    );

    let long_key = "k".repeat(256);
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", &long_key),
            ],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(
        r.problem(),
        (
            400,
            "INVALID_IDEMPOTENCY_KEY".into(),
            Some("X-Idempotency-Key".into())
        )
    );
}

fn seed() -> Value {
    serde_json::from_str(SEED_BODY).unwrap()
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

#[tokio::test]
async fn every_bad_input_gets_its_code_and_field() {
    let app = TestApp::start().await;
    let raw = |s: &str| s.to_string();
    let cases: Vec<(String, &str, &str)> = vec![
        (raw(r#"{"symbol":"BTC/USD","#), "MALFORMED_JSON", "body"),
        (raw("[]"), "MALFORMED_JSON", "body"),
        (
            raw(
                r#"{"symbol":"BTC/USD","side":"BUY","quantity":"0.1","price":"45000","orderType":"LIMIT","symbol":"ETH/USD"}"#,
            ),
            "DUPLICATE_FIELD",
            "symbol",
        ),
        (
            with(seed(), "colour", json!("red")).to_string(),
            "UNKNOWN_FIELD",
            "colour",
        ),
        (
            raw(r#"{"side":"BUY","quantity":0.1,"price":45000,"orderType":"LIMIT"}"#),
            "MISSING_FIELD",
            "symbol",
        ),
        (
            with(seed(), "quantity", json!(true)).to_string(),
            "INVALID_TYPE",
            "quantity",
        ),
        (
            with(seed(), "symbol", json!("DOGE/USD")).to_string(),
            "UNKNOWN_SYMBOL",
            "symbol",
        ),
        (
            with(seed(), "side", json!("HOLD")).to_string(),
            "INVALID_ENUM",
            "side",
        ),
        (
            with(seed(), "orderType", json!("ICEBERG")).to_string(),
            "INVALID_ENUM",
            "orderType",
        ),
        (
            with(seed(), "timeInForce", json!("DAY")).to_string(),
            "INVALID_ENUM",
            "timeInForce",
        ),
        (
            with(seed(), "quantity", json!(-1)).to_string(),
            "NON_POSITIVE",
            "quantity",
        ),
        (
            SEED_BODY.replace("45000", "4.5e4"),
            "INVALID_DECIMAL",
            "price",
        ),
        (
            with(seed(), "price", json!("NaN")).to_string(),
            "INVALID_DECIMAL",
            "price",
        ),
        (
            with(seed(), "price", json!("45000.005")).to_string(),
            "TOO_MANY_DECIMALS",
            "price",
        ),
        (
            SEED_BODY.replace("0.1", "0.100000000000000000000000000001"),
            "TOO_MANY_DECIMALS",
            "quantity",
        ),
        (
            with(seed(), "quantity", json!("0.000001")).to_string(),
            "TOO_MANY_DECIMALS",
            "quantity",
        ),
        (
            with(seed(), "quantity", json!("1000.00001")).to_string(),
            "QUANTITY_ABOVE_MAX",
            "quantity",
        ),
        (
            raw(r#"{"symbol":"BTC/USD","side":"BUY","quantity":0.1,"orderType":"LIMIT"}"#),
            "PRICE_REQUIRED",
            "price",
        ),
        (
            with(seed(), "orderType", json!("MARKET")).to_string(),
            "PRICE_NOT_ALLOWED",
            "price",
        ),
        (
            with(seed(), "orderType", json!("STOP_LIMIT")).to_string(),
            "STOP_PRICE_REQUIRED",
            "stopPrice",
        ),
        (
            with(seed(), "stopPrice", json!(44000)).to_string(),
            "STOP_PRICE_NOT_ALLOWED",
            "stopPrice",
        ),
        (
            with(seed(), "timeInForce", json!("GTD")).to_string(),
            "EXPIRE_AT_REQUIRED",
            "expireAt",
        ),
        (
            with(
                with(seed(), "timeInForce", json!("GTD")),
                "expireAt",
                json!("2020-01-01T00:00:00Z"),
            )
            .to_string(),
            "EXPIRE_AT_IN_PAST",
            "expireAt",
        ),
        (
            with(seed(), "expireAt", json!(4_102_444_800_000u64)).to_string(),
            "EXPIRE_AT_NOT_ALLOWED",
            "expireAt",
        ),
        (
            with(
                with(seed(), "timeInForce", json!("GTD")),
                "expireAt",
                json!("soon"),
            )
            .to_string(),
            "INVALID_TIMESTAMP",
            "expireAt",
        ),
        (
            with(
                with(seed(), "timeInForce", json!("IOC")),
                "postOnly",
                json!(true),
            )
            .to_string(),
            "POST_ONLY_NOT_ALLOWED",
            "postOnly",
        ),
        (
            with(seed(), "clientOrderId", json!("no spaces allowed")).to_string(),
            "INVALID_CLIENT_ORDER_ID",
            "clientOrderId",
        ),
        (
            with(seed(), "clientOrderId", json!("x".repeat(65))).to_string(),
            "INVALID_CLIENT_ORDER_ID",
            "clientOrderId",
        ),
    ];
    for (body, code, field) in cases {
        let r = app
            .send(
                "POST",
                "/api/orders",
                &[("x-api-key", KEY), ("content-type", "application/json")],
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{body}"
        );
        let j = r.json();
        assert_eq!(
            j["type"],
            format!(
                "https://crypto-oms.dev/problems/{}",
                code.to_lowercase().replace('_', "-")
            )
        );
        assert_eq!(j["instance"], "/api/orders");
    }
    // Several invalid fields: all listed.
    let r = app
        .as_demo(
            "POST",
            "/api/orders",
            Some(&json!({"symbol":"BTC/USD","side":"UP","quantity":"x","orderType":"LIMIT"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields.len(), 3, "{fields:?}");
    for f in ["side", "quantity", "price"] {
        assert!(fields.contains(&f.to_string()), "{fields:?}");
    }
    // Nothing reached the log.
    assert!(app.order_records().await.is_empty());
}

#[tokio::test]
async fn transport_level_refusals() {
    let app = TestApp::start().await;
    let json_h = [("x-api-key", KEY), ("content-type", "application/json")];

    let limit = 64 * 1024;
    let mut big = format!(r#"{{"symbol":"BTC/USD","pad":"{}"}}"#, " ".repeat(limit));
    big.truncate(limit + 1);
    assert_eq!(big.len(), limit + 1);
    let r = app
        .send("POST", "/api/orders", &json_h, Some(big.as_bytes()))
        .await;
    assert_eq!(
        r.problem(),
        (413, "BODY_TOO_LARGE".into(), Some("body".into()))
    );
    // A declared length over the limit is refused before any of the body is sent: the client
    // is not left waiting while it uploads.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST /api/orders HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        // The server closes once it has answered (the body it did not read is left behind).
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            tcp.read_to_end(&mut answer),
        )
        .await
        .expect("answered without the body")
        .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains("BODY_TOO_LARGE"), "{text}");
    }
    // Exactly at the limit it is read (and then found to be malformed).
    big.truncate(limit);
    let r = app
        .send("POST", "/api/orders", &json_h, Some(big.as_bytes()))
        .await;
    assert_eq!(r.problem().1, "MALFORMED_JSON");

    let r = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", KEY), ("content-type", "text/plain")],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(
        r.problem(),
        (
            415,
            "UNSUPPORTED_MEDIA_TYPE".into(),
            Some("Content-Type".into())
        )
    );
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", KEY)],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(r.problem().0, 415);
    // A compressed body is not read as if it were plain.
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(
        r.problem(),
        (
            415,
            "UNSUPPORTED_MEDIA_TYPE".into(),
            Some("Content-Encoding".into())
        )
    );

    let r = app
        .send(
            "POST",
            "/api/orders",
            &[("content-type", "application/json")],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!(
        r.problem(),
        (401, "UNAUTHORIZED".into(), Some("X-API-Key".into()))
    );
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", "nope"), ("content-type", "application/json")],
            Some(SEED_BODY.as_bytes()),
        )
        .await;
    assert_eq!((r.status, r.problem().1.as_str()), (401, "UNAUTHORIZED"));
    for path in [
        "/api/orders",
        "/api/orders/1",
        "/api/orders/1/fills",
        "/api/accounts/me",
        "/api/instruments",
        "/api/session",
    ] {
        let r = app.send("GET", path, &[], None).await;
        assert_eq!(r.status, 401, "{path}");
    }
    assert!(app.order_records().await.is_empty());
}

#[tokio::test]
async fn orders_are_private_to_their_account() {
    let app = TestApp::start().await;
    let created = post_seed(&app, "p-1").await.json();
    let id: u64 = created["orderId"].as_str().unwrap().parse().unwrap();
    // The processor would write it; do it here.
    let mut order = stored_order(id, app.account, OrderStatus::Accepted);
    order.filled_quantity = dec("0.2");
    app.put_order(order).await;

    let mine = app.as_demo("GET", &format!("/api/orders/{id}"), None).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.json()["status"], "ACCEPTED");
    assert_eq!(mine.json()["filledQuantity"], "0.20000");
    assert_eq!(mine.json()["orderId"], id.to_string());

    for (method, path) in [
        ("GET", format!("/api/orders/{id}")),
        ("GET", format!("/api/orders/{id}/fills")),
        ("DELETE", format!("/api/orders/{id}")),
    ] {
        let r = app
            .send(method, &path, &[("x-api-key", OTHER_KEY)], None)
            .await;
        assert_eq!(
            r.problem(),
            (404, "ORDER_NOT_FOUND".into(), Some("orderId".into())),
            "{method} {path}"
        );
    }
    let r = app
        .send(
            "PATCH",
            &format!("/api/orders/{id}"),
            &[
                ("x-api-key", OTHER_KEY),
                ("content-type", "application/json"),
            ],
            Some(br#"{"price":45001}"#),
        )
        .await;
    assert_eq!(r.problem().1, "ORDER_NOT_FOUND");
    let list = app
        .send("GET", "/api/orders", &[("x-api-key", OTHER_KEY)], None)
        .await;
    assert_eq!(list.json()["orders"], json!([]));

    for path in ["/api/orders/999999", "/api/orders/not-a-number"] {
        let r = app.as_demo("GET", path, None).await;
        assert_eq!(r.problem().1, "ORDER_NOT_FOUND", "{path}");
    }
    let fills = app
        .as_demo("GET", &format!("/api/orders/{id}/fills"), None)
        .await;
    assert_eq!(fills.status, 200);
    assert_eq!(fills.json(), json!({"fills": []}));
    let paged = app
        .as_demo("GET", &format!("/api/orders/{id}/fills?limit=1"), None)
        .await;
    assert_eq!(
        paged.problem(),
        (400, "UNKNOWN_FIELD".into(), Some("limit".into())),
        "an order's fills take no parameters"
    );
}

#[tokio::test]
async fn cancel_and_amend_publish_requests_for_live_orders_only() {
    let app = TestApp::start().await;
    app.put_order(stored_order(10, app.account, OrderStatus::Accepted))
        .await;
    app.put_order(stored_order(11, app.account, OrderStatus::Filled))
        .await;

    let r = app.as_demo("DELETE", "/api/orders/10", None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.json()["orderId"], "10");
    let r = app.as_demo("DELETE", "/api/orders/11", None).await;
    assert_eq!(
        r.problem(),
        (409, "ORDER_NOT_LIVE".into(), Some("orderId".into()))
    );
    let r = app.as_demo("DELETE", "/api/orders/12", None).await;
    assert_eq!(r.problem().1, "ORDER_NOT_FOUND");

    let r = app
        .as_demo(
            "PATCH",
            "/api/orders/10",
            Some(&json!({"price": "45999.99", "quantity": 0.4})),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = app
        .as_demo("PATCH", "/api/orders/11", Some(&json!({"price": 45000})))
        .await;
    assert_eq!(r.problem().1, "ORDER_NOT_LIVE");
    let r = app
        .as_demo("PATCH", "/api/orders/10", Some(&json!({"price": "1.001"})))
        .await;
    assert_eq!(
        r.problem(),
        (400, "TOO_MANY_DECIMALS".into(), Some("price".into()))
    );
    let r = app
        .as_demo("PATCH", "/api/orders/10", Some(&json!({})))
        .await;
    assert_eq!(
        r.problem(),
        (400, "MISSING_FIELD".into(), Some("price".into()))
    );
    let r = app
        .as_demo("PATCH", "/api/orders/10", Some(&json!({"side": "BUY"})))
        .await;
    assert_eq!(r.problem().1, "UNKNOWN_FIELD");

    let events: Vec<Event> = app
        .order_records()
        .await
        .into_iter()
        .map(|(_, e)| e.event)
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        Event::CancelRequested {
            account: app.account,
            order_id: OrderId(10),
            reason: None,
        }
    );
    match &events[1] {
        Event::AmendRequested {
            account,
            order_id,
            amend_id,
            price,
            quantity,
        } => {
            assert_eq!((*account, *order_id), (app.account, OrderId(10)));
            assert!(*amend_id > 0);
            assert_eq!(*price, Some(dec("45999.99")));
            assert_eq!(*quantity, Some(dec("0.4")));
        }
        other => panic!("{other:?}"),
    }

    // Cancel with an idempotency key: the retry is a replay, not a second request.
    let h = [("x-api-key", KEY), ("x-idempotency-key", "cancel-10")];
    let a = app.send("DELETE", "/api/orders/10", &h, None).await;
    let b = app.send("DELETE", "/api/orders/10", &h, None).await;
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.order_records().await.len(), 3);
}

#[tokio::test]
async fn cancel_all_requests_the_cancel_of_exactly_the_open_orders_it_names() {
    let app = TestApp::start().await;
    let order = |id, account, status, symbol: &str, side| {
        let mut o = stored_order(id, account, status);
        o.symbol = Symbol::new(symbol);
        o.side = side;
        o
    };
    app.put_order(order(
        20,
        app.account,
        OrderStatus::Accepted,
        "BTC/USD",
        Side::Sell,
    ))
    .await;
    app.put_order(order(
        21,
        app.account,
        OrderStatus::PartiallyFilled,
        "BTC/USD",
        Side::Buy,
    ))
    .await;
    app.put_order(order(
        22,
        app.account,
        OrderStatus::New,
        "ETH/USD",
        Side::Buy,
    ))
    .await;
    app.put_order(order(
        23,
        app.account,
        OrderStatus::Filled,
        "BTC/USD",
        Side::Buy,
    ))
    .await;
    app.put_order(order(
        24,
        app.other,
        OrderStatus::Accepted,
        "BTC/USD",
        Side::Buy,
    ))
    .await;
    // More open orders of one status than a page of the store holds.
    for id in 1000..1503 {
        app.put_order(order(
            id,
            app.account,
            OrderStatus::Accepted,
            "ETH/USD",
            Side::Sell,
        ))
        .await;
    }
    let canceled = |r: &api_common::Resp| -> Vec<u64> {
        let mut ids: Vec<u64> = r.json()["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().parse().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    let cancels = |events: &[Event]| -> Vec<u64> {
        let mut ids: Vec<u64> = events
            .iter()
            .map(|e| match e {
                Event::CancelRequested {
                    account, order_id, ..
                } if *account == app.account => order_id.0,
                other => panic!("{other:?}"),
            })
            .collect();
        ids.sort_unstable();
        ids
    };
    let events = || async {
        app.order_records()
            .await
            .into_iter()
            .map(|(_, e)| e.event)
            .collect::<Vec<_>>()
    };

    // A filter that cannot be read cancels nothing, and names the parameter.
    for (query, code, field) in [
        ("symbl=BTC/USD", "UNKNOWN_FIELD", "symbl"),
        ("symbol=DOGE/USD", "UNKNOWN_SYMBOL", "symbol"),
        ("symbol=", "UNKNOWN_SYMBOL", "symbol"),
        ("side=buy", "INVALID_ENUM", "side"),
        ("side=BUY&side=SELL", "DUPLICATE_FIELD", "side"),
    ] {
        let r = app
            .as_demo("DELETE", &format!("/api/orders?{query}"), None)
            .await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{query}"
        );
    }
    // Nor does a filter sent as a body, whatever its content type: it would be ignored.
    for ct in ["application/json", "text/plain"] {
        let r = app
            .send(
                "DELETE",
                "/api/orders",
                &[("x-api-key", KEY), ("content-type", ct)],
                Some(br#"{"symbol":"BTC/USD"}"#),
            )
            .await;
        assert_eq!(
            r.problem(),
            (400, "UNEXPECTED_BODY".to_string(), Some("body".to_string())),
            "{ct}"
        );
    }
    assert!(events().await.is_empty());

    let r = app
        .as_demo("DELETE", "/api/orders?symbol=BTC%2FUSD&side=BUY", None)
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(canceled(&r), vec![21]);
    assert_eq!(r.json()["orders"][0]["status"], "PARTIALLY_FILLED");
    assert_eq!(cancels(&events().await), vec![21]);

    let r = app.as_demo("DELETE", "/api/orders", None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let mut all: Vec<u64> = vec![20, 21, 22];
    all.extend(1000..1503);
    assert_eq!(canceled(&r), all);
    let mut expected = vec![21];
    expected.extend(&all);
    expected.sort_unstable();
    assert_eq!(cancels(&events().await), expected);

    // Under an idempotency key the same filter, in any order, replays; another is refused.
    let h = |key| [("x-api-key", KEY), ("x-idempotency-key", key)];
    let a = app
        .send(
            "DELETE",
            "/api/orders?symbol=ETH/USD&side=BUY",
            &h("all-eth"),
            None,
        )
        .await;
    let b = app
        .send(
            "DELETE",
            "/api/orders?side=BUY&symbol=ETH%2FUSD",
            &h("all-eth"),
            None,
        )
        .await;
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(canceled(&a), vec![22]);
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    assert_eq!(a.body, b.body);
    let c = app
        .send("DELETE", "/api/orders?symbol=ETH/USD", &h("all-eth"), None)
        .await;
    assert_eq!(c.problem().1, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(events().await.len(), expected.len() + 1);
}

#[tokio::test]
async fn cancel_all_covers_orders_acknowledged_but_not_yet_recorded() {
    let app = TestApp::start().await;
    // Acknowledged: its OrderCreated is in the log, and no processor has recorded it.
    let placed = app.as_demo("POST", "/api/orders", Some(&seed())).await;
    assert_eq!(placed.status, 202);
    let id: u64 = placed.json()["orderId"].as_str().unwrap().parse().unwrap();
    let cancels = || async {
        app.order_records()
            .await
            .into_iter()
            .filter_map(|(r, e)| match e.event {
                Event::CancelRequested { order_id, .. } => {
                    Some((r.partition, r.offset, order_id.0))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    let r = app.as_demo("DELETE", "/api/orders?side=SELL", None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.json()["orders"], json!([]));
    assert!(cancels().await.is_empty());

    let r = app.as_demo("DELETE", "/api/orders", None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let listed = r.json()["orders"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["orderId"], id.to_string());
    assert_eq!(listed[0]["status"], "NEW");
    // Behind its order in the same partition, so risk sees the order first.
    let created = app
        .order_records()
        .await
        .into_iter()
        .find(|(_, e)| matches!(&e.event, Event::OrderCreated(o) if o.order_id.0 == id))
        .map(|(r, _)| (r.partition, r.offset))
        .unwrap();
    let cancel = cancels().await[0];
    assert_eq!((cancel.0, cancel.2), (created.0, id));
    assert!(cancel.1 > created.1);

    // Ended in the log, the processor still behind: not cancelled again. An open stored
    // order is.
    let ended = oms_domain::events::Envelope::new(
        Timestamp(1),
        Event::OrderCanceled {
            account: app.account,
            order_id: OrderId(id),
            reason: oms_domain::events::CancelReason::UserRequested,
            leaves_quantity: dec("0.1"),
        },
    );
    app.log
        .append("orders", vec![oms_services::codec::encode_event(&ended)])
        .await
        .unwrap();
    app.put_order(stored_order(77, app.account, OrderStatus::Accepted))
        .await;
    let r = app.as_demo("DELETE", "/api/orders", None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let listed: Vec<String> = r.json()["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec!["77"]);
    assert_eq!(cancels().await.len(), 2);
}

#[tokio::test]
async fn the_kill_switch_goes_on_the_log_and_reads_back_from_the_store() {
    let app = TestApp::start().await;
    let me = || async { app.as_demo("GET", "/api/accounts/me", None).await.json() };
    assert_eq!(me().await["killSwitch"], false);

    for (body, code, field) in [
        (json!({}), "MISSING_FIELD", "enabled"),
        (json!({"enabled": "yes"}), "INVALID_TYPE", "enabled"),
        (
            json!({"enabled": true, "account": 2}),
            "UNKNOWN_FIELD",
            "account",
        ),
        (json!({"enabled": null}), "MISSING_FIELD", "enabled"),
        (json!([true]), "MALFORMED_JSON", "body"),
    ] {
        let r = app
            .as_demo("PUT", "/api/accounts/me/kill-switch", Some(&body))
            .await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{body}"
        );
    }
    assert!(app.order_records().await.is_empty());

    for on in [true, false] {
        let r = app
            .as_demo(
                "PUT",
                "/api/accounts/me/kill-switch",
                Some(&json!({ "enabled": on })),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.json(), json!({ "killSwitch": on }));
    }
    let switches: Vec<(AccountId, bool, String)> = app
        .order_records()
        .await
        .into_iter()
        .map(|(r, e)| match e.event {
            Event::KillSwitchSet { account, on, .. } => {
                (account, on, String::from_utf8(r.key.to_vec()).unwrap())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let key = app.account.to_string();
    assert_eq!(
        switches,
        vec![(app.account, true, key.clone()), (app.account, false, key)]
    );

    // What the store holds (the processor records it: see the `oms serve` test) is what the
    // account reads back.
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            kill_switches: vec![(app.account, true)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(me().await["killSwitch"], true);
    let other = app
        .send("GET", "/api/accounts/me", &[("x-api-key", OTHER_KEY)], None)
        .await;
    assert_eq!(other.json()["killSwitch"], false);
}

#[tokio::test]
async fn the_dead_mans_switch_goes_on_the_log_with_its_deadline() {
    let app = TestApp::start().await;
    let path = "/api/accounts/me/cancel-after";
    for (body, code, field) in [
        (json!({}), "MISSING_FIELD", "timeoutMs"),
        (json!({"timeoutMs": null}), "MISSING_FIELD", "timeoutMs"),
        (json!({"timeoutMs": "60000"}), "INVALID_TYPE", "timeoutMs"),
        (json!({"timeoutMs": 999}), "INVALID_TIMEOUT", "timeoutMs"),
        (
            json!({"timeoutMs": 86_400_001}),
            "INVALID_TIMEOUT",
            "timeoutMs",
        ),
        (json!({"timeoutMs": -1}), "INVALID_TIMEOUT", "timeoutMs"),
        (json!({"timeoutMs": 1500.5}), "INVALID_TIMEOUT", "timeoutMs"),
        (
            json!({"timeoutMs": 60000, "account": 2}),
            "UNKNOWN_FIELD",
            "account",
        ),
        (json!([60000]), "MALFORMED_JSON", "body"),
    ] {
        let r = app.as_demo("PUT", path, Some(&body)).await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{body}"
        );
    }
    assert!(app.order_records().await.is_empty());

    let before = oms_services::ingestion::clock::now();
    let on = app
        .as_demo("PUT", path, Some(&json!({"timeoutMs": 60_000})))
        .await;
    assert_eq!(on.status, 202, "{:?}", on.body);
    let v = on.json();
    assert_eq!(
        (v["enabled"].clone(), v["timeoutMs"].clone()),
        (json!(true), json!(60_000))
    );
    let off = app
        .as_demo("PUT", path, Some(&json!({"timeoutMs": 0})))
        .await;
    assert_eq!(off.status, 202, "{:?}", off.body);
    assert_eq!(off.json()["triggerTime"], Value::Null);
    assert_eq!(off.json()["enabled"], false);

    let settings: Vec<(AccountId, Option<i64>, String)> = app
        .order_records()
        .await
        .into_iter()
        .map(|(r, e)| match e.event {
            Event::CancelAfterSet {
                account, deadline, ..
            } => (
                account,
                deadline.map(|d| d.0),
                String::from_utf8(r.key.to_vec()).unwrap(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    let [(a1, Some(deadline), k1), (a2, None, k2)] = &settings[..] else {
        panic!("{settings:?}");
    };
    let key = app.account.to_string();
    assert_eq!((*a1, k1, *a2, k2), (app.account, &key, app.account, &key));
    // The deadline is the answer's time plus the timeout, as the answer says.
    assert!(
        (before.0 + 60_000..before.0 + 65_000).contains(deadline),
        "{deadline}"
    );
    assert_eq!(
        v["triggerTime"],
        oms_services::ingestion::clock::format_rfc3339_millis(Timestamp(*deadline))
    );

    // A read-only key may not arm it.
    let read_only = "read-only-key-of-the-demo-account";
    app.add_read_only_key(read_only).await;
    let r = app
        .send(
            "PUT",
            path,
            &[("x-api-key", read_only)],
            Some(br#"{"timeoutMs":60000}"#),
        )
        .await;
    assert_eq!(r.problem().1, "READ_ONLY_KEY");
    assert_eq!(app.order_records().await.len(), 2);
}

#[tokio::test]
async fn client_order_ids_are_unique_per_account_for_ever() {
    let app = TestApp::start().await;
    let body = with(seed(), "clientOrderId", json!("my-order-1"));
    let first = app.as_demo("POST", "/api/orders", Some(&body)).await;
    assert_eq!(first.status, 202);
    assert_eq!(first.json()["clientOrderId"], "my-order-1");
    let again = app.as_demo("POST", "/api/orders", Some(&body)).await;
    let (status, code, field) = again.problem();
    assert_eq!(
        (status, code.as_str(), field.as_deref()),
        (409, "DUPLICATE_CLIENT_ORDER_ID", Some("clientOrderId"))
    );
    assert_eq!(again.json()["existingOrderId"], first.json()["orderId"]);
    // Another account may use the same clientOrderId.
    let bytes = serde_json::to_vec(&body).unwrap();
    let other = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", OTHER_KEY),
                ("content-type", "application/json"),
            ],
            Some(&bytes),
        )
        .await;
    assert_eq!(other.status, 202);
    assert_eq!(app.order_records().await.len(), 2);
}

#[tokio::test]
async fn listing_pages_newest_first() {
    let app = TestApp::start().await;
    for id in 1..=5 {
        app.put_order(stored_order(id, app.account, OrderStatus::Accepted))
            .await;
    }
    app.put_order(stored_order(6, app.account, OrderStatus::Canceled))
        .await;
    app.put_order(stored_order(7, app.other, OrderStatus::Accepted))
        .await;

    let page1 = app.as_demo("GET", "/api/orders?limit=4", None).await.json();
    let ids = |v: &Value| -> Vec<String> {
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&page1), ["6", "5", "4", "3"]);
    assert_eq!(page1["nextCursor"], "3");
    let page2 = app
        .as_demo("GET", "/api/orders?limit=4&cursor=3", None)
        .await
        .json();
    assert_eq!(ids(&page2), ["2", "1"]);
    assert_eq!(page2["nextCursor"], Value::Null);

    let canceled = app
        .as_demo(
            "GET",
            "/api/orders?status=CANCELED&symbol=BTC/USD&side=SELL",
            None,
        )
        .await
        .json();
    assert_eq!(ids(&canceled), ["6"]);

    for (q, code, field) in [
        ("limit=0", "INVALID_LIMIT", "limit"),
        ("limit=501", "INVALID_LIMIT", "limit"),
        ("status=OPEN", "INVALID_ENUM", "status"),
        ("side=LONG", "INVALID_ENUM", "side"),
        ("symbol=XYZ", "UNKNOWN_SYMBOL", "symbol"),
        ("from=yesterday", "INVALID_TIMESTAMP", "from"),
        ("from=20&to=10", "INVALID_RANGE", "from"),
        ("cursor=abc", "INVALID_CURSOR", "cursor"),
        // A misspelt or repeated filter must not widen the list to every order.
        ("stauts=REJECTED", "UNKNOWN_FIELD", "stauts"),
        (
            "status=ACCEPTED&status=REJECTED",
            "DUPLICATE_FIELD",
            "status",
        ),
        ("limit=1&limit=2", "DUPLICATE_FIELD", "limit"),
    ] {
        let r = app.as_demo("GET", &format!("/api/orders?{q}"), None).await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{q}"
        );
    }
}

#[tokio::test]
async fn an_order_is_found_cancelled_and_amended_by_its_client_order_id() {
    let app = TestApp::start().await;
    let placed = app
        .as_demo(
            "POST",
            "/api/orders",
            Some(
                &json!({"symbol":"BTC/USD","side":"SELL","quantity":"0.5","price":46000,
                         "orderType":"LIMIT","clientOrderId":"bot:7-a"}),
            ),
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let id = placed.json()["orderId"].as_str().unwrap().to_string();
    // The processor records it.
    let mut stored = stored_order(id.parse().unwrap(), app.account, OrderStatus::Accepted);
    stored.client_order_id = Some("bot:7-a".into());
    app.put_order(stored).await;

    let got = app.as_demo("GET", "/api/orders/client:bot:7-a", None).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.json()["orderId"], id.as_str());
    assert_eq!(got.json()["clientOrderId"], "bot:7-a");
    let fills = app
        .as_demo("GET", "/api/orders/client:bot:7-a/fills", None)
        .await;
    assert_eq!(fills.json(), json!({"fills": []}));
    let amended = app
        .as_demo(
            "PATCH",
            "/api/orders/client:bot:7-a",
            Some(&json!({"price": 46001})),
        )
        .await;
    assert_eq!(amended.status, 202, "{:?}", amended.body);
    let canceled = app
        .as_demo("DELETE", "/api/orders/client:bot:7-a", None)
        .await;
    assert_eq!(canceled.status, 202, "{:?}", canceled.body);
    assert_eq!(canceled.json()["orderId"], id.as_str());
    let events: Vec<Event> = app
        .order_records()
        .await
        .into_iter()
        .map(|(_, e)| e.event)
        .collect();
    assert!(
        matches!(&events[1], Event::AmendRequested { order_id, .. } if order_id.to_string() == id)
    );
    assert_eq!(
        events[2],
        Event::CancelRequested {
            account: app.account,
            order_id: id.parse().unwrap(),
            reason: None,
        }
    );

    // Another account's, unknown, malformed: not found.
    let theirs = app
        .send(
            "GET",
            "/api/orders/client:bot:7-a",
            &[("x-api-key", OTHER_KEY)],
            None,
        )
        .await;
    assert_eq!(theirs.problem().1, "ORDER_NOT_FOUND");
    for path in [
        "/api/orders/client:bot:7-b",
        "/api/orders/client:",
        "/api/orders/client:has%20space",
        "/api/orders/Client:bot:7-a",
    ] {
        let r = app.as_demo("GET", path, None).await;
        assert_eq!(
            r.problem(),
            (404, "ORDER_NOT_FOUND".into(), Some("orderId".into())),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_account_trade_history_pages_newest_first() {
    let app = TestApp::start().await;
    let mine = stored_order(1, app.account, OrderStatus::PartiallyFilled);
    let mut eth = stored_order(2, app.account, OrderStatus::Filled);
    eth.symbol = Symbol::new("ETH/USD");
    eth.side = Side::Buy;
    let theirs = stored_order(3, app.other, OrderStatus::Filled);
    let at = |mut f: oms_domain::events::Fill, t: i64| {
        f.at = Some(Timestamp(1_764_057_600_000 + t));
        f
    };
    use oms_conformance::fixtures::fill;
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            orders: vec![mine.clone(), eth.clone(), theirs.clone()],
            fills: vec![
                at(fill(&mine, 10, "46000", "0.1"), 1),
                at(fill(&eth, 4, "3000.5", "0.25"), 2),
                at(fill(&mine, 11, "46000.01", "0.2"), 3),
                at(fill(&theirs, 12, "46000", "0.5"), 4),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let trades = |v: &Value| -> Vec<(String, u64)> {
        v["fills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["orderId"].as_str().unwrap().to_string(),
                    f["tradeId"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let page1 = app.as_demo("GET", "/api/fills?limit=2", None).await;
    assert_eq!(page1.status, 200);
    let page1 = page1.json();
    assert_eq!(trades(&page1), [("1".into(), 11), ("2".into(), 4)]);
    assert_eq!(
        page1["fills"][0],
        json!({
            "orderId": "1", "symbol": "BTC/USD", "side": "SELL", "tradeId": 11,
            "price": "46000.01", "quantity": "0.2", "liquidity": "TAKER", "fee": "0.01",
            "feeAsset": "USD", "at": "2025-11-25T08:00:00.003Z",
        })
    );
    let cursor = page1["nextCursor"].as_str().unwrap().to_string();
    let page2 = app
        .as_demo("GET", &format!("/api/fills?limit=2&cursor={cursor}"), None)
        .await
        .json();
    assert_eq!(
        trades(&page2),
        [("1".into(), 10)],
        "the other account's fill is not listed"
    );
    assert_eq!(page2["nextCursor"], Value::Null);

    let filtered = app
        .as_demo("GET", "/api/fills?symbol=ETH/USD&side=BUY", None)
        .await
        .json();
    assert_eq!(trades(&filtered), [("2".into(), 4)]);
    let window = app
        .as_demo(
            "GET",
            "/api/fills?from=1764057600001&to=2025-11-25T08:00:00.002Z",
            None,
        )
        .await
        .json();
    assert_eq!(trades(&window), [("2".into(), 4), ("1".into(), 10)]);

    for (q, code, field) in [
        ("limit=0", "INVALID_LIMIT", "limit"),
        ("limit=501", "INVALID_LIMIT", "limit"),
        ("side=LONG", "INVALID_ENUM", "side"),
        ("symbol=XYZ", "UNKNOWN_SYMBOL", "symbol"),
        ("to=tomorrow", "INVALID_TIMESTAMP", "to"),
        ("from=20&to=10", "INVALID_RANGE", "from"),
        ("cursor=3", "INVALID_CURSOR", "cursor"),
        ("cursor=1.-2.3", "INVALID_CURSOR", "cursor"),
        ("status=FILLED", "UNKNOWN_FIELD", "status"),
        ("limit=5&limit=6", "DUPLICATE_FIELD", "limit"),
    ] {
        let r = app.as_demo("GET", &format!("/api/fills?{q}"), None).await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{q}"
        );
    }
    let anonymous = app.send("GET", "/api/fills", &[], None).await;
    assert_eq!(anonymous.status, 401);

    // The same history as CSV, filtered alike.
    let csv = app.as_demo("GET", "/api/fills/export", None).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"fills.csv\"")
    );
    assert_eq!(
        String::from_utf8(csv.body.to_vec()).unwrap(),
        "time,orderId,symbol,side,tradeId,price,quantity,notional,fee,feeAsset,liquidity\r\n\
         2025-11-25T08:00:00.003Z,1,BTC/USD,SELL,11,46000.01,0.2,9200.002,0.01,USD,TAKER\r\n\
         2025-11-25T08:00:00.002Z,2,ETH/USD,BUY,4,3000.50,0.25,750.125,0.01,USD,TAKER\r\n\
         2025-11-25T08:00:00.001Z,1,BTC/USD,SELL,10,46000.00,0.1,4600,0.01,USD,TAKER\r\n"
    );
    let eth = app
        .as_demo("GET", "/api/fills/export?symbol=ETH/USD", None)
        .await;
    assert_eq!(
        String::from_utf8(eth.body.to_vec())
            .unwrap()
            .lines()
            .count(),
        2
    );
    for (q, code, field) in [
        ("limit=5", "UNKNOWN_FIELD", "limit"),
        ("cursor=1.2.3", "UNKNOWN_FIELD", "cursor"),
        ("side=LONG", "INVALID_ENUM", "side"),
    ] {
        let r = app
            .as_demo("GET", &format!("/api/fills/export?{q}"), None)
            .await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{q}"
        );
    }
}

#[tokio::test]
async fn an_export_streams_every_fill_across_its_pages_once() {
    let app = TestApp::start().await;
    let order = stored_order(1, app.account, OrderStatus::PartiallyFilled);
    // Two full pages of the export and one more fill, some sharing a time.
    let fills: Vec<_> = (0..1_001u64)
        .map(|i| {
            let mut f = oms_conformance::fixtures::fill(&order, 100 + i, "46000", "0.001");
            f.at = Some(Timestamp(1_764_057_600_000 + (i / 3) as i64));
            f
        })
        .collect();
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            orders: vec![order],
            fills,
            ..Default::default()
        })
        .await
        .unwrap();
    let csv = app.as_demo("GET", "/api/fills/export", None).await;
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body.to_vec()).unwrap();
    let trades: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    let newest_first: Vec<u64> = (100..1_101u64).rev().collect();
    assert_eq!(trades, newest_first);
}

#[tokio::test]
async fn a_retry_after_a_lost_response_resumes_the_same_order_instead_of_placing_another() {
    let mut ports = api_common::embedded_ports().await;
    ports.idempotency = LosesFirstResponse::wrap(ports.idempotency.clone());
    let lock = std::time::Duration::from_millis(300);
    let app = TestApp::start_configured(ports, |c| c.idempotency_lock_ttl = lock, |s| s).await;

    let first = post_seed(&app, "crash-key").await;
    assert_eq!(first.status, 202);
    let order_id = first.json()["orderId"].clone();
    // Its response was never stored: the key stays in flight while its lock lasts.
    assert_eq!(post_seed(&app, "crash-key").await.status, 409);

    tokio::time::sleep(lock + std::time::Duration::from_millis(200)).await;
    let other_body = app
        .send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", "crash-key"),
            ],
            Some(br#"{"symbol":"BTC/USD","side":"SELL","quantity":0.1,"price":45000,"orderType":"LIMIT"}"#),
        )
        .await;
    assert_eq!(
        other_body.status, 422,
        "another body under the abandoned key"
    );
    let resumed = post_seed(&app, "crash-key").await;
    assert_eq!(resumed.status, 202, "{:?}", resumed.body);
    assert_eq!(resumed.header("idempotent-replayed"), None);
    assert_eq!(
        resumed.json(),
        first.json(),
        "the retry resumes the first request: the same order, the same response"
    );

    let replay = post_seed(&app, "crash-key").await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["orderId"], order_id);

    // The order went to the log twice under one id; the pipeline keeps the first.
    let created: Vec<String> = app
        .order_records()
        .await
        .into_iter()
        .filter_map(|(_, env)| match env.event {
            Event::OrderCreated(o) => Some(o.order_id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|id| order_id == id.as_str()));
}

#[tokio::test]
async fn a_retry_after_an_append_that_failed_but_landed_places_the_same_order() {
    let mut ports = api_common::embedded_ports().await;
    // Its first append lands and is then reported failed.
    ports.log = api_common::HookedLog::landing_then_failing(ports.log.clone(), 0);
    // A long lock: the retry must not have to wait it out.
    let lock = std::time::Duration::from_secs(3600);
    let app = TestApp::start_configured(ports, |c| c.idempotency_lock_ttl = lock, |s| s).await;
    let body = br#"{"symbol":"BTC/USD","side":"BUY","quantity":0.1,"price":45000,"orderType":"LIMIT","clientOrderId":"landed-1"}"#;
    let post = || {
        app.send(
            "POST",
            "/api/orders",
            &[
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", "landed-key"),
            ],
            Some(body),
        )
    };

    let failed = post().await;
    assert_eq!(failed.status, 503, "{:?}", failed.body);
    assert!(failed.header("retry-after").is_some());
    let retry = post().await;
    assert_eq!(retry.status, 202, "{:?}", retry.body);

    // Both appends carry the same order: downstream keeps the first and drops the copy.
    let created: Vec<OrderId> = app
        .order_records()
        .await
        .into_iter()
        .filter_map(|(_, env)| match env.event {
            Event::OrderCreated(o) => Some(o.order_id),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0], created[1], "one order, appended twice");
    assert_eq!(
        retry.json()["orderId"].as_str().unwrap(),
        created[0].to_string()
    );
    let replay = post().await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}

/// A body with thousands of unknown fields is answered with the first 50 errors and a count
/// of the rest, not with a list as long as the body.
#[tokio::test]
async fn a_body_of_many_bad_fields_lists_fifty_errors() {
    let app = TestApp::start().await;
    let mut body = serde_json::from_str::<Value>(SEED_BODY).unwrap();
    for i in 0..500 {
        body[format!("extra{i}")] = json!(1);
    }
    let r = app.as_demo("POST", "/api/orders", Some(&body)).await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(50), "{v}");
    assert_eq!(v["errorsOmitted"], 450, "{v}");
    assert_eq!(v["code"], "UNKNOWN_FIELD");
}
