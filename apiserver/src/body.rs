//! Request bodies: decoding JSON and YAML into objects, and upstream's field validation
//! (`fieldValidation=Strict|Warn|Ignore`) of unknown and duplicate fields.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use api::ResourceDef;
use http::{HeaderMap, header};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::request::Query;

/// A decoded body and the paths of keys it repeated (JSON only).
pub struct Body {
    pub value: Value,
    pub duplicates: Vec<String>,
}

/// Decodes a request body by its Content-Type.
pub fn decode(headers: &HeaderMap, body: &[u8]) -> ApiResult<Body> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    match media.as_str() {
        "application/json" | "" | "*/*" | "text/plain" => {
            let value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded as JSON: {e}"))
            })?;
            Ok(Body {
                value,
                duplicates: duplicate_keys(body),
            })
        }
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text =
                std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the YAML body is not valid UTF-8"))?;
            let value = serde_saphyr::from_str::<Value>(text).map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded as YAML: {e}"))
            })?;
            Ok(Body {
                value,
                duplicates: Vec::new(),
            })
        }
        "application/vnd.kubernetes.protobuf" => {
            let value = api::protobuf::decode_protobuf(body).map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded as protobuf: {e}"))
            })?;
            Ok(Body {
                value,
                duplicates: Vec::new(),
            })
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Walks a JSON document recording the paths of keys that appear twice in one object.
struct Walk<'a> {
    path: String,
    duplicates: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.duplicates.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                duplicates: self.duplicates,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(Walk {
                path: format!("{}[{index}]", self.path),
                duplicates: self.duplicates,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The paths of repeated keys in a JSON document (empty if it does not parse).
pub fn duplicate_keys(json: &[u8]) -> Vec<String> {
    let duplicates = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let _ = Walk {
        path: String::new(),
        duplicates: &duplicates,
    }
    .deserialize(&mut deserializer);
    duplicates.into_inner()
}

/// `fieldValidation`: what to do about unknown and duplicate fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    /// The default since 1.27: the request succeeds with a Warning header per problem.
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn from_query(query: &Query) -> ApiResult<Self> {
        match query.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }

    /// Applies the mode to `object` (the object as it would be stored, before pruning) and the
    /// body's duplicate keys: Strict fails with upstream's "strict decoding error", Warn adds
    /// warnings.
    pub fn check(
        self,
        def: &ResourceDef,
        object: &Value,
        duplicates: &[String],
        warnings: &mut Vec<String>,
    ) -> ApiResult<()> {
        if self == Self::Ignore {
            return Ok(());
        }
        let unknown = def
            .strategy
            .unknown_fields(def, object)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut problems: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
        problems.extend(duplicates.iter().map(|f| format!("duplicate field {f:?}")));
        if problems.is_empty() {
            return Ok(());
        }
        match self {
            Self::Strict => Err(ApiError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                def.kind,
                def.version,
                def.kind,
                problems.join(", ")
            ))),
            _ => {
                warnings.extend(problems);
                Ok(())
            }
        }
    }
}

/// The value of a `Warning` header: code 299, agent "-", the text quoted (RFC 7234).
pub fn warning_header(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("299 - \"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_duplicate_keys_with_paths() {
        let dups = duplicate_keys(br#"{"a": 1, "spec": {"x": [{"n": 1, "n": 2}], "y": 1, "y": 2}, "a": 3}"#);
        assert_eq!(dups, ["spec.x[0].n", "spec.y", "a"]);
        assert!(duplicate_keys(br#"{"a": {"a": 1}}"#).is_empty());
    }

    #[test]
    fn strict_warn_and_ignore() {
        let def = api::registry::find("apps", "v1", "deployments").unwrap();
        let object = json!({"metadata": {"name": "d"}, "spec": {"foo": 1, "selector": {}, "template": {}}});
        let mut warnings = Vec::new();
        let err = FieldValidation::Strict
            .check(def, &object, &["spec.replicas".into()], &mut warnings)
            .unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo", duplicate field "spec.replicas""#
        );
        FieldValidation::Warn.check(def, &object, &[], &mut warnings).unwrap();
        assert_eq!(warnings, [r#"unknown field "spec.foo""#]);
        FieldValidation::Ignore.check(def, &object, &[], &mut warnings).unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warning_header(r#"unknown field "spec.foo""#),
            r#"299 - "unknown field \"spec.foo\"""#
        );
    }
}
