//! Kubernetes protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`),
//! decoded into the JSON object the same request would have carried as JSON.
//!
//! client-go's typed clients (and so `kubectl create deployment|job|configmap|...`) send
//! protobuf with no JSON fallback. A body is the magic `k8s\0` followed by a `runtime.Unknown`
//! {1: TypeMeta {1: apiVersion, 2: kind}, 2: raw (the object), 3: contentEncoding,
//! 4: contentType}; `raw` is the `k8s.io/api` message of the kind (e.g.
//! `k8s.io.api.apps.v1.Deployment`).
//!
//! The object is decoded generically from a generated schema ([`schema`], produced by
//! `generate.rs` from the `k8s-pb` crate's prost definitions, with JSON names from
//! `k8s-openapi`'s schemas): every message reachable from a served kind, its fields by tag
//! and their JSON names. The output follows Go's JSON encoding of the decoded struct: zero
//! scalars are dropped except for pointer fields and fields without `omitempty`
//! (`emit_zero.txt`), structs embedded with `json:",inline"` are flattened, and times,
//! quantities, int-or-strings, durations, raw extensions and byte fields take their JSON forms.

mod decode;
mod model;
#[rustfmt::skip]
mod schema;
mod wire;

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod generate;
#[cfg(test)]
mod tests;

use serde_json::Value;

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    #[error("the body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"")]
    MissingMagic,
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    #[error("Object 'Kind' is missing in the protobuf envelope")]
    MissingKind,
    #[error("no kind \"{kind}\" is registered for version \"{api_version}\"")]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("invalid value: {0}")]
    InvalidValue(String),
    #[error("protobuf messages nest more than {} levels deep", decode::MAX_DEPTH)]
    TooDeep,
}

/// Decodes a Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) into the object as
/// Kubernetes JSON, with `apiVersion` and `kind` from the envelope.
pub fn decode_protobuf(body: &[u8]) -> Result<Value, ProtobufError> {
    envelope(body, 0)
}

/// Decodes an envelope at nesting `depth` (a `RawExtension` may hold a nested one).
fn envelope(body: &[u8], depth: u32) -> Result<Value, ProtobufError> {
    let unknown = body.strip_prefix(&MAGIC).ok_or(ProtobufError::MissingMagic)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut content_encoding = String::new();
    let mut reader = wire::Reader::new(unknown);
    while let Some((tag, value)) = reader.field()? {
        match (tag, value) {
            (1, wire::Value::Len(type_meta)) => {
                let mut reader = wire::Reader::new(type_meta);
                while let Some((tag, value)) = reader.field()? {
                    match (tag, value) {
                        (1, wire::Value::Len(s)) => api_version = String::from_utf8_lossy(s).into_owned(),
                        (2, wire::Value::Len(s)) => kind = String::from_utf8_lossy(s).into_owned(),
                        (1 | 2, _) => return Err(envelope_error("typeMeta")),
                        _ => {}
                    }
                }
            }
            (2, wire::Value::Len(bytes)) => raw = bytes,
            (3, wire::Value::Len(s)) => content_encoding = String::from_utf8_lossy(s).into_owned(),
            (4, wire::Value::Len(_)) => {}
            (1..=4, _) => return Err(envelope_error("runtime.Unknown")),
            _ => {}
        }
    }
    if !content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(content_encoding));
    }
    if kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    let root = schema::ROOTS
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
        .map(|r| r.message)
        .or_else(|| options_message(&api_version, &kind));
    let Some(root) = root else {
        return Err(ProtobufError::UnknownKind { api_version, kind });
    };
    let mut object = match decode::message(raw, root, depth + 1)? {
        Value::Object(object) => object,
        _ => return Err(ProtobufError::Malformed(format!("{kind} is not an object"))),
    };
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

/// The meta.k8s.io/v1 kinds upstream registers in every group-version (`DeleteOptions`, the
/// body of a DELETE, which typed clients encode in their own group-version, e.g.
/// `v1`/`DeleteOptions` from the core client): the message for `kind` when `api_version` is
/// meta.k8s.io/v1 or a served group-version.
fn options_message(api_version: &str, kind: &str) -> Option<u16> {
    const OPTIONS: &[(&str, &str)] = &[("DeleteOptions", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")];
    let name = OPTIONS.iter().find(|(k, _)| *k == kind)?.1;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let served = api_version == "meta.k8s.io/v1"
        || crate::registry::group_versions()
            .iter()
            .any(|(g, versions)| *g == group && versions.contains(&version));
    if !served {
        return None;
    }
    let index = schema::MESSAGES.iter().position(|m| m.name == name)?;
    u16::try_from(index).ok()
}

fn envelope_error(what: &str) -> ProtobufError {
    ProtobufError::Malformed(format!("a field of the {what} envelope has the wrong wire type"))
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    let negative = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (frac, whole) = fraction(u, prec);
        out.push_str(&format!("{whole}{frac}{unit}"));
    } else {
        let (frac, whole) = fraction(u, 9);
        u = whole;
        let seconds = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            let minutes = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&seconds);
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// Splits `v` into `v / 10^prec` and the fraction `.ddd` (trailing zeros and an empty
/// fraction omitted), as Go's `fmtFrac`.
fn fraction(v: u64, prec: u32) -> (String, u64) {
    let scale = 10u64.pow(prec);
    let digits = format!("{:0width$}", v % scale, width = prec as usize);
    let digits = digits.trim_end_matches('0');
    let frac = if digits.is_empty() {
        String::new()
    } else {
        format!(".{digits}")
    };
    (frac, v / scale)
}
