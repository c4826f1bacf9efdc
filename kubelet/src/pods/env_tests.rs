//! Tests for container environments.

use super::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVarSource, ObjectFieldSelector, PodSpec,
    ResourceFieldSelector, ResourceRequirements, SecretKeySelector, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pod() -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            uid: Some("u-1".into()),
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn sources() -> EnvSources {
    EnvSources {
        config_maps: BTreeMap::from([(
            "cfg".into(),
            ConfigMap {
                data: Some(BTreeMap::from([
                    ("color".into(), "blue".into()),
                    ("size".into(), "L".into()),
                ])),
                ..Default::default()
            },
        )]),
        secrets: BTreeMap::from([(
            "sec".into(),
            Secret {
                data: Some(BTreeMap::from([("password".into(), ByteString(b"hunter2".to_vec()))])),
                ..Default::default()
            },
        )]),
        services: vec![Service {
            metadata: ObjectMeta {
                name: Some("kubernetes".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.1".into()),
                ports: Some(vec![ServicePort {
                    name: Some("https".into()),
                    port: 443,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }],
        node_allocatable_milli_cpu: 2000,
        node_allocatable_memory: 1 << 30,
    }
}

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(source),
    }
}

fn lookup(env: &[String], name: &str) -> Option<String> {
    env.iter()
        .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[test]
fn builds_the_environment_in_upstream_order() {
    let container = Container {
        name: "app".into(),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: "cfg".into(),
                optional: None,
            }),
            prefix: Some("CFG_".into()),
            secret_ref: None,
        }]),
        env: Some(vec![
            var("GREETING", "hello"),
            var("MESSAGE", "$(GREETING) world $$(GREETING) $(MISSING)"),
            var("PATH", "/custom"),
            from(
                "COLOR",
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cfg".into(),
                        key: "color".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
            ),
            from(
                "PASSWORD",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "sec".into(),
                        key: "password".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
            ),
            from(
                "POD_NAME",
                EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        api_version: None,
                    }),
                    ..Default::default()
                },
            ),
            from(
                "APP_LABEL",
                EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.labels['app']".into(),
                        api_version: None,
                    }),
                    ..Default::default()
                },
            ),
            from(
                "CPU_LIMIT",
                EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.cpu".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            from(
                "MEM_REQUEST_MI",
                EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "requests.memory".into(),
                        divisor: Some(Q("1Mi".into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("memory".into(), Q("64Mi".into()))])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let env = environment(
        &pod(),
        &container,
        &["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
        &sources(),
    )
    .unwrap();
    assert_eq!(lookup(&env, "PATH").as_deref(), Some("/custom"));
    assert_eq!(lookup(&env, "HOME").as_deref(), Some("/root"));
    assert_eq!(lookup(&env, "CFG_color").as_deref(), Some("blue"));
    assert_eq!(
        lookup(&env, "MESSAGE").as_deref(),
        Some("hello world $(GREETING) $(MISSING)")
    );
    assert_eq!(lookup(&env, "COLOR").as_deref(), Some("blue"));
    assert_eq!(lookup(&env, "PASSWORD").as_deref(), Some("hunter2"));
    assert_eq!(lookup(&env, "POD_NAME").as_deref(), Some("web"));
    assert_eq!(lookup(&env, "APP_LABEL").as_deref(), Some("web"));
    assert_eq!(lookup(&env, "CPU_LIMIT").as_deref(), Some("2"));
    assert_eq!(lookup(&env, "MEM_REQUEST_MI").as_deref(), Some("64"));
    assert_eq!(lookup(&env, "KUBERNETES_SERVICE_HOST").as_deref(), Some("10.96.0.1"));
    assert_eq!(
        lookup(&env, "KUBERNETES_PORT_443_TCP").as_deref(),
        Some("tcp://10.96.0.1:443")
    );
}

#[test]
fn missing_references_are_config_errors_unless_optional() {
    let key_ref = |name: &str, optional| EnvVarSource {
        config_map_key_ref: Some(ConfigMapKeySelector {
            name: name.into(),
            key: "nope".into(),
            optional,
        }),
        ..Default::default()
    };
    let container = |source| Container {
        name: "c".into(),
        env: Some(vec![from("X", source)]),
        ..Default::default()
    };
    let err = environment(&pod(), &container(key_ref("absent", None)), &[], &sources()).unwrap_err();
    assert_eq!(err.to_string(), "configmap \"absent\" not found");
    let err = environment(&pod(), &container(key_ref("cfg", None)), &[], &sources()).unwrap_err();
    assert_eq!(err.to_string(), "couldn't find key nope in ConfigMap shop/cfg");
    let env = environment(&pod(), &container(key_ref("absent", Some(true))), &[], &sources()).unwrap();
    assert_eq!(lookup(&env, "X"), None);
}

#[test]
fn expansion_edge_cases() {
    let defined = BTreeMap::from([("A".to_string(), "1".to_string())]);
    assert_eq!(expand("$(A)$(A)", &defined), "11");
    assert_eq!(expand("$(A", &defined), "$(A");
    assert_eq!(expand("$", &defined), "$");
    assert_eq!(expand("x$$y", &defined), "x$y");
    assert_eq!(expand("ünï$(A)", &defined), "ünï1");
}
