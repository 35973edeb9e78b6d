//! Exact decimals from JSON. Numbers arrive with their original text (serde_json's
//! `arbitrary_precision`), so `0.1` is 0.1 and not the nearest binary float, and `1e5` can be
//! told apart from `100000` and refused. Nothing is ever rounded.

use super::field_error::{codes, FieldError};
use oms_domain::Decimal;
use serde_json::Value;

/// The most significant digits a [`Decimal`] holds exactly.
pub const MAX_SIGNIFICANT_DIGITS: usize = 28;

/// Reads a decimal given as a JSON number or string. `None` when the value is JSON `null`.
pub fn decimal_field(field: &str, value: &Value) -> Result<Option<Decimal>, FieldError> {
    let text = match value {
        Value::Null => return Ok(None),
        // With `arbitrary_precision` a number displays as the exact text it was sent as.
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => {
            return Err(FieldError::new(
                field,
                codes::INVALID_TYPE,
                format!(
                    "{field} must be a decimal number or string, not {}",
                    type_name(other)
                ),
            ))
        }
    };
    parse_plain_decimal(field, &text).map(Some)
}

/// Parses `-?digits(.digits)?` exactly: no exponent, sign `+`, spaces, `NaN` or `Infinity`.
pub fn parse_plain_decimal(field: &str, text: &str) -> Result<Decimal, FieldError> {
    let invalid = || {
        FieldError::new(
            field,
            codes::INVALID_DECIMAL,
            format!(
                "{field} must be a plain decimal such as \"45000.25\" (no exponent), got {text:?}"
            ),
        )
    };
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits(int)
        || !digits(frac)
        || (unsigned.contains('.') && frac.is_empty())
    {
        return Err(invalid());
    }
    let int_sig = int.trim_start_matches('0');
    let frac_sig = frac.trim_end_matches('0');
    if int_sig.len() > MAX_SIGNIFICANT_DIGITS {
        return Err(FieldError::new(
            field,
            codes::INVALID_DECIMAL,
            format!("{field} has more than {MAX_SIGNIFICANT_DIGITS} digits"),
        ));
    }
    // Leading zeros of the fraction count: they take up scale all the same.
    let significant = if int_sig.is_empty() {
        frac_sig.len()
    } else {
        int_sig.len() + frac_sig.len()
    };
    if significant > MAX_SIGNIFICANT_DIGITS || frac_sig.len() > MAX_SIGNIFICANT_DIGITS {
        return Err(FieldError::new(
            field,
            codes::TOO_MANY_DECIMALS,
            format!("{field} has more than {MAX_SIGNIFICANT_DIGITS} significant digits"),
        ));
    }
    let normal = match (int_sig.is_empty(), frac_sig.is_empty()) {
        (_, true) if int_sig.is_empty() => "0".to_string(),
        (_, true) => int_sig.to_string(),
        (true, false) => format!("0.{frac_sig}"),
        (false, false) => format!("{int_sig}.{frac_sig}"),
    };
    let mut d = Decimal::from_str_exact(&normal).map_err(|_| invalid())?;
    if text.starts_with('-') {
        d.set_sign_negative(true);
    }
    Ok(d)
}

/// Checks `value` is a positive multiple of `unit` with no more decimals than `unit` has.
pub fn check_increment(
    field: &str,
    value: Decimal,
    unit: Decimal,
    off_code: &'static str,
    what: &str,
) -> Result<(), FieldError> {
    let unit_scale = unit.normalize().scale();
    if value.normalize().scale() > unit_scale {
        return Err(FieldError::new(
            field,
            codes::TOO_MANY_DECIMALS,
            format!("{field} has more than {unit_scale} decimals (the {what} is {unit})"),
        ));
    }
    if unit.is_zero() || !(value % unit).is_zero() {
        return Err(FieldError::new(
            field,
            off_code,
            format!("{field} must be a multiple of the {what} {unit}"),
        ));
    }
    Ok(())
}

