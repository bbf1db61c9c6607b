//! Parsing and checking of JSON-RPC request parameters, before any call reaches the node.
//!
//! jsonrpsee hands each handler the raw `params` JSON (already size-limited by the
//! server's request body limit and known to be valid JSON). These helpers accept the two
//! shapes JSON-RPC 2.0 allows — a positional array (`[5]`) or an object with named
//! members (`{"height": 5}`) — plus absent/`null` params, and turn anything else into an
//! [`ApiError::InvalidParams`] (code -32602) whose message names the method, the expected
//! parameter and what was received. Received values are echoed only when short, so an
//! error message never grows with the request.

use jsonrpsee::types::Params;
use serde_json::{Map, Value};

use crate::api::{ApiError, BlockRef};

/// Longest string value quoted back in an error message.
const MAX_ECHO_CHARS: usize = 80;
/// Length of a block hash in hex digits.
const HASH_HEX_LEN: usize = 64;

/// The two parameter shapes of JSON-RPC 2.0.
enum Shape {
    Positional(Vec<Value>),
    Named(Map<String, Value>),
}

fn shape(method: &str, params: &Params<'_>) -> Result<Shape, ApiError> {
    let Some(raw) = params.as_str() else {
        return Ok(Shape::Positional(Vec::new()));
    };
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        ApiError::InvalidParams(format!("{method}: params are not valid JSON: {e}"))
    })?;
    match value {
        Value::Null => Ok(Shape::Positional(Vec::new())),
        Value::Array(items) => Ok(Shape::Positional(items)),
        Value::Object(members) => Ok(Shape::Named(members)),
        other => Err(ApiError::InvalidParams(format!(
            "{method}: params must be an array or an object, got {}",
            describe(&other)
        ))),
    }
}

/// Checks that a method that takes no parameters got none (`[]`, `{}`, `null` or absent).
pub(crate) fn none(method: &str, params: &Params<'_>) -> Result<(), ApiError> {
    let count = match shape(method, params)? {
        Shape::Positional(items) => items.len(),
        Shape::Named(members) => members.len(),
    };
    if count == 0 {
        Ok(())
    } else {
        Err(ApiError::InvalidParams(format!(
            "{method} takes no parameters, got {count}"
        )))
    }
}

/// Extracts the single optional parameter `name` of `method`: positional `[x]` or named
/// `{"name": x}`. Absent, `[]`, `[null]` and `{"name": null}` all yield `None`.
pub(crate) fn optional_one(
    method: &str,
    name: &str,
    params: &Params<'_>,
) -> Result<Option<Value>, ApiError> {
    let value = match shape(method, params)? {
        Shape::Positional(mut items) => {
            if items.len() > 1 {
                return Err(ApiError::InvalidParams(format!(
                    "{method} takes at most 1 parameter ({name}), got {}",
                    items.len()
                )));
            }
            items.pop()
        }
        Shape::Named(mut members) => {
            if let Some(unknown) = members.keys().find(|k| k.as_str() != name) {
                return Err(ApiError::InvalidParams(format!(
                    "{method}: unknown parameter {}; the only parameter is `{name}`",
                    describe_str(unknown)
                )));
            }
            members.remove(name)
        }
    };
    Ok(value.filter(|v| !v.is_null()))
}

/// Like [`optional_one`], but the parameter must be present and not `null`.
pub(crate) fn required_one(
    method: &str,
    name: &str,
    params: &Params<'_>,
) -> Result<Value, ApiError> {
    optional_one(method, name, params)?.ok_or_else(|| {
        ApiError::InvalidParams(format!("{method} requires 1 parameter ({name}), got none"))
    })
}

/// Reads a block height: a non-negative JSON integer.
pub(crate) fn height(method: &str, value: &Value) -> Result<u64, ApiError> {
    value.as_u64().ok_or_else(|| {
        ApiError::InvalidParams(format!(
            "{method}: height must be a non-negative integer, got {}",
            describe(value)
        ))
    })
}

/// Reads a block selector: a height (non-negative integer) or a block hash (64 hex
/// digits, with or without `0x`). Hashes are normalised to lowercase without prefix.
pub(crate) fn block_ref(method: &str, value: &Value) -> Result<BlockRef, ApiError> {
    match value {
        Value::Number(_) => height(method, value).map(BlockRef::Height),
        Value::String(s) => {
            let digits = strip_hex_prefix(s);
            if digits.len() != HASH_HEX_LEN {
                return Err(ApiError::InvalidParams(format!(
                    "{method}: a block hash must be {HASH_HEX_LEN} hex digits (optionally \
                     0x-prefixed), got {} ({} digits)",
                    describe(value),
                    digits.chars().count()
                )));
            }
            if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
                return Err(ApiError::InvalidParams(format!(
                    "{method}: a block hash must be hex, got {} (contains {bad:?})",
                    describe(value)
                )));
            }
            Ok(BlockRef::Hash(digits.to_ascii_lowercase()))
        }
        other => Err(ApiError::InvalidParams(format!(
            "{method}: expected a block height (integer) or a block hash (64 hex digits), got {}",
            describe(other)
        ))),
    }
}

