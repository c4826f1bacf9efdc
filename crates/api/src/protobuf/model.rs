//! The shape of the generated protobuf schema (`schema.rs`): every message reachable from a
//! served kind, its fields by tag with their JSON names, and the apimachinery types that have
//! their own JSON form.

/// What a field holds on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    /// A message: an index into [`super::schema::MESSAGES`].
    Msg(u16),
}

/// How often a field occurs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    /// Singular (proto2 `optional`).
    One,
    /// `repeated`: a JSON array.
    Many,
    /// `map<string, ty>` (repeated entries with key = 1, value = 2): a JSON object.
    Map,
}

/// One field of a message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub(crate) tag: u32,
    /// The JSON property name; empty for a Go struct embedded with `json:",inline"` (its fields
    /// are written into the enclosing object).
    pub(crate) json: &'static str,
    pub(crate) ty: Ty,
    pub(crate) card: Card,
    /// The zero value is written to JSON (a Go pointer field, or one without `omitempty`);
    /// otherwise a singular scalar equal to its zero value is dropped.
    pub(crate) zero: bool,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    None,
    /// `meta.v1.Time` {seconds, nanos}: RFC 3339 in seconds, `null` when zero.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `meta.v1.Duration` {duration ns}: a Go duration string.
    #[allow(dead_code, reason = "no served kind has a Duration field yet")]
    Duration,
    /// `resource.Quantity` {string}: the string.
    Quantity,
    /// `intstr.IntOrString` {type, intVal, strVal}: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`, `apiextensions.v1.JSON` {raw}: the embedded
    /// JSON document (or a nested protobuf object).
    Raw,
    /// `JSONSchemaPropsOrArray` {schema, jSONSchemas}: a schema or an array of schemas.
    PropsOrArray,
    /// `JSONSchemaPropsOrBool` {allows, schema}: a schema or a boolean.
    PropsOrBool,
    /// `JSONSchemaPropsOrStringArray` {schema, property}: a schema or an array of strings.
    PropsOrStringArray,
}

/// One message type.
#[derive(Debug)]
pub(crate) struct Message {
    /// The OpenAPI name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub(crate) name: &'static str,
    pub(crate) special: Special,
    /// Sorted by tag.
    pub(crate) fields: &'static [Field],
}

impl Message {
    pub(crate) fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// A kind a protobuf body may carry: its envelope `apiVersion`/`kind` and its message.
#[derive(Debug)]
pub(crate) struct Root {
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) message: u16,
}

/// Builds a [`Field`] (keeps the generated tables short).
pub(crate) const fn f(tag: u32, json: &'static str, ty: Ty, card: Card, zero: bool) -> Field {
    Field {
        tag,
        json,
        ty,
        card,
        zero,
    }
}
