//! Request validation: a JSON body becomes a [`NewOrder`] or an amend, or a list of field
//! errors. Pure: the caller passes the instruments and the time in.
//!
//! Instrument status (HALTED, CANCEL_ONLY) and notional limits are not checked here: the risk
//! engine rejects such orders later, so they get an order id and a REJECTED status.

use super::clock::parse_rfc3339;
use super::decimal::{check_increment, check_positive, decimal_field, type_name};
use super::field_error::{codes, FieldError};
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::instrument::Instrument;
use oms_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use oms_domain::Decimal;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub const NEW_ORDER_FIELDS: [&str; 10] = [
    "symbol",
    "side",
    "quantity",
    "price",
    "orderType",
    "timeInForce",
    "clientOrderId",
    "postOnly",
    "stopPrice",
    "expireAt",
];
pub const AMEND_FIELDS: [&str; 2] = ["price", "quantity"];
pub const CLIENT_ORDER_ID_MAX: usize = 64;

/// A new order that passed every check, before it gets its id, account and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOrder {
    pub client_order_id: Option<String>,
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub quantity: Decimal,
    pub expire_at: Option<Timestamp>,
}

impl ValidOrder {
    pub fn into_new_order(self, order_id: OrderId, account: AccountId, now: Timestamp) -> NewOrder {
        NewOrder {
            order_id,
            client_order_id: self.client_order_id,
            account,
            symbol: self.symbol,
            side: self.side,
            order_type: self.order_type,
            time_in_force: self.time_in_force,
            post_only: self.post_only,
            price: self.price,
            stop_price: self.stop_price,
            quantity: self.quantity,
            expire_at: self.expire_at,
            created_at: now,
        }
    }
}

/// The new price and/or quantity of an amend; at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidAmend {
    pub price: Option<Decimal>,
    pub quantity: Option<Decimal>,
}

/// Collects every field error rather than stopping at the first, so a client fixes them at once.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(&e.field, e.code, e.detail);
                None
            }
        }
    }
    /// Keeps the first error of each field: a later rule about a field that is already wrong
    /// would only repeat the news.
    fn push(&mut self, field: &str, code: &'static str, detail: impl Into<String>) {
        if !self.0.iter().any(|e| e.field == field) {
            self.0.push(FieldError::new(field, code, detail));
        }
    }
    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}

