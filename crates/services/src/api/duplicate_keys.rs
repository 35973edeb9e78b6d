//! Finds a key given twice in one JSON object. `serde_json` keeps the last of them, so
//! `{"symbol":"BTC/USD","symbol":"ETH/USD"}` would trade ETH/USD; which one the client meant
//! is unknown, so the API refuses such a body instead.

use std::collections::HashSet;

/// Where the walk is: in an object (its keys so far, and the one whose value is being read),
/// or in an array (the index of the element being read).
enum Open {
    Object {
        keys: HashSet<String>,
        current: Option<String>,
    },
    Array {
        index: usize,
    },
}

/// The path of the first key that appears twice in one object of `json`, as the API names
/// fields (`orders[1].price`; the bare key at the top level), keys unescaped. `json` must
/// already have parsed as JSON: this only walks its structure.
pub fn first_duplicate_key(json: &[u8]) -> Option<String> {
    let mut open: Vec<Open> = Vec::new();
    // Whether the next string in the innermost object is a key (after `{` or `,`).
    let mut key_next = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'{' => {
                open.push(Open::Object {
                    keys: HashSet::new(),
                    current: None,
                });
                key_next = true;
            }
            b'[' => {
                open.push(Open::Array { index: 0 });
                key_next = false;
            }
            b'}' | b']' => {
                open.pop();
                key_next = false;
            }
            b',' => match open.last_mut() {
                Some(Open::Array { index }) => *index += 1,
                Some(Open::Object { .. }) => key_next = true,
                None => {}
            },
            b'"' => {
                let end = string_end(json, i);
                if key_next {
                    let key = unescape(&json[i..end]);
                    if let Some(Open::Object { keys, current }) = open.last_mut() {
                        if !keys.insert(key.clone()) {
                            return Some(path_to(&open[..open.len() - 1], &key));
                        }
                        *current = Some(key);
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

/// `key` inside the values being read in `outer`: `a[2].b.key`.
fn path_to(outer: &[Open], key: &str) -> String {
    let mut path = String::new();
    for frame in outer {
        match frame {
            Open::Object {
                current: Some(k), ..
            } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Open::Object { current: None, .. } => {}
            Open::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
    path
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
        assert_eq!(dup(r#"{"o":{"x":1,"x":2}}"#), Some("o.x".into()));
        assert_eq!(
            dup(r#"{"orders":[{"p":1},{"p":2,"q":1,"p":3}]}"#),
            Some("orders[1].p".into())
        );
        assert_eq!(
            dup(r#"{"a":[[1,2],[3,{"k":1,"k":2}]]}"#),
            Some("a[1][1].k".into())
        );
        assert_eq!(dup(r#"[{"k":1},{"k":1,"k":2}]"#), Some("[1].k".into()));
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
