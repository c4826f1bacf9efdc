//! Generates `schema.rs` and checks that the committed copy is current.
//!
//! Sources: the prost definitions of the `k8s-pb` 0.9.0 crate (a dev-dependency, so its source
//! is in `$CARGO_HOME/registry/src/*/k8s-pb-0.9.0`) for message layouts (tags, types,
//! cardinality); `k8s-openapi`'s JSON schemas (`schemars`) for the JSON property names, matched
//! to proto fields by their letters and digits (`clusterIPs` ~ `cluster_ips`, `$ref` ~ `ref`);
//! `emit_zero.txt` for the fields whose zero value Go writes. A proto field of message type
//! with no JSON property whose fields all are properties of the enclosing type is a Go struct
//! embedded with `json:",inline"` (`Volume.volumeSource`, `Probe.handler`, ...).
//!
//! `UPDATE_PROTOBUF_SCHEMA=1 cargo test -p api protobuf::generate` rewrites `schema.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use k8s_openapi::api::{
    apps, authorization, autoscaling, batch, coordination, core, discovery, events, networking, policy, rbac,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

const SCHEMA_FILE: &str = "src/protobuf/schema.rs";
const K8S_PB: &str = "k8s-pb-0.9.0";

/// A kind a body may carry: envelope apiVersion and kind, OpenAPI name, schema generator.
struct RootKind {
    api_version: &'static str,
    kind: &'static str,
    name: fn() -> String,
    generate: fn(&mut SchemaGenerator),
}

fn root<T: k8s_openapi::Resource + JsonSchema>() -> RootKind {
    RootKind {
        api_version: T::API_VERSION,
        kind: T::KIND,
        name: || T::schema_name().into_owned(),
        generate: |g| {
            g.subschema_for::<T>();
        },
    }
}

/// Every kind in the registry plus the kinds its subresources take.
fn roots() -> Vec<RootKind> {
    vec![
        root::<core::v1::Namespace>(),
        root::<core::v1::Pod>(),
        root::<core::v1::Service>(),
        root::<core::v1::Endpoints>(),
        root::<core::v1::ConfigMap>(),
        root::<core::v1::Secret>(),
        root::<core::v1::Node>(),
        root::<core::v1::Event>(),
        root::<core::v1::ServiceAccount>(),
        root::<core::v1::PersistentVolume>(),
        root::<core::v1::PersistentVolumeClaim>(),
        root::<core::v1::ResourceQuota>(),
        root::<core::v1::LimitRange>(),
        root::<core::v1::Binding>(),
        root::<apps::v1::Deployment>(),
        root::<apps::v1::ReplicaSet>(),
        root::<apps::v1::StatefulSet>(),
        root::<apps::v1::DaemonSet>(),
        root::<apps::v1::ControllerRevision>(),
        root::<batch::v1::Job>(),
        root::<batch::v1::CronJob>(),
        root::<coordination::v1::Lease>(),
        root::<discovery::v1::EndpointSlice>(),
        root::<events::v1::Event>(),
        root::<autoscaling::v1::HorizontalPodAutoscaler>(),
        root::<autoscaling::v1::Scale>(),
        root::<autoscaling::v2::HorizontalPodAutoscaler>(),
        root::<networking::v1::Ingress>(),
        root::<networking::v1::NetworkPolicy>(),
        root::<rbac::v1::Role>(),
        root::<rbac::v1::RoleBinding>(),
        root::<rbac::v1::ClusterRole>(),
        root::<rbac::v1::ClusterRoleBinding>(),
        root::<apiextensions::v1::CustomResourceDefinition>(),
        root::<policy::v1::Eviction>(),
        root::<authorization::v1::SelfSubjectAccessReview>(),
        root::<authorization::v1::SelfSubjectRulesReview>(),
    ]
}

/// Messages with their own JSON form, by OpenAPI name.
const SPECIALS: &[(&str, &str)] = &[
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", "Time"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime", "MicroTime"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Duration", "Duration"),
    ("io.k8s.apimachinery.pkg.api.resource.Quantity", "Quantity"),
    ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "IntOrString"),
    ("io.k8s.apimachinery.pkg.runtime.RawExtension", "Raw"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1", "Raw"),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON", "Raw"),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "PropsOrArray",
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "PropsOrBool",
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
        "PropsOrStringArray",
    ),
];

/// Letters and digits, lower-cased: how proto, prost and JSON spellings of a name are matched.
fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A prost struct: its module (`["api", "apps", "v1"]`) and name.
type PbKey = (Vec<String>, String);

#[derive(Clone, Debug)]
enum PbTy {
    Scalar(&'static str),
    Msg(PbKey),
}

#[derive(Clone, Debug)]
struct PbField {
    tag: u32,
    name: String,
    ty: PbTy,
    card: &'static str,
}

/// The `k8s-pb` source directory, if the crate has been fetched.
fn k8s_pb_source() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(K8S_PB).join("src"))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.pop()
}

