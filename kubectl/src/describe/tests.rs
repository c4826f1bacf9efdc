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
        events: list(fixture, "events"),
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
);
