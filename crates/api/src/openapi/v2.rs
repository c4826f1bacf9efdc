//! The Swagger 2.0 document served at `/openapi/v2`, derived from the OpenAPI v3 documents (one
//! source of schemas and paths): every group-version's paths merged into one document,
//! `components.schemas` become `definitions`, request bodies become `in: body` parameters,
//! parameter schemas are flattened into the parameter, response contents into `schema` plus
//! the operation's `produces`.
//!
//! kubectl reads it, in protobuf form only (see [`super::gnostic`]), when it validates
//! client-side (`kubectl edit`, `--validate` against a server without the v3 query-parameter
//! support) and for `kubectl explain --output=plaintext-openapiv2`.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::schemas::REF_PREFIX;
use super::{INFO_VERSION, documents, hex_upper};

/// Where v2 schema references point.
const DEFINITIONS_PREFIX: &str = "#/definitions/";

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

/// The Swagger 2.0 document in its two encodings.
pub struct SwaggerDoc {
    /// The document as JSON.
    pub json: Vec<u8>,
    /// The document as a gnostic `openapi.v2.Document` protobuf message.
    pub protobuf: Vec<u8>,
    /// Upper-case hex SHA-512 of `json`: the `ETag` of both encodings, as upstream's.
    pub etag: String,
}

/// The cached Swagger 2.0 document.
pub fn swagger() -> &'static SwaggerDoc {
    static DOC: OnceLock<SwaggerDoc> = OnceLock::new();
    DOC.get_or_init(|| {
        let document = document();
        let json = serde_json::to_vec(&document).unwrap_or_default();
        let etag = hex_upper(&Sha512::digest(&json));
        SwaggerDoc {
            protobuf: super::gnostic::encode_document(&document),
            json,
            etag,
        }
    })
}