pub fn validate_new_order(
    body: &Value,
    instruments: &HashMap<String, Instrument>,
    now: Timestamp,
) -> Result<ValidOrder, Vec<FieldError>> {
    let obj = as_object(body)?;
    let mut errs = Errors::default();
    unknown_fields(obj, &NEW_ORDER_FIELDS, &mut errs);

    let symbol = errs.take(required_str(obj, "symbol"));
    let instrument = symbol.and_then(|s| match instruments.get(s) {
        Some(i) => Some(i),
        None => {
            errs.push(
                "symbol",
                codes::UNKNOWN_SYMBOL,
                format!("unknown symbol {s:?}"),
            );
            None
        }
    });
    let side = errs.take(required_enum(
        obj,
        "side",
        &[("BUY", Side::Buy), ("SELL", Side::Sell)],
    ));
    let order_type = errs.take(required_enum(
        obj,
        "orderType",
        &[
            ("LIMIT", OrderType::Limit),
            ("MARKET", OrderType::Market),
            ("STOP_LIMIT", OrderType::StopLimit),
        ],
    ));
    let tif = errs
        .take(optional_enum(
            obj,
            "timeInForce",
            &[
                ("GTC", TimeInForce::Gtc),
                ("IOC", TimeInForce::Ioc),
                ("FOK", TimeInForce::Fok),
                ("GTD", TimeInForce::Gtd),
            ],
        ))
        .map(|t| t.unwrap_or_default());

    let quantity = match obj.get("quantity").map(|v| decimal_field("quantity", v)) {
        None | Some(Ok(None)) => {
            errs.push("quantity", codes::MISSING_FIELD, "quantity is required");
            None
        }
        Some(r) => errs.take(r).flatten(),
    };
    if let Some(q) = quantity {
        errs.take(check_quantity(q, instrument));
    }

    let price = price_field(obj, "price", instrument, &mut errs);
    let stop_price = price_field(obj, "stopPrice", instrument, &mut errs);
    let present = |f: &str| obj.get(f).is_some_and(|v| !v.is_null());
    if let Some(ot) = order_type {
        let needs_price = matches!(ot, OrderType::Limit | OrderType::StopLimit);
        if needs_price && !present("price") {
            errs.push(
                "price",
                codes::PRICE_REQUIRED,
                "price is required for LIMIT and STOP_LIMIT orders",
            );
        }
        if !needs_price && present("price") {
            errs.push(
                "price",
                codes::PRICE_NOT_ALLOWED,
                "price must not be set for MARKET orders",
            );
        }
        if ot == OrderType::StopLimit && !present("stopPrice") {
            errs.push(
                "stopPrice",
                codes::STOP_PRICE_REQUIRED,
                "stopPrice is required for STOP_LIMIT orders",
            );
        }
        if ot != OrderType::StopLimit && present("stopPrice") {
            errs.push(
                "stopPrice",
                codes::STOP_PRICE_NOT_ALLOWED,
                "stopPrice is only allowed for STOP_LIMIT orders",
            );
        }
    }

    let expire_at = errs.take(expire_at_field(obj)).flatten();
    if let Some(tif) = tif {
        match (tif, expire_at, present("expireAt")) {
            (TimeInForce::Gtd, None, false) => errs.push(
                "expireAt",
                codes::EXPIRE_AT_REQUIRED,
                "expireAt is required for GTD orders",
            ),
            (TimeInForce::Gtd, Some(at), _) if at <= now => errs.push(
                "expireAt",
                codes::EXPIRE_AT_IN_PAST,
                "expireAt must be in the future",
            ),
            (TimeInForce::Gtc | TimeInForce::Ioc | TimeInForce::Fok, _, true) => errs.push(
                "expireAt",
                codes::EXPIRE_AT_NOT_ALLOWED,
                "expireAt is only allowed with timeInForce GTD",
            ),
            _ => {}
        }
    }

    let post_only = errs
        .take(optional_bool(obj, "postOnly"))
        .map(|b| b.unwrap_or(false));
    if post_only == Some(true) {
        let ok_type = order_type.is_none_or(|t| t == OrderType::Limit);
        let ok_tif = tif.is_none_or(|t| matches!(t, TimeInForce::Gtc | TimeInForce::Gtd));
        if !ok_type || !ok_tif {
            errs.push(
                "postOnly",
                codes::POST_ONLY_NOT_ALLOWED,
                "postOnly is only allowed for LIMIT orders with timeInForce GTC or GTD",
            );
        }
    }

    let client_order_id = errs.take(client_order_id_field(obj)).flatten();

    errs.finish(|| ValidOrder {
        client_order_id,
        symbol: Symbol::new(symbol.unwrap_or_default()),
        side: side.expect("checked"),
        order_type: order_type.expect("checked"),
        time_in_force: tif.expect("checked"),
        post_only: post_only.expect("checked"),
        price,
        stop_price,
        quantity: quantity.expect("checked"),
        expire_at,
    })
}

/// Validates an amend of a live order of `instrument`.
pub fn validate_amend(
    body: &Value,
    instrument: Option<&Instrument>,
    order_type: OrderType,
) -> Result<ValidAmend, Vec<FieldError>> {
    let obj = as_object(body)?;
    let mut errs = Errors::default();
    unknown_fields(obj, &AMEND_FIELDS, &mut errs);
    let price = price_field(obj, "price", instrument, &mut errs);
    if price.is_some() && order_type == OrderType::Market {
        errs.push(
            "price",
            codes::PRICE_NOT_ALLOWED,
            "a MARKET order has no price to amend",
        );
    }
    let quantity = obj
        .get("quantity")
        .and_then(|v| errs.take(decimal_field("quantity", v)).flatten());
    if let Some(q) = quantity {
        errs.take(check_quantity(q, instrument));
    }
    let given = |f: &str| obj.get(f).is_some_and(|v| !v.is_null());
    if !given("price") && !given("quantity") {
        errs.push(
            "price",
            codes::MISSING_FIELD,
            "give price, quantity or both",
        );
    }
    errs.finish(|| ValidAmend { price, quantity })
}

