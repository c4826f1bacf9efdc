//! Objects encoded with `k8s-pb`'s prost types the way client-go's marshallers write them
//! (every non-pointer field present, zero or not), wrapped in the `k8s\0` envelope, decoded and
//! compared with the JSON client-go would have sent.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{Value, json};

use super::{MAGIC, decode_protobuf, schema};

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

pub(super) fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A body as client-go sends it.
pub(super) fn body(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
}

/// ObjectMeta as Go writes it: every string present (mostly empty), a zero creationTimestamp.
pub(super) fn meta(name: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn int_or_string_int(v: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: s(""),
    }
}

fn int_or_string_str(v: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    }
}

/// A container as `kubectl create` builds it, with Go's zero values on the wire.
fn container(name: &str, image: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        termination_message_policy: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

/// A pod spec with Go's zero values on the wire.
fn pod_spec(containers: Vec<core::Container>, restart_policy: &str) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: s(restart_policy),
        dns_policy: s(""),
        service_account_name: s(""),
        service_account: s(""),
        node_name: s(""),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        scheduler_name: s(""),
        priority_class_name: s(""),
        ..Default::default()
    }
}

fn decode(bytes: &[u8]) -> Value {
    decode_protobuf(bytes).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

#[test]
fn deployment_with_pod_template() {
    let labels = [("app", "web")];
    let mut nginx = container("nginx", "nginx:1.27");
    nginx.ports = vec![core::ContainerPort {
        name: s(""),
        host_port: Some(0),
        container_port: Some(80),
        protocol: s("TCP"),
        host_ip: s(""),
    }];
    nginx.env = vec![
        core::EnvVar {
            name: s("MODE"),
            value: s("prod"),
            value_from: None,
        },
        core::EnvVar {
            name: s("EMPTY"),
            value: s(""),
            value_from: None,
        },
    ];
    nginx.resources = Some(core::ResourceRequirements {
        limits: map(&[("cpu", quantity("500m")), ("memory", quantity("128Mi"))]),
        requests: map(&[("cpu", quantity("250m"))]),
        claims: vec![],
    });
    nginx.readiness_probe = Some(core::Probe {
        handler: Some(core::ProbeHandler {
            http_get: Some(core::HttpGetAction {
                path: s("/healthz"),
                port: Some(int_or_string_str("http")),
                host: s(""),
                scheme: s("HTTP"),
                http_headers: vec![],
            }),
            ..Default::default()
        }),
        initial_delay_seconds: Some(5),
        timeout_seconds: Some(0),
        period_seconds: Some(0),
        success_threshold: Some(0),
        failure_threshold: Some(0),
        termination_grace_period_seconds: None,
    });
    nginx.liveness_probe = Some(core::Probe {
        handler: Some(core::ProbeHandler {
            tcp_socket: Some(core::TcpSocketAction {
                port: Some(int_or_string_int(80)),
                host: s(""),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut spec = pod_spec(vec![nginx], "Always");
    spec.termination_grace_period_seconds = Some(0); // a pointer: 0 is kept
    spec.automount_service_account_token = Some(false);
    let deployment = apps::Deployment {
        metadata: Some(meta("web", &labels)),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: map(&[("app", "web".to_string())]),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta("", &labels)),
                spec: Some(spec),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(int_or_string_str("25%")),
                    max_surge: Some(int_or_string_int(1)),
                }),
            }),
            min_ready_seconds: Some(0),
            revision_history_limit: None,
            paused: Some(false),
            progress_deadline_seconds: None,
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": null},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY"}],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m"}
                        },
                        "livenessProbe": {"tcpSocket": {"port": 80}},
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                            "initialDelaySeconds": 5
                        }
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": false
                }
            },
            "strategy": {"rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}
        },
        "status": {}
    });
    assert_eq!(decode(&body("apps/v1", "Deployment", &deployment)), expected);
}

#[test]
fn configmap_with_data_and_binary_data() {
    let configmap = core::ConfigMap {
        metadata: Some(meta("settings", &[])),
        immutable: Some(false),
        data: map(&[("a.conf", "x=1\n".to_string()), ("empty", String::new())]),
        binary_data: map(&[("blob", vec![0u8, 1, 2, 255])]),
    };
    let expected = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "creationTimestamp": null},
        "immutable": false,
        "data": {"a.conf": "x=1\n", "empty": ""},
        "binaryData": {"blob": "AAEC/w=="}
    });
    assert_eq!(decode(&body("v1", "ConfigMap", &configmap)), expected);
}

