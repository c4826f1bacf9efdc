//! Tests of ObjectMeta validation.

use super::*;
use crate::registry::find;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn def(group: &str, plural: &str) -> &'static ResourceDef {
    match find(group, "v1", plural) {
        Some(d) => d,
        None => panic!("no resource {group}/{plural}"),
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..Default::default()
    }
}

fn strings(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn valid_objects_pass() {
    let pods = def("", "pods");
    assert!(validate_object_meta(pods, &meta("web-0", Some("default")), None).is_empty());
    let mut m = meta("web", Some("default"));
    m.labels = Some(map(&[("app", "web"), ("example.com/tier", "")]));
    m.annotations = Some(map(&[("Example.com/Note", "anything at all")]));
    m.finalizers = Some(vec!["example.com/cleanup".into(), "kubernetes".into()]);
    assert!(
        validate_object_meta(pods, &m, None).is_empty(),
        "{:?}",
        validate_object_meta(pods, &m, None)
    );
    let namespaces = def("", "namespaces");
    assert!(validate_object_meta(namespaces, &meta("kube-system", None), None).is_empty());
    let roles = def("rbac.authorization.k8s.io", "clusterroles");
    assert!(validate_object_meta(roles, &meta("system:controller:x", None), None).is_empty());
    let mut generated = ObjectMeta {
        generate_name: Some("web-".into()),
        namespace: Some("ns".into()),
        ..Default::default()
    };
    assert!(validate_object_meta(pods, &generated, None).is_empty());
    generated.generate_name = Some("Web-".into());
    assert_eq!(strings(&validate_object_meta(pods, &generated, None)).len(), 1);
}

#[test]
fn name_and_namespace_rules() {
    let pods = def("", "pods");
    let services = def("", "services");
    let namespaces = def("", "namespaces");
    let roles = def("rbac.authorization.k8s.io", "roles");
    let cases: Vec<(&ResourceDef, ObjectMeta, &str)> = vec![
        (
            pods,
            ObjectMeta {
                namespace: Some("default".into()),
                ..Default::default()
            },
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            pods,
            meta("Bad_Name", Some("default")),
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (pods, meta("web", None), "metadata.namespace: Required value"),
        (
            pods,
            meta("web", Some("a.b")),
            "metadata.namespace: Invalid value: \"a.b\": must not contain dots",
        ),
        (
            services,
            meta("1web", Some("default")),
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        (
            namespaces,
            meta("a.b", None),
            "metadata.name: Invalid value: \"a.b\": must not contain dots",
        ),
        (
            namespaces,
            meta("ns", Some("default")),
            "metadata.namespace: Forbidden: not allowed on this type",
        ),
        (
            roles,
            meta("a/b", Some("default")),
            "metadata.name: Invalid value: \"a/b\": may not contain '/'",
        ),
    ];
    for (d, m, want) in cases {
        let got = strings(&validate_object_meta(d, &m, None));
        assert_eq!(got, vec![want.to_string()], "{m:?}");
    }
}

#[test]
fn labels_annotations_finalizers_owners() {
    let pods = def("", "pods");
    let mut m = meta("web", Some("default"));
    m.labels = Some(map(&[("a b", "ok"), ("k", "bad value")]));
    m.finalizers = Some(vec!["orphan".into(), "foregroundDeletion".into(), "custom".into()]);
    m.generation = Some(-1);
    m.owner_references = Some(vec![
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "a".into(),
            uid: "1".into(),
            controller: Some(true),
            ..Default::default()
        },
        OwnerReference {
            api_version: "a/b/c".into(),
            kind: "X".into(),
            name: "b".into(),
            uid: "".into(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    let got = strings(&validate_object_meta(pods, &m, None));
    let expect_prefixes = [
        "metadata.generation: Invalid value: -1: must be greater than or equal to 0",
        "metadata.labels: Invalid value: \"a b\": name part must consist",
        "metadata.labels: Invalid value: \"bad value\": a valid label must be an empty string",
        "metadata.ownerReferences.apiVersion: Invalid value: \"a/b/c\": version must not be empty",
        "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
        "metadata.ownerReferences: Invalid value: [",
        "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\", \"custom\"}: finalizer orphan and foregroundDeletion cannot be both set",
        "metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
    ];
    let expect: Vec<String> = expect_prefixes.iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for (g, e) in got.iter().zip(&expect) {
        assert!(g.starts_with(e.as_str()), "got {g}\nwant {e}");
    }
    assert!(
        got[5].ends_with("Found \"true\" in references for ReplicaSet/a and X/b"),
        "{}",
        got[5]
    );

    let mut big = meta("web", Some("default"));
    big.annotations = Some(map(&[("a", &"x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT))]));
    assert_eq!(
        strings(&validate_object_meta(pods, &big, None)),
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes".to_string()]
    );
}

#[test]
fn update_rules() {
    let pods = def("", "pods");
    let mut old = meta("web", Some("default"));
    old.uid = Some("u1".into());
    old.creation_timestamp = Some(Time("2024-01-01T00:00:00Z".parse().unwrap_or_default()));
    let mut new = old.clone();
    new.uid = None;
    new.creation_timestamp = None;
    new.labels = Some(map(&[("app", "x")]));
    assert!(validate_object_meta(pods, &new, Some(&old)).is_empty());

    new.name = Some("other".into());
    new.uid = Some("u2".into());
    new.namespace = Some("kube-system".into());
    assert_eq!(
        strings(&validate_object_meta(pods, &new, Some(&old))),
        vec![
            "metadata.name: Invalid value: \"other\": field is immutable",
            "metadata.namespace: Invalid value: \"kube-system\": field is immutable",
            "metadata.uid: Invalid value: \"u2\": field is immutable",
        ]
    );

    let mut deleting = old.clone();
    deleting.deletion_timestamp = old.creation_timestamp.clone();
    deleting.finalizers = Some(vec!["example.com/a".into()]);
    let mut new = deleting.clone();
    new.finalizers = Some(vec!["example.com/a".into(), "example.com/b".into()]);
    assert_eq!(
        strings(&validate_object_meta(pods, &new, Some(&deleting))),
        vec![
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/b\"}"
        ]
    );
}

#[test]
fn crds_accept_unqualified_finalizers() {
    let crds = def("apiextensions.k8s.io", "customresourcedefinitions");
    let mut m = meta("foos.example.com", None);
    m.finalizers = Some(vec![
        "customresourcecleanup.apiextensions.k8s.io".into(),
        "custom".into(),
    ]);
    assert!(validate_object_meta(crds, &m, None).is_empty());
}
