//! The Swagger 2.0 document as protobuf: gnostic's `openapi.v2.Document` message
//! (`github.com/google/gnostic/openapiv2/OpenAPIv2.proto`), the only form in which client-go
//! fetches `/openapi/v2` (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).
//!
//! The encoder walks the JSON document the way gnostic's compiler reads one: maps become
//! repeated `Named*` pairs in document order, `x-` keys become `vendor_extension` entries whose
//! value is YAML text (JSON is valid YAML, and kube-openapi parses these with a YAML parser),
//! parameters and responses become the oneof variants their shape selects.

use serde_json::Value;

/// Wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

/// One message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, tag: u64, wire: u64) {
        self.varint((tag << 3) | wire);
    }

    fn bytes(&mut self, tag: u64, bytes: &[u8]) {
        self.key(tag, LEN);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// A proto3 string: omitted when empty.
    fn string(&mut self, tag: u64, value: Option<&Value>) {
        if let Some(s) = value.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            self.bytes(tag, s.as_bytes());
        }
    }

    fn strings(&mut self, tag: u64, value: Option<&Value>) {
        for s in value.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(tag, s.as_bytes());
            }
        }
    }

    fn bool(&mut self, tag: u64, value: Option<&Value>) {
        if value.and_then(Value::as_bool) == Some(true) {
            self.key(tag, VARINT);
            self.varint(1);
        }
    }

    fn int64(&mut self, tag: u64, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_i64).filter(|n| *n != 0) {
            self.key(tag, VARINT);
            self.varint(n as u64);
        }
    }

    fn double(&mut self, tag: u64, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_f64).filter(|n| *n != 0.0) {
            self.key(tag, FIXED64);
            self.0.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// A submessage, written even when empty (proto3 keeps a set message).
    fn message(&mut self, tag: u64, message: Message) {
        self.bytes(tag, &message.0);
    }

    /// A submessage built from `value` when it is present.
    fn optional(&mut self, tag: u64, value: Option<&Value>, encode: fn(&Value) -> Message) {
        if let Some(value) = value {
            self.message(tag, encode(value));
        }
    }

    /// `repeated NamedAny vendor_extension`: the object's `x-` keys.
    fn vendor_extensions(&mut self, tag: u64, object: &Value) {
        for (name, value) in object.as_object().into_iter().flatten() {
            if name.starts_with("x-") {
                self.message(tag, named(name, any(value)));
            }
        }
    }
}

/// A `Named*` pair: `{1: name, 2: value}`.
fn named(name: &str, value: Message) -> Message {
    let mut m = Message::default();
    m.bytes(1, name.as_bytes());
    m.message(2, value);
    m
}

/// A map as repeated `Named*` pairs in field `tag` of a wrapper message.
fn named_map(value: &Value, tag: u64, encode: fn(&Value) -> Message) -> Message {
    let mut m = Message::default();
    for (name, entry) in value.as_object().into_iter().flatten() {
        m.message(tag, named(name, encode(entry)));
    }
    m
}

/// `Any {2: yaml}`.
fn any(value: &Value) -> Message {
    let mut m = Message::default();
    m.bytes(2, serde_json::to_string(value).unwrap_or_default().as_bytes());
    m
}

/// Encodes a Swagger 2.0 document (JSON) as an `openapi.v2.Document` message.
pub(crate) fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    m.string(1, doc.get("swagger"));
    m.optional(2, doc.get("info"), info);
    m.string(3, doc.get("host"));
    m.string(4, doc.get("basePath"));
    m.strings(5, doc.get("schemes"));
    m.strings(6, doc.get("consumes"));
    m.strings(7, doc.get("produces"));
    m.optional(8, doc.get("paths"), paths);
    m.optional(9, doc.get("definitions"), |v| named_map(v, 1, schema));
    m.optional(10, doc.get("parameters"), |v| named_map(v, 1, parameter));
    m.optional(11, doc.get("responses"), |v| named_map(v, 1, response));
    for requirement in doc.get("security").and_then(Value::as_array).into_iter().flatten() {
        m.message(12, security_requirement(requirement));
    }
    m.optional(13, doc.get("securityDefinitions"), |v| {
        named_map(v, 1, security_definitions_item)
    });
    m.vendor_extensions(16, doc);
    m.0
}