#[test]
fn secret_data_is_base64() {
    let secret = core::Secret {
        metadata: Some(meta("db", &[])),
        immutable: None,
        data: map(&[("password", b"s3cr3t".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "creationTimestamp": null},
        "data": {"password": "czNjcjN0"},
        "type": "Opaque"
    });
    assert_eq!(decode(&body("v1", "Secret", &secret)), expected);
}

#[test]
fn namespace_has_empty_spec_and_status() {
    let namespace = core::Namespace {
        metadata: Some(meta("team-a", &[])),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            conditions: vec![],
        }),
    };
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "creationTimestamp": null},
        "spec": {},
        "status": {}
    });
    assert_eq!(decode(&body("v1", "Namespace", &namespace)), expected);
}

pub(super) fn job_spec(name: &str) -> batch::JobSpec {
    let mut c = container(name, "busybox");
    c.command = vec!["echo".into(), "hello".into()];
    batch::JobSpec {
        backoff_limit: Some(0),
        template: Some(core::PodTemplateSpec {
            metadata: Some(meta("", &[])),
            spec: Some(pod_spec(vec![c], "Never")),
        }),
        ..Default::default()
    }
}

fn job_spec_json(name: &str) -> Value {
    json!({
        "backoffLimit": 0,
        "template": {
            "metadata": {"creationTimestamp": null},
            "spec": {
                "containers": [{
                    "name": name,
                    "image": "busybox",
                    "command": ["echo", "hello"],
                    "resources": {}
                }],
                "restartPolicy": "Never"
            }
        }
    })
}

#[test]
fn job() {
    let job = batch::Job {
        metadata: Some(meta("myjob", &[])),
        spec: Some(job_spec("myjob")),
        status: Some(batch::JobStatus {
            active: Some(0),
            succeeded: Some(0),
            failed: Some(0),
            completed_indexes: s(""),
            ..Default::default()
        }),
    };
    let expected = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "myjob", "creationTimestamp": null},
        "spec": job_spec_json("myjob"),
        "status": {}
    });
    assert_eq!(decode(&body("batch/v1", "Job", &job)), expected);
}

#[test]
fn cronjob_with_times() {
    let cronjob = batch::CronJob {
        metadata: Some(meta("nightly", &[])),
        spec: Some(batch::CronJobSpec {
            schedule: s("0 3 * * *"),
            concurrency_policy: s(""),
            suspend: Some(false),
            job_template: Some(batch::JobTemplateSpec {
                metadata: Some(meta("nightly", &[])),
                spec: Some(job_spec("nightly")),
            }),
            ..Default::default()
        }),
        status: Some(batch::CronJobStatus {
            active: vec![],
            last_schedule_time: Some(meta::Time {
                seconds: Some(1_767_323_045),
                nanos: Some(0),
            }),
            last_successful_time: None,
        }),
    };
    let expected = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "creationTimestamp": null},
        "spec": {
            "schedule": "0 3 * * *",
            "suspend": false,
            "jobTemplate": {
                "metadata": {"name": "nightly", "creationTimestamp": null},
                "spec": job_spec_json("nightly")
            }
        },
        "status": {"lastScheduleTime": "2026-01-02T03:04:05Z"}
    });
    assert_eq!(decode(&body("batch/v1", "CronJob", &cronjob)), expected);
}

#[test]
fn service_with_int_or_string_target_port() {
    let service = core::Service {
        metadata: Some(meta("my-svc", &[("app", "my-svc")])),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("5678-8080"),
                protocol: s("TCP"),
                app_protocol: None,
                port: Some(5678),
                target_port: Some(int_or_string_int(8080)),
                node_port: Some(0),
            }],
            selector: map(&[("app", "my-svc".to_string())]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            load_balancer_ip: s(""),
            external_name: s(""),
            external_traffic_policy: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my-svc", "labels": {"app": "my-svc"}, "creationTimestamp": null},
        "spec": {
            "ports": [{"name": "5678-8080", "protocol": "TCP", "port": 5678, "targetPort": 8080}],
            "selector": {"app": "my-svc"},
            "type": "ClusterIP"
        },
        "status": {"loadBalancer": {}}
    });
    assert_eq!(decode(&body("v1", "Service", &service)), expected);
}

