//! The operators' admin API through the real HTTP server: who may call it, opening accounts,
//! issuing keys, deposits and an account's kill switch, with every bad input refused.

mod api_common;

use api_common::{embedded_ports, stored_order, Resp, TestApp, KEY};
use oms_domain::events::{CancelReason, Event};
use oms_domain::ids::{AccountId, Asset, OrderId};
use oms_domain::order::OrderStatus;
use oms_domain::Decimal;
use oms_ports::order_store::OrderStore;
use oms_services::api::hash_api_key;
use serde_json::{json, Value};
use std::str::FromStr;

const ADMIN_KEY: &str = "oms_admin_test_key";
const OTHER_ADMIN_KEY: &str = "oms_admin_second_operator";

async fn start() -> TestApp {
    TestApp::start_configured(
        embedded_ports().await,
        |c| {
            c.operator_key_hashes = [hash_api_key(ADMIN_KEY), hash_api_key(OTHER_ADMIN_KEY)]
                .into_iter()
                .collect();
        },
        |s| s,
    )
    .await
}

/// A request with the admin key and, when given, a JSON body and more headers.
async fn admin(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let mut h = vec![("x-admin-key", ADMIN_KEY)];
    if bytes.is_some() {
        h.push(("content-type", "application/json"));
    }
    h.extend_from_slice(headers);
    app.send(method, path, &h, bytes.as_deref()).await
}