fn info(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, v.get("title"));
    m.string(2, v.get("version"));
    m.string(3, v.get("description"));
    m.vendor_extensions(7, v);
    m
}

fn paths(v: &Value) -> Message {
    let mut m = Message::default();
    m.vendor_extensions(1, v);
    for (path, item) in v.as_object().into_iter().flatten() {
        if !path.starts_with("x-") {
            m.message(2, named(path, path_item(item)));
        }
    }
    m
}

fn path_item(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, v.get("$ref"));
    for (tag, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        m.optional(tag, v.get(method), operation);
    }
    for param in v.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        m.message(9, parameters_item(param));
    }
    m.vendor_extensions(10, v);
    m
}

fn operation(v: &Value) -> Message {
    let mut m = Message::default();
    m.strings(1, v.get("tags"));
    m.string(2, v.get("summary"));
    m.string(3, v.get("description"));
    m.string(5, v.get("operationId"));
    m.strings(6, v.get("produces"));
    m.strings(7, v.get("consumes"));
    for param in v.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        m.message(8, parameters_item(param));
    }
    m.optional(9, v.get("responses"), responses);
    m.strings(10, v.get("schemes"));
    m.bool(11, v.get("deprecated"));
    m.vendor_extensions(13, v);
    m
}

/// `ParametersItem`: a `$ref` (`JsonReference`, 2) or a parameter (1).
fn parameters_item(v: &Value) -> Message {
    let mut m = Message::default();
    if v.get("$ref").is_some() {
        m.message(2, json_reference(v));
    } else {
        m.message(1, parameter(v));
    }
    m
}

fn json_reference(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, v.get("$ref"));
    m.string(2, v.get("description"));
    m
}

/// `Parameter`: a body parameter (1) or a non-body one (2) whose sub-schema (header 1,
/// formData 2, query 3, path 4) follows its `in`.
fn parameter(v: &Value) -> Message {
    let mut m = Message::default();
    let location = v.get("in").and_then(Value::as_str).unwrap_or_default();
    if location == "body" {
        let mut body = Message::default();
        body.string(1, v.get("description"));
        body.string(2, v.get("name"));
        body.string(3, v.get("in"));
        body.bool(4, v.get("required"));
        body.optional(5, v.get("schema"), schema);
        body.vendor_extensions(6, v);
        m.message(1, body);
        return m;
    }
    let (variant, with_allow_empty) = match location {
        "header" => (1, false),
        "formData" => (2, true),
        "query" => (3, true),
        _ => (4, false),
    };
    let mut non_body = Message::default();
    non_body.message(variant, sub_schema(v, with_allow_empty));
    m.message(2, non_body);
    m
}

/// The four `*ParameterSubSchema` messages share one layout; query and formData have
/// `allow_empty_value` at 5, which moves every later field up by one.
fn sub_schema(v: &Value, with_allow_empty: bool) -> Message {
    let mut m = Message::default();
    m.bool(1, v.get("required"));
    m.string(2, v.get("in"));
    m.string(3, v.get("description"));
    m.string(4, v.get("name"));
    let shift = u64::from(with_allow_empty);
    if with_allow_empty {
        m.bool(5, v.get("allowEmptyValue"));
    }
    m.string(5 + shift, v.get("type"));
    m.string(6 + shift, v.get("format"));
    m.string(8 + shift, v.get("collectionFormat"));
    m.optional(9 + shift, v.get("default"), any);
    m.double(10 + shift, v.get("maximum"));
    m.bool(11 + shift, v.get("exclusiveMaximum"));
    m.double(12 + shift, v.get("minimum"));
    m.bool(13 + shift, v.get("exclusiveMinimum"));
    m.int64(14 + shift, v.get("maxLength"));
    m.int64(15 + shift, v.get("minLength"));
    m.string(16 + shift, v.get("pattern"));
    m.int64(17 + shift, v.get("maxItems"));
    m.int64(18 + shift, v.get("minItems"));
    m.bool(19 + shift, v.get("uniqueItems"));
    for value in v.get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.message(20 + shift, any(value));
    }
    m.double(21 + shift, v.get("multipleOf"));
    m.vendor_extensions(22 + shift, v);
    m
}