pub fn check_positive(field: &str, value: Decimal) -> Result<(), FieldError> {
    if value <= Decimal::ZERO {
        return Err(FieldError::new(
            field,
            codes::NON_POSITIVE,
            format!("{field} must be greater than 0"),
        ));
    }
    Ok(())
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn parse(v: &str) -> Result<Option<Decimal>, FieldError> {
        let value: Value = serde_json::from_str(v).unwrap();
        decimal_field("price", &value)
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        assert_eq!(parse("0.1").unwrap(), Some(dec("0.1")));
        assert_eq!(parse("45000").unwrap(), Some(dec("45000")));
        assert_eq!(parse("45000.10").unwrap(), Some(dec("45000.1")));
        // Binary floats cannot hold this; it must survive untouched.
        assert_eq!(
            parse("0.1000000000000000055511151231257827")
                .unwrap_err()
                .code,
            codes::TOO_MANY_DECIMALS
        );
        assert_eq!(
            parse("1234567890.123456789012345678").unwrap(),
            Some(dec("1234567890.123456789012345678"))
        );
        assert_eq!(parse("\"0.30\"").unwrap(), Some(dec("0.3")));
        assert_eq!(parse("null").unwrap(), None);
        assert_eq!(parse("-1.5").unwrap(), Some(dec("-1.5")));
        assert_eq!(parse("\"-0\"").unwrap(), Some(Decimal::ZERO));
    }

    #[test]
    fn exponents_and_non_numbers_are_invalid_decimals() {
        for v in [
            "1e5",
            "1E5",
            "1.5e-3",
            "\"1e5\"",
            "\"NaN\"",
            "\"Infinity\"",
            "\"\"",
            "\" 1\"",
            "\"+1\"",
            "\"1.\"",
            "\".5\"",
            "\"1,5\"",
            "\"0x10\"",
            "\"1.2.3\"",
        ] {
            let e = parse(v).unwrap_err();
            assert_eq!(e.code, codes::INVALID_DECIMAL, "{v}");
            assert_eq!(e.field, "price");
        }
    }

    #[test]
    fn wrong_types_are_named() {
        for v in ["true", "[1]", "{\"a\":1}"] {
            let e = parse(v).unwrap_err();
            assert_eq!(e.code, codes::INVALID_TYPE, "{v}");
        }
    }

    #[test]
    fn digit_limits() {
        let int29 = "1".repeat(29);
        assert_eq!(parse(&int29).unwrap_err().code, codes::INVALID_DECIMAL);
        let int28 = "9".repeat(28);
        assert_eq!(parse(&int28).unwrap(), Some(dec(&int28)));
        let frac = format!("0.{}1", "0".repeat(28));
        assert_eq!(parse(&frac).unwrap_err().code, codes::TOO_MANY_DECIMALS);
        // Leading integer zeros and trailing fraction zeros are not significant.
        let padded = format!("\"000{}.5{}\"", "1".repeat(20), "0".repeat(40));
        assert!(parse(&padded).unwrap().is_some());
    }

    #[test]
    fn increments() {
        let tick = dec("0.01");
        assert!(check_increment(
            "price",
            dec("45000.10"),
            tick,
            codes::PRICE_OFF_TICK,
            "tick size"
        )
        .is_ok());
        let e = check_increment(
            "price",
            dec("45000.001"),
            tick,
            codes::PRICE_OFF_TICK,
            "tick size",
        )
        .unwrap_err();
        assert_eq!(e.code, codes::TOO_MANY_DECIMALS);
        let e = check_increment(
            "price",
            dec("45000.03"),
            dec("0.05"),
            codes::PRICE_OFF_TICK,
            "tick size",
        )
        .unwrap_err();
        assert_eq!(e.code, codes::PRICE_OFF_TICK);
        let e = check_increment(
            "quantity",
            dec("7"),
            dec("5"),
            codes::QUANTITY_OFF_STEP,
            "step size",
        )
        .unwrap_err();
        assert_eq!(e.code, codes::QUANTITY_OFF_STEP);
    }

    #[test]
    fn positivity() {
        assert_eq!(
            check_positive("quantity", Decimal::ZERO).unwrap_err().code,
            codes::NON_POSITIVE
        );
        assert_eq!(
            check_positive("quantity", dec("-1")).unwrap_err().code,
            codes::NON_POSITIVE
        );
        assert!(check_positive("quantity", dec("0.00001")).is_ok());
    }
}
