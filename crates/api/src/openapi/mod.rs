//! OpenAPI v3 documents generated from the project's own types: the index served at
//! `/openapi/v3` and one document per group-version (`/openapi/v3/api/v1`,
//! `/openapi/v3/apis/<group>/<version>`).
//!
//! kubectl needs them for `apply`/`create`/`replace` (it probes the PATCH operation of the
//! kind for the `fieldValidation` parameter), for client-side apply (patch metadata in
//! `components.schemas`) and for `kubectl explain`. The schemas come from k8s-openapi's
//! `schemars` support, completed with the patch and list metadata of the facts table
//! (`facts.rs`); the paths come from the resource registry. Documents are generated once per
//! process and cached.
//!
//! The hash in the index (and the `ETag` the server should send) is the upper-case hex SHA-512
//! of the serialized document, as upstream's.
//!
//! The Swagger 2.0 document of `/openapi/v2` ([`swagger`]) is derived from these documents
//! (`v2.rs`) and also encoded as gnostic protobuf (`gnostic.rs`).

mod facts;
mod gnostic;
mod kinds;
mod paths;
mod schemas;
#[cfg(test)]
mod tests;
mod v2;

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::registry::{self, ResourceDef, Subresource};

pub use facts::{FieldFacts, field_facts, type_map_type};
pub use paths::PATCH_TYPES;
pub use v2::{SwaggerDoc, swagger};

/// The Kubernetes version the documents describe.
const INFO_VERSION: &str = "v1.37.0";

/// One generated group-version document.
pub struct GroupVersionDoc {
    pub group: &'static str,
    pub version: &'static str,
    /// The document serialized as JSON: what the hash covers and what to serve. Only this is
    /// kept: the documents as `Value` trees took several times the memory of their JSON.
    pub json: Vec<u8>,
    /// Upper-case hex SHA-512 of `json`.
    pub hash: String,
}

impl GroupVersionDoc {
    /// `api/v1` or `apis/<group>/<version>`: the key in the index.
    pub fn index_key(&self) -> String {
        paths::prefix(self.group, self.version)
            .trim_start_matches('/')
            .to_string()
    }

    /// The document, parsed again from its JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

struct Documents {
    docs: Vec<GroupVersionDoc>,
    /// The component schemas of every document, by name (names are unique across versions).
    schemas: Arc<Map<String, Value>>,
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(generate)
}

fn generate() -> Documents {
    let mut docs = Vec::new();
    let mut all = Map::new();
    for (group, versions) in registry::group_versions() {
        for version in versions {
            let (doc, mut value) = generate_one(group, version);
            if let Some(Value::Object(schemas)) = value.pointer_mut("/components/schemas") {
                for (name, schema) in std::mem::take(schemas) {
                    all.entry(name).or_insert(schema);
                }
            }
            docs.push(doc);
        }
    }
    Documents {
        docs,
        schemas: Arc::new(all),
    }
}

fn generate_one(group: &'static str, version: &'static str) -> (GroupVersionDoc, Value) {
    let defs: Vec<&ResourceDef> = registry::RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    let listed: Vec<_> = defs
        .iter()
        .filter_map(|d| kinds::find(d.group, d.version, d.kind))
        .collect();
    let mut with_subresources = listed.clone();
    for def in &defs {
        for sub in def.subresources {
            let extra = match sub {
                Subresource::Scale => kinds::find("autoscaling", "v1", "Scale"),
                Subresource::Binding => kinds::find("", "v1", "Binding"),
                Subresource::Eviction => kinds::find("policy", "v1", "Eviction"),
                Subresource::Status
                | Subresource::Finalize
                | Subresource::Log
                | Subresource::Exec
                | Subresource::PortForward
                | Subresource::Attach => None,
            };
            if let Some(extra) = extra
                && !with_subresources.iter().any(|k| std::ptr::eq(*k, extra))
            {
                with_subresources.push(extra);
            }
        }
    }
    let document = json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": INFO_VERSION },
        "paths": paths::paths(group, version, &defs),
        "components": {
            "schemas": schemas::components(group, version, &with_subresources, &listed),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "name": "authorization",
                    "in": "header",
                    "description": "Bearer Token authentication",
                },
            },
        },
        "security": [{ "BearerToken": [] }],
    });
    let json = serde_json::to_vec(&document).unwrap_or_default();
    let hash = hex_upper(&Sha512::digest(&json));
    (
        GroupVersionDoc {
            group,
            version,
            json,
            hash,
        },
        document,
    )
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL":
/// "/openapi/v3/api/v1?hash=<HASH>"}, "apis/apps/v1": {...}, ...}}`.
pub fn index() -> Value {
    let paths: Map<String, Value> = documents()
        .docs
        .iter()
        .map(|doc| {
            let key = doc.index_key();
            let url = format!("/openapi/v3/{key}?hash={}", doc.hash);
            (key, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// The document of one group-version (`""` for core) and its hash, `None` when not served.
pub fn group_version(group: &str, version: &str) -> Option<(Value, String)> {
    document(group, version).map(|doc| (doc.value(), doc.hash.clone()))
}

/// The cached document of one group-version, with its serialized bytes: cheaper to serve than
/// [`group_version`].
pub fn document(group: &str, version: &str) -> Option<&'static GroupVersionDoc> {
    documents()
        .docs
        .iter()
        .find(|doc| doc.group == group && doc.version == version)
}

/// Every component schema of every document, by upstream name (`io.k8s.api.core.v1.Pod`).
pub fn schemas() -> Arc<Map<String, Value>> {
    Arc::clone(&documents().schemas)
}

/// The component schema name of a served kind (`io.k8s.api.apps.v1.Deployment`).
pub fn schema_name(group: &str, version: &str, kind: &str) -> Option<String> {
    kinds::find(group, version, kind).map(|k| (k.name)())
}