fn responses(v: &Value) -> Message {
    let mut m = Message::default();
    for (code, response_value) in v.as_object().into_iter().flatten() {
        if code.starts_with("x-") {
            continue;
        }
        let mut one_of = Message::default();
        if response_value.get("$ref").is_some() {
            one_of.message(2, json_reference(response_value));
        } else {
            one_of.message(1, response(response_value));
        }
        m.message(1, named(code, one_of));
    }
    m.vendor_extensions(2, v);
    m
}

fn response(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, v.get("description"));
    if let Some(s) = v.get("schema") {
        let mut item = Message::default();
        item.message(1, schema(s));
        m.message(2, item);
    }
    m.vendor_extensions(5, v);
    m
}

/// `Schema`, the deterministic JSON Schema subset of Swagger 2.0.
fn schema(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, v.get("$ref"));
    m.string(2, v.get("format"));
    m.string(3, v.get("title"));
    m.string(4, v.get("description"));
    m.optional(5, v.get("default"), any);
    m.double(6, v.get("multipleOf"));
    m.double(7, v.get("maximum"));
    m.bool(8, v.get("exclusiveMaximum"));
    m.double(9, v.get("minimum"));
    m.bool(10, v.get("exclusiveMinimum"));
    m.int64(11, v.get("maxLength"));
    m.int64(12, v.get("minLength"));
    m.string(13, v.get("pattern"));
    m.int64(14, v.get("maxItems"));
    m.int64(15, v.get("minItems"));
    m.bool(16, v.get("uniqueItems"));
    m.int64(17, v.get("maxProperties"));
    m.int64(18, v.get("minProperties"));
    m.strings(19, v.get("required"));
    for value in v.get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.message(20, any(value));
    }
    match v.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut item = Message::default();
            item.key(2, VARINT);
            item.varint(u64::from(*allowed));
            m.message(21, item);
        }
        Some(additional @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(additional));
            m.message(21, item);
        }
        _ => {}
    }
    match v.get("type") {
        Some(single @ Value::String(_)) => {
            let mut item = Message::default();
            item.string(1, Some(single));
            m.message(22, item);
        }
        Some(list @ Value::Array(_)) => {
            let mut item = Message::default();
            item.strings(1, Some(list));
            m.message(22, item);
        }
        _ => {}
    }
    match v.get("items") {
        Some(Value::Array(list)) => {
            let mut item = Message::default();
            for s in list {
                item.message(1, schema(s));
            }
            m.message(23, item);
        }
        Some(single @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(single));
            m.message(23, item);
        }
        _ => {}
    }
    for s in v.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        m.message(24, schema(s));
    }
    m.optional(25, v.get("properties"), |p| named_map(p, 1, schema));
    m.string(26, v.get("discriminator"));
    m.bool(27, v.get("readOnly"));
    m.optional(30, v.get("example"), any);
    m.vendor_extensions(31, v);
    m
}

fn security_requirement(v: &Value) -> Message {
    let mut m = Message::default();
    for (name, scopes) in v.as_object().into_iter().flatten() {
        let mut array = Message::default();
        array.strings(1, Some(scopes));
        m.message(1, named(name, array));
    }
    m
}