fn mod_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            mod_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "mod.rs") {
            out.push(path);
        }
    }
}

fn scalar_kind(kind: &str) -> &'static str {
    match kind {
        "string" => "Str",
        "bytes" => "Bytes",
        "bool" => "Bool",
        "int32" => "I32",
        "int64" => "I64",
        "double" => "F64",
        other => panic!("unsupported prost field kind {other:?}"),
    }
}

/// Resolves a prost type path (`super::super::core::v1::PodSpec`, `PodSpec`) from `module`.
fn resolve(module: &[String], path: &str) -> PbKey {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let supers = segments.iter().take_while(|s| **s == "super").count();
    let mut target: Vec<String> = module[..module.len() - supers].to_vec();
    let rest = &segments[supers..];
    target.extend(rest[..rest.len() - 1].iter().map(|s| s.to_string()));
    (target, rest[rest.len() - 1].to_string())
}

/// The innermost type path of a prost field type (inside Option/Vec/Box/BTreeMap).
fn inner_type(ty: &str) -> String {
    let mut ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    ty = ty.replace(",>", ">").trim_end_matches(',').to_string();
    for wrapper in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
    ] {
        while let Some(rest) = ty.strip_prefix(wrapper) {
            ty = rest.strip_suffix('>').unwrap_or(rest).to_string();
        }
    }
    if let Some(rest) = ty.strip_prefix("::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,") {
        ty = rest.strip_suffix('>').unwrap_or(rest).to_string();
    }
    ty
}

/// Parses one `#[prost(...)]` attribute and the field declaration after it.
fn parse_field(module: &[String], attr: &str, decl: &str) -> PbField {
    let tag = attr
        .split("tag = \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no tag in {attr}"));
    let decl = decl.trim().strip_prefix("pub ").unwrap_or(decl);
    let (name, ty) = decl.split_once(':').unwrap_or_else(|| panic!("bad field {decl}"));
    let name = name.trim().trim_start_matches("r#").to_string();
    let (card, kind) = if let Some(rest) = attr.strip_prefix("btree_map = \"string, ") {
        ("Map", rest.split('"').next().unwrap_or_default())
    } else {
        let kind = attr.split([',', ' ']).next().unwrap_or_default();
        let card = if attr.contains("repeated") { "Many" } else { "One" };
        (card, kind)
    };
    let ty = match kind {
        "message" => PbTy::Msg(resolve(module, &inner_type(ty))),
        other => PbTy::Scalar(scalar_kind(other)),
    };
    PbField { tag, name, ty, card }
}

/// Every prost struct under `src` with its fields.
fn parse_k8s_pb(src: &Path) -> BTreeMap<PbKey, Vec<PbField>> {
    let mut files = Vec::new();
    mod_files(src, &mut files);
    let mut structs = BTreeMap::new();
    for file in files {
        let rel = file
            .parent()
            .and_then(|p| p.strip_prefix(src).ok())
            .unwrap_or(Path::new(""));
        let module: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut current: Option<(String, Vec<PbField>)> = None;
        let mut attr: Option<String> = None;
        let mut decl = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("pub struct ").and_then(|l| l.strip_suffix(" {}")) {
                structs.insert((module.clone(), name.to_string()), Vec::new());
                continue;
            }
            if let Some(name) = line.strip_prefix("pub struct ").and_then(|l| l.strip_suffix(" {")) {
                current = Some((name.to_string(), Vec::new()));
                continue;
            }
            if current.is_none() {
                continue;
            }
            if line == "}" {
                let (name, fields) = current.take().unwrap_or_default();
                structs.insert((module.clone(), name), fields);
                continue;
            }
            let Some((_, fields)) = current.as_mut() else { continue };
            let trimmed = line.trim();
            if let Some(a) = trimmed.strip_prefix("#[prost(").and_then(|a| a.strip_suffix(")]")) {
                attr = Some(a.to_string());
                decl.clear();
                continue;
            }
            if attr.is_some() && !trimmed.starts_with("///") {
                decl.push_str(trimmed);
                let balanced = decl.matches('<').count() == decl.matches('>').count();
                if balanced && decl.ends_with(',') {
                    let a = attr.take().unwrap_or_default();
                    fields.push(parse_field(&module, &a, &decl));
                }
            }
        }
    }
    structs
}

/// The OpenAPI prefix of a k8s-pb module: `io.k8s.api.apps.v1`.
fn prefix(module: &[String]) -> String {
    format!(
        "io.k8s.{}",
        module
            .join(".")
            .replace("apiextensions_apiserver", "apiextensions-apiserver")
    )
}