fn expect(status: u16, code: &str, field: &str) -> (u16, String, Option<String>) {
    (status, code.to_string(), Some(field.to_string()))
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_configured_key_and_refuses_every_other_credential() {
    let off = TestApp::start().await;
    let r = off
        .send(
            "GET",
            "/api/admin/accounts",
            &[("x-admin-key", ADMIN_KEY)],
            None,
        )
        .await;
    assert_eq!(
        (r.problem().0, r.problem().1.as_str()),
        (403, "ADMIN_DISABLED")
    );

    let app = start().await;
    for headers in [
        vec![],
        vec![("x-api-key", KEY)],
        vec![("x-admin-key", KEY)],
        vec![("x-admin-key", "")],
        vec![("x-admin-key", "oms_admin_test_kez")],
    ] {
        let r = app.send("GET", "/api/admin/accounts", &headers, None).await;
        assert_eq!(
            r.problem(),
            expect(401, "UNAUTHORIZED", "X-Admin-Key"),
            "{headers:?}"
        );
    }
    // Nor does the admin key act as an account on the trading routes.
    let r = app
        .send("GET", "/api/accounts/me", &[("x-api-key", ADMIN_KEY)], None)
        .await;
    assert_eq!(r.status, 401);
    let r = admin(&app, "GET", "/api/admin/accounts", None, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn an_operator_opens_an_account_and_issues_it_a_working_key() {
    let app = start().await;
    for (body, code, field) in [
        (json!({}), "MISSING_FIELD", "name"),
        (json!({"name": null}), "MISSING_FIELD", "name"),
        (json!({"name": 7}), "INVALID_TYPE", "name"),
        (json!({"name": "  "}), "INVALID_NAME", "name"),
        (json!({"name": "a".repeat(65)}), "INVALID_NAME", "name"),
        (json!({"name": "tab\there"}), "INVALID_NAME", "name"),
        (json!({"name": "\u{202E}evil"}), "INVALID_NAME", "name"),
        (json!({"name": "desk\u{200B}1"}), "INVALID_NAME", "name"),
        (json!({"name": "x", "demo": true}), "UNKNOWN_FIELD", "demo"),
        (json!(["x"]), "MALFORMED_JSON", "body"),
    ] {
        let r = admin(&app, "POST", "/api/admin/accounts", Some(&body), &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{body}");
    }
    assert_eq!(app.store.accounts().await.unwrap().len(), 2);

    let idem = [("x-idempotency-key", "open-desk-1")];
    let body = json!({"name": " desk-1 "});
    let r = admin(&app, "POST", "/api/admin/accounts", Some(&body), &idem).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let opened = r.json();
    assert_eq!(opened["name"], "desk-1");
    assert_eq!(opened["demo"], false);
    assert_eq!(opened["killSwitch"], false);
    assert_eq!(opened["balances"], json!([]));
    let id = opened["accountId"].as_u64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/admin/accounts/{id}").as_str())
    );
    // The retry with its key replays: one account, not two.
    let again = admin(&app, "POST", "/api/admin/accounts", Some(&body), &idem).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), opened);
    assert_eq!(app.store.accounts().await.unwrap().len(), 3);
    let listed = admin(&app, "GET", "/api/admin/accounts", None, &[])
        .await
        .json();
    let names: Vec<&str> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "other", "desk-1"]);
    let one = admin(&app, "GET", &format!("/api/admin/accounts/{id}"), None, &[]).await;
    assert_eq!(one.json(), opened);
    for path in [
        format!("/api/admin/accounts/0{id}"),
        format!("/api/admin/accounts/+{id}"),
    ] {
        let r = admin(&app, "GET", &path, None, &[]).await;
        assert_eq!(
            r.problem(),
            expect(404, "ACCOUNT_NOT_FOUND", "accountId"),
            "{path}"
        );
    }
    // A name is one account's: the configuration finds its accounts by name.
    for (name, existing) in [("desk-1", id), ("demo", app.account.0)] {
        let r = admin(
            &app,
            "POST",
            "/api/admin/accounts",
            Some(&json!({ "name": name })),
            &[],
        )
        .await;
        assert_eq!(r.problem(), expect(409, "DUPLICATE_ACCOUNT_NAME", "name"));
        assert_eq!(r.json()["existingAccountId"], existing);
    }
    assert_eq!(app.store.accounts().await.unwrap().len(), 3);

    let keys_path = format!("/api/admin/accounts/{id}/api-keys");
    let r = admin(
        &app,
        "POST",
        &keys_path,
        None,
        &[("x-idempotency-key", "k")],
    )
    .await;
    assert_eq!(
        r.problem(),
        expect(400, "IDEMPOTENCY_NOT_SUPPORTED", "X-Idempotency-Key")
    );
    let r = admin(&app, "POST", &keys_path, None, &[]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let issued = r.json();
    assert_eq!(issued["accountId"], id);
    let key = issued["apiKey"].as_str().unwrap();
    assert!(key.starts_with("oms_") && key.len() == 68, "{key}");
    let me = app
        .send("GET", "/api/accounts/me", &[("x-api-key", key)], None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["accountId"], id);
    assert_eq!(me.json()["name"], "desk-1");
    assert_eq!(issued["keyId"], hash_api_key(key));
    // A second key is another key for the same account.
    let second = admin(&app, "POST", &keys_path, None, &[]).await.json();
    assert_ne!(second["apiKey"], issued["apiKey"]);
    let listed = admin(&app, "GET", &keys_path, None, &[]).await.json();
    let ids: Vec<&Value> = listed["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["keyId"])
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&&issued["keyId"]) && ids.contains(&&second["keyId"]));

    // A dashboard session opened with the first key.
    let cookie = app.sign_in(key).await;
    let cookie_header = [("cookie", cookie.as_str())];
    let by_cookie = || app.send("GET", "/api/accounts/me", &cookie_header, None);
    assert_eq!(by_cookie().await.status, 200);

    // Revoked by its id (given in capitals here), the first key stops working at once,
    // though it was just used, and so does the session opened with it; the second works.
    let first_id = issued["keyId"].as_str().unwrap();
    let other_path = format!("/api/admin/accounts/{}/api-keys/{first_id}", app.account);
    let r = admin(&app, "DELETE", &other_path, None, &[]).await;
    assert_eq!(r.problem(), expect(404, "API_KEY_NOT_FOUND", "keyId"));
    let revoke_path = format!("{keys_path}/{}", first_id.to_ascii_uppercase());
    let r = admin(&app, "DELETE", &revoke_path, None, &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let me = app
        .send("GET", "/api/accounts/me", &[("x-api-key", key)], None)
        .await;
    assert_eq!(me.status, 401);
    let r = by_cookie().await;
    assert_eq!(r.problem(), expect(401, "UNAUTHORIZED", "oms_session"));
    let second_key = second["apiKey"].as_str().unwrap();
    let me = app
        .send(
            "GET",
            "/api/accounts/me",
            &[("x-api-key", second_key)],
            None,
        )
        .await;
    assert_eq!(me.status, 200);
    let r = admin(&app, "DELETE", &revoke_path, None, &[]).await;
    assert_eq!(r.problem(), expect(404, "API_KEY_NOT_FOUND", "keyId"));
    let listed = admin(&app, "GET", &keys_path, None, &[]).await.json();
    assert_eq!(listed["apiKeys"].as_array().unwrap().len(), 1);

    for path in [
        "/api/admin/accounts/99/api-keys",
        "/api/admin/accounts/abc/api-keys",
    ] {
        let r = admin(&app, "POST", path, None, &[]).await;
        assert_eq!(
            r.problem(),
            expect(404, "ACCOUNT_NOT_FOUND", "accountId"),
            "{path}"
        );
    }
    let r = admin(&app, "GET", "/api/admin/accounts/99", None, &[]).await;
    assert_eq!(r.problem(), expect(404, "ACCOUNT_NOT_FOUND", "accountId"));
}