/// Builds the Swagger 2.0 document from the v3 documents.
pub(crate) fn document() -> Value {
    let docs = documents();
    let mut paths = Map::new();
    for doc in &docs.docs {
        if let Some(Value::Object(v3_paths)) = doc.value().get("paths") {
            for (path, item) in v3_paths {
                paths.insert(path.clone(), path_item(item));
            }
        }
    }
    let mut definitions: Map<String, Value> = docs
        .schemas
        .iter()
        .map(|(name, schema)| (name.clone(), schema_v2(schema)))
        .collect();
    // Upstream's v2 gives the two string-or-number types a type: kubectl's schema parser
    // treats a schema with neither type nor properties as arbitrary (`explain` prints `<>`).
    for (name, format) in [
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", None),
        ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", Some("int-or-string")),
    ] {
        if let Some(Value::Object(schema)) = definitions.get_mut(name) {
            schema.entry("type").or_insert_with(|| json!("string"));
            if let Some(format) = format {
                schema.entry("format").or_insert_with(|| json!(format));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": INFO_VERSION },
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
                "description": "Bearer Token authentication",
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

/// A v3 schema in v2 form: references into `#/definitions/`, and a lone `allOf: [$ref]` (how
/// v3 puts a description next to a reference) folded into a plain `$ref`, as upstream's v2.
pub(crate) fn schema_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        out.insert(key.clone(), Value::String(definition_ref(reference)));
                    }
                    ("allOf", Value::Array(all)) if all.len() == 1 && all[0].get("$ref").is_some() => {
                        if let Value::Object(inner) = schema_v2(&all[0]) {
                            for (k, v) in inner {
                                out.entry(k).or_insert(v);
                            }
                        }
                    }
                    ("nullable", _) => {}
                    _ => {
                        out.insert(key.clone(), schema_v2(value));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(schema_v2).collect()),
        other => other.clone(),
    }
}

fn definition_ref(reference: &str) -> String {
    match reference.strip_prefix(REF_PREFIX) {
        Some(name) => format!("{DEFINITIONS_PREFIX}{name}"),
        None => reference.to_string(),
    }
}

fn path_item(item: &Value) -> Value {
    let mut out = Map::new();
    if let Some(Value::Array(params)) = item.get("parameters") {
        out.insert("parameters".into(), params.iter().map(parameter).collect());
    }
    for method in METHODS {
        if let Some(op) = item.get(*method) {
            out.insert((*method).to_string(), operation(op));
        }
    }
    Value::Object(out)
}

fn operation(op: &Value) -> Value {
    let mut out = Map::new();
    for key in ["description", "operationId", "tags", "deprecated"] {
        if let Some(value) = op.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    let mut parameters: Vec<Value> = Vec::new();
    if let Some(body) = op.get("requestBody") {
        let content = body.get("content").and_then(Value::as_object);
        if let Some(content) = content {
            out.insert("consumes".into(), content.keys().cloned().collect());
        }
        let schema = content
            .and_then(|c| c.values().next())
            .and_then(|media| media.get("schema"))
            .map(schema_v2)
            .unwrap_or_else(|| json!({}));
        parameters.push(json!({
            "name": "body",
            "in": "body",
            "required": body.get("required").and_then(Value::as_bool).unwrap_or(false),
            "schema": schema,
        }));
    }
    if let Some(Value::Array(params)) = op.get("parameters") {
        parameters.extend(params.iter().map(parameter));
    }
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    let mut produces: Vec<Value> = Vec::new();
    let mut responses = Map::new();
    if let Some(Value::Object(v3)) = op.get("responses") {
        for (code, response) in v3 {
            let mut v2 = Map::new();
            v2.insert(
                "description".into(),
                response.get("description").cloned().unwrap_or_else(|| json!("")),
            );
            if let Some(Value::Object(content)) = response.get("content") {
                for media in content.keys() {
                    let media = Value::String(media.clone());
                    if !produces.contains(&media) {
                        produces.push(media);
                    }
                }
                if let Some(schema) = content.values().next().and_then(|m| m.get("schema")) {
                    v2.insert("schema".into(), schema_v2(schema));
                }
            }
            responses.insert(code.clone(), Value::Object(v2));
        }
    }
    if !produces.is_empty() {
        out.insert("produces".into(), Value::Array(produces));
    }
    out.insert("responses".into(), Value::Object(responses));
    for (key, value) in op.as_object().into_iter().flatten() {
        if key.starts_with("x-") {
            out.insert(key.clone(), value.clone());
        }
    }
    Value::Object(out)
}

/// A v3 parameter (`schema: {type, uniqueItems}`) in v2 form (those on the parameter itself).
fn parameter(param: &Value) -> Value {
    let mut out = Map::new();
    for (key, value) in param.as_object().into_iter().flatten() {
        match (key.as_str(), value) {
            ("schema", Value::Object(schema)) => {
                for (k, v) in schema {
                    out.insert(k.clone(), schema_v2(v));
                }
            }
            ("$ref", Value::String(reference)) => {
                out.insert(key.clone(), Value::String(definition_ref(reference)));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_document_shape() {
        let doc = document();
        assert_eq!(doc["swagger"], "2.0");
        let int_or_string = &doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(
            (&int_or_string["type"], &int_or_string["format"]),
            (&json!("string"), &json!("int-or-string"))
        );
        let pod = &doc["definitions"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["properties"]["spec"],
            json!({
                "$ref": "#/definitions/io.k8s.api.core.v1.PodSpec",
                "description": "Specification of the desired behavior of the pod. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
            })
        );
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        // Every reference resolves within the document.
        let text = serde_json::to_string(&doc).unwrap();
        assert!(!text.contains(REF_PREFIX));
        for piece in text.split(&format!("\"{DEFINITIONS_PREFIX}")).skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(doc["definitions"].get(name).is_some(), "dangling reference {name}");
        }
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let params = patch["parameters"].as_array().unwrap();
        assert_eq!(params[0]["in"], "body");
        assert_eq!(
            params[0]["schema"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
        );
        let validation = params.iter().find(|p| p["name"] == "fieldValidation").unwrap();
        assert_eq!(validation["in"], "query");
        assert_eq!(validation["type"], "string");
        assert!(
            patch["consumes"]
                .as_array()
                .unwrap()
                .contains(&json!("application/strategic-merge-patch+json"))
        );
        assert_eq!(
            patch["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        assert!(
            patch["produces"]
                .as_array()
                .unwrap()
                .contains(&json!("application/json"))
        );
        let swagger = swagger();
        assert_eq!(swagger.etag, hex_upper(&Sha512::digest(&swagger.json)));
    }
}
