//! Malformed input: envelope errors, wrong wire types, impossible values, nesting beyond the
//! limit, and truncated, mutated and random bytes (which must never panic).

use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::json;

use super::tests::{body, job_spec, meta, s};
use super::{MAGIC, ProtobufError, decode_protobuf, go_duration, schema};

#[test]
fn envelope_errors() {
    assert_eq!(decode_protobuf(b"{}"), Err(ProtobufError::MissingMagic));
    let namespace = core::Namespace::default();
    assert_eq!(
        decode_protobuf(&body("v1", "Widget", &namespace)),
        Err(ProtobufError::UnknownKind {
            api_version: "v1".into(),
            kind: "Widget".into()
        })
    );
    assert_eq!(
        decode_protobuf(&body("v1", "", &namespace)),
        Err(ProtobufError::MissingKind)
    );
    let mut unknown = Unknown::decode(&body("v1", "Namespace", &namespace)[4..]).unwrap();
    unknown.content_encoding = s("gzip");
    let bytes = [MAGIC.as_slice(), &unknown.encode_to_vec()].concat();
    assert_eq!(
        decode_protobuf(&bytes),
        Err(ProtobufError::UnsupportedEncoding("gzip".into()))
    );
    // a typeMeta whose kind runs past its end
    let bad = [MAGIC.as_slice(), &[0x0a, 0x06, 0x0a, 0x02, b'v', b'1', 0x12, 0x09]].concat();
    assert!(decode_protobuf(&bad).is_err());
}

#[test]
fn wrong_wire_types_and_bad_values_are_errors() {
    // Namespace.metadata (1) as a varint
    let object = [0x08, 0x01];
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("Namespace"),
        }),
        raw: Some(object.to_vec()),
        ..Default::default()
    };
    let bytes = [MAGIC.as_slice(), &unknown.encode_to_vec()].concat();
    let err = decode_protobuf(&bytes).unwrap_err().to_string();
    assert!(err.contains("io.k8s.api.core.v1.Namespace.metadata"), "{err}");

    let service = core::Service {
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                target_port: Some(IntOrString {
                    r#type: Some(7),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(matches!(
        decode_protobuf(&body("v1", "Service", &service)),
        Err(ProtobufError::InvalidValue(_))
    ));
}

/// The tag of field `json` of message `name` in the schema.
fn tag(name: &str, json: &str) -> u8 {
    let message = schema::MESSAGES.iter().find(|m| m.name.ends_with(name)).expect(name);
    let field = message.fields.iter().find(|f| f.json == json).expect(json);
    u8::try_from(field.tag).expect("small tag")
}

/// A length-delimited field `tag` holding `bytes`.
fn len_field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    [varint(usize::from(tag) << 3 | 2), varint(bytes.len()), bytes.to_vec()].concat()
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    let ext = "apiextensions.v1.";
    // JSONSchemaProps.not nested far beyond the limit.
    let not = tag(&format!("{ext}JSONSchemaProps"), "not");
    let mut props: Vec<u8> = Vec::new();
    for _ in 0..5_000 {
        props = len_field(not, &props);
    }
    let validation = len_field(
        tag(&format!("{ext}CustomResourceValidation"), "openAPIV3Schema"),
        &props,
    );
    let version = len_field(
        tag(&format!("{ext}CustomResourceDefinitionVersion"), "schema"),
        &validation,
    );
    let spec = len_field(tag(&format!("{ext}CustomResourceDefinitionSpec"), "versions"), &version);
    let raw = len_field(tag(&format!("{ext}CustomResourceDefinition"), "spec"), &spec);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("apiextensions.k8s.io/v1"),
            kind: s("CustomResourceDefinition"),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let bytes = [MAGIC.as_slice(), &unknown.encode_to_vec()].concat();
    assert_eq!(decode_protobuf(&bytes), Err(ProtobufError::TooDeep));

    // Within the limit the same structure decodes.
    let mut props: Vec<u8> = Vec::new();
    for _ in 0..50 {
        props = len_field(not, &props);
    }
    let validation = len_field(
        tag(&format!("{ext}CustomResourceValidation"), "openAPIV3Schema"),
        &props,
    );
    let version = len_field(
        tag(&format!("{ext}CustomResourceDefinitionVersion"), "schema"),
        &validation,
    );
    let spec = len_field(tag(&format!("{ext}CustomResourceDefinitionSpec"), "versions"), &version);
    let unknown = Unknown {
        raw: Some(len_field(tag(&format!("{ext}CustomResourceDefinition"), "spec"), &spec)),
        ..unknown
    };
    let value = decode_protobuf(&[MAGIC.as_slice(), &unknown.encode_to_vec()].concat()).unwrap();
    let mut schema = &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    for _ in 0..49 {
        schema = &schema["not"];
    }
    assert_eq!(schema["not"], json!({}));
}

fn varint(mut v: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// Truncations, bit flips and random bytes never panic.
#[test]
fn arbitrary_input_never_panics() {
    let job = batch::Job {
        metadata: Some(meta("myjob", &[("a", "b")])),
        spec: Some(job_spec("myjob")),
        status: None,
    };
    let valid = body("batch/v1", "Job", &job);
    for end in 0..valid.len() {
        let _ = decode_protobuf(&valid[..end]);
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3_000 {
        let mut mutated = valid.clone();
        for _ in 0..=(next() % 4) {
            let i = 4 + (next() as usize) % (mutated.len() - 4);
            mutated[i] = next() as u8;
        }
        let _ = decode_protobuf(&mutated);
    }
    for _ in 0..3_000 {
        let len = (next() % 64) as usize;
        let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode_protobuf(&[MAGIC.as_slice(), &random].concat());
        // random bytes as the object of a valid envelope
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: s("apps/v1"),
                kind: s("Deployment"),
            }),
            raw: Some(random),
            ..Default::default()
        };
        let _ = decode_protobuf(&[MAGIC.as_slice(), &unknown.encode_to_vec()].concat());
    }
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(0), "0s");
    assert_eq!(go_duration(1), "1ns");
    assert_eq!(go_duration(1_500), "1.5µs");
    assert_eq!(go_duration(1_500_000), "1.5ms");
    assert_eq!(go_duration(1_500_000_000), "1.5s");
    assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    assert_eq!(go_duration(-90_000_000_000), "-1m30s");
    assert_eq!(go_duration(i64::MIN), "-2562047h47m16.854775808s");
}