#[tokio::test]
async fn a_deposit_goes_on_the_log_in_the_accounts_partition_once_per_request() {
    let app = start().await;
    let path = format!("/api/admin/accounts/{}/deposits", app.other);
    for (body, code, field) in [
        (
            json!({"amount": "1", "reference": "r"}),
            "MISSING_FIELD",
            "asset",
        ),
        (
            json!({"asset": "XYZ", "amount": "1", "reference": "r"}),
            "UNKNOWN_ASSET",
            "asset",
        ),
        (
            json!({"asset": 5, "amount": "1", "reference": "r"}),
            "INVALID_TYPE",
            "asset",
        ),
        (
            json!({"asset": "USD", "reference": "r"}),
            "MISSING_FIELD",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "0", "reference": "r"}),
            "NON_POSITIVE",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": -5, "reference": "r"}),
            "NON_POSITIVE",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "1e3", "reference": "r"}),
            "INVALID_DECIMAL",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": true, "reference": "r"}),
            "INVALID_TYPE",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "1000000000000.000000000001", "reference": "r"}),
            "AMOUNT_TOO_LARGE",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "0.0000000000001", "reference": "r"}),
            "TOO_MANY_DECIMALS",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "1"}),
            "MISSING_FIELD",
            "reference",
        ),
        (
            json!({"asset": "USD", "amount": "1", "reference": ""}),
            "INVALID_REFERENCE",
            "reference",
        ),
        (
            json!({"asset": "USD", "amount": "1", "reference": "a b"}),
            "INVALID_REFERENCE",
            "reference",
        ),
        (
            json!({"asset": "USD", "amount": "1", "reference": "r".repeat(129)}),
            "INVALID_REFERENCE",
            "reference",
        ),
        (
            json!({"asset": "USD", "amount": "1", "reference": "r", "account": 1}),
            "UNKNOWN_FIELD",
            "account",
        ),
        (json!("USD"), "MALFORMED_JSON", "body"),
    ] {
        let r = admin(&app, "POST", &path, Some(&body), &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{body}");
    }
    // Every invalid field is reported, the first one as the problem's own.
    let r = admin(
        &app,
        "POST",
        &path,
        Some(&json!({"asset": "XYZ", "amount": "0", "reference": ""})),
        &[],
    )
    .await;
    let errors = r.json()["errors"].clone();
    let fields: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["asset", "amount", "reference"]);
    let r = admin(
        &app,
        "POST",
        "/api/admin/accounts/99/deposits",
        Some(&json!({"asset": "USD", "amount": "1", "reference": "r"})),
        &[],
    )
    .await;
    assert_eq!(r.problem(), expect(404, "ACCOUNT_NOT_FOUND", "accountId"));
    assert!(app.order_records().await.is_empty());

    let body = json!({"asset": "BTC", "amount": 0.10000000, "reference": "wire-2026-001"});
    let idem = [("x-idempotency-key", "dep-1")];
    let r = admin(&app, "POST", &path, Some(&body), &idem).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let answer = json!({
        "accountId": app.other.0,
        "asset": "BTC",
        "amount": "0.1",
        "reference": "wire-2026-001",
    });
    assert_eq!(r.json(), answer);
    let again = admin(&app, "POST", &path, Some(&body), &idem).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), answer);
    let other_body = json!({"asset": "BTC", "amount": "2", "reference": "x"});
    let reused = admin(&app, "POST", &path, Some(&other_body), &idem).await;
    assert_eq!(reused.problem().1, "IDEMPOTENCY_KEY_REUSED");

    let deposits: Vec<(String, Event)> = app.keyed_order_events().await;
    assert_eq!(
        deposits,
        vec![(
            app.other.to_string(),
            Event::Deposit {
                account: app.other,
                asset: Asset::new("BTC"),
                amount: Decimal::from_str("0.1").unwrap(),
                // The reference and the asset, as `oms accounts deposit` records it.
                reference: "wire-2026-001:BTC".to_string(),
            }
        )]
    );
}

