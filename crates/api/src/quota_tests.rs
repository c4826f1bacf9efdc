//! Table tests of quota accounting against upstream's evaluator behaviour.

use serde_json::{Value, json};

use super::*;

fn now() -> jiff::Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn text(usage: &Usage) -> BTreeMap<String, String> {
    usage.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

fn quota(name: &str, hard: Value, used: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"hard": hard.clone()}, "status": {"hard": hard, "used": used}})
}

#[test]
fn pod_usage_sums_containers_and_raises_to_init_containers() {
    let mut p = pod(json!([
        {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
        {"name": "b", "resources": {"requests": {"cpu": "150m", "memory": "64Mi"}}}
    ]));
    p["spec"]["initContainers"] = json!([{"name": "i", "resources": {"requests": {"cpu": "1"}}}]);
    let got = text(&usage("", "pods", &p, now()));
    let want: BTreeMap<String, String> = [
        ("count/pods", "1"),
        ("pods", "1"),
        ("cpu", "1"),
        ("requests.cpu", "1"),
        ("memory", "128Mi"),
        ("requests.memory", "128Mi"),
        ("limits.cpu", "200m"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn finished_and_expired_pods_use_only_their_object_count() {
    let mut done = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
    done["status"]["phase"] = json!("Succeeded");
    assert_eq!(
        text(&usage("", "pods", &done, now())).keys().collect::<Vec<_>>(),
        ["count/pods"]
    );
    let mut expired = pod(json!([{"name": "a"}]));
    expired["metadata"]["deletionTimestamp"] = json!("2025-12-31T23:59:00Z");
    expired["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    assert_eq!(
        text(&usage("", "pods", &expired, now())).keys().collect::<Vec<_>>(),
        ["count/pods"]
    );
    // Still within its grace period: counted in full.
    expired["metadata"]["deletionGracePeriodSeconds"] = json!(300);
    assert!(usage("", "pods", &expired, now()).contains_key("pods"));
}

#[test]
fn services_pvcs_and_other_objects() {
    let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
    assert_eq!(
        text(&usage("", "services", &svc, now())),
        [("count/services", "1"), ("services", "1"), ("services.nodeports", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    );
    let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
    assert!(usage("", "services", &lb, now()).contains_key("services.loadbalancers"));
    let pvc = json!({"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}});
    let got = text(&usage("", "persistentvolumeclaims", &pvc, now()));
    assert_eq!(got["requests.storage"], "1Gi");
    assert_eq!(got["fast.storageclass.storage.k8s.io/requests.storage"], "1Gi");
    assert_eq!(got["persistentvolumeclaims"], "1");
    assert_eq!(
        text(&usage("apps", "deployments", &json!({}), now()))
            .keys()
            .collect::<Vec<_>>(),
        ["count/deployments.apps"]
    );
    assert_eq!(
        text(&usage("", "configmaps", &json!({}), now()))
            .keys()
            .collect::<Vec<_>>(),
        ["configmaps", "count/configmaps"]
    );
}

#[test]
fn scopes_select_pods_only() {
    let best_effort = pod(json!([{"name": "a"}]));
    let burstable = pod(json!([{"name": "a", "resources": {"requests": {"memory": "1Mi"}}}]));
    let hard = json!({"pods": "3"});
    let scoped = |scopes: Value| json!({"spec": {"hard": hard.clone(), "scopes": scopes}});
    let cases = [
        ("no scope", json!({"spec": {"hard": hard.clone()}}), &best_effort, true),
        (
            "BestEffort, best effort",
            scoped(json!(["BestEffort"])),
            &best_effort,
            true,
        ),
        (
            "BestEffort, burstable",
            scoped(json!(["BestEffort"])),
            &burstable,
            false,
        ),
        (
            "NotBestEffort, burstable",
            scoped(json!(["NotBestEffort"])),
            &burstable,
            true,
        ),
        ("NotTerminating", scoped(json!(["NotTerminating"])), &best_effort, true),
        ("Terminating", scoped(json!(["Terminating"])), &best_effort, false),
    ];
    for (name, q, object, want) in cases {
        assert_eq!(matches(&q, &q["spec"]["hard"], "", "pods", object), want, "{name}");
    }
    let high = {
        let mut p = best_effort.clone();
        p["spec"]["priorityClassName"] = json!("high");
        p
    };
    let by_class = json!({"spec": {"hard": hard.clone(), "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
    assert!(matches(&by_class, &hard, "", "pods", &high));
    assert!(!matches(&by_class, &hard, "", "pods", &best_effort));
    // A scoped quota never counts anything but pods; an unscoped one only what it tracks.
    let services = json!({"spec": {"hard": {"services": "1"}, "scopes": ["BestEffort"]}});
    assert!(!matches(
        &services,
        &services["spec"]["hard"],
        "",
        "services",
        &json!({})
    ));
    assert!(!matches(&json!({}), &json!({"pods": "1"}), "", "services", &json!({})));
}

#[test]
fn compute_quotas_require_every_container_to_say() {
    let p = pod(json!([
        {"name": "web", "resources": {"requests": {"cpu": "1"}}},
        {"name": "log"}
    ]));
    assert_eq!(
        constraints(
            "",
            "pods",
            &json!({"requests.cpu": "2", "limits.memory": "1Gi", "pods": "5"}),
            &p
        ),
        Err("must specify limits.memory for: log,web; requests.cpu for: log".to_string())
    );
    assert_eq!(constraints("", "pods", &json!({"pods": "5"}), &p), Ok(()));
}

#[test]
fn charge_refuses_with_upstream_messages() {
    let p = pod(
        json!([{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}}]),
    );
    let quotas = [
        quota("count", json!({"pods": "2"}), json!({"pods": "1"})),
        quota(
            "compute",
            json!({"requests.cpu": "1", "requests.memory": "1Gi"}),
            json!({"requests.cpu": "600m", "requests.memory": "0"}),
        ),
    ];
    assert_eq!(
        charge(&quotas, "", "pods", &p, None, now()),
        Err(Refused(
            "exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=600m, limited: requests.cpu=1"
                .into()
        ))
    );
    let roomy = [
        quotas[0].clone(),
        quota(
            "compute",
            json!({"requests.cpu": "2", "requests.memory": "2Gi"}),
            json!({"requests.cpu": "600m", "requests.memory": "0"}),
        ),
    ];
    let charged = charge(&roomy, "", "pods", &p, None, now()).unwrap();
    let charged: Vec<(usize, BTreeMap<String, String>)> = charged.iter().map(|(i, u)| (*i, text(u))).collect();
    assert_eq!(charged[0], (0, [("pods".to_string(), "2".to_string())].into()));
    assert_eq!(
        charged[1],
        (
            1,
            [
                ("requests.cpu".to_string(), "1100m".to_string()),
                ("requests.memory".to_string(), "1Gi".to_string())
            ]
            .into()
        )
    );
    let unknown =
        [json!({"metadata": {"name": "fresh"}, "spec": {"hard": {"pods": "1"}}, "status": {"hard": {"pods": "1"}}})];
    assert_eq!(
        charge(&unknown, "", "pods", &p, None, now()),
        Err(Refused("status unknown for quota: fresh, resources: pods".into()))
    );
    // A quota the controller has not seen yet (no status.hard) constrains nothing.
    let unseen = [json!({"metadata": {"name": "new"}, "spec": {"hard": {"pods": "0"}}})];
    assert_eq!(charge(&unseen, "", "pods", &p, None, now()), Ok(vec![]));
}

#[test]
fn recompute_sums_what_the_quota_tracks() {
    let q = json!({"spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/configmaps": "5", "services": "2"}}});
    let a = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "250m"}}}]));
    let b = pod(json!([{"name": "b", "resources": {"requests": {"cpu": "1"}}}]));
    let cm = json!({});
    let objects = [("", "pods", &a), ("", "pods", &b), ("", "configmaps", &cm)];
    let used = text(&recompute(&q, objects, now()));
    assert_eq!(
        used,
        [
            ("count/configmaps", "1"),
            ("pods", "2"),
            ("requests.cpu", "1250m"),
            ("services", "0")
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
}

#[test]
fn updates_charge_only_what_grows() {
    let quotas = [quota(
        "svc",
        json!({"services.nodeports": "1", "services.loadbalancers": "0", "requests.storage": "10Gi"}),
        json!({"services.nodeports": "0", "services.loadbalancers": "0", "requests.storage": "4Gi"}),
    )];
    let cluster_ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}, {"port": 81}]}});
    let node_port = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}});
    assert_eq!(
        charge(&quotas, "", "services", &node_port, Some(&cluster_ip), now()),
        Err(Refused(
            "exceeded quota: svc, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"
                .into()
        ))
    );
    // Unchanged or shrinking usage is not charged (nor refunded).
    assert_eq!(
        charge(&quotas, "", "services", &node_port, Some(&node_port), now()),
        Ok(vec![])
    );
    assert_eq!(
        charge(&quotas, "", "services", &cluster_ip, Some(&node_port), now()),
        Ok(vec![])
    );
    let claim = |size: &str| json!({"spec": {"resources": {"requests": {"storage": size}}}});
    let charged = charge(
        &quotas,
        "",
        "persistentvolumeclaims",
        &claim("5Gi"),
        Some(&claim("2Gi")),
        now(),
    )
    .unwrap();
    assert_eq!(text(&charged[0].1)["requests.storage"], "7Gi");
    assert_eq!(
        charge(&quotas, "", "persistentvolumeclaims", &claim("9Gi"), Some(&claim("2Gi")), now()),
        Err(Refused(
            "exceeded quota: svc, requested: requests.storage=7Gi, used: requests.storage=4Gi, limited: requests.storage=10Gi"
                .into()
        ))
    );
    assert!(handles_update("", "services"));
    assert!(handles_update("", "persistentvolumeclaims"));
    assert!(!handles_update("", "pods"));
    assert!(!handles_update("", "configmaps"));
}
