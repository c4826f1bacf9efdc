//! Golden tests: objects captured from a kaji apiserver, rendered and compared byte for byte
//! with what upstream kubectl 1.37 printed for them (`testdata/<case>.json` and `.txt`).

use jiff::{Timestamp, ToSpan, Zoned, tz::TimeZone};
use serde_json::Value;

use super::{Related, render};

fn list(v: &Value, key: &str) -> Option<Vec<Value>> {
    v.get(key).and_then(Value::as_array).cloned()
}

/// Renders a captured case at `now`.
fn render_case(fixture: &Value, now: &Zoned) -> String {
    let rel = Related {
        // A single described object always has its events fetched (none when the fixture has none).
        events: Some(list(fixture, "events").unwrap_or_default()),
        pods: list(fixture, "pods"),
        pods_error: None,
        replica_sets: list(fixture, "replicaSets").unwrap_or_default(),
        endpoint_slices: list(fixture, "endpointSlices").unwrap_or_default(),
        resource_quotas: list(fixture, "resourceQuotas"),
        limit_ranges: list(fixture, "limitRanges"),
        lease: match (fixture.get("lease"), fixture.get("leaseError")) {
            (Some(l), _) => Some(Ok(l.clone())),
            (None, Some(e)) => Some(Err(e.as_str().unwrap_or("").to_string())),
            _ => None,
        },
    };
    let group = fixture["group"].as_str().unwrap_or("");
    let kind = fixture["kind"].as_str().unwrap_or("");
    render(group, kind, &fixture["object"], &rel, now)
}

/// Compares the rendering of `case` with upstream's output; ages may be one second later
/// than the recorded capture time, as kubectl read the clock after it.
fn golden(case: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/describe/testdata");
    let json = std::fs::read_to_string(format!("{dir}/{case}.json")).expect("fixture");
    let expected = std::fs::read_to_string(format!("{dir}/{case}.txt")).expect("expected output");
    let fixture: Value = serde_json::from_str(&json).expect("fixture json");
    let at: Timestamp = fixture["now"].as_str().unwrap_or("").parse().expect("capture time");
    let mut last = String::new();
    for delay in [0, 1] {
        let now = Zoned::new(at + delay.seconds(), TimeZone::UTC);
        last = render_case(&fixture, &now);
        if last == expected {
            return;
        }
    }
    let diff: Vec<String> = expected
        .lines()
        .zip(last.lines().chain(std::iter::repeat("<missing>")))
        .enumerate()
        .filter(|(_, (e, g))| e != g)
        .take(5)
        .map(|(n, (e, g))| format!("line {}:\n  want {e:?}\n  got  {g:?}", n + 1))
        .collect();
    panic!(
        "{case}: output differs from upstream\n{}\n--- got ---\n{last}",
        diff.join("\n")
    );
}

macro_rules! golden_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                golden(stringify!($name));
            }
        )*
    };
}

golden_tests!(
    pod_running,
    pod_pending,
    pod_guaranteed,
    deployment,
    replicaset,
    service,
    service_kubernetes,
    node,
    namespace,
    namespace_default,
    configmap,
    secret,
    job,
    cronjob,
    daemonset,
    statefulset,
    serviceaccount,
    serviceaccount_plain,
    endpoints,
    lease_generic,
    job_indexed,
    cronjob_active,
    service_nodeport,
    service_lb,
    service_external,
    secret_token,
    configmap_binary,
    namespace_limits,
    generic_controllerrevision,
    generic_event,
    pod_terminating,
    deployment_status,
    daemonset_pods,
);

/// Describes live objects through [`super::describe`] and compares with upstream kubectl run
/// against the same server. Needs `KAJI_DESCRIBE_KUBECONFIG` (an apiserver with the objects
/// of `testdata`); run with `--ignored`.
#[tokio::test]
#[ignore = "needs a running apiserver and upstream kubectl"]
async fn live_matches_upstream_kubectl() {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::core::{GroupVersionKind, discovery::ApiResource};

    let Ok(path) = std::env::var("KAJI_DESCRIBE_KUBECONFIG") else {
        return;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let cases = [
        ("", "v1", "Pod", "pods", "default", "api-7c9d8f-aaaaa"),
        ("apps", "v1", "Deployment", "deployments", "default", "api"),
        ("apps", "v1", "ReplicaSet", "replicasets", "default", "api-7c9d8f"),
        ("", "v1", "Service", "services", "default", "api"),
        ("", "v1", "Node", "nodes", "", "node1"),
        ("", "v1", "Namespace", "namespaces", "", "team-a"),
        ("", "v1", "ServiceAccount", "serviceaccounts", "default", "multi"),
        ("", "v1", "ConfigMap", "configmaps", "default", "app-config"),
        (
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            "kube-node-lease",
            "node1",
        ),
        ("", "v1", "Pod", "pods", "default", "doomed"),
        ("", "v1", "Pod", "pods", "default", "web"),
        ("apps", "v1", "DaemonSet", "daemonsets", "default", "agent"),
        ("apps", "v1", "StatefulSet", "statefulsets", "default", "db"),
        ("batch", "v1", "Job", "jobs", "default", "indexed"),
        ("batch", "v1", "CronJob", "cronjobs", "default", "nightly"),
        ("", "v1", "Service", "services", "default", "lb"),
        ("", "v1", "Endpoints", "endpoints", "default", "kubernetes"),
        ("", "v1", "Secret", "secrets", "default", "tok"),
        ("", "v1", "Namespace", "namespaces", "", "default"),
        ("", "v1", "Event", "events", "default", "ev3"),
        (
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            "default",
            "agent-rev1",
        ),
    ];
    let mut failures = Vec::new();
    for (group, version, kind, plural, ns, name) in cases {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let url = if ns.is_empty() {
            format!("{base}/{plural}/{name}")
        } else {
            format!("{base}/namespaces/{ns}/{plural}/{name}")
        };
        let req = http::Request::get(url).body(Vec::new()).expect("request");
        let obj: Value = client.request(req).await.expect("get object");
        let ours = super::describe(&client, &resource, &obj, true).await.expect("describe");
        let mut args = vec!["--kubeconfig", path.as_str(), "describe", plural, name];
        if !ns.is_empty() {
            args.extend(["-n", ns]);
        }
        let out = std::process::Command::new("kubectl")
            .args(&args)
            .output()
            .expect("kubectl");
        let theirs = String::from_utf8_lossy(&out.stdout);
        // upstream prints limit ranges, config map and secret keys in Go map order (random)
        let sorted = |s: &str| {
            let mut l: Vec<&str> = s.lines().collect();
            l.sort_unstable();
            l.join("\n")
        };
        let map_ordered = matches!(kind, "Namespace" | "ConfigMap" | "Secret");
        if ours != theirs && !(map_ordered && sorted(&ours) == sorted(&theirs)) {
            failures.push(format!(
                "{kind} {name}:\n--- ours ---\n{ours}\n--- kubectl ---\n{theirs}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