/// The k8s-pb module of an OpenAPI name's prefix.
fn module_of(name: &str) -> (Vec<String>, String) {
    let rest = name.strip_prefix("io.k8s.").unwrap_or(name);
    let (module, short) = rest.rsplit_once('.').unwrap_or(("", rest));
    let module = module.replace("apiextensions-apiserver", "apiextensions_apiserver");
    (module.split('.').map(str::to_string).collect(), short.to_string())
}

struct OutField {
    tag: u32,
    json: String,
    pb_name: String,
    ty: PbTy,
    card: &'static str,
    zero: bool,
}

struct OutMessage {
    name: String,
    special: &'static str,
    fields: Vec<OutField>,
    /// JSON properties required by the OpenAPI schema (for the report).
    required: BTreeSet<String>,
}

/// The generated source and a report of what needed attention.
struct Generated {
    text: String,
    report: Vec<String>,
}

fn properties(
    defs: &serde_json::Map<String, Value>,
    name: &str,
) -> Option<(BTreeMap<String, String>, BTreeSet<String>)> {
    let def = defs.get(name)?;
    let mut props = BTreeMap::new();
    if let Some(Value::Object(map)) = def.get("properties") {
        for key in map.keys() {
            if let Some(old) = props.insert(norm(key), key.clone()) {
                panic!("{name}: properties {old} and {key} look alike");
            }
        }
    }
    let required = def
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    Some((props, required))
}

fn generate(src: &Path) -> Generated {
    let structs = parse_k8s_pb(src);
    let roots = roots();
    let mut generator: SchemaGenerator = SchemaSettings::openapi3().into_generator();
    for r in &roots {
        (r.generate)(&mut generator);
    }
    let defs = generator.take_definitions(true);
    let specials: BTreeMap<&str, &str> = SPECIALS.iter().copied().collect();
    let mut report = Vec::new();

    // k8s-pb struct -> OpenAPI name (prost spells `JSONSchemaProps` as `JsonSchemaProps`).
    let openapi_name = |key: &PbKey| -> String {
        let p = prefix(&key.0);
        defs.keys()
            .find(|n| {
                n.rsplit_once('.')
                    .is_some_and(|(m, s)| m == p && norm(s) == norm(&key.1))
            })
            .cloned()
            .unwrap_or_else(|| format!("{p}.{}", key.1))
    };
    let pb_key_of = |name: &str| -> PbKey {
        let (module, short) = module_of(name);
        let found = structs.keys().find(|(m, s)| *m == module && norm(s) == norm(&short));
        found
            .cloned()
            .unwrap_or_else(|| panic!("k8s-pb has no message for {name}"))
    };

    let mut out: BTreeMap<String, OutMessage> = BTreeMap::new();
    let mut queue: VecDeque<(PbKey, Option<BTreeMap<String, String>>)> = VecDeque::new();
    let mut root_names = Vec::new();
    for r in &roots {
        let name = (r.name)();
        queue.push_back((pb_key_of(&name), None));
        root_names.push((r.api_version, r.kind, name));
    }
    let mut seen = BTreeSet::new();
    while let Some((key, context)) = queue.pop_front() {
        if !seen.insert(key.clone()) {
            continue;
        }
        let name = openapi_name(&key);
        let pb_fields = structs.get(&key).unwrap_or_else(|| panic!("k8s-pb has no {key:?}"));
        let special = specials.get(name.as_str()).copied().unwrap_or("None");
        let (props, required) = match properties(&defs, &name) {
            Some(found) => found,
            None if special != "None" => Default::default(),
            None => match &context {
                Some(props) => (props.clone(), BTreeSet::new()),
                None => panic!("{name} has no OpenAPI schema and is not embedded inline"),
            },
        };
        let mut fields = Vec::new();
        for field in pb_fields {
            let json = if special != "None" {
                field.name.clone()
            } else if let Some(json) = props.get(&norm(&field.name)) {
                json.clone()
            } else {
                let inline = match (&field.ty, field.card) {
                    (PbTy::Msg(child), "One") => structs
                        .get(child)
                        .is_some_and(|cf| !cf.is_empty() && cf.iter().all(|f| props.contains_key(&norm(&f.name)))),
                    _ => false,
                };
                if !inline {
                    report.push(format!("{name}.{}: no JSON property; dropped", field.name));
                    continue;
                }
                if let PbTy::Msg(child) = &field.ty {
                    queue.push_front((child.clone(), Some(props.clone())));
                    seen.remove(child);
                }
                String::new()
            };
            if let PbTy::Msg(child) = &field.ty {
                queue.push_back((child.clone(), None));
            }
            fields.push(OutField {
                tag: field.tag,
                json,
                pb_name: field.name.clone(),
                ty: field.ty.clone(),
                card: field.card,
                zero: false,
            });
        }
        fields.sort_by_key(|f| f.tag);
        out.insert(
            name.clone(),
            OutMessage {
                name,
                special,
                fields,
                required,
            },
        );
    }

    apply_emit_zero(&mut out, &mut report);
    for message in out.values().filter(|m| m.special == "None") {
        for field in &message.fields {
            let scalar = matches!(field.ty, PbTy::Scalar(_)) && field.card == "One";
            if scalar && !field.zero && message.required.contains(&field.json) {
                report.push(format!(
                    "{}.{}: required in OpenAPI, zero dropped",
                    message.name, field.json
                ));
            }
        }
    }

    let index: BTreeMap<String, usize> = out.keys().enumerate().map(|(i, n)| (n.clone(), i)).collect();
    let msg_index = |key: &PbKey| index[&openapi_name(key)];
    let text = render(&out, &root_names, &msg_index);
    Generated { text, report }
}