/// Reads a byte string sent as hex (with or without `0x`, either case) of at most
/// `max_bytes` bytes, refusing an empty one. The length is checked before any digit is
/// looked at, so an oversized string costs nothing to refuse.
pub(crate) fn hex_bytes(
    method: &str,
    name: &str,
    value: &Value,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    let Value::String(s) = value else {
        return Err(ApiError::InvalidParams(format!(
            "{method}: {name} must be a hex string, got {}",
            describe(value)
        )));
    };
    let digits = strip_hex_prefix(s);
    let max_digits = max_bytes.saturating_mul(2);
    if digits.len() > max_digits {
        return Err(ApiError::InvalidParams(format!(
            "{method}: {name} is too large: at most {max_bytes} bytes ({max_digits} hex \
             digits), got {} characters",
            digits.chars().count()
        )));
    }
    if digits.is_empty() {
        return Err(ApiError::InvalidParams(format!(
            "{method}: {name} is empty; expected hex of its canonical bytes"
        )));
    }
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidParams(format!(
            "{method}: {name} must be hex, got {} (contains {bad:?})",
            describe(value)
        )));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(ApiError::InvalidParams(format!(
            "{method}: {name} must be whole bytes (an even number of hex digits), got {} digits",
            digits.len()
        )));
    }
    Ok(digits
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect())
}

/// `s` without a leading `0x` or `0X`.
fn strip_hex_prefix(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

/// The value of one ASCII hex digit (the caller has checked that it is one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// A short description of a JSON value for an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", describe_str(s)),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(members) => format!("an object with {} members", members.len()),
    }
}

/// A string quoted if short, otherwise only its length.
fn describe_str(s: &str) -> String {
    let chars = s.chars().count();
    if chars <= MAX_ECHO_CHARS {
        format!("{s:?}")
    } else {
        format!("of {chars} characters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(raw: &str) -> Params<'_> {
        Params::new(Some(raw))
    }

    #[test]
    fn none_accepts_empty_shapes_only() {
        assert!(none("m", &Params::new(None)).is_ok());
        assert!(none("m", &p("[]")).is_ok());
        assert!(none("m", &p("{}")).is_ok());
        assert!(none("m", &p("null")).is_ok());
        let err = none("m", &p("[1]")).expect_err("must fail");
        assert_eq!(
            err,
            ApiError::InvalidParams("m takes no parameters, got 1".into())
        );
    }

    #[test]
    fn optional_one_shapes() {
        assert_eq!(
            optional_one("m", "height", &Params::new(None)).expect("must succeed"),
            None
        );
        assert_eq!(
            optional_one("m", "height", &p("[null]")).expect("must succeed"),
            None
        );
        assert_eq!(
            optional_one("m", "height", &p("[3]")).expect("must succeed"),
            Some(json!(3))
        );
        assert_eq!(
            optional_one("m", "height", &p(r#"{"height":3}"#)).expect("must succeed"),
            Some(json!(3))
        );
        assert!(optional_one("m", "height", &p("[1,2]")).is_err());
        assert!(optional_one("m", "height", &p(r#"{"hieght":3}"#)).is_err());
        assert!(optional_one("m", "height", &p("7")).is_err());
        assert!(required_one("m", "block", &p("[]")).is_err());
    }

    #[test]
    fn block_refs() {
        let h = "ab".repeat(32);
        assert_eq!(
            block_ref("m", &json!(7)).expect("must succeed"),
            BlockRef::Height(7)
        );
        assert_eq!(
            block_ref("m", &json!(h)).expect("must succeed"),
            BlockRef::Hash(h.clone())
        );
        assert_eq!(
            block_ref("m", &json!(format!("0x{}", h.to_uppercase()))).expect("must succeed"),
            BlockRef::Hash(h.clone())
        );
        for bad in [
            json!(-1),
            json!(1.5),
            json!("12"),
            json!("zz".repeat(32)),
            json!(true),
            json!([1]),
        ] {
            let err = block_ref("m", &bad).expect_err("must fail");
            assert_eq!(err.code(), -32602, "{bad}: {err}");
        }
        let long = "x".repeat(1000);
        let msg = block_ref("m", &json!(long))
            .expect_err("must fail")
            .to_string();
        assert!(msg.len() < 300, "{msg}");
    }

    #[test]
    fn hex_byte_strings() {
        let bytes = |v: Value| hex_bytes("m", "r", &v, 4);
        assert_eq!(
            bytes(json!("00ff7A")).expect("must succeed"),
            vec![0x00, 0xff, 0x7a]
        );
        assert_eq!(
            bytes(json!("0X0102a0B0")).expect("must succeed"),
            vec![1, 2, 0xa0, 0xb0]
        );
        for (bad, expect) in [
            (json!("0102030405"), "too large"),
            (json!("0x"), "empty"),
            (json!(""), "empty"),
            (json!("abc"), "even number"),
            (json!("zz"), "must be hex"),
            (json!("0x0x"), "must be hex"),
            (json!(12), "hex string"),
            (json!(null), "hex string"),
        ] {
            let err = bytes(bad.clone()).expect_err("must fail");
            assert_eq!(err.code(), -32602, "{bad}: {err}");
            assert!(err.to_string().contains(expect), "{bad}: {err}");
        }
        // Oversize is refused before the digits are looked at, and never echoed.
        let msg = hex_bytes("m", "r", &json!("g".repeat(100_000)), 512)
            .expect_err("must fail")
            .to_string();
        assert!(msg.contains("too large") && msg.len() < 300, "{msg}");
    }
}
