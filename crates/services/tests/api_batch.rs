//! Placing several orders in one request (`POST /api/orders/batch`) through the real HTTP
//! server.

mod api_common;

use api_common::{LosesFirstResponse, Resp, TestApp, KEY};
use oms_domain::events::Event;
use serde_json::{json, Value};

const PATH: &str = "/api/orders/batch";

fn buy(price: &str) -> Value {
    json!({"symbol": "BTC/USD", "side": "BUY", "quantity": "0.1", "price": price, "orderType": "LIMIT"})
}

fn with_coid(mut v: Value, coid: &str) -> Value {
    v["clientOrderId"] = json!(coid);
    v
}

async fn post(app: &TestApp, body: &Value, idem_key: Option<&str>) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut headers = vec![("x-api-key", KEY), ("content-type", "application/json")];
    if let Some(k) = idem_key {
        headers.push(("x-idempotency-key", k));
    }
    app.send("POST", PATH, &headers, Some(&bytes)).await
}

/// The orders the log holds, in order: (order id, clientOrderId, partition key).
async fn created(app: &TestApp) -> Vec<(String, Option<String>, String)> {
    app.order_records()
        .await
        .into_iter()
        .filter_map(|(r, env)| match env.event {
            Event::OrderCreated(o) => Some((
                o.order_id.to_string(),
                o.client_order_id,
                String::from_utf8(r.key.to_vec()).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_batch_that_is_not_one_is_refused_whole() {
    let app = TestApp::start().await;
    let many: Vec<Value> = (0..21).map(|_| buy("45000")).collect();
    for (body, code, field) in [
        (json!({}), "MISSING_FIELD", "orders"),
        (json!({"orders": null}), "MISSING_FIELD", "orders"),
        (json!({"orders": buy("45000")}), "INVALID_TYPE", "orders"),
        (json!({"orders": []}), "INVALID_BATCH_SIZE", "orders"),
        (json!({ "orders": many }), "INVALID_BATCH_SIZE", "orders"),
        (
            json!({"orders": [buy("45000")], "account": 2}),
            "UNKNOWN_FIELD",
            "account",
        ),
        (json!([buy("45000")]), "MALFORMED_JSON", "body"),
    ] {
        let r = post(&app, &body, None).await;
        assert_eq!(
            r.problem(),
            (400, code.to_string(), Some(field.to_string())),
            "{body}"
        );
    }
    assert!(app.order_records().await.is_empty());
}

#[tokio::test]
async fn each_order_of_a_batch_is_placed_or_refused_on_its_own() {
    let app = TestApp::start().await;
    // A clientOrderId the account used before the batch.
    let single = app
        .as_demo("POST", "/api/orders", Some(&with_coid(buy("44000"), "old")))
        .await;
    assert_eq!(single.status, 202);
    let old_id = single.json()["orderId"].clone();

    let body = json!({"orders": [
        buy("45000"),
        buy("45000.001"),
        with_coid(buy("45001"), "q-1"),
        with_coid(buy("45002"), "q-1"),
        with_coid(buy("45003"), "old"),
        {"symbol": "BTC/USD", "side": "BUY", "orderType": "LIMIT"},
        "not an order",
        buy("45004"),
    ]});
    let r = post(&app, &body, None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let results = r.json()["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 400, 202, 409, 409, 400, 400, 202]);
    let error = |i: usize, what: &str| results[i]["error"][what].clone();
    assert_eq!(
        (error(1, "code"), error(1, "field")),
        (json!("TOO_MANY_DECIMALS"), json!("orders[1].price"))
    );
    // The first order of the batch to use a clientOrderId gets it, and the store holds it.
    let q1 = results[2]["order"]["orderId"].clone();
    assert_eq!(
        (error(3, "code"), error(3, "existingOrderId")),
        (json!("DUPLICATE_CLIENT_ORDER_ID"), q1.clone())
    );
    assert_eq!(error(3, "field"), json!("orders[3].clientOrderId"));
    assert_eq!(error(4, "existingOrderId"), old_id);
    // Several fields wrong in one order: all listed, each named within the batch.
    assert_eq!(error(5, "code"), json!("MISSING_FIELD"));
    let fields: Vec<Value> = results[5]["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [json!("orders[5].quantity"), json!("orders[5].price")]
    );
    // Well-formed JSON of the wrong type: the element is named, and it is no parse error.
    assert_eq!(
        (error(6, "code"), error(6, "field")),
        (json!("INVALID_TYPE"), json!("orders[6]"))
    );

    // The valid orders are on the log in the batch's order, in the account's partition, with
    // the ids the answer gave them.
    let placed: Vec<Value> = [0, 2, 7]
        .iter()
        .map(|i| results[*i]["order"]["orderId"].clone())
        .collect();
    let key = app.account.to_string();
    let logged: Vec<(Value, Option<String>, String)> = created(&app)
        .await
        .into_iter()
        .skip(1)
        .map(|(id, coid, k)| (json!(id), coid, k))
        .collect();
    assert_eq!(
        logged,
        vec![
            (placed[0].clone(), None, key.clone()),
            (placed[1].clone(), Some("q-1".into()), key.clone()),
            (placed[2].clone(), None, key),
        ]
    );
    assert_eq!(results[0]["order"]["status"], "NEW");
    // The store holds the clientOrderId for the batch's order from now on.
    let later = post(
        &app,
        &json!({"orders": [with_coid(buy("45005"), "q-1")]}),
        None,
    )
    .await;
    let later = &later.json()["results"][0];
    assert_eq!(
        (
            later["status"].clone(),
            later["error"]["existingOrderId"].clone()
        ),
        (json!(409), q1)
    );
}

#[tokio::test]
async fn a_batch_is_one_idempotent_request() {
    let app = TestApp::start().await;
    let body = json!({"orders": [buy("45000"), with_coid(buy("45001"), "b-1")]});
    let first = post(&app, &body, Some("batch-key")).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let again = post(&app, &body, Some("batch-key")).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    assert_eq!(created(&app).await.len(), 2);
    let other = post(&app, &json!({"orders": [buy("45000")]}), Some("batch-key")).await;
    assert_eq!(other.problem().1, "IDEMPOTENCY_KEY_REUSED");

    // A read-only key may not place a batch.
    let read_only = "read-only-key-of-the-demo-account";
    app.add_read_only_key(read_only).await;
    let bytes = serde_json::to_vec(&body).unwrap();
    let refused = app
        .send(
            "POST",
            PATH,
            &[
                ("x-api-key", read_only),
                ("content-type", "application/json"),
            ],
            Some(&bytes),
        )
        .await;
    assert_eq!(refused.problem().1, "READ_ONLY_KEY");
    assert_eq!(created(&app).await.len(), 2);
}

#[tokio::test]
async fn a_retry_after_a_lost_response_places_the_same_orders() {
    let mut ports = api_common::embedded_ports().await;
    ports.idempotency = LosesFirstResponse::wrap(ports.idempotency.clone());
    let lock = std::time::Duration::from_millis(300);
    let app = TestApp::start_configured(ports, |c| c.idempotency_lock_ttl = lock, |s| s).await;
    let body = json!({"orders": [buy("45000"), with_coid(buy("45001"), "r-1")]});

    let first = post(&app, &body, Some("crash-key")).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    // Its response was never stored: the key stays in flight while its lock lasts.
    assert_eq!(post(&app, &body, Some("crash-key")).await.status, 409);
    tokio::time::sleep(lock + std::time::Duration::from_millis(200)).await;
    let resumed = post(&app, &body, Some("crash-key")).await;
    assert_eq!(resumed.status, 202, "{:?}", resumed.body);
    assert_eq!(
        resumed.json(),
        first.json(),
        "the retry resumes the first batch: the same orders (and the clientOrderId is theirs)"
    );

    // Each order went to the log twice under its one id; the pipeline keeps the first.
    let ids: Vec<String> = created(&app).await.into_iter().map(|(id, ..)| id).collect();
    let answered: Vec<String> = first.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["order"]["orderId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [&answered[..], &answered[..]].concat());
}

#[tokio::test]
async fn each_order_of_a_batch_counts_against_the_accounts_request_limit() {
    let ports = api_common::embedded_ports().await;
    let app = TestApp::start_configured(
        ports,
        |c| {
            c.request_rate = oms_services::api::rate_limit::RequestRate {
                per_second: 1,
                burst: 5,
            }
        },
        |s| s,
    )
    .await;
    let orders = |n: usize| json!({ "orders": vec![buy("45000"); n] });
    let over = post(&app, &orders(6), None).await;
    assert_eq!(over.problem().1, "RATE_LIMITED");
    assert_eq!(over.header("retry-after"), Some("1"));
    assert!(created(&app).await.is_empty());
    // The refused batch spent only its own request: four more orders fit the burst.
    let r = post(&app, &orders(4), None).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(created(&app).await.len(), 4);
    let spent = app.as_demo("GET", "/api/accounts/me", None).await;
    assert_eq!(spent.problem().1, "RATE_LIMITED");
}
