//! Per-kind admission of an object: decode into the typed struct, default, validate, encode.
//!
//! Decoding through the `k8s-openapi` types is what makes a wrong field type a clear 400 (as
//! upstream's "cannot be handled as a Deployment") and prunes unknown fields the way the
//! upstream decoder drops them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::field::FieldError;
use crate::registry::ResourceDef;
use crate::validation::meta::validate_object_meta;

/// The write being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    /// A write to the `status` subresource.
    UpdateStatus,
}

/// Why an object was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The body does not decode as the kind (wrong field types, malformed values): 400.
    #[error("{0}")]
    Decode(String),
    /// Validation failed: 422 with one cause per error.
    #[error("invalid object")]
    Invalid(Vec<FieldError>),
}

/// What the server does with an object of one kind before storing it.
pub trait KindStrategy: Send + Sync {
    /// The paths of fields in `object` that the kind does not declare (what decoding would
    /// drop), formatted as upstream reports them: `spec.containers[0].foo`.
    fn unknown_fields(&self, def: &ResourceDef, object: &Value) -> Result<Vec<String>, AdmitError>;

    /// Decodes `object`, applies defaults, validates it (against `old` on updates) and returns
    /// the normalized JSON to store.
    fn admit(&self, def: &ResourceDef, object: Value, old: Option<&Value>, op: Operation) -> Result<Value, AdmitError>;
}

/// A defaulting function for a typed kind.
pub type DefaultFn<K> = fn(&mut K);
/// A validation function for a typed kind: the object, the old object on updates, the operation.
pub type ValidateFn<K> = fn(&K, Option<&K>, Operation) -> Vec<FieldError>;

/// The strategy for a kind with a `k8s-openapi` type: metadata validation for every kind plus
/// the kind's own defaulting and validation.
pub struct Typed<K: 'static> {
    pub default: DefaultFn<K>,
    pub validate: ValidateFn<K>,
}

impl<K> Typed<K> {
    pub const fn new(default: DefaultFn<K>, validate: ValidateFn<K>) -> Self {
        Self { default, validate }
    }
}

/// Decodes `value` as `K`, with upstream's wording for failures.
pub fn decode<K: DeserializeOwned>(def: &ResourceDef, value: Value) -> Result<K, AdmitError> {
    serde_json::from_value(value).map_err(|error| {
        AdmitError::Decode(format!(
            "{} in version {:?} cannot be handled as a {}: {error}",
            def.kind, def.version, def.kind
        ))
    })
}

/// Renders a serde_ignored path the way upstream's strict decoder does.
fn render_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_path(parent)),
        Path::Map { parent, key } => {
            let parent = render_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => render_path(parent),
    }
}

impl<K> KindStrategy for Typed<K>
where
    K: k8s_openapi::Metadata<Ty = ObjectMeta> + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn unknown_fields(&self, def: &ResourceDef, object: &Value) -> Result<Vec<String>, AdmitError> {
        let mut unknown = Vec::new();
        let decoded: Result<K, _> = serde_ignored::deserialize(object, |path| unknown.push(render_path(&path)));
        match decoded {
            Ok(_) => Ok(unknown),
            Err(error) => Err(AdmitError::Decode(format!(
                "{} in version {:?} cannot be handled as a {}: {error}",
                def.kind, def.version, def.kind
            ))),
        }
    }

    fn admit(&self, def: &ResourceDef, object: Value, old: Option<&Value>, op: Operation) -> Result<Value, AdmitError> {
        let mut typed: K = decode(def, object)?;
        let old_typed: Option<K> = match old {
            Some(old) => Some(decode(def, old.clone())?),
            None => None,
        };
        (self.default)(&mut typed);
        let mut errors = validate_object_meta(def, typed.metadata(), old_typed.as_ref().map(|o| o.metadata()));
        errors.extend((self.validate)(&typed, old_typed.as_ref(), op));
        if !errors.is_empty() {
            return Err(AdmitError::Invalid(errors));
        }
        serde_json::to_value(&typed).map_err(|error| AdmitError::Decode(error.to_string()))
    }
}

/// No defaults.
pub fn no_defaults<K>(_: &mut K) {}

/// No kind-specific validation (metadata is still validated).
pub fn no_validation<K>(_: &K, _: Option<&K>, _: Operation) -> Vec<FieldError> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_with_upstream_paths() {
        let def = crate::registry::find("", "v1", "pods").expect("pods are registered");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "foo": true}], "extra": {}}});
        let mut unknown = def.strategy.unknown_fields(def, &pod).unwrap();
        unknown.sort();
        assert_eq!(unknown, ["metadata.bogus", "spec.containers[0].foo", "spec.extra"]);
        let fine = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        assert!(def.strategy.unknown_fields(def, &fine).unwrap().is_empty());
    }
}
