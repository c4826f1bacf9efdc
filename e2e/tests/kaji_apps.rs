//! The example applications of `manifests/examples/` on a three-node `kaji up --config`
//! cluster, driven with the real upstream kubectl only. The test's registry listens on the
//! stand-in host's loopback (`127.0.0.1:PORT`, reached by the nodes through kaji's relay). The
//! cluster file gives each node a zone label, points `docker.io` at that registry (so the
//! examples' `busybox:1.36` is pulled unchanged) and shortens the controller-manager's node
//! grace period.
//!
//! Checked, as a user would see it: the web Deployment answers through its NodePort on every
//! node and through `kubectl port-forward`; scaled to 6 it spreads over the 3 nodes; a rolling
//! update to a new image and `rollout undo` back; `logs -f` follows a pod to its end; the Job
//! completes its 5 pods; the CronJob fires; the DaemonSet runs on every node; the StatefulSet's
//! members start in order and answer by their DNS names; deleting a namespace removes what was
//! in it; a stopped node turns NotReady and the pods that tolerate that only briefly are
//! started elsewhere; `kaji down` leaves the host as it was.
//!
//! Needs every workspace binary built first (`cargo test --workspace` does that) and root.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{Host, text, wait_until};
use serde_json::Value;
use testkit::netlab::NetLab;
use testkit::registry::{ImageOptions, Registry, push_busybox_image};

const NODES: [&str; 3] = ["node0", "node1", "node2"];