/// `SecurityDefinitionsItem`: basic (1), apiKey (2); the OAuth2 flows are not served.
fn security_definitions_item(v: &Value) -> Message {
    let mut m = Message::default();
    let mut scheme = Message::default();
    match v.get("type").and_then(Value::as_str) {
        Some("basic") => {
            scheme.string(1, v.get("type"));
            scheme.string(2, v.get("description"));
            scheme.vendor_extensions(3, v);
            m.message(1, scheme);
        }
        _ => {
            scheme.string(1, v.get("type"));
            scheme.string(2, v.get("name"));
            scheme.string(3, v.get("in"));
            scheme.string(4, v.get("description"));
            scheme.vendor_extensions(5, v);
            m.message(2, scheme);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    //! Decodes the encoding with prost structs declaring the gnostic fields kubectl reads (a
    //! oneof is on the wire what optional fields with its tags are).

    use prost::Message as _;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Document {
        #[prost(string, tag = "1")]
        swagger: String,
        #[prost(message, optional, tag = "2")]
        info: Option<Info>,
        #[prost(message, optional, tag = "8")]
        paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        definitions: Option<Definitions>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Info {
        #[prost(string, tag = "1")]
        title: String,
        #[prost(string, tag = "2")]
        version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Paths {
        #[prost(message, repeated, tag = "2")]
        path: Vec<NamedPathItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct NamedPathItem {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<PathItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct PathItem {
        #[prost(message, optional, tag = "8")]
        patch: Option<Operation>,
        #[prost(message, repeated, tag = "9")]
        parameters: Vec<ParametersItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Operation {
        #[prost(string, tag = "5")]
        operation_id: String,
        #[prost(string, repeated, tag = "7")]
        consumes: Vec<String>,
        #[prost(message, repeated, tag = "8")]
        parameters: Vec<ParametersItem>,
        #[prost(message, repeated, tag = "13")]
        vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct ParametersItem {
        #[prost(message, optional, tag = "1")]
        parameter: Option<Parameter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Parameter {
        #[prost(message, optional, tag = "1")]
        body: Option<BodyParameter>,
        #[prost(message, optional, tag = "2")]
        non_body: Option<NonBodyParameter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct BodyParameter {
        #[prost(string, tag = "2")]
        name: String,
        #[prost(bool, tag = "4")]
        required: bool,
        #[prost(message, optional, tag = "5")]
        schema: Option<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct NonBodyParameter {
        #[prost(message, optional, tag = "3")]
        query: Option<QuerySubSchema>,
        #[prost(message, optional, tag = "4")]
        path: Option<PathSubSchema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct QuerySubSchema {
        #[prost(string, tag = "4")]
        name: String,
        #[prost(string, tag = "6")]
        r#type: String,
        #[prost(bool, tag = "20")]
        unique_items: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct PathSubSchema {
        #[prost(bool, tag = "1")]
        required: bool,
        #[prost(string, tag = "4")]
        name: String,
        #[prost(string, tag = "5")]
        r#type: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Definitions {
        #[prost(message, repeated, tag = "1")]
        additional_properties: Vec<NamedSchema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct NamedSchema {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Schema {
        #[prost(string, tag = "1")]
        r#ref: String,
        #[prost(string, tag = "2")]
        format: String,
        #[prost(string, tag = "4")]
        description: String,
        #[prost(string, repeated, tag = "19")]
        required: Vec<String>,
        #[prost(message, optional, tag = "21")]
        additional_properties: Option<AdditionalPropertiesItem>,
        #[prost(message, optional, tag = "22")]
        r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        items: Option<ItemsItem>,
        #[prost(message, optional, tag = "25")]
        properties: Option<Definitions>,
        #[prost(message, repeated, tag = "31")]
        vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct AdditionalPropertiesItem {
        #[prost(message, optional, boxed, tag = "1")]
        schema: Option<Box<Schema>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        value: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        schema: Vec<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct NamedAny {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Any {
        #[prost(string, tag = "2")]
        yaml: String,
    }

    fn extension<'a>(list: &'a [NamedAny], name: &str) -> &'a str {
        let found = list.iter().find(|e| e.name == name).expect("extension");
        &found.value.as_ref().expect("value").yaml
    }

    #[test]
    fn document_decodes_as_gnostic() {
        let swagger = super::super::swagger();
        let doc = Document::decode(swagger.protobuf.as_slice()).expect("decodes");
        assert_eq!(doc.swagger, "2.0");
        assert_eq!(doc.info.expect("info").title, "Kubernetes");

        let definitions = doc.definitions.expect("definitions").additional_properties;
        let schema = |name: &str| {
            definitions
                .iter()
                .find(|d| d.name == name)
                .and_then(|d| d.value.clone())
                .unwrap_or_else(|| panic!("no definition {name}"))
        };
        let pod = schema("io.k8s.api.core.v1.Pod");
        assert_eq!(
            extension(&pod.vendor_extension, "x-kubernetes-group-version-kind"),
            r#"[{"group":"","kind":"Pod","version":"v1"}]"#
        );
        assert_eq!(pod.r#type.expect("type").value, ["object"]);
        let properties = pod.properties.expect("properties").additional_properties;
        let spec = properties
            .iter()
            .find(|p| p.name == "spec")
            .and_then(|p| p.value.clone());
        assert_eq!(spec.expect("spec").r#ref, "#/definitions/io.k8s.api.core.v1.PodSpec");
        let pod_spec = schema("io.k8s.api.core.v1.PodSpec");
        let properties = pod_spec.properties.expect("properties").additional_properties;
        let containers = properties
            .iter()
            .find(|p| p.name == "containers")
            .and_then(|p| p.value.clone())
            .expect("containers");
        assert_eq!(containers.required, Vec::<String>::new());
        assert_eq!(
            containers.items.expect("items").schema[0].r#ref,
            "#/definitions/io.k8s.api.core.v1.Container"
        );
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-merge-key"),
            r#""name""#
        );
        let node_selector = properties
            .iter()
            .find(|p| p.name == "nodeSelector")
            .and_then(|p| p.value.clone())
            .expect("nodeSelector");
        let value_schema = node_selector
            .additional_properties
            .and_then(|a| a.schema)
            .expect("schema");
        assert_eq!(value_schema.r#type.expect("type").value, ["string"]);

        let paths = doc.paths.expect("paths").path;
        let item = paths
            .iter()
            .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .and_then(|p| p.value.clone())
            .expect("deployment path");
        let path_param = item.parameters[0]
            .parameter
            .clone()
            .and_then(|p| p.non_body)
            .and_then(|n| n.path);
        assert_eq!(
            path_param.map(|p| (p.name, p.required, p.r#type)),
            Some(("name".to_string(), true, "string".to_string()))
        );
        let patch = item.patch.expect("patch");
        assert_eq!(patch.operation_id, "patchAppsV1NamespacedDeployment");
        assert!(
            patch
                .consumes
                .contains(&"application/strategic-merge-patch+json".to_string())
        );
        assert_eq!(
            extension(&patch.vendor_extension, "x-kubernetes-group-version-kind"),
            r#"{"group":"apps","kind":"Deployment","version":"v1"}"#
        );
        let body = patch.parameters[0]
            .parameter
            .clone()
            .and_then(|p| p.body)
            .expect("body");
        assert_eq!((body.name.as_str(), body.required), ("body", true));
        let queries: Vec<QuerySubSchema> = patch
            .parameters
            .iter()
            .filter_map(|p| p.parameter.clone().and_then(|p| p.non_body).and_then(|n| n.query))
            .collect();
        assert!(
            queries
                .iter()
                .any(|q| q.name == "fieldValidation" && q.r#type == "string" && q.unique_items)
        );
    }
}