#[tokio::test]
async fn an_operator_sets_an_accounts_kill_switch() {
    let app = start().await;
    let path = format!("/api/admin/accounts/{}/kill-switch", app.other);
    let r = admin(&app, "PUT", &path, Some(&json!({"enabled": "on"})), &[]).await;
    assert_eq!(r.problem(), expect(400, "INVALID_TYPE", "enabled"));
    let r = admin(
        &app,
        "PUT",
        "/api/admin/accounts/99/kill-switch",
        Some(&json!({"enabled": true})),
        &[],
    )
    .await;
    assert_eq!(r.problem(), expect(404, "ACCOUNT_NOT_FOUND", "accountId"));

    let r = admin(&app, "PUT", &path, Some(&json!({"enabled": true})), &[]).await;
    assert_eq!((r.status, r.json()), (202, json!({"killSwitch": true})));
    let switches: Vec<(String, AccountId, bool)> = app
        .order_records()
        .await
        .into_iter()
        .map(|(r, e)| match e.event {
            Event::KillSwitchSet { account, on, .. } => {
                (String::from_utf8(r.key.to_vec()).unwrap(), account, on)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(switches, vec![(app.other.to_string(), app.other, true)]);

    // Read back from the store once the processor has recorded it.
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            kill_switches: vec![(app.other, true)],
            ..Default::default()
        })
        .await
        .unwrap();
    let one = admin(
        &app,
        "GET",
        &format!("/api/admin/accounts/{}", app.other),
        None,
        &[],
    )
    .await;
    assert_eq!(one.json()["killSwitch"], true);
}

#[tokio::test]
async fn an_operator_cancels_every_open_order_of_one_account() {
    let app = start().await;
    app.put_order(stored_order(11, app.other, OrderStatus::Accepted))
        .await;
    app.put_order(stored_order(12, app.account, OrderStatus::Accepted))
        .await;
    let path = format!("/api/admin/accounts/{}/orders", app.other);

    let r = admin(&app, "DELETE", &format!("{path}?symbl=BTC/USD"), None, &[]).await;
    assert_eq!(r.problem(), expect(400, "UNKNOWN_FIELD", "symbl"));
    let r = admin(&app, "DELETE", "/api/admin/accounts/99/orders", None, &[]).await;
    assert_eq!(r.problem(), expect(404, "ACCOUNT_NOT_FOUND", "accountId"));
    let r = app.as_demo("DELETE", &path, None).await;
    assert_eq!(r.status, 401);
    assert!(app.order_records().await.is_empty());

    let r = admin(&app, "DELETE", &format!("{path}?side=SELL"), None, &[]).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let ids: Vec<String> = r.json()["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["11"]);
    let cancels: Vec<(String, Event)> = app.keyed_order_events().await;
    assert_eq!(
        cancels,
        vec![(
            app.other.to_string(),
            Event::CancelRequested {
                account: app.other,
                order_id: OrderId(11),
                reason: Some(CancelReason::OperatorRequested),
            }
        )]
    );
}

#[tokio::test]
async fn the_global_kill_switch_goes_to_every_partition_and_reads_back() {
    let app = start().await;
    let r = admin(&app, "PUT", "/api/admin/kill-switch", Some(&json!({})), &[]).await;
    assert_eq!(r.problem(), expect(400, "MISSING_FIELD", "enabled"));
    let r = app
        .send(
            "PUT",
            "/api/admin/kill-switch",
            &[("x-api-key", KEY), ("content-type", "application/json")],
            Some(br#"{"enabled":true}"#),
        )
        .await;
    assert_eq!(r.status, 401, "an account cannot halt everyone");
    assert!(app.order_records().await.is_empty());

    let r = admin(
        &app,
        "PUT",
        "/api/admin/kill-switch",
        Some(&json!({"enabled": true})),
        &[],
    )
    .await;
    assert_eq!((r.status, r.json()), (202, json!({"killSwitch": true})));
    let copies: Vec<(u32, u32, bool, u64)> = app
        .order_records()
        .await
        .into_iter()
        .map(|(r, e)| match e.event {
            Event::GlobalKillSwitchSet {
                on,
                change,
                partition,
            } => (r.partition, partition, on, change),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(copies.len(), app.partitions as usize, "{copies:?}");
    let change = copies[0].3;
    for (p, (in_partition, names, on, c)) in copies.iter().enumerate() {
        assert_eq!(
            (*in_partition, *names, *on, *c),
            (p as u32, p as u32, true, change),
            "one copy in each partition, naming it, of one change"
        );
    }

    // Read back from the store once the processor has recorded it.
    let get = || async {
        admin(&app, "GET", "/api/admin/kill-switch", None, &[])
            .await
            .json()
    };
    assert_eq!(get().await, json!({"killSwitch": false}));
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            global_kill_switch: Some(oms_ports::order_store::GlobalSwitch {
                change: 1,
                on: true,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(get().await, json!({"killSwitch": true}));
    // Idempotency keys are each operator's own: the same key from another operator runs.
    let idem = [("x-idempotency-key", "halt-1")];
    let off = json!({"enabled": false});
    let first = admin(&app, "PUT", "/api/admin/kill-switch", Some(&off), &idem).await;
    assert_eq!(first.status, 202);
    let again = admin(&app, "PUT", "/api/admin/kill-switch", Some(&off), &idem).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let bytes = serde_json::to_vec(&off).unwrap();
    let other = app
        .send(
            "PUT",
            "/api/admin/kill-switch",
            &[
                ("x-admin-key", OTHER_ADMIN_KEY),
                ("content-type", "application/json"),
                idem[0],
            ],
            Some(&bytes),
        )
        .await;
    assert_eq!(
        (other.status, other.header("idempotent-replayed")),
        (202, None)
    );
    assert_eq!(app.order_records().await.len(), 3 * app.partitions as usize);
    let me = app.as_demo("GET", "/api/accounts/me", None).await.json();
    assert_eq!(
        (&me["globalKillSwitch"], &me["killSwitch"]),
        (&json!(true), &json!(false))
    );
}

#[tokio::test]
async fn an_operators_instrument_status_goes_to_every_partition_and_shows_on_the_instruments() {
    let app = start().await;
    let path = "/api/admin/instruments/status";
    for (body, want) in [
        (
            json!({"status": "HALTED"}),
            expect(400, "MISSING_FIELD", "symbol"),
        ),
        (
            json!({"symbol": "DOGE/USD", "status": "HALTED"}),
            expect(400, "UNKNOWN_SYMBOL", "symbol"),
        ),
        (
            json!({"symbol": "BTC/USD", "status": "halted"}),
            expect(400, "INVALID_ENUM", "status"),
        ),
        (
            json!({"symbol": "BTC/USD", "status": true}),
            expect(400, "INVALID_TYPE", "status"),
        ),
        (
            json!({"symbol": "BTC/USD"}),
            expect(400, "MISSING_FIELD", "status"),
        ),
        (
            json!({"symbol": "BTC/USD", "status": "HALTED", "reason": "x"}),
            expect(400, "UNKNOWN_FIELD", "reason"),
        ),
    ] {
        let r = admin(&app, "PUT", path, Some(&body), &[]).await;
        assert_eq!(r.problem(), want, "{body}");
    }
    // Both fields wrong: both named.
    let r = admin(
        &app,
        "PUT",
        path,
        Some(&json!({"symbol": "DOGE/USD", "status": "OPEN"})),
        &[],
    )
    .await;
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["symbol", "status"]);
    let r = app
        .send(
            "PUT",
            path,
            &[("x-api-key", KEY), ("content-type", "application/json")],
            Some(br#"{"symbol":"BTC/USD","status":"HALTED"}"#),
        )
        .await;
    assert_eq!(r.status, 401, "an account cannot halt a market");
    assert!(app.order_records().await.is_empty());

    let r = admin(
        &app,
        "PUT",
        path,
        Some(&json!({"symbol": "BTC/USD", "status": "CANCEL_ONLY"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    let answer = r.json();
    assert_eq!(
        (&answer["symbol"], &answer["status"]),
        (&json!("BTC/USD"), &json!("CANCEL_ONLY"))
    );
    let copies: Vec<(u32, u32, String, u64)> = app
        .order_records()
        .await
        .into_iter()
        .map(|(r, e)| match e.event {
            Event::InstrumentStatusSet {
                symbol,
                status,
                change,
                partition,
            } => {
                assert_eq!(
                    (symbol.as_str(), status.as_str()),
                    ("BTC/USD", "CANCEL_ONLY")
                );
                (r.partition, partition, change.to_string(), change)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(copies.len(), app.partitions as usize, "{copies:?}");
    for (p, (in_partition, names, change, _)) in copies.iter().enumerate() {
        assert_eq!(
            (*in_partition, *names, change.as_str()),
            (p as u32, p as u32, answer["change"].as_str().unwrap()),
            "one copy in each partition, naming it, of one change"
        );
    }

    // GET /api/instruments: the configured status until the processor records another.
    let status_of = |v: &Value, symbol: &str| {
        v["instruments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["symbol"] == symbol)
            .map(|i| i["status"].clone())
    };
    let listed = app.as_demo("GET", "/api/instruments", None).await.json();
    assert_eq!(status_of(&listed, "BTC/USD"), Some(json!("TRADING")));
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            instrument_statuses: vec![oms_ports::order_store::InstrumentStatusRecord {
                symbol: oms_domain::ids::Symbol::new("BTC/USD"),
                status: oms_domain::instrument::TradingStatus::Halted,
                change: copies[0].3,
                set_at: oms_domain::ids::Timestamp(1),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = app.as_demo("GET", "/api/instruments", None).await.json();
    assert_eq!(status_of(&listed, "BTC/USD"), Some(json!("HALTED")));
    assert_eq!(status_of(&listed, "ETH/USD"), Some(json!("TRADING")));
}

#[tokio::test]
async fn a_read_only_key_reads_everything_and_trades_nothing() {
    let app = start().await;
    let keys_path = format!("/api/admin/accounts/{}/api-keys", app.account);
    app.put_order(stored_order(40, app.account, OrderStatus::Accepted))
        .await;

    // Bad scopes and bodies are refused, each naming its field.
    for (body, code, field) in [
        (json!({"scope": "ADMIN"}), "INVALID_ENUM", "scope"),
        (json!({"scope": "read"}), "INVALID_ENUM", "scope"),
        (json!({"scope": 1}), "INVALID_TYPE", "scope"),
        (json!({"scopes": "READ"}), "UNKNOWN_FIELD", "scopes"),
        (json!(["READ"]), "MALFORMED_JSON", "body"),
    ] {
        let r = admin(&app, "POST", &keys_path, Some(&body), &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{body}");
    }
    let r = app
        .send(
            "POST",
            &keys_path,
            &[("x-admin-key", ADMIN_KEY), ("content-type", "text/plain")],
            Some(b"READ"),
        )
        .await;
    assert_eq!(
        r.problem(),
        expect(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    );

    let issued = admin(
        &app,
        "POST",
        &keys_path,
        Some(&json!({"scope": "READ"})),
        &[],
    )
    .await;
    assert_eq!(issued.status, 201, "{:?}", issued.body);
    assert_eq!(issued.json()["scope"], "READ");
    let read_key = issued.json()["apiKey"].as_str().unwrap().to_string();
    // No body is a trading key, as before keys had scopes.
    let trading = admin(&app, "POST", &keys_path, None, &[]).await;
    assert_eq!(trading.json()["scope"], "TRADE");
    let listed = admin(&app, "GET", &keys_path, None, &[]).await.json();
    let scope_of = |key_id: &Value| {
        listed["apiKeys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["keyId"] == *key_id)
            .map(|k| k["scope"].clone())
    };
    assert_eq!(scope_of(&issued.json()["keyId"]), Some(json!("READ")));
    assert_eq!(scope_of(&trading.json()["keyId"]), Some(json!("TRADE")));

    // It reads, by key and by the session it opens.
    let by_key = [("x-api-key", read_key.as_str())];
    for path in [
        "/api/orders",
        "/api/orders/40",
        "/api/orders/40/fills",
        "/api/fills",
        "/api/accounts/me",
        "/api/instruments",
    ] {
        let r = app.send("GET", path, &by_key, None).await;
        assert_eq!(r.status, 200, "GET {path}: {:?}", r.body);
    }
    let cookie = app.sign_in(&read_key).await;
    let by_cookie = [("cookie", cookie.as_str())];
    let session = app.send("GET", "/api/session", &by_cookie, None).await;
    assert_eq!(session.json()["scope"], "READ");
    let own = app
        .send("GET", "/api/session", &[("x-api-key", KEY)], None)
        .await;
    assert_eq!(own.json()["scope"], "TRADE");

    // It trades nothing, by key or by session, and nothing reaches the log.
    let order =
        br#"{"symbol":"BTC/USD","side":"BUY","quantity":"0.1","price":45000,"orderType":"LIMIT"}"#;
    let amend = br#"{"price":45001}"#;
    let switch = br#"{"enabled":true}"#;
    for credential in [by_key, by_cookie] {
        for (method, path, body) in [
            ("POST", "/api/orders", Some(&order[..])),
            ("PATCH", "/api/orders/40", Some(&amend[..])),
            ("DELETE", "/api/orders/40", None),
            ("DELETE", "/api/orders", None),
            ("PUT", "/api/accounts/me/kill-switch", Some(&switch[..])),
        ] {
            let mut headers = credential.to_vec();
            headers.push(("content-type", "application/json"));
            headers.push(("x-idempotency-key", "read-only-attempt"));
            let r = app.send(method, path, &headers, body).await;
            assert_eq!(
                r.problem(),
                expect(403, "READ_ONLY_KEY", "X-API-Key"),
                "{method} {path} with {}",
                credential[0].0
            );
        }
    }
    assert!(
        app.order_records().await.is_empty(),
        "nothing was published"
    );
    // The account's trading key still trades.
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", KEY), ("content-type", "application/json")],
            Some(order),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

#[tokio::test]
async fn a_withdrawal_goes_on_the_log_and_its_recorded_decision_reads_back() {
    let app = start().await;
    let path = format!("/api/admin/accounts/{}/withdrawals", app.other);
    // Checked as a deposit is.
    for (body, code, field) in [
        (
            json!({"asset": "XYZ", "amount": "1", "reference": "r"}),
            "UNKNOWN_ASSET",
            "asset",
        ),
        (
            json!({"asset": "USD", "amount": "0", "reference": "r"}),
            "NON_POSITIVE",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "0.0000000000001", "reference": "r"}),
            "TOO_MANY_DECIMALS",
            "amount",
        ),
        (
            json!({"asset": "USD", "amount": "1", "reference": "a b"}),
            "INVALID_REFERENCE",
            "reference",
        ),
        (
            json!({"asset": "USD", "amount": "1", "reference": "r", "to": "x"}),
            "UNKNOWN_FIELD",
            "to",
        ),
    ] {
        let r = admin(&app, "POST", &path, Some(&body), &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{body}");
    }
    let r = admin(
        &app,
        "POST",
        "/api/admin/accounts/99/withdrawals",
        Some(&json!({"asset": "USD", "amount": "1", "reference": "r"})),
        &[],
    )
    .await;
    assert_eq!(r.problem(), expect(404, "ACCOUNT_NOT_FOUND", "accountId"));
    assert!(app.order_records().await.is_empty());

    // A reference with characters a query string must escape.
    let reference = "payout#7&b=1";
    let body = json!({"asset": "USD", "amount": "250.50", "reference": reference});
    let idem = [("x-idempotency-key", "wd-1")];
    let r = admin(&app, "POST", &path, Some(&body), &idem).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(
        r.json(),
        json!({"accountId": app.other.0, "asset": "USD", "amount": "250.5",
               "reference": reference, "status": "PENDING"})
    );
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("{path}?reference=payout%237%26b%3D1"));
    let again = admin(&app, "POST", &path, Some(&body), &idem).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let logged: Vec<(String, Event)> = app.keyed_order_events().await;
    assert_eq!(
        logged,
        vec![(
            app.other.to_string(),
            Event::WithdrawalRequested {
                account: app.other,
                asset: Asset::new("USD"),
                amount: Decimal::from_str("250.50").unwrap(),
                reference: reference.to_string(),
            }
        )]
    );

    // Not decided yet: 404, naming the reference.
    let r = admin(&app, "GET", &location, None, &[]).await;
    assert_eq!(
        r.problem(),
        expect(404, "WITHDRAWAL_NOT_FOUND", "reference")
    );
    for (query, code, field) in [
        ("?ref=x", "UNKNOWN_FIELD", "ref"),
        ("?reference=", "INVALID_REFERENCE", "reference"),
        ("?reference=x&limit=2", "UNKNOWN_FIELD", "limit"),
    ] {
        let r = admin(&app, "GET", &format!("{path}{query}"), None, &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{query}");
    }
    // Once the processor has recorded the risk engine's decision, it reads back.
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            withdrawals: vec![oms_ports::order_store::WithdrawalRecord {
                account: app.other,
                reference: reference.to_string(),
                asset: Asset::new("USD"),
                amount: Decimal::from_str("250.50").unwrap(),
                approved: false,
                reason: Some(oms_domain::order::RejectReason::InsufficientBalance),
                decided_at: oms_domain::ids::Timestamp(1_764_057_600_000),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let r = admin(&app, "GET", &location, None, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.json(),
        json!({"accountId": app.other.0, "asset": "USD", "amount": "250.5",
               "reference": reference, "status": "REJECTED",
               "rejectReason": "INSUFFICIENT_BALANCE", "decidedAt": "2025-11-25T08:00:00.000Z"})
    );
    // Sent again: the same withdrawal is answered as before; another asset or amount under
    // the decided reference is a conflict, and nothing goes on the log.
    let before = app.order_records().await.len();
    let post = format!("/api/admin/accounts/{}/withdrawals", app.other);
    for body in [
        json!({"asset": "USD", "amount": "251", "reference": reference}),
        json!({"asset": "BTC", "amount": "250.50", "reference": reference}),
    ] {
        let r = admin(&app, "POST", &post, Some(&body), &[]).await;
        assert_eq!(
            r.problem(),
            expect(409, "WITHDRAWAL_REFERENCE_REUSED", "reference"),
            "{body}"
        );
        assert_eq!(r.json()["recorded"]["amount"], "250.5");
    }
    assert_eq!(app.order_records().await.len(), before);
    let same = json!({"asset": "USD", "amount": "250.500", "reference": reference});
    let r = admin(&app, "POST", &post, Some(&same), &[]).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    // Another account's withdrawal of the same reference is not this one.
    let r = admin(
        &app,
        "GET",
        &format!(
            "/api/admin/accounts/{}/withdrawals?reference=payout%237%26b%3D1",
            app.account
        ),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_fee_accounts_balance_cannot_be_withdrawn() {
    // Accounts of a fresh store are numbered from 1: the first one is made the fee account.
    let fees = AccountId(1);
    let app = TestApp::start_configured(
        embedded_ports().await,
        |c| {
            c.operator_key_hashes = [hash_api_key(ADMIN_KEY)].into_iter().collect();
            c.fee_account = Some(fees);
        },
        |s| s,
    )
    .await;
    assert_eq!(app.account, fees);
    let body = json!({"asset": "USD", "amount": "1", "reference": "r"});
    let r = admin(
        &app,
        "POST",
        &format!("/api/admin/accounts/{fees}/withdrawals"),
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(
        r.problem(),
        expect(409, "FEE_ACCOUNT_WITHDRAWAL", "accountId")
    );
    assert!(app.order_records().await.is_empty());
    let r = admin(
        &app,
        "POST",
        &format!("/api/admin/accounts/{}/withdrawals", app.other),
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

#[tokio::test]
async fn a_deposits_recorded_credit_reads_back_by_reference_and_asset() {
    let app = start().await;
    let path = format!("/api/admin/accounts/{}/deposits", app.other);
    for (query, code, field) in [
        ("?asset=USD", "MISSING_FIELD", "reference"),
        ("?reference=wire-1", "MISSING_FIELD", "asset"),
        ("?reference=wire-1&asset=", "MISSING_FIELD", "asset"),
        ("?reference=&asset=USD", "INVALID_REFERENCE", "reference"),
        ("?reference=wire-1&asset=USD&x=1", "UNKNOWN_FIELD", "x"),
    ] {
        let r = admin(&app, "GET", &format!("{path}{query}"), None, &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{query}");
    }
    let read = format!("{path}?reference=wire-1&asset=USD");
    let r = admin(&app, "GET", &read, None, &[]).await;
    assert_eq!(r.problem(), expect(404, "DEPOSIT_NOT_FOUND", "reference"));
    // As the processor records the ledger's credit: under the reference with the asset.
    app.store
        .apply(oms_ports::order_store::StoreBatch {
            deposits: vec![oms_ports::order_store::DepositRecord {
                account: app.other,
                reference: "wire-1:USD".into(),
                asset: Asset::new("USD"),
                amount: Decimal::from_str("250000.10").unwrap(),
                credited_at: oms_domain::ids::Timestamp(1_764_057_600_000),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let r = admin(&app, "GET", &read, None, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.json(),
        json!({"accountId": app.other.0, "asset": "USD", "amount": "250000.1",
               "reference": "wire-1", "creditedAt": "2025-11-25T08:00:00.000Z"})
    );
    let r = admin(
        &app,
        "GET",
        &format!("{path}?reference=wire-1&asset=BTC"),
        None,
        &[],
    )
    .await;
    assert_eq!(r.problem(), expect(404, "DEPOSIT_NOT_FOUND", "reference"));
    // Sent again with another amount, the credited reference is a conflict naming what was
    // credited; with the same amount, or in another asset, it is accepted.
    let before = app.order_records().await.len();
    let again = |amount: &str, asset: &str| json!({"asset": asset, "amount": amount, "reference": "wire-1"});
    let r = admin(&app, "POST", &path, Some(&again("250001", "USD")), &[]).await;
    assert_eq!(
        r.problem(),
        expect(409, "DEPOSIT_REFERENCE_REUSED", "reference")
    );
    assert_eq!(r.json()["creditedAmount"], "250000.1");
    assert_eq!(app.order_records().await.len(), before, "nothing appended");
    for (amount, asset) in [("250000.100", "USD"), ("1", "BTC")] {
        let r = admin(&app, "POST", &path, Some(&again(amount, asset)), &[]).await;
        assert_eq!(r.status, 202, "{amount} {asset}: {:?}", r.body);
    }
}

#[tokio::test]
async fn accounts_are_listed_a_page_at_a_time() {
    let app = start().await;
    for i in 0..5 {
        let body = json!({ "name": format!("paged-{i}") });
        let r = admin(&app, "POST", "/api/admin/accounts", Some(&body), &[]).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let all = admin(&app, "GET", "/api/admin/accounts?limit=500", None, &[]).await;
    assert_eq!(all.status, 200);
    let all = all.json();
    assert!(all["nextCursor"].is_null(), "one page holds them all");
    let ids: Vec<Value> = all["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["accountId"].clone())
        .collect();
    assert!(ids.len() >= 5);

    let mut paged = Vec::new();
    let mut path = "/api/admin/accounts?limit=2".to_string();
    loop {
        let r = admin(&app, "GET", &path, None, &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = r.json();
        let accounts = page["accounts"].as_array().unwrap();
        assert!(accounts.len() <= 2);
        paged.extend(accounts.iter().map(|a| a["accountId"].clone()));
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/api/admin/accounts?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, ids, "every account once, in order");

    for (query, field, code) in [
        ("limit=0", "limit", "INVALID_LIMIT"),
        ("limit=501", "limit", "INVALID_LIMIT"),
        ("cursor=abc", "cursor", "INVALID_CURSOR"),
        ("cursor=007", "cursor", "INVALID_CURSOR"),
        ("cursor=18446744073709551615", "cursor", "INVALID_CURSOR"),
        ("page=2", "page", "UNKNOWN_FIELD"),
    ] {
        let r = admin(
            &app,
            "GET",
            &format!("/api/admin/accounts?{query}"),
            None,
            &[],
        )
        .await;
        assert_eq!(r.problem(), expect(400, code, field), "{query}");
    }
    for id in ["9223372036854775808", "18446744073709551615", "99999"] {
        let r = admin(&app, "GET", &format!("/api/admin/accounts/{id}"), None, &[]).await;
        assert_eq!(
            r.problem(),
            expect(404, "ACCOUNT_NOT_FOUND", "accountId"),
            "{id}"
        );
    }
}

#[tokio::test]
async fn withdrawals_and_deposits_are_listed_by_reference_a_page_at_a_time() {
    use oms_ports::order_store::{DepositRecord, StoreBatch, WithdrawalRecord};
    let app = start().await;
    let at = oms_domain::ids::Timestamp(1_764_057_600_000);
    let withdrawal = |reference: &str| WithdrawalRecord {
        account: app.other,
        reference: reference.into(),
        asset: Asset::new("USD"),
        amount: Decimal::from(10),
        approved: true,
        reason: None,
        decided_at: at,
    };
    let deposit = |reference: &str, asset: &str| DepositRecord {
        account: app.other,
        reference: format!("{reference}:{asset}"),
        asset: Asset::new(asset),
        amount: Decimal::from(5),
        credited_at: at,
    };
    app.store
        .apply(StoreBatch {
            withdrawals: ["payout-3", "payout-1", "payout-2"]
                .into_iter()
                .map(withdrawal)
                .collect(),
            deposits: vec![
                deposit("wire-2", "USD"),
                deposit("wire-1", "USD"),
                deposit("wire-1", "BTC"),
            ],
            ..StoreBatch::default()
        })
        .await
        .unwrap();
    let base = format!("/api/admin/accounts/{}", app.other);
    // Pages of two, following nextCursor to the end.
    let walk = |kind: &'static str| {
        let (app, base) = (&app, base.clone());
        async move {
            let mut seen = Vec::new();
            let mut path = format!("{base}/{kind}?limit=2");
            loop {
                let r = admin(app, "GET", &path, None, &[]).await;
                assert_eq!(r.status, 200, "{path}: {:?}", r.body);
                let page = r.json();
                let items = page[kind].as_array().unwrap().clone();
                assert!(items.len() <= 2);
                seen.extend(items);
                match page["nextCursor"].as_str() {
                    Some(c) => {
                        let c: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
                        path = format!("{base}/{kind}?limit=2&cursor={c}");
                    }
                    None => return seen,
                }
            }
        }
    };
    let withdrawals = walk("withdrawals").await;
    let refs: Vec<&str> = withdrawals
        .iter()
        .map(|w| w["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["payout-1", "payout-2", "payout-3"]);
    assert_eq!(withdrawals[0]["status"], "APPROVED");
    let deposits = walk("deposits").await;
    let listed: Vec<(&str, &str)> = deposits
        .iter()
        .map(|d| {
            (
                d["reference"].as_str().unwrap(),
                d["asset"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("wire-1", "BTC"), ("wire-1", "USD"), ("wire-2", "USD")],
        "the operator's references, each asset apart"
    );
    // Another account has none.
    let r = admin(
        &app,
        "GET",
        &format!("/api/admin/accounts/{}/deposits", app.account),
        None,
        &[],
    )
    .await;
    assert_eq!(r.json(), json!({"deposits": [], "nextCursor": null}));
    for (query, code, field) in [
        ("withdrawals?limit=0", "INVALID_LIMIT", "limit"),
        ("withdrawals?cursor=", "INVALID_CURSOR", "cursor"),
        ("deposits?cursor=", "INVALID_CURSOR", "cursor"),
        ("deposits?page=2", "UNKNOWN_FIELD", "page"),
        ("deposits?asset=USD&limit=2", "UNKNOWN_FIELD", "limit"),
    ] {
        let r = admin(&app, "GET", &format!("{base}/{query}"), None, &[]).await;
        assert_eq!(r.problem(), expect(400, code, field), "{query}");
    }
}