/// Pods matching `selector` that are not being deleted, as JSON.
fn live_pods(host: &Host, selector: &str) -> Vec<Value> {
    let listed: Value =
        serde_json::from_str(&host.ok(&["get", "pods", "-l", selector, "-o", "json"])).expect("pod list");
    listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// How many live pods of `selector` each node runs.
fn per_node(host: &Host, selector: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for pod in live_pods(host, selector) {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        *counts.entry(node).or_default() += 1;
    }
    counts
}

/// Waits until the live pods of `selector` all run `image` (and there are `count`).
fn wait_for_image(host: &Host, selector: &str, image: &str, count: usize) {
    wait_until(
        &format!("{count} pods of {selector} on {image}"),
        Duration::from_secs(120),
        || text(&host.kubectl(&["get", "pods", "-o", "wide"])),
        || {
            let pods = live_pods(host, selector);
            pods.len() == count && pods.iter().all(|p| p["spec"]["containers"][0]["image"] == image)
        },
    );
}

fn apply_yaml(host: &Host, file: &str, yaml: &str) {
    let path = host.home.path().join(file);
    std::fs::write(&path, yaml).expect("manifest");
    host.ok(&["apply", "-f", &path.display().to_string()]);
}

#[test]
fn the_example_apps_run_on_three_nodes_and_survive_a_node_stopping() {
    let mut lab = NetLab::create(0).expect("lab");
    let registry = Registry::start().expect("registry");
    push_busybox_image(registry.host(), "library/busybox:1.36", &ImageOptions::default()).expect("push 1.36");
    let second = ImageOptions {
        env: vec!["VERSION=2".into()],
        ..Default::default()
    };
    push_busybox_image(registry.host(), "library/busybox:1.37", &second).expect("push 1.37");
    let port = registry.port();
    // The registry on the stand-in host's loopback, as a user's `docker-registry` would be.
    let on_loopback = lab
        .expose_host_port_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("registry in the lab")
        .to_string();
    let name = format!("a{}", std::process::id());
    let mut host = Host::new(lab, name.clone());
    let before = host.footprint();

    let config = host.home.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kaji.dev/v1alpha1
kind: Cluster
name: {name}
nodes:
- labels: {{topology.kubernetes.io/zone: zone-a}}
- labels: {{topology.kubernetes.io/zone: zone-b}}
- labels: {{topology.kubernetes.io/zone: zone-c}}
insecureRegistries: [\"{on_loopback}\"]
registryMirrors: {{docker.io: \"{on_loopback}\"}}
extraArgs:
  kube-controller-manager: {{node-monitor-grace-period: 20s}}
"
        ),
    )
    .expect("cluster.yaml");
    let started = Instant::now();
    let up = host.kaji(&[
        "up",
        "--config",
        &config.display().to_string(),
        "--kubeconfig",
        &host.kubeconfig.display().to_string(),
    ]);
    host.up = true;
    assert!(up.status.success(), "kaji up: {}\n{}", text(&up), host.cluster_logs());
    eprintln!("kaji up --config (3 nodes) took {:?}", started.elapsed());
    let zones = host.ok(&[
        "get",
        "nodes",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.topology\.kubernetes\.io/zone} {end}"#,
    ]);
    assert_eq!(
        zones.trim(),
        format!("{name}-node0=zone-a {name}-node1=zone-b {name}-node2=zone-c"),
        "node labels from the cluster file"
    );

    // Every example, as shipped.
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    host.ok(&["apply", "-f", &examples.display().to_string()]);

    // The web Deployment answers on every node's NodePort, then through a port-forward.
    host.ok(&["rollout", "status", "deployment/web", "--timeout", "180s"]);
    // The cheat sheet's way to read what happened: the kubelets' and controllers' events carry
    // lastTimestamp, as upstream's do.
    let events = host.ok(&["get", "events", "--sort-by", ".lastTimestamp"]);
    for reason in [
        "Scheduled",
        "Pulled",
        "Started",
        "ScalingReplicaSet",
        "SuccessfulCreate",
    ] {
        assert!(events.contains(reason), "no {reason} event in:\n{events}");
    }
    for node in 10..13 {
        host.wait_for_answer(&format!("http://10.250.0.{node}:30080/"));
    }
    let mut forward = host
        .lab
        .lab
        .command("kubectl")
        .arg("--kubeconfig")
        .arg(&host.kubeconfig)
        .args(["port-forward", "svc/web", "18080:80"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    // Read all it prints (a closed pipe would end it at its second line).
    let (lines, first) = std::sync::mpsc::channel();
    let stdout = forward.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let first = first
        .recv_timeout(Duration::from_secs(30))
        .expect("port-forward output");
    assert!(first.starts_with("Forwarding from 127.0.0.1:18080"), "{first}");
    let through = host.fetch("http://127.0.0.1:18080/");
    let _ = forward.kill();
    let forwarded = forward.wait_with_output().expect("port-forward's output");
    assert!(
        String::from_utf8_lossy(&through.stdout).starts_with("web-"),
        "through the port-forward: {}\nkubectl port-forward said: {}",
        text(&through),
        text(&forwarded)
    );

    // Scaled to 6, the pods spread over the three nodes.
    host.ok(&["scale", "deployment/web", "--replicas", "6"]);
    host.ok(&["rollout", "status", "deployment/web", "--timeout", "180s"]);
    let spread = per_node(&host, "app=web");
    assert_eq!(spread.len(), 3, "6 web pods over 3 nodes: {spread:?}");
    assert!(spread.values().all(|&n| n <= 3), "6 web pods over 3 nodes: {spread:?}");

    // A rolling update to a new image, and back with `rollout undo`.
    host.ok(&["set", "image", "deployment/web", "httpd=busybox:1.37"]);
    host.ok(&["rollout", "status", "deployment/web", "--timeout", "180s"]);
    wait_for_image(&host, "app=web", "busybox:1.37", 6);
    let updated = &live_pods(&host, "app=web")[0];
    let updated = updated["metadata"]["name"].as_str().expect("name");
    assert_eq!(
        host.ok(&["exec", updated, "--", "sh", "-c", "echo $VERSION"]).trim(),
        "2"
    );
    host.ok(&["rollout", "undo", "deployment/web"]);
    host.ok(&["rollout", "status", "deployment/web", "--timeout", "180s"]);
    wait_for_image(&host, "app=web", "busybox:1.36", 6);

    // `logs -f` follows a running pod until its container ends; its image is named by the
    // registry's loopback address, as on the host.
    let by_loopback = format!("{on_loopback}/library/busybox:1.36");
    host.ok(&[
        "run",
        "counter",
        "--image",
        &by_loopback,
        "--restart",
        "Never",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 1; done",
    ]);
    wait_until(
        "the counter's first line",
        Duration::from_secs(60),
        || text(&host.kubectl(&["describe", "pod", "counter"])),
        || String::from_utf8_lossy(&host.kubectl(&["logs", "counter"]).stdout).contains("line 1"),
    );
    let following = Instant::now();
    let followed = host.ok(&["logs", "-f", "counter"]);
    let lines: Vec<&str> = followed.lines().collect();
    assert_eq!(lines.len(), 8, "{followed}");
    assert_eq!(lines.last(), Some(&"line 8"));
    assert!(
        following.elapsed() >= Duration::from_secs(3),
        "logs -f returned after {:?}: it did not follow",
        following.elapsed()
    );

    // The Job's five completions.
    host.ok(&["wait", "--for=condition=complete", "job/squares", "--timeout", "180s"]);
    let squares = host.ok(&["logs", "-l", "job-name=squares"]);
    assert_eq!(
        squares.lines().filter(|l| l.contains("squared is")).count(),
        5,
        "{squares}"
    );

    // One reporter on every node, saying which.
    host.ok(&["rollout", "status", "daemonset/node-reporter", "--timeout", "180s"]);
    let reporters = per_node(&host, "app=node-reporter");
    assert_eq!(
        reporters.keys().cloned().collect::<Vec<_>>(),
        NODES.map(|n| format!("{name}-{n}")),
        "{reporters:?}"
    );
    let reporter = &live_pods(&host, "app=node-reporter")[0];
    let reporter_name = reporter["metadata"]["name"].as_str().expect("name");
    let said = host.ok(&["logs", reporter_name]);
    assert!(
        said.contains(&format!(
            "running on {}",
            reporter["spec"]["nodeName"].as_str().expect("node")
        )),
        "{said}"
    );

    // The StatefulSet's members were created one after the other became Ready, and answer by
    // their stable names through the headless Service.
    host.ok(&["rollout", "status", "statefulset/db", "--timeout", "180s"]);
    let members: BTreeMap<String, Value> = live_pods(&host, "app=db")
        .into_iter()
        .map(|p| (p["metadata"]["name"].as_str().unwrap_or("").to_string(), p))
        .collect();
    assert_eq!(members.keys().cloned().collect::<Vec<_>>(), ["db-0", "db-1", "db-2"]);
    for (earlier, later) in [("db-0", "db-1"), ("db-1", "db-2")] {
        let ready_at = members[earlier]["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .expect("Ready time")
            .to_string();
        let created = members[later]["metadata"]["creationTimestamp"]
            .as_str()
            .expect("created");
        // RFC 3339 in UTC with second precision: the strings order as the times do.
        assert!(
            created >= ready_at.as_str(),
            "{later} created {created}, {earlier} Ready {ready_at}"
        );
    }
    wait_until(
        "db-2 to answer db-0 by name",
        Duration::from_secs(30),
        || text(&host.kubectl(&["exec", "db-0", "--", "nslookup", "db-2.db"])),
        || {
            let answer = host.kubectl(&["exec", "db-0", "--", "sh", "-c", "nc db-2.db 7000 </dev/null"]);
            String::from_utf8_lossy(&answer.stdout).trim() == "db-2"
        },
    );

    // Deleting a namespace deletes what is in it.
    host.ok(&["create", "namespace", "scratch"]);
    host.ok(&[
        "-n",
        "scratch",
        "create",
        "deployment",
        "sleeper",
        "--image",
        "busybox:1.36",
        "--replicas",
        "2",
        "--",
        "sleep",
        "3600",
    ]);
    host.ok(&[
        "-n",
        "scratch",
        "create",
        "configmap",
        "settings",
        "--from-literal",
        "a=b",
    ]);
    host.ok(&[
        "-n",
        "scratch",
        "rollout",
        "status",
        "deployment/sleeper",
        "--timeout",
        "120s",
    ]);
    host.ok(&["delete", "namespace", "scratch", "--timeout", "120s"]);
    let gone = host.kubectl(&["get", "namespace", "scratch"]);
    assert!(
        !gone.status.success() && text(&gone).contains("NotFound"),
        "{}",
        text(&gone)
    );
    let everywhere = host.ok(&["get", "pods", "-A", "-o", "jsonpath={.items[*].metadata.namespace}"]);
    assert!(!everywhere.contains("scratch"), "{everywhere}");

    // The CronJob has fired by now (every minute) and its Job succeeded.
    wait_until(
        "the CronJob to fire",
        Duration::from_secs(120),
        || text(&host.kubectl(&["get", "cronjob,jobs"])),
        || {
            !host
                .ok(&["get", "cronjob", "tick", "-o", "jsonpath={.status.lastSuccessfulTime}"])
                .is_empty()
        },
    );

    // A node stops: it turns NotReady, and pods that tolerate that for 2 s only are started
    // again on the other nodes.
    apply_yaml(
        &host,
        "mover.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: mover}
spec:
  replicas: 3
  selector: {matchLabels: {app: mover}}
  template:
    metadata: {labels: {app: mover}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - {name: sleep, image: busybox:1.36, command: [sleep, '3600']}
",
    );
    host.ok(&["rollout", "status", "deployment/mover", "--timeout", "120s"]);
    // Not node0: the host reaches the pods through it.
    let victim = per_node(&host, "app=mover")
        .into_keys()
        .find(|node| node != &format!("{name}-node0"))
        .expect("a mover pod off node0");
    host.kaji_ok(&["node", "--name", &name, "stop", &victim]);
    let stopped = Instant::now();
    host.wait_node_status(&victim, "NotReady", Duration::from_secs(120));
    eprintln!("{victim} NotReady after {:?}", stopped.elapsed());
    wait_until(
        "the mover pods to be started off the stopped node",
        Duration::from_secs(120),
        || text(&host.kubectl(&["get", "pods", "-l", "app=mover", "-o", "wide"])) + &host.cluster_logs(),
        || {
            let pods = live_pods(&host, "app=mover");
            pods.len() == 3
                && pods
                    .iter()
                    .all(|p| is_ready(p) && p["spec"]["nodeName"] != victim.as_str())
        },
    );
    eprintln!("mover rescheduled after {:?}", stopped.elapsed());
    host.kaji_ok(&["node", "--name", &name, "start", &victim]);
    host.wait_node_status(&victim, "Ready", Duration::from_secs(60));
    // Back, its kubelet finishes the pods that were evicted while it was away.
    wait_until(
        "the evicted pods to be gone",
        Duration::from_secs(60),
        || text(&host.kubectl(&["get", "pods", "-l", "app=mover", "-o", "wide"])),
        || {
            let all = host.ok(&[
                "get",
                "pods",
                "-l",
                "app=mover",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ]);
            all.split_whitespace().count() == 3
        },
    );

    host.down(&before);
}
