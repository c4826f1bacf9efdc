//! `components.schemas` of one group-version document: the schemas k8s-openapi generates for
//! the served kinds (OpenAPI 3.0 dialect, `$ref`s to `#/components/schemas/<upstream name>`),
//! completed with what upstream's documents carry and k8s-openapi's schemas lack: the patch and
//! list metadata extensions (from [`super::facts`]), `x-kubernetes-group-version-kind` on the
//! kinds, and the list kinds (`PodList`, ...).

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::facts;
use super::kinds::{self, KindSchema};

/// Prefix of every schema reference.
pub(crate) const REF_PREFIX: &str = "#/components/schemas/";

/// A `$ref` schema to a component.
pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";

/// The schema name of a list kind: `io.k8s.api.core.v1.PodList`.
pub(crate) fn list_name(kind: &KindSchema) -> String {
    format!("{}List", (kind.name)())
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// Builds the components of a document for `group`/`version` serving `kinds` (with list kinds
/// for `listed`).
pub(crate) fn components(
    group: &str,
    version: &str,
    kinds: &[&'static KindSchema],
    listed: &[&'static KindSchema],
) -> Map<String, Value> {
    let mut generator: SchemaGenerator = SchemaSettings::openapi3().into_generator();
    for kind in kinds {
        (kind.generate)(&mut generator);
    }
    for meta_type in [
        subschema::<meta::DeleteOptions>,
        subschema::<meta::Status>,
        subschema::<meta::Patch>,
        subschema::<meta::WatchEvent<k8s_openapi::api::core::v1::Pod>>,
        subschema::<meta::APIResourceList>,
        subschema::<meta::ListMeta>,
    ] {
        meta_type(&mut generator);
    }
    let mut schemas = generator.take_definitions(true);

    for kind in listed {
        schemas.insert(list_name(kind), list_schema(kind));
    }
    for (name, schema) in schemas.iter_mut() {
        facts::annotate(name, schema);
    }
    for kind in kinds::KINDS {
        let name = (kind.name)();
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(kind.group, kind.version, kind.kind)]),
            );
            drop_required_metadata(schema);
        }
    }
    for (name, kind) in [(DELETE_OPTIONS, "DeleteOptions"), (WATCH_EVENT, "WatchEvent")] {
        let mut list = vec![gvk("", "v1", kind)];
        if !group.is_empty() {
            list.push(gvk(group, version, kind));
        }
        set_gvks(&mut schemas, name, list);
    }
    set_gvks(&mut schemas, STATUS, vec![gvk("", "v1", "Status")]);
    schemas
}

fn set_gvks(schemas: &mut Map<String, Value>, name: &str, gvks: Vec<Value>) {
    if let Some(Value::Object(schema)) = schemas.get_mut(name) {
        schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
    }
}

fn subschema<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// k8s-openapi marks `metadata` required on every kind (its types need it); upstream's
/// schemas do not, and `kubectl explain` would print it as `-required-`.
fn drop_required_metadata(schema: &mut Map<String, Value>) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    required.retain(|r| r != "metadata");
    if required.is_empty() {
        schema.remove("required");
    }
}

/// The schema of `<Kind>List`, shaped as upstream's list schemas.
fn list_schema(kind: &KindSchema) -> Value {
    let list_kind = format!("{}List", kind.kind);
    json!({
        "description": format!("{list_kind} is a list of {} objects.", kind.kind),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {} objects.", kind.kind),
                "type": "array",
                "items": reference(&(kind.name)()),
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.",
                "type": "string",
            },
            "metadata": {
                "allOf": [reference(LIST_META)],
                "description": "Standard list metadata.",
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk(kind.group, kind.version, &list_kind)],
    })
}
