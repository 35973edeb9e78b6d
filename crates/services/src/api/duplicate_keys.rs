//! Finds a key given twice in one JSON object. `serde_json` keeps the last of them, so
//! `{"symbol":"BTC/USD","symbol":"ETH/USD"}` would trade ETH/USD; which one the client meant
//! is unknown, so the API refuses such a body instead.

use std::collections::HashSet;

/// The first key that appears twice in one object of `json`, unescaped. `json` must already
/// have parsed as JSON: this only walks its structure.
pub fn first_duplicate_key(json: &[u8]) -> Option<String> {
    // One entry per open array or object: the keys of an object seen so far.
    let mut open: Vec<Option<HashSet<String>>> = Vec::new();
    // Whether the next string in the innermost object is a key (after `{` or `,`).
    let mut key_next = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'{' => {
                open.push(Some(HashSet::new()));
                key_next = true;
            }
            b'[' => {
                open.push(None);
                key_next = false;
            }
            b'}' | b']' => {
                open.pop();
                key_next = false;
            }
            b',' => key_next = matches!(open.last(), Some(Some(_))),
            b'"' => {
                let end = string_end(json, i);
                if key_next {
                    let key = unescape(&json[i..end]);
                    if let Some(Some(keys)) = open.last_mut() {
                        if !keys.insert(key.clone()) {
                            return Some(key);
                        }
                    }
                    key_next = false;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the string that starts with the quote at `start`.
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

/// A quoted JSON string's text (`"a\u0062"` is `ab`, the same key as `"ab"`).
fn unescape(quoted: &[u8]) -> String {
    if !quoted.contains(&b'\\') {
        return String::from_utf8_lossy(&quoted[1..quoted.len() - 1]).into_owned();
    }
    serde_json::from_slice::<String>(quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(quoted).into_owned())
}

#[cfg(test)]
mod tests {
    use super::first_duplicate_key;

    fn dup(json: &str) -> Option<String> {
        assert!(
            serde_json::from_str::<serde_json::Value>(json).is_ok(),
            "{json}"
        );
        first_duplicate_key(json.as_bytes())
    }

    #[test]
    fn a_key_given_twice_in_one_object_is_found() {
        assert_eq!(dup(r#"{"a":1,"b":2,"a":3}"#), Some("a".into()));
        assert_eq!(dup(r#"{"o":{"x":1,"x":2}}"#), Some("x".into()));
        assert_eq!(
            dup(r#"{"orders":[{"p":1},{"p":2,"q":1,"p":3}]}"#),
            Some("p".into())
        );
        assert_eq!(
            dup(r#"{"ab":1,"a\u0062":2}"#),
            Some("ab".into()),
            "the same key escaped"
        );
        assert_eq!(dup(r#" { "k" : 1 , "k" : 2 } "#), Some("k".into()));
    }

    #[test]
    fn the_same_key_in_different_objects_or_as_a_value_is_not_a_duplicate() {
        assert_eq!(dup(r#"{"a":1,"b":{"a":2}}"#), None);
        assert_eq!(dup(r#"[{"a":1},{"a":2}]"#), None);
        assert_eq!(dup(r#"{"a":"a","b":["a","a"]}"#), None);
        assert_eq!(dup(r#"{"a":{"x":1},"b":{"x":1}}"#), None);
        assert_eq!(dup(r#"{"q\"uote":"}{,\"","q\\":1,"x":"\\"}"#), None);
        assert_eq!(dup(r#"{"a":[1,{"b":1},"c"],"c":1}"#), None);
        assert_eq!(dup(r#""just a string""#), None);
        assert_eq!(dup("{}"), None);
    }
}