#[test]
fn pod_volumes_flatten_embedded_structs() {
    let mut spec = pod_spec(vec![container("app", "busybox")], "");
    spec.volumes = vec![
        core::Volume {
            name: s("config"),
            volume_source: Some(core::VolumeSource {
                config_map: Some(core::ConfigMapVolumeSource {
                    local_object_reference: Some(core::LocalObjectReference { name: s("settings") }),
                    items: vec![],
                    default_mode: Some(420),
                    optional: None,
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("scratch"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: s(""),
                    size_limit: Some(quantity("1Gi")),
                }),
                ..Default::default()
            }),
        },
    ];
    let pod = core::Pod {
        metadata: Some(meta("p", &[])),
        spec: Some(spec),
        status: None,
    };
    let value = decode(&body("v1", "Pod", &pod));
    assert_eq!(
        value["spec"]["volumes"],
        json!([
            {"name": "config", "configMap": {"name": "settings", "defaultMode": 420}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}
        ])
    );
    assert!(value.get("status").is_none());
}

#[test]
fn event_micro_time_and_managed_fields() {
    let mut metadata = meta("e1", &[]);
    metadata.namespace = s("default");
    metadata.creation_timestamp = Some(meta::Time {
        seconds: Some(1_767_323_045),
        nanos: Some(999),
    });
    metadata.managed_fields = vec![meta::ManagedFieldsEntry {
        manager: s("kubectl"),
        operation: s("Update"),
        api_version: s("v1"),
        time: None,
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(br#"{"f:reason":{}}"#.to_vec()),
        }),
        subresource: s(""),
    }];
    let event = core::Event {
        metadata: Some(metadata),
        involved_object: Some(core::ObjectReference {
            kind: s("Pod"),
            name: s("p"),
            ..Default::default()
        }),
        reason: s("Started"),
        count: Some(0),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_767_323_045),
            nanos: Some(123_456_789),
        }),
        reporting_component: s(""),
        reporting_instance: s(""),
        ..Default::default()
    };
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "e1",
            "namespace": "default",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "managedFields": [{
                "manager": "kubectl",
                "operation": "Update",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:reason": {}}
            }]
        },
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Started",
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "reportingComponent": "",
        "reportingInstance": ""
    });
    assert_eq!(decode(&body("v1", "Event", &event)), expected);
}

#[test]
fn custom_resource_definition_schema() {
    let int_prop = ext::JsonSchemaProps {
        r#type: s("integer"),
        maximum: Some(10.0),
        minimum: Some(0.0),
        default: Some(ext::Json {
            raw: Some(b"3".to_vec()),
        }),
        ..Default::default()
    };
    let root_schema = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: map(&[
            ("replicas", int_prop),
            (
                "tags",
                ext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(ext::JsonSchemaProps {
                            r#type: s("string"),
                            ..Default::default()
                        })),
                        j_son_schemas: vec![],
                    })),
                    ..Default::default()
                },
            ),
            (
                "extra",
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(true),
                        schema: None,
                    })),
                    x_kubernetes_preserve_unknown_fields: Some(false),
                    ..Default::default()
                },
            ),
        ]),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: Some(meta("widgets.example.com", &[])),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                singular: s(""),
                kind: s("Widget"),
                list_kind: s(""),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(false),
                deprecated: Some(false),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(root_schema),
                }),
                ..Default::default()
            }],
            conversion: None,
            preserve_unknown_fields: Some(false),
        }),
        status: None,
    };
    let value = decode(&body("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd));
    assert_eq!(
        value["spec"],
        json!({
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": false,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "maximum": 10, "minimum": 0, "default": 3},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "extra": {
                            "type": "object",
                            "additionalProperties": true,
                            "x-kubernetes-preserve-unknown-fields": false
                        }
                    }
                }}
            }]
        })
    );
}

#[test]
fn raw_extension_holds_json_or_a_nested_protobuf_object() {
    let revision = apps::ControllerRevision {
        metadata: Some(meta("rev", &[])),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{}}}"#.to_vec()),
        }),
        revision: Some(0),
    };
    let value = decode(&body("apps/v1", "ControllerRevision", &revision));
    assert_eq!(value["data"], json!({"spec": {"template": {}}}));
    assert_eq!(value["revision"], json!(0));

    let nested = body(
        "v1",
        "Namespace",
        &core::Namespace {
            metadata: Some(meta("inner", &[])),
            ..Default::default()
        },
    );
    let revision = apps::ControllerRevision {
        metadata: Some(meta("rev", &[])),
        data: Some(RawExtension { raw: Some(nested) }),
        revision: Some(2),
    };
    let value = decode(&body("apps/v1", "ControllerRevision", &revision));
    assert_eq!(
        value["data"],
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "inner", "creationTimestamp": null}})
    );
}

#[test]
fn every_registry_kind_has_a_root() {
    for def in crate::registry::RESOURCES {
        let api_version = def.api_version();
        assert!(
            schema::ROOTS
                .iter()
                .any(|r| r.api_version == api_version && r.kind == def.kind),
            "no protobuf root for {api_version} {}",
            def.kind
        );
    }
}

/// `DeleteOptions` travels in the client's own group-version (`kubectl drain
/// --disable-eviction` deletes pods with the core client: `v1`/`DeleteOptions`).
#[test]
fn delete_options_in_any_served_group_version() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("1234"),
            resource_version: None,
        }),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        let value = decode(&body(api_version, "DeleteOptions", &options));
        assert_eq!(
            value,
            json!({
                "apiVersion": api_version,
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "1234"},
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
            })
        );
    }
    assert_eq!(
        decode_protobuf(&body("nope.example.com/v1", "DeleteOptions", &options)),
        Err(super::ProtobufError::UnknownKind {
            api_version: "nope.example.com/v1".into(),
            kind: "DeleteOptions".into()
        })
    );
}
