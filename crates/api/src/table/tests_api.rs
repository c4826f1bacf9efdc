//! The Table envelope, column definitions for every served resource, content negotiation,
//! `includeObject`, and duration formatting.

use serde_json::{Value, json};

use super::format::{human_duration, since};
use super::testutil::{ago, core, def, now};
use super::{
    Conversion, IncludeObject, TableVersion, column_definitions, negotiate_accept, parse_include_object,
    parse_table_accept, partial_object_metadata_list, row, table, table_as,
};
use crate::registry::RESOURCES;

#[test]
fn every_served_resource_has_consistent_columns() {
    let junk = [
        json!(null),
        json!("text"),
        json!([1, 2]),
        json!({}),
        json!({"metadata": {"name": "x", "creationTimestamp": ago(10)}}),
        json!({"metadata": [], "spec": "s", "status": 3, "subsets": {}, "ports": "p", "endpoints": 1,
               "data": [], "secrets": {}, "subjects": "x", "roleRef": 2, "revision": "r", "type": 1}),
        json!({"spec": {"template": {"spec": {"containers": [null, 1, {"name": 2}]}}, "selector": "x",
               "metrics": [null, {"type": "Resource"}], "ports": [null], "rules": [null], "versions": [1]},
               "status": {"conditions": [null, "x"], "hard": {"cpu": []}, "currentMetrics": "m",
               "loadBalancer": {"ingress": [null]}, "nodeInfo": 4, "addresses": [3]}}),
    ];
    for d in RESOURCES {
        let columns = column_definitions(d);
        assert!(columns.len() >= 2, "{} has too few columns", d.plural);
        let names: Vec<&str> = columns.iter().filter_map(|c| c["name"].as_str()).collect();
        assert!(names.contains(&"Name"), "{} has no Name column", d.plural);
        assert_eq!(
            columns.iter().filter(|c| c["format"] == "name").count(),
            1,
            "{}",
            d.plural
        );
        for c in &columns {
            for key in ["name", "type", "format", "description"] {
                assert!(c[key].is_string(), "{} column {key}", d.plural);
            }
            assert!(matches!(c["priority"].as_i64(), Some(0 | 1)), "{} priority", d.plural);
            assert!(
                !c["description"].as_str().unwrap_or("").is_empty(),
                "{} {} description",
                d.plural,
                c["name"]
            );
        }
        for object in &junk {
            assert_eq!(row(d, object, now()).len(), columns.len(), "{} row width", d.plural);
        }
    }
}

#[test]
fn table_envelope_with_metadata_rows() {
    let pods = core("pods");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "42",
            "labels": {"app": "web"}, "creationTimestamp": ago(60)},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Pending"},
    });
    let t = table(
        pods,
        std::slice::from_ref(&pod),
        IncludeObject::Metadata,
        true,
        json!({"resourceVersion": "1064"}),
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "1064"}));
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(
        t["columnDefinitions"][5],
        json!({"name": "IP", "type": "string", "format": "",
        "description": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        "priority": 1})
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web", "0/1", "Pending", "0", "60s", "<none>", "<none>", "<none>", "<none>"
        ])
    );
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"].clone()})
    );

    // Watch events after the first: no headers.
    let t = table(
        pods,
        std::slice::from_ref(&pod),
        IncludeObject::None,
        false,
        json!({"resourceVersion": "43"}),
        now(),
    );
    assert_eq!(t["columnDefinitions"], Value::Null);
    assert_eq!(t["rows"][0]["object"], Value::Null);
    assert_eq!(t["rows"][0]["cells"][0], "web");

    let mut bare = pod.clone();
    if let Some(m) = bare.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    let t = table(pods, &[bare], IncludeObject::Object, true, json!(null), now());
    assert_eq!(t["rows"][0]["object"]["kind"], "Pod");
    assert_eq!(t["rows"][0]["object"]["apiVersion"], "v1");
    assert_eq!(t["rows"][0]["object"]["spec"], pod["spec"]);
    assert_eq!(t["metadata"], json!({}));

    let t = table_as(
        TableVersion::V1Beta1,
        pods,
        &[pod],
        IncludeObject::Metadata,
        true,
        json!({}),
        now(),
    );
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1beta1");
}

#[test]
fn empty_tables() {
    // Printer-backed kinds list as [], the generic convertors leave rows null.
    let t = table(
        core("pods"),
        &[],
        IncludeObject::Metadata,
        true,
        json!({"resourceVersion": "5"}),
        now(),
    );
    assert_eq!(t["rows"], json!([]));
    assert_eq!(t["columnDefinitions"].as_array().map(Vec::len), Some(9));
    let roles = def("rbac.authorization.k8s.io", "v1", "roles");
    let t = table(roles, &[], IncludeObject::Metadata, true, json!({}), now());
    assert_eq!(t["rows"], Value::Null);
    assert_eq!(
        t["columnDefinitions"][1],
        json!({"name": "Created At", "type": "date", "format": "", "priority": 0,
            "description": column_definitions(roles)[1]["description"].clone()})
    );
}

