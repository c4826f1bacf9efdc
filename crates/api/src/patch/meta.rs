//! Patch metadata looked up in OpenAPI schemas, the way upstream's `PatchMetaFromOpenAPIV3`
//! does: a field's `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` (and list and
//! map types) are read from its property schema; the field's value is described by the schema
//! the property points to (through `allOf` and `$ref`), list items by `items`.
//!
//! The schemas of the served kinds are the ones published in the OpenAPI documents
//! ([`crate::openapi`]), so what the server merges by is exactly what kubectl computes its
//! client-side apply patches with.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::openapi;
use crate::registry::ResourceDef;

/// The patch metadata of one kind: the component schemas and the kind's schema name.
#[derive(Clone, Default)]
pub struct PatchMeta {
    schemas: Arc<Map<String, Value>>,
    root: Option<String>,
}

impl std::fmt::Debug for PatchMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchMeta")
            .field("root", &self.root)
            .field("schemas", &self.schemas.len())
            .finish()
    }
}

/// The patch metadata of a served kind, from the generated OpenAPI schemas. A kind without a
/// schema gets [`PatchMeta::none`].
pub fn patch_meta(def: &ResourceDef) -> PatchMeta {
    patch_meta_for_kind(def.group, def.version, def.kind)
}

/// The patch metadata of a kind by group, version and kind (e.g. `autoscaling`, `v1`, `Scale`
/// for the `scale` subresource).
pub fn patch_meta_for_kind(group: &str, version: &str, kind: &str) -> PatchMeta {
    match openapi::schema_name(group, version, kind) {
        Some(name) => PatchMeta::new(openapi::schemas(), name),
        None => PatchMeta::none(),
    }
}

impl PatchMeta {
    /// Metadata from `schemas` (component schemas by name, `$ref`s as
    /// `#/components/schemas/<name>`) for the schema named `root`.
    pub fn new(schemas: Arc<Map<String, Value>>, root: impl Into<String>) -> Self {
        Self {
            schemas,
            root: Some(root.into()),
        }
    }

    /// No metadata: maps merge, every list is replaced.
    pub fn none() -> Self {
        Self::default()
    }

    /// The schema name of the kind, if known.
    pub fn root_name(&self) -> Option<&str> {
        self.root.as_deref()
    }

    pub(crate) fn root(&self) -> Node<'_> {
        let schema = self.root.as_deref().and_then(|name| self.schemas.get(name));
        Node {
            schemas: &self.schemas,
            schema: schema.and_then(|s| resolve(&self.schemas, s)),
        }
    }

    /// The metadata of the field at `path` (field names from the object's root; lists are
    /// stepped through, so `["spec", "containers", "ports"]` is the ports of a container).
    pub fn lookup(&self, path: &[&str]) -> FieldMeta<'_> {
        let mut node = self.root();
        let mut meta = FieldMeta::default();
        for (i, key) in path.iter().enumerate() {
            let (child, field) = node.field(key);
            meta = field;
            node = if i + 1 < path.len() { child.items() } else { child };
        }
        meta
    }
}

/// The patch metadata of one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMeta<'a> {
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub patch_strategy: Option<&'a str>,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<&'a str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'a str>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<&'a str>,
    /// `x-kubernetes-map-type` of the field or of its type: `atomic` or `granular`.
    pub map_type: Option<&'a str>,
}

impl FieldMeta<'_> {
    /// The strategies in `patch_strategy`.
    pub fn strategies(&self) -> impl Iterator<Item = &str> {
        self.patch_strategy
            .into_iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Whether the list is merged (rather than replaced) by strategic merge patch.
    pub fn merges(&self) -> bool {
        self.strategies().any(|s| s == "merge")
    }

    /// Whether the field has the `retainKeys` strategy.
    pub fn retains_keys(&self) -> bool {
        self.strategies().any(|s| s == "retainKeys")
    }
}

/// A position in the schemas: the (resolved) schema describing a value, if known.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    schemas: &'a Map<String, Value>,
    schema: Option<&'a Value>,
}

/// Follows `allOf` (its first entry) and `$ref`s to the schema they stand for.
fn resolve<'a>(schemas: &'a Map<String, Value>, mut schema: &'a Value) -> Option<&'a Value> {
    // Bounded: a reference cycle of pure references would otherwise loop.
    for _ in 0..16 {
        if let Some(first) = schema.get("allOf").and_then(Value::as_array).and_then(|a| a.first()) {
            schema = first;
            continue;
        }
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                schema = schemas.get(name)?;
            }
            None => return Some(schema),
        }
    }
    None
}

fn str_ext<'a>(schema: &'a Value, key: &str) -> Option<&'a str> {
    schema.get(key).and_then(Value::as_str)
}

impl<'a> Node<'a> {
    /// The field `key` of an object: its metadata and the node of its value. Unknown fields
    /// (and values of maps) have no metadata.
    pub(crate) fn field(&self, key: &str) -> (Node<'a>, FieldMeta<'a>) {
        let Some(schema) = self.schema else {
            return (self.unknown(), FieldMeta::default());
        };
        if let Some(property) = schema.get("properties").and_then(|p| p.get(key)) {
            let value = resolve(self.schemas, property);
            let node = Node {
                schemas: self.schemas,
                schema: value,
            };
            let map_type = str_ext(property, "x-kubernetes-map-type")
                .or_else(|| value.and_then(|v| str_ext(v, "x-kubernetes-map-type")));
            let meta = FieldMeta {
                patch_strategy: str_ext(property, "x-kubernetes-patch-strategy"),
                merge_key: str_ext(property, "x-kubernetes-patch-merge-key"),
                list_type: str_ext(property, "x-kubernetes-list-type"),
                list_map_keys: property
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default(),
                map_type,
            };
            return (node, meta);
        }
        let values = schema
            .get("additionalProperties")
            .filter(|v| v.is_object())
            .and_then(|v| resolve(self.schemas, v));
        let node = Node {
            schemas: self.schemas,
            schema: values,
        };
        (node, FieldMeta::default())
    }

    /// The node of a list's items (the node itself when it is not a list schema).
    pub(crate) fn items(&self) -> Node<'a> {
        match self.schema.and_then(|s| s.get("items")) {
            Some(items) => Node {
                schemas: self.schemas,
                schema: resolve(self.schemas, items),
            },
            None => *self,
        }
    }

    /// Whether the schema declares `key` as a property (a struct field, not a map entry).
    pub(crate) fn declares(&self, key: &str) -> bool {
        self.schema
            .and_then(|s| s.get("properties"))
            .is_some_and(|p| p.get(key).is_some())
    }

    fn unknown(&self) -> Node<'a> {
        Node {
            schemas: self.schemas,
            schema: None,
        }
    }
}
