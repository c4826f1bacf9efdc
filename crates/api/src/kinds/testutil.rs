//! Test helpers: run objects through a kind's full admission (decode, default, metadata and kind
//! validation) and compare errors as the text clients see.

use serde_json::Value;

use crate::registry::{ResourceDef, find};
use crate::strategy::{AdmitError, Operation};

pub(crate) fn def(group: &str, version: &str, plural: &str) -> &'static ResourceDef {
    match find(group, version, plural) {
        Some(d) => d,
        None => panic!("no resource {group}/{version}/{plural}"),
    }
}

/// Admits `object`; errors come back rendered as `path: message`.
pub(crate) fn admit(d: &ResourceDef, object: Value, old: Option<&Value>, op: Operation) -> Result<Value, Vec<String>> {
    d.strategy.admit(d, object, old, op).map_err(|e| match e {
        AdmitError::Invalid(errs) => errs.iter().map(ToString::to_string).collect(),
        AdmitError::Decode(msg) => vec![format!("decode: {msg}")],
    })
}

pub(crate) fn create(d: &ResourceDef, object: Value) -> Result<Value, Vec<String>> {
    admit(d, object, None, Operation::Create)
}

/// Creates `object`, panicking with the errors if it is rejected.
pub(crate) fn create_ok(d: &ResourceDef, object: Value) -> Value {
    match create(d, object) {
        Ok(v) => v,
        Err(errs) => panic!("rejected: {errs:#?}"),
    }
}

/// RFC 7386 merge patch, for deriving test cases from a valid base object.
pub(crate) fn merge(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            let mut out = b.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, p) => p.clone(),
    }
}

/// Checks each (patch, expected errors) case against `base`: the patched object must be rejected
/// with exactly the expected messages (each expected entry may be a prefix of the actual one).
pub(crate) fn check_invalid(d: &ResourceDef, base: &Value, cases: &[(Value, &[&str])]) {
    for (patch, want) in cases {
        let object = merge(base, patch);
        match create(d, object) {
            Ok(_) => panic!("accepted {patch}, want {want:?}"),
            Err(got) => assert_matches(&got, want, patch),
        }
    }
}

pub(crate) fn assert_matches(got: &[String], want: &[&str], context: &Value) {
    assert_eq!(got.len(), want.len(), "{context}: got {got:#?}, want {want:#?}");
    for (g, w) in got.iter().zip(want.iter()) {
        assert!(g.starts_with(w), "{context}:\n got  {g}\n want {w}");
    }
}