#[test]
fn events_k8s_io_rows_keep_their_own_object() {
    let ev = def("events.k8s.io", "v1", "events");
    let obj = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "eventTime": ago(3)});
    let t = table(
        ev,
        std::slice::from_ref(&obj),
        IncludeObject::Object,
        true,
        json!({}),
        now(),
    );
    assert_eq!(t["rows"][0]["object"], obj);
    assert_eq!(t["rows"][0]["cells"][3], "pod/p");
    assert_eq!(t["rows"][0]["cells"][6], "hello");
}

#[test]
fn table_accept_negotiation() {
    let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    assert_eq!(parse_table_accept(kubectl), Some(TableVersion::V1));
    assert_eq!(
        parse_table_accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
        Some(TableVersion::V1Beta1)
    );
    assert_eq!(
        parse_table_accept(
            "application/json;as=Table;v=v2;g=meta.k8s.io, application/json;as=Table;v=v1beta1;g=meta.k8s.io"
        ),
        Some(TableVersion::V1Beta1)
    );
    assert_eq!(
        parse_table_accept(" application/json ; as=Table ; g=meta.k8s.io ; v=v1 "),
        Some(TableVersion::V1)
    );
    assert_eq!(
        parse_table_accept("*/*;as=Table;v=v1;g=meta.k8s.io"),
        Some(TableVersion::V1)
    );
    for plain in [
        "",
        "application/json",
        "*/*",
        "application/json,application/json;as=Table;v=v1;g=meta.k8s.io",
        "application/yaml",
        "application/vnd.kubernetes.protobuf,application/json",
        "application/json;as=Table;g=example.com;v=v1,application/json",
        "application/json;as=Table,application/json",
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
        "text/html",
        "garbage;;;,,;=",
    ] {
        assert_eq!(parse_table_accept(plain), None, "{plain:?}");
    }
    // Quality values reorder the alternatives; specific types beat wildcards.
    assert_eq!(
        parse_table_accept("application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io;q=0.9"),
        Some(TableVersion::V1)
    );
    assert_eq!(
        parse_table_accept("*/*,application/json;as=Table;v=v1;g=meta.k8s.io"),
        Some(TableVersion::V1)
    );
    assert_eq!(
        parse_table_accept("text/html,application/json;as=Table;v=v1;g=meta.k8s.io"),
        Some(TableVersion::V1)
    );
}

/// kube-rs's metadata requests, client-go's metadata client (protobuf first), and a
/// PartialObjectMetadata in a group-version upstream does not serve it in.
#[test]
fn partial_object_metadata_negotiation() {
    for (accept, expected) in [
        (
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            Conversion::PartialObjectMetadata(TableVersion::V1),
        ),
        (
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            Conversion::PartialObjectMetadataList(TableVersion::V1),
        ),
        (
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
            Conversion::PartialObjectMetadataList(TableVersion::V1),
        ),
        (
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
            Conversion::PartialObjectMetadata(TableVersion::V1Beta1),
        ),
        (
            "application/json;as=PartialObjectMetadata;g=example.com;v=v1,application/json",
            Conversion::None,
        ),
        ("application/json", Conversion::None),
    ] {
        assert_eq!(negotiate_accept(accept), expected, "{accept}");
    }
    let list = partial_object_metadata_list(
        TableVersion::V1,
        &[json!({"kind": "Pod", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {}})],
        json!({"resourceVersion": "7"}),
    );
    assert_eq!(
        list,
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "7"},
               "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                          "metadata": {"name": "a", "labels": {"x": "1"}}}]})
    );
}

#[test]
fn include_object_values() {
    assert_eq!(parse_include_object(None), Ok(IncludeObject::Metadata));
    assert_eq!(parse_include_object(Some("")), Ok(IncludeObject::Metadata));
    assert_eq!(parse_include_object(Some("Metadata")), Ok(IncludeObject::Metadata));
    assert_eq!(parse_include_object(Some("None")), Ok(IncludeObject::None));
    assert_eq!(parse_include_object(Some("Object")), Ok(IncludeObject::Object));
    let err = parse_include_object(Some("object")).unwrap_err();
    assert_eq!(err.to_string(), "unrecognized includeObject value: \"object\"");
}

#[test]
fn human_durations() {
    const S: i64 = 1_000_000_000;
    for (seconds, want) in [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (192, "3m12s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 25, "3h25m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (2 * 86400 + 5 * 3600, "2d5h"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (3 * 365 * 86400 + 40 * 86400, "3y40d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ] {
        assert_eq!(human_duration(seconds * S), want, "{seconds}s");
    }
    assert_eq!(human_duration(-S - S / 2), "0s");
    assert_eq!(since(None, now()), "<unknown>");
    assert_eq!(since("0001-01-01T00:00:00Z".parse().ok(), now()), "<unknown>");
    assert_eq!(since("2025-06-01T12:00:30Z".parse().ok(), now()), "<invalid>");
    assert_eq!(since("1700-01-01T00:00:00Z".parse().ok(), now()), "292y");
}