/// Marks the fields listed in `emit_zero.txt`.
fn apply_emit_zero(out: &mut BTreeMap<String, OutMessage>, report: &mut Vec<String>) {
    let by_norm: BTreeMap<String, String> = out.keys().map(|n| (norm(n), n.clone())).collect();
    for line in include_str!("emit_zero.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let message = words.next().unwrap_or_default();
        let Some(name) = by_norm.get(&norm(message)) else {
            continue; // not reachable from a served kind
        };
        let Some(message) = out.get_mut(name) else { continue };
        for word in words {
            let field = message
                .fields
                .iter_mut()
                .find(|f| norm(&f.pb_name) == norm(word) || (!f.json.is_empty() && norm(&f.json) == norm(word)));
            match field {
                Some(f) if matches!(f.ty, PbTy::Scalar(_)) && f.card == "One" => f.zero = true,
                _ => report.push(format!("emit_zero.txt: {name} has no scalar field {word}")),
            }
        }
    }
}

fn render(
    out: &BTreeMap<String, OutMessage>,
    roots: &[(&str, &str, String)],
    msg_index: &dyn Fn(&PbKey) -> usize,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "//! GENERATED by `generate.rs` from {K8S_PB} (prost), k8s-openapi's schemas and\n\
         //! `emit_zero.txt`; do not edit. Regenerate with\n\
         //! `UPDATE_PROTOBUF_SCHEMA=1 cargo test -p api protobuf::generate`.\n\
         //! {} messages reachable from {} kinds.\n\n",
        out.len(),
        roots.len()
    ));
    s.push_str("use super::model::Card::{Many, Map, One};\n");
    s.push_str("use super::model::Ty::{Bool, Bytes, F64, I32, I64, Msg, Str};\n");
    s.push_str("use super::model::{Message, Root, Special, f};\n\n");
    s.push_str("pub(crate) static MESSAGES: &[Message] = &[\n");
    for (i, m) in out.values().enumerate() {
        s.push_str(&format!(
            "    // {i}\n    Message {{ name: {:?}, special: Special::{}, fields: &[\n",
            m.name, m.special
        ));
        for field in &m.fields {
            let ty = match &field.ty {
                PbTy::Scalar(t) => t.to_string(),
                PbTy::Msg(key) => format!("Msg({})", msg_index(key)),
            };
            s.push_str(&format!(
                "        f({}, {:?}, {ty}, {}, {}),\n",
                field.tag, field.json, field.card, field.zero
            ));
        }
        s.push_str("    ] },\n");
    }
    s.push_str("];\n\npub(crate) static ROOTS: &[Root] = &[\n");
    let index: BTreeMap<&str, usize> = out.keys().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    for (api_version, kind, name) in roots {
        s.push_str(&format!(
            "    Root {{ api_version: {api_version:?}, kind: {kind:?}, message: {} }},\n",
            index[name.as_str()]
        ));
    }
    s.push_str("];\n");
    s
}

#[test]
fn schema_is_fresh() {
    let Some(src) = k8s_pb_source() else {
        eprintln!("{K8S_PB} sources not found under $CARGO_HOME/registry/src; not checking schema.rs");
        return;
    };
    let generated = generate(&src);
    for line in &generated.report {
        eprintln!("protobuf schema: {line}");
    }
    assert!(
        !generated.report.iter().any(|l| l.starts_with("emit_zero.txt")),
        "emit_zero.txt names fields the schema lacks (see above)"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_FILE);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated.text {
        return;
    }
    if std::env::var_os("UPDATE_PROTOBUF_SCHEMA").is_some() {
        std::fs::write(&path, &generated.text).expect("write schema.rs");
        eprintln!("rewrote {}", path.display());
        return;
    }
    panic!(
        "{SCHEMA_FILE} is stale; regenerate it with \
         `UPDATE_PROTOBUF_SCHEMA=1 cargo test -p api protobuf::generate`"
    );
}
