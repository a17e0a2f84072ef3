//! JSON parsing that refuses an object naming a key twice. serde_json keeps the last value
//! and other parsers keep the first; a proxy or a logger that reads the body with another
//! parser would then see another request than this service (a parser differential). So no
//! value is picked: the body is refused.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not accepted as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// Not JSON at all.
    Malformed,
    /// JSON, with a key named twice in one object (at any depth).
    DuplicateKey,
}

/// Parses `bytes` as JSON, refusing duplicate keys.
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|Strict(value)| value)
        .map_err(|error| {
            if error.is_data() && error.to_string().starts_with(DUPLICATE) {
                StrictJsonError::DuplicateKey
            } else {
                StrictJsonError::Malformed
            }
        })
}

/// The message of the error raised for a duplicate key, recognised above. It never holds
/// the key: a key can be anything the client sent.
const DUPLICATE: &str = "duplicate key in a JSON object";

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|Strict(value)| value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom(DUPLICATE));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_without_duplicates_parses_as_serde_json_would() {
        let text = r#"{"a": 1, "b": [true, null, -2, 3.5, "x", {"c": {}}], "d": "é"}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_slice(text.as_bytes()), Ok(expected));
        assert_eq!(from_slice(b"[1, 2]"), Ok(json!([1, 2])));
    }

    #[test]
    fn a_key_named_twice_at_any_depth_is_refused() {
        for text in [
            r#"{"password": "a", "password": "b"}"#,
            r#"{"a": {"x": 1, "x": 1}}"#,
            r#"[{"k": 1, "k": 2}]"#,
            r#"{"a": 1, "\u0061": 2}"#,
        ] {
            assert_eq!(
                from_slice(text.as_bytes()),
                Err(StrictJsonError::DuplicateKey),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_json_is_malformed_not_a_duplicate() {
        for text in ["", "{", r#"{"a": 1,}"#, "nul", r#"{"a": 1} x"#] {
            assert_eq!(
                from_slice(text.as_bytes()),
                Err(StrictJsonError::Malformed),
                "{text}"
            );
        }
    }
}
