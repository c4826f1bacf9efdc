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

impl<K> KindStrategy for Typed<K>
where
    K: k8s_openapi::Metadata<Ty = ObjectMeta> + Serialize + DeserializeOwned + Send + Sync + 'static,
{
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
