//! Whether a request asks for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`)
//! or for metadata only (`as=PartialObjectMetadata` / `as=PartialObjectMetadataList`), and what
//! each row's `object` holds (`includeObject`), as upstream's content negotiation
//! (`NegotiateMediaTypeOptions` over `goautoneg.ParseAccept`) and `TableOptions` decide.

use std::fmt;

/// The `meta.k8s.io` version a Table (or a PartialObjectMetadata) is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableVersion {
    V1,
    V1Beta1,
}

impl TableVersion {
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1Beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// What a row's `object` holds (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `object` is `null`.
    None,
    /// The default: a `PartialObjectMetadata` with the object's metadata.
    #[default]
    Metadata,
    /// The whole object, with `kind` and `apiVersion`.
    Object,
}

/// An `includeObject` value upstream rejects with 400 BadRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidIncludeObject(pub String);

impl fmt::Display for InvalidIncludeObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unrecognized includeObject value: {:?}", self.0)
    }
}

impl std::error::Error for InvalidIncludeObject {}

/// Parses the `includeObject` query parameter: absent or empty is `Metadata`; `None`,
/// `Metadata` and `Object` are exact (case-sensitive) values; anything else is the 400 message.
pub fn parse_include_object(value: Option<&str>) -> Result<IncludeObject, InvalidIncludeObject> {
    match value.unwrap_or("") {
        "" | "Metadata" => Ok(IncludeObject::Metadata),
        "None" => Ok(IncludeObject::None),
        "Object" => Ok(IncludeObject::Object),
        other => Err(InvalidIncludeObject(other.to_string())),
    }
}

/// One clause of an `Accept` header.
struct Clause<'a> {
    ty: &'a str,
    sub_type: &'a str,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

/// `goautoneg.ParseAccept`: clauses with their `q`, ordered by `q` and specificity (stable for
/// equal ones, as Go's insertion sort is for short lists).
fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses: Vec<Clause<'_>> = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim();
        let (ty, sub_type) = match media.split_once('/') {
            Some((t, s)) => (t.trim(), s.trim()),
            None if media == "*" => ("*", "*"),
            None => continue,
        };
        let mut clause = Clause {
            ty,
            sub_type,
            q: 1.0,
            params: Vec::new(),
        };
        for param in pieces {
            let Some((k, v)) = param.split_once('=') else { continue };
            let (k, v) = (k.trim(), v.trim());
            if k == "q" {
                clause.q = v.parse().unwrap_or(0.0);
            } else {
                clause.params.push((k, v));
            }
        }
        clauses.push(clause);
    }
    let less = |a: &Clause<'_>, b: &Clause<'_>| {
        a.q > b.q || (a.ty != "*" && b.ty == "*") || (a.sub_type != "*" && b.sub_type == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    clauses
}

/// What an acceptable `Accept` clause asks the server to turn its answer into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// The object or list itself.
    None,
    Table(TableVersion),
    /// The object's metadata only (`kind: PartialObjectMetadata`).
    PartialObjectMetadata(TableVersion),
    /// A list's items' metadata only (`kind: PartialObjectMetadataList`).
    PartialObjectMetadataList(TableVersion),
}

/// The conversion the first clause the server can serve (in `q` order, else header order)
/// asks for; `None` also when nothing is acceptable (the caller decides about 406).
pub fn negotiate_accept(accept: &str) -> Conversion {
    parse_accept(accept)
        .iter()
        .find_map(acceptable)
        .unwrap_or(Conversion::None)
}

/// Whether the server can answer `clause`, and with what (`acceptMediaTypeOptions` with the
/// JSON, YAML and protobuf serializers; a Table only as JSON or YAML; kaji writes every answer
/// as JSON).
fn acceptable(clause: &Clause<'_>) -> Option<Conversion> {
    let ty = clause.ty.to_ascii_lowercase();
    let sub = clause.sub_type.to_ascii_lowercase();
    let serializer = match (ty.as_str(), sub.as_str()) {
        ("application", "json") | ("application", "*") | ("*", "*") => "json",
        ("application", "yaml") => "yaml",
        ("application", "vnd.kubernetes.protobuf") => "protobuf",
        _ => return None,
    };
    let (mut kind, mut group, mut version) = (None, None, None);
    for &(k, v) in &clause.params {
        match k {
            "as" => kind = Some(v),
            "g" => group = Some(v),
            "v" => version = Some(v),
            "stream" if !v.is_empty() && v != "watch" => return None,
            _ => {}
        }
    }
    if kind.is_none() && group.is_none() && version.is_none() {
        return Some(Conversion::None);
    }
    let version = match (group.unwrap_or(""), version.unwrap_or("")) {
        ("meta.k8s.io", "v1") => TableVersion::V1,
        ("meta.k8s.io", "v1beta1") => TableVersion::V1Beta1,
        _ => return None,
    };
    match kind.unwrap_or("") {
        "Table" if serializer != "protobuf" => Some(Conversion::Table(version)),
        "PartialObjectMetadata" => Some(Conversion::PartialObjectMetadata(version)),
        "PartialObjectMetadataList" => Some(Conversion::PartialObjectMetadataList(version)),
        _ => None,
    }
}

/// The Table version an `Accept` header asks for: `Some` when the first clause the server can
/// serve (in `q` order, else header order) is `application/json;as=Table;v=v1;g=meta.k8s.io`
/// (or v1beta1, or the YAML form); `None` when it is a plain type (`application/json`, `*/*`),
/// or a PartialObjectMetadata conversion, or nothing is acceptable.
pub fn parse_table_accept(accept: &str) -> Option<TableVersion> {
    match negotiate_accept(accept) {
        Conversion::Table(version) => Some(version),
        _ => None,
    }
}