/// Checks a clientOrderId: 1..=64 characters of `[A-Za-z0-9._:-]`.
pub fn check_client_order_id(id: &str) -> Result<(), FieldError> {
    let ok_len = (1..=CLIENT_ORDER_ID_MAX).contains(&id.len());
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(FieldError::new(
            "clientOrderId",
            codes::INVALID_CLIENT_ORDER_ID,
            format!("clientOrderId must be 1 to {CLIENT_ORDER_ID_MAX} characters of A-Z a-z 0-9 . _ : -"),
        ))
    }
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, Vec<FieldError>> {
    body.as_object().ok_or_else(|| {
        vec![FieldError::new(
            "body",
            codes::MALFORMED_JSON,
            format!("the body must be a JSON object, not {}", type_name(body)),
        )]
    })
}

fn unknown_fields(obj: &Map<String, Value>, known: &[&str], errs: &mut Errors) {
    for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        errs.push(k, codes::UNKNOWN_FIELD, format!("unknown field {k:?}"));
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(FieldError::new(
            field,
            codes::MISSING_FIELD,
            format!("{field} is required"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(wrong_type(field, "a string", v)),
    }
}

/// A required field naming one of `values` (`MISSING_FIELD`, `INVALID_TYPE`, `INVALID_ENUM`).
pub(crate) fn required_enum<T: Copy>(
    obj: &Map<String, Value>,
    field: &str,
    values: &[(&str, T)],
) -> Result<T, FieldError> {
    optional_enum(obj, field, values)?
        .ok_or_else(|| FieldError::new(field, codes::MISSING_FIELD, format!("{field} is required")))
}

fn optional_enum<T: Copy>(
    obj: &Map<String, Value>,
    field: &str,
    values: &[(&str, T)],
) -> Result<Option<T>, FieldError> {
    let s = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(v) => return Err(wrong_type(field, "a string", v)),
    };
    match values.iter().find(|(name, _)| name == s) {
        Some((_, v)) => Ok(Some(*v)),
        None => {
            let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
            Err(FieldError::new(
                field,
                codes::INVALID_ENUM,
                format!("{field} must be one of {}, got {s:?}", names.join(", ")),
            ))
        }
    }
}

fn optional_bool(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong_type(field, "a boolean", v)),
    }
}

fn wrong_type(field: &str, want: &str, got: &Value) -> FieldError {
    FieldError::new(
        field,
        codes::INVALID_TYPE,
        format!("{field} must be {want}, not {}", type_name(got)),
    )
}

fn check_quantity(q: Decimal, instrument: Option<&Instrument>) -> Result<(), FieldError> {
    check_positive("quantity", q)?;
    let Some(i) = instrument else { return Ok(()) };
    check_increment(
        "quantity",
        q,
        i.step_size,
        codes::QUANTITY_OFF_STEP,
        "step size",
    )?;
    if q < i.min_quantity {
        return Err(FieldError::new(
            "quantity",
            codes::QUANTITY_BELOW_MIN,
            format!("quantity must be at least {}", i.min_quantity),
        ));
    }
    if q > i.max_quantity {
        return Err(FieldError::new(
            "quantity",
            codes::QUANTITY_ABOVE_MAX,
            format!("quantity must be at most {}", i.max_quantity),
        ));
    }
    Ok(())
}

fn price_field(
    obj: &Map<String, Value>,
    field: &str,
    instrument: Option<&Instrument>,
    errs: &mut Errors,
) -> Option<Decimal> {
    let p = errs.take(decimal_field(field, obj.get(field)?)).flatten()?;
    let checked = check_positive(field, p).and_then(|()| match instrument {
        Some(i) => check_increment(field, p, i.tick_size, codes::PRICE_OFF_TICK, "tick size"),
        None => Ok(()),
    });
    errs.take(checked).map(|()| p)
}

/// The last instant an RFC 3339 date-time can name (9999-12-31T23:59:59.999Z): a later one
/// could not be written back in the order.
const LAST_RFC3339_MS: i64 = 253_402_300_799_999;

