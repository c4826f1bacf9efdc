//! The Metrics API end to end: the kubelet's `/metrics/resource` (cgroup figures) → the
//! apiserver's scraper (`--metric-resolution 1s`) → `metrics.k8s.io` → `kubectl top`, with a
//! pod burning CPU and one idling. Upstream kubectl 1.37 reads it, and ours prints the same.

mod common;

use std::time::{Duration, Instant};

use common::{Node1, clients, container_state, kubectl, phase, seen, text};
use serde_json::{Value, json};

/// `CPU(cores)` of `pod` in `kubectl top pod` output, in millicores.
fn millicores(output: &str, pod: &str) -> Option<i64> {
    let line = output.lines().find(|l| l.split_whitespace().next() == Some(pod))?;
    line.split_whitespace().nth(1)?.strip_suffix('m')?.parse().ok()
}

async fn metrics_json(node: &Node1, path: &str) -> Value {
    let request = http::Request::get(path).body(Vec::new()).expect("request");
    node.client.request::<Value>(request).await.expect("metrics API")
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_top_shows_a_busy_pod_above_an_idle_one() {
    let node = Node1::start_with(&["--metric-resolution", "1s"], &[]).await;
    for (name, script) in [("busy", "while :; do :; done"), ("idle", "sleep 3600")] {
        node.create_pod(
            "default",
            json!({
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": node.image, "command": ["sh", "-c", script]}],
                },
            }),
        )
        .await;
    }
    for name in ["busy", "idle"] {
        node.wait_pod("default", name, "running", |p| {
            phase(p) == "Running" && container_state(p, "main").state.is_some_and(|s| s.running.is_some())
        })
        .await;
    }

    // Two scrapes later both pods have metrics; the busy one burns about a core.
    let clients = clients();
    let upstream = &clients[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let top = loop {
        let out = kubectl(upstream, &node, &["top", "pod"], None).await;
        let stdout = text(&out.stdout);
        if out.status.success() && millicores(&stdout, "busy").is_some() && millicores(&stdout, "idle").is_some() {
            break stdout;
        }
        assert!(
            Instant::now() < deadline,
            "no pod metrics: {stdout}{}\n{}",
            text(&out.stderr),
            node.kubelet.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (busy, idle) = (
        millicores(&top, "busy").unwrap_or(0),
        millicores(&top, "idle").unwrap_or(0),
    );
    assert!(busy >= 300 && busy > idle + 250, "busy {busy}m vs idle {idle}m:\n{top}");
    assert!(top.starts_with("NAME"), "{top}");

    // The API itself: non-zero memory, a window, label selectors, NotFound.
    let pods = metrics_json(
        &node,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dbusy",
    )
    .await;
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{pods}");
    assert_eq!(items[0]["metadata"]["name"], "busy");
    let memory = api::quantity::Quantity::from_json(&items[0]["containers"][0]["usage"]["memory"]).unwrap_or_default();
    assert!(memory.value() > 0, "{pods}");
    assert!(items[0]["window"].as_str().is_some_and(|w| w.ends_with('s')), "{pods}");
    let nodes = metrics_json(&node, "/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        nodes["items"][0]["metadata"]["name"],
        node.kubelet.node_name.as_str(),
        "{nodes}"
    );

    let node_top = kubectl(upstream, &node, &["top", "node"], None).await;
    let node_text = text(&node_top.stdout);
    assert!(node_top.status.success(), "{node_text}{}", text(&node_top.stderr));
    assert!(
        node_text
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(&node.kubelet.node_name)),
        "{node_text}"
    );

    // Ours prints what upstream prints; both read the same cached sample unless a scrape
    // lands between the two calls, so a differing pair is retried.
    let scenarios: &[&[&str]] = &[
        &["top", "pod"],
        &["top", "pod", "--containers", "--sum"],
        &["top", "pod", "-A", "--sort-by", "cpu"],
        &["top", "pod", "-l", "app=idle", "--no-headers"],
        &["top", "pod", "busy"],
        &["top", "pod", "nosuch"],
        &["top", "node"],
        &["top", "node", "--show-capacity", "--sort-by", "memory"],
        &["top", "pod", "--sort-by", "disk"],
    ];
    for args in scenarios {
        let mut attempts = 0;
        loop {
            let theirs = kubectl(&clients[0], &node, args, None).await;
            let ours = kubectl(&clients[1], &node, args, None).await;
            let (theirs, ours) = (seen(args, &theirs), seen(args, &ours));
            if theirs == ours {
                break;
            }
            attempts += 1;
            assert!(
                attempts < 8,
                "upstream (left) and ours (right) differ:\n{theirs:#?}\n{ours:#?}"
            );
        }
    }
}
