//! The dashboard's session cookie: sign in with an API key, use the cookie, sign out.

mod api_common;

use api_common::{TestApp, KEY};
use serde_json::json;

#[tokio::test]
async fn session_cookie_flow() {
    let app = TestApp::start().await;
    let json_h = [("content-type", "application/json")];

    let r = app
        .send(
            "POST",
            "/api/session",
            &json_h,
            Some(br#"{"apiKey":"wrong"}"#),
        )
        .await;
    assert_eq!(
        r.problem(),
        (401, "UNAUTHORIZED".into(), Some("apiKey".into()))
    );
    assert!(r.header("set-cookie").is_none());
    let r = app
        .send("POST", "/api/session", &json_h, Some(br#"{"key":"x"}"#))
        .await;
    assert_eq!(
        r.problem(),
        (400, "UNKNOWN_FIELD".into(), Some("key".into()))
    );
    let r = app
        .send("POST", "/api/session", &json_h, Some(br#"{}"#))
        .await;
    assert_eq!(
        r.problem(),
        (400, "MISSING_FIELD".into(), Some("apiKey".into()))
    );

    let body = serde_json::to_vec(&json!({ "apiKey": KEY })).unwrap();
    let r = app.send("POST", "/api/session", &json_h, Some(&body)).await;
    assert_eq!(r.status, 204);
    let set = r.header("set-cookie").expect("cookie").to_string();
    assert!(set.starts_with("oms_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let token = set.split(';').next().unwrap().to_string(); // "oms_session=..."
    let cookie = format!("theme=dark; {token}");

    let me = app
        .send("GET", "/api/session", &[("cookie", &cookie)], None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.json(),
        json!({"accountId": app.account.0, "name": "demo", "scope": "TRADE"})
    );
    let acct = app
        .send("GET", "/api/accounts/me", &[("cookie", &cookie)], None)
        .await;
    assert_eq!(acct.status, 200);
    assert_eq!(acct.json()["name"], "demo");
    assert!(acct.json()["balances"].is_array());

    // The cookie places orders like the key does.
    let order = app
        .send(
            "POST",
            "/api/orders",
            &[("cookie", &cookie), ("content-type", "application/json")],
            Some(br#"{"symbol":"ETH/USD","side":"SELL","quantity":"1.5","price":"3000.5","orderType":"LIMIT"}"#),
        )
        .await;
    assert_eq!(order.status, 202, "{:?}", order.body);
    assert_eq!(order.json()["accountId"], app.account.0);

    // A tampered cookie (claiming the other account) is refused.
    let forged = token.replacen(
        &format!("={}.", app.account.0),
        &format!("={}.", app.other.0),
        1,
    );
    assert_ne!(forged, token);
    let r = app
        .send("GET", "/api/session", &[("cookie", &forged)], None)
        .await;
    assert_eq!(
        r.problem(),
        (401, "UNAUTHORIZED".into(), Some("oms_session".into()))
    );

    let out = app
        .send("DELETE", "/api/session", &[("cookie", &cookie)], None)
        .await;
    assert_eq!(out.status, 204);
    let cleared = out.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("oms_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let r = app.send("GET", "/api/session", &[], None).await;
    assert_eq!(r.status, 401);
    // Signing out ends the session on the server: a copy of the cookie no longer works.
    for (method, path) in [("GET", "/api/session"), ("GET", "/api/accounts/me")] {
        let r = app.send(method, path, &[("cookie", &cookie)], None).await;
        assert_eq!(
            r.problem(),
            (401, "UNAUTHORIZED".into(), Some("oms_session".into())),
            "{method} {path} with a signed-out cookie"
        );
    }
    // Signing out again with it, or with none, is harmless.
    for headers in [&[("cookie", cookie.as_str())][..], &[]] {
        let r = app.send("DELETE", "/api/session", headers, None).await;
        assert_eq!(r.status, 204);
    }
}

#[tokio::test]
async fn signing_out_ends_only_that_session() {
    let app = TestApp::start().await;
    let json_h = [("content-type", "application/json")];
    let body = serde_json::to_vec(&json!({ "apiKey": KEY })).unwrap();
    // Two sign-ins in the same second (two tabs, two machines) are two sessions.
    let mut cookies = Vec::new();
    for _ in 0..2 {
        let r = app.send("POST", "/api/session", &json_h, Some(&body)).await;
        assert_eq!(r.status, 204);
        let set = r.header("set-cookie").unwrap();
        cookies.push(set.split(';').next().unwrap().to_string());
    }
    assert_ne!(cookies[0], cookies[1], "each sign-in gets its own token");
    let out = app
        .send("DELETE", "/api/session", &[("cookie", &cookies[0])], None)
        .await;
    assert_eq!(out.status, 204);
    let gone = app
        .send("GET", "/api/session", &[("cookie", &cookies[0])], None)
        .await;
    assert_eq!(gone.status, 401);
    let kept = app
        .send("GET", "/api/session", &[("cookie", &cookies[1])], None)
        .await;
    assert_eq!(kept.status, 200, "the other session goes on");
}

#[tokio::test]
async fn account_and_instruments() {
    let app = TestApp::start().await;
    let me = app.as_demo("GET", "/api/accounts/me", None).await;
    assert_eq!(
        me.json(),
        json!({"accountId": app.account.0, "name": "demo", "balances": [], "killSwitch": false, "globalKillSwitch": false,
            "cancelAfter": {"enabled": false, "triggerTime": null, "triggered": false}})
    );
    let list = app.as_demo("GET", "/api/instruments", None).await.json();
    let btc = &list["instruments"][0];
    assert_eq!(
        *btc,
        json!({"symbol":"BTC/USD","base":"BTC","quote":"USD","tickSize":"0.01","stepSize":"0.00001",
            "minQuantity":"0.00001","maxQuantity":"1000","minNotional":"1","status":"TRADING",
            "makerFee":"0.001","takerFee":"0.002","priceBand":"0.1"})
    );
    assert_eq!(list["instruments"].as_array().unwrap().len(), 4);
}