fn expire_at_field(obj: &Map<String, Value>) -> Result<Option<Timestamp>, FieldError> {
    let bad = || {
        FieldError::new(
            "expireAt",
            codes::INVALID_TIMESTAMP,
            "expireAt must be an RFC 3339 date-time or epoch milliseconds, before the year 10000",
        )
    };
    let at = match obj.get("expireAt") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => parse_rfc3339(s).ok_or_else(bad)?,
        Some(Value::Number(n)) => Timestamp(n.to_string().parse::<i64>().map_err(|_| bad())?),
        Some(v) => return Err(wrong_type("expireAt", "a string or an integer", v)),
    };
    if at.0 > LAST_RFC3339_MS {
        return Err(bad());
    }
    Ok(Some(at))
}

fn client_order_id_field(obj: &Map<String, Value>) -> Result<Option<String>, FieldError> {
    match obj.get("clientOrderId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => check_client_order_id(s).map(|()| Some(s.clone())),
        Some(v) => Err(wrong_type("clientOrderId", "a string", v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::instrument::default_instruments;
    use serde_json::json;
    use std::str::FromStr;

    const NOW: Timestamp = Timestamp(1_764_057_600_000);

    fn instruments() -> HashMap<String, Instrument> {
        let mut m: HashMap<String, Instrument> = default_instruments()
            .into_iter()
            .map(|i| (i.symbol.0.clone(), i))
            .collect();
        // An instrument whose tick and step are not powers of ten, to reach the off-tick rules.
        let mut odd = Instrument::spot("ODD/USD", dec("0.05"), dec("5"));
        odd.min_quantity = dec("10");
        odd.max_quantity = dec("100");
        m.insert("ODD/USD".into(), odd);
        m
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn valid(body: Value) -> ValidOrder {
        validate_new_order(&body, &instruments(), NOW).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The single error a body produces, as (field, code).
    fn error(body: Value) -> (String, &'static str) {
        let errs = validate_new_order(&body, &instruments(), NOW).expect_err("should fail");
        assert_eq!(errs.len(), 1, "{errs:?}");
        (errs[0].field.clone(), errs[0].code)
    }

    fn limit() -> Value {
        json!({"symbol":"BTC/USD","side":"BUY","quantity":0.1,"price":45000,"orderType":"LIMIT"})
    }

    fn with(mut body: Value, key: &str, v: Value) -> Value {
        body[key] = v;
        body
    }

    fn without(mut body: Value, key: &str) -> Value {
        body.as_object_mut().unwrap().remove(key);
        body
    }

    #[test]
    fn the_seed_body_is_a_gtc_limit_order() {
        let o = valid(limit());
        assert_eq!(o.symbol.as_str(), "BTC/USD");
        assert_eq!(o.side, Side::Buy);
        assert_eq!(o.order_type, OrderType::Limit);
        assert_eq!(o.time_in_force, TimeInForce::Gtc);
        assert_eq!(o.quantity, dec("0.1"));
        assert_eq!(o.price, Some(dec("45000")));
        assert!(!o.post_only);
        assert_eq!(o.client_order_id, None);
        let n = o.into_new_order(OrderId(5), AccountId(1), NOW);
        assert_eq!(
            (n.order_id, n.account, n.created_at),
            (OrderId(5), AccountId(1), NOW)
        );
    }

    #[test]
    fn full_body_with_strings_and_nulls() {
        let o = valid(
            json!({"symbol":"BTC/USD","side":"SELL","quantity":"0.10000","price":"45000.00",
            "orderType":"LIMIT","timeInForce":"GTC","clientOrderId":"abc-1:x_y.z","postOnly":true,
            "stopPrice":null,"expireAt":null}),
        );
        assert_eq!(o.side, Side::Sell);
        assert!(o.post_only);
        assert_eq!(o.client_order_id.as_deref(), Some("abc-1:x_y.z"));
        assert_eq!(o.quantity, dec("0.1"));
    }

    #[test]
    fn body_shape_errors() {
        let errs = validate_new_order(&json!([1]), &instruments(), NOW).unwrap_err();
        assert_eq!(
            (errs[0].field.as_str(), errs[0].code),
            ("body", codes::MALFORMED_JSON)
        );
        assert_eq!(
            error(with(limit(), "colour", json!("red"))),
            ("colour".into(), codes::UNKNOWN_FIELD)
        );
        for f in ["symbol", "side", "quantity", "orderType"] {
            assert_eq!(
                error(without(limit(), f)),
                (f.into(), codes::MISSING_FIELD),
                "{f}"
            );
            assert_eq!(
                error(with(limit(), f, Value::Null)),
                (f.into(), codes::MISSING_FIELD),
                "{f}"
            );
        }
    }

    #[test]
    fn wrong_types() {
        for (f, v) in [
            ("symbol", json!(1)),
            ("side", json!(true)),
            ("quantity", json!([0.1])),
            ("price", json!({"v":1})),
            ("orderType", json!(1)),
            ("timeInForce", json!(1)),
            ("postOnly", json!("yes")),
            ("clientOrderId", json!(12)),
            ("expireAt", json!(true)),
        ] {
            assert_eq!(
                error(with(limit(), f, v)),
                (f.into(), codes::INVALID_TYPE),
                "{f}"
            );
        }
    }

    #[test]
    fn enums_and_symbol() {
        assert_eq!(
            error(with(limit(), "symbol", json!("DOGE/USD"))),
            ("symbol".into(), codes::UNKNOWN_SYMBOL)
        );
        assert_eq!(
            error(with(limit(), "side", json!("buy"))),
            ("side".into(), codes::INVALID_ENUM)
        );
        assert_eq!(
            error(with(limit(), "orderType", json!("STOP"))),
            ("orderType".into(), codes::INVALID_ENUM)
        );
        assert_eq!(
            error(with(limit(), "timeInForce", json!("DAY"))),
            ("timeInForce".into(), codes::INVALID_ENUM)
        );
    }

    #[test]
    fn decimals() {
        assert_eq!(
            error(with(limit(), "quantity", json!(0))),
            ("quantity".into(), codes::NON_POSITIVE)
        );
        assert_eq!(
            error(with(limit(), "quantity", json!("-0.1"))),
            ("quantity".into(), codes::NON_POSITIVE)
        );
        assert_eq!(
            error(with(limit(), "price", json!(-45000))),
            ("price".into(), codes::NON_POSITIVE)
        );
        let exp: Value = serde_json::from_str("1e5").unwrap();
        assert_eq!(
            error(with(limit(), "price", exp)),
            ("price".into(), codes::INVALID_DECIMAL)
        );
        assert_eq!(
            error(with(limit(), "quantity", json!("NaN"))),
            ("quantity".into(), codes::INVALID_DECIMAL)
        );
        assert_eq!(
            error(with(limit(), "price", json!("45000.001"))),
            ("price".into(), codes::TOO_MANY_DECIMALS)
        );
        assert_eq!(
            error(with(limit(), "quantity", json!("0.000001"))),
            ("quantity".into(), codes::TOO_MANY_DECIMALS)
        );
        let long: Value = serde_json::from_str(&format!("0.{}1", "0".repeat(30))).unwrap();
        assert_eq!(
            error(with(limit(), "quantity", long)),
            ("quantity".into(), codes::TOO_MANY_DECIMALS)
        );
        // Trailing zeros past the tick are not extra decimals.
        assert_eq!(
            valid(with(limit(), "price", json!("45000.000000"))).price,
            Some(dec("45000"))
        );
    }

    #[test]
    fn tick_step_and_range() {
        let odd = |q: Value, p: Value| json!({"symbol":"ODD/USD","side":"BUY","quantity":q,"price":p,"orderType":"LIMIT"});
        assert!(validate_new_order(&odd(json!(15), json!("1.05")), &instruments(), NOW).is_ok());
        assert_eq!(
            error(odd(json!(15), json!("1.03"))),
            ("price".into(), codes::PRICE_OFF_TICK)
        );
        assert_eq!(
            error(odd(json!(12), json!("1.05"))),
            ("quantity".into(), codes::QUANTITY_OFF_STEP)
        );
        assert_eq!(
            error(odd(json!(5), json!("1.05"))),
            ("quantity".into(), codes::QUANTITY_BELOW_MIN)
        );
        assert_eq!(
            error(odd(json!(105), json!("1.05"))),
            ("quantity".into(), codes::QUANTITY_ABOVE_MAX)
        );
        assert_eq!(
            error(with(limit(), "quantity", json!(1001))),
            ("quantity".into(), codes::QUANTITY_ABOVE_MAX)
        );
        let stop = json!({"symbol":"ODD/USD","side":"BUY","quantity":15,"price":"1.05",
            "stopPrice":"1.07","orderType":"STOP_LIMIT"});
        assert_eq!(error(stop), ("stopPrice".into(), codes::PRICE_OFF_TICK));
    }

    #[test]
    fn price_rules_by_order_type() {
        assert_eq!(
            error(without(limit(), "price")),
            ("price".into(), codes::PRICE_REQUIRED)
        );
        assert_eq!(
            error(with(limit(), "price", Value::Null)),
            ("price".into(), codes::PRICE_REQUIRED)
        );
        let market = with(without(limit(), "price"), "orderType", json!("MARKET"));
        assert_eq!(valid(market.clone()).price, None);
        assert_eq!(
            error(with(market.clone(), "price", json!(1))),
            ("price".into(), codes::PRICE_NOT_ALLOWED)
        );
        let stop = with(limit(), "orderType", json!("STOP_LIMIT"));
        assert_eq!(
            error(stop.clone()),
            ("stopPrice".into(), codes::STOP_PRICE_REQUIRED)
        );
        assert_eq!(
            valid(with(stop.clone(), "stopPrice", json!(44000))).stop_price,
            Some(dec("44000"))
        );
        assert_eq!(
            error(without(with(stop, "stopPrice", json!(1)), "price")),
            ("price".into(), codes::PRICE_REQUIRED)
        );
        assert_eq!(
            error(with(limit(), "stopPrice", json!(44000))),
            ("stopPrice".into(), codes::STOP_PRICE_NOT_ALLOWED)
        );
        assert_eq!(
            error(with(market, "stopPrice", json!(44000))),
            ("stopPrice".into(), codes::STOP_PRICE_NOT_ALLOWED)
        );
    }

    #[test]
    fn expire_at_rules() {
        let gtd = with(limit(), "timeInForce", json!("GTD"));
        assert_eq!(
            error(gtd.clone()),
            ("expireAt".into(), codes::EXPIRE_AT_REQUIRED)
        );
        let o = valid(with(gtd.clone(), "expireAt", json!("2025-11-25T09:00:00Z")));
        assert_eq!(o.expire_at, Some(Timestamp(NOW.0 + 3_600_000)));
        let o = valid(with(gtd.clone(), "expireAt", json!(NOW.0 + 1)));
        assert_eq!(o.expire_at, Some(Timestamp(NOW.0 + 1)));
        assert_eq!(
            error(with(gtd.clone(), "expireAt", json!(NOW.0))),
            ("expireAt".into(), codes::EXPIRE_AT_IN_PAST)
        );
        assert_eq!(
            error(with(gtd.clone(), "expireAt", json!("2020-01-01T00:00:00Z"))),
            ("expireAt".into(), codes::EXPIRE_AT_IN_PAST)
        );
        assert_eq!(
            error(with(gtd.clone(), "expireAt", json!("tomorrow"))),
            ("expireAt".into(), codes::INVALID_TIMESTAMP)
        );
        assert_eq!(
            error(with(gtd.clone(), "expireAt", json!(1.5))),
            ("expireAt".into(), codes::INVALID_TIMESTAMP)
        );
        // The last millisecond RFC 3339 can write back is the last one taken.
        let o = valid(with(gtd.clone(), "expireAt", json!(LAST_RFC3339_MS)));
        assert_eq!(o.expire_at, Some(Timestamp(LAST_RFC3339_MS)));
        assert_eq!(
            error(with(gtd, "expireAt", json!(i64::MAX))),
            ("expireAt".into(), codes::INVALID_TIMESTAMP)
        );
        assert_eq!(
            error(with(limit(), "expireAt", json!(NOW.0 + 1000))),
            ("expireAt".into(), codes::EXPIRE_AT_NOT_ALLOWED)
        );
    }

    #[test]
    fn post_only_rules() {
        let po = with(limit(), "postOnly", json!(true));
        assert!(valid(po.clone()).post_only);
        let gtd = with(
            with(po.clone(), "timeInForce", json!("GTD")),
            "expireAt",
            json!(NOW.0 + 5),
        );
        assert!(valid(gtd).post_only);
        assert_eq!(
            error(with(po.clone(), "timeInForce", json!("IOC"))),
            ("postOnly".into(), codes::POST_ONLY_NOT_ALLOWED)
        );
        assert_eq!(
            error(with(po.clone(), "timeInForce", json!("FOK"))),
            ("postOnly".into(), codes::POST_ONLY_NOT_ALLOWED)
        );
        let market = with(without(po, "price"), "orderType", json!("MARKET"));
        assert_eq!(
            error(market),
            ("postOnly".into(), codes::POST_ONLY_NOT_ALLOWED)
        );
        assert!(!valid(with(limit(), "postOnly", json!(false))).post_only);
    }

    #[test]
    fn client_order_id_rules() {
        let ok = "a".repeat(64);
        assert_eq!(
            valid(with(limit(), "clientOrderId", json!(ok))).client_order_id,
            Some(ok)
        );
        for bad in ["", "has space", "slash/no", "é", &"a".repeat(65)] {
            assert_eq!(
                error(with(limit(), "clientOrderId", json!(bad))),
                ("clientOrderId".into(), codes::INVALID_CLIENT_ORDER_ID),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn several_errors_are_all_reported() {
        let errs = validate_new_order(
            &json!({"symbol":"BTC/USD","side":"UP","quantity":"abc","orderType":"LIMIT","x":1}),
            &instruments(),
            NOW,
        )
        .unwrap_err();
        let mut got: Vec<(&str, &str)> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("price", codes::PRICE_REQUIRED),
                ("quantity", codes::INVALID_DECIMAL),
                ("side", codes::INVALID_ENUM),
                ("x", codes::UNKNOWN_FIELD),
            ]
        );
    }

    #[test]
    fn amends() {
        let btc = instruments().remove("BTC/USD").unwrap();
        let a = validate_amend(&json!({"price":"45000.50"}), Some(&btc), OrderType::Limit).unwrap();
        assert_eq!(
            a,
            ValidAmend {
                price: Some(dec("45000.5")),
                quantity: None
            }
        );
        let a = validate_amend(
            &json!({"price":45001,"quantity":0.2}),
            Some(&btc),
            OrderType::Limit,
        )
        .unwrap();
        assert_eq!(a.quantity, Some(dec("0.2")));
        let one = |body: Value, ot| {
            let e = validate_amend(&body, Some(&btc), ot).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            (e[0].field.clone(), e[0].code)
        };
        assert_eq!(
            one(json!({}), OrderType::Limit),
            ("price".into(), codes::MISSING_FIELD)
        );
        assert_eq!(
            one(json!({"price":null}), OrderType::Limit),
            ("price".into(), codes::MISSING_FIELD)
        );
        assert_eq!(
            one(json!({"side":"BUY","price":1}), OrderType::Limit),
            ("side".into(), codes::UNKNOWN_FIELD)
        );
        assert_eq!(
            one(json!({"price":"1.001"}), OrderType::Limit),
            ("price".into(), codes::TOO_MANY_DECIMALS)
        );
        assert_eq!(
            one(json!({"quantity":0}), OrderType::Limit),
            ("quantity".into(), codes::NON_POSITIVE)
        );
        assert_eq!(
            one(json!({"quantity":5000}), OrderType::Limit),
            ("quantity".into(), codes::QUANTITY_ABOVE_MAX)
        );
        assert_eq!(
            one(json!({"price":1}), OrderType::Market),
            ("price".into(), codes::PRICE_NOT_ALLOWED)
        );
        assert_eq!(
            one(json!("x"), OrderType::Limit),
            ("body".into(), codes::MALFORMED_JSON)
        );
    }
}
