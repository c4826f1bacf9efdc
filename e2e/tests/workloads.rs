//! The whole control plane and two nodes, driven through the real upstream kubectl: a
//! Deployment is scheduled, its pods really run on the kubelets, `rollout status` waits for
//! them, `logs` reads them, a new image rolls out and `rollout undo` brings the old one back,
//! and scaling down stops pods. Our own kubectl follows the second rollout, shows the same
//! history as upstream's and does the undo.
//!
//! Autoscaling on real metrics: a Deployment whose pod busy-loops against a 50m CPU request
//! is put under `kubectl autoscale --cpu=50%`; the kubelets' `/metrics/resource` feed the
//! apiserver's Metrics API (`--metric-resolution 2s`), the controller-manager's autoscaler
//! (`--horizontal-pod-autoscaler-sync-period 3s`) reads the utilisation, records a
//! `SuccessfulRescale` and takes the Deployment to its maximum of three running pods.
//!
//! Needs every workspace binary built first (`cargo test --workspace` does that).

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::apiserver::ApiServer;
use testkit::component::Component;
use testkit::kubelet::Kubelet;
use testkit::registry::{ImageOptions, Registry, push_busybox_image};

struct Cluster {
    kubeconfig: String,
    _nodes: Vec<Kubelet>,
    _scheduler: Component,
    controllers: Component,
    _registry: Registry,
    _apiserver: ApiServer,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.run(std::path::Path::new("kubectl"), args)
    }

    /// Runs our own kubectl (the workspace binary) and asserts it succeeded.
    fn ours(&self, args: &[&str]) -> String {
        let ours = testkit::workspace_binary("kubectl").expect("our kubectl");
        let (ok, out, err) = self.run(&ours, args);
        assert!(
            ok,
            "our kubectl {args:?} failed: {err}\n--- controller-manager ---\n{}",
            self.controllers.log_tail()
        );
        out
    }

    fn run(&self, binary: &std::path::Path, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("running kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args);
        assert!(
            ok,
            "kubectl {args:?} failed: {err}\n--- controller-manager ---\n{}",
            self.controllers.log_tail()
        );
        out
    }

    /// Waits until the three pods of `web` all run `image`.
    fn wait_for_image(&self, image: &str) {
        self.wait(&format!("only {image} pods"), Duration::from_secs(60), || {
            let (_, out, _) = self.kubectl(&[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ]);
            let images: Vec<&str> = out.split_whitespace().collect();
            images.len() == 3 && images.iter().all(|i| *i == image)
        });
    }

    fn wait_for_nodes(&self) {
        self.wait("two Ready nodes", Duration::from_secs(60), || {
            let (_, out, _) = self.kubectl(&["get", "nodes", "--no-headers"]);
            out.lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
                .count()
                == 2
        });
    }

    fn wait(&self, what: &str, timeout: Duration, check: impl Fn() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}");
    }
}

/// Starts the cluster, with `apiserver_args` and `controller_args` added to the apiserver's
/// and the controller-manager's command lines; also returns the registry's busybox image.
fn start(apiserver_args: &[&str], controller_args: &[&str]) -> (Cluster, String) {
    let bin = |name: &str| testkit::workspace_binary(name).expect(name);
    let apiserver = ApiServer::start_embedded(&bin("kube-apiserver"), apiserver_args).expect("apiserver");
    let kubeconfig = apiserver.kubeconfig().display().to_string();
    let registry = Registry::start().expect("registry");
    push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default()).expect("push busybox:1");
    push_busybox_image(
        registry.host(),
        "busybox:2",
        &ImageOptions {
            env: vec!["VERSION=2".into()],
            ..Default::default()
        },
    )
    .expect("push busybox:2");
    let image = format!("{}/busybox", registry.host());
    let scheduler = Component::start(&bin("kube-scheduler"), &["--kubeconfig", &kubeconfig]).expect("scheduler");
    let controllers = Component::start(
        &bin("kube-controller-manager"),
        &[&["--kubeconfig", kubeconfig.as_str()], controller_args].concat(),
    )
    .expect("controller-manager");
    let suffix = std::process::id();
    let nodes = (0..2)
        .map(|i| {
            Kubelet::start(
                &bin("kubelet"),
                apiserver.kubeconfig().as_path(),
                &format!("e2e-{suffix}-{i}"),
                &["--insecure-registry", registry.host()],
            )
            .expect("kubelet")
        })
        .collect();
    (
        Cluster {
            kubeconfig,
            _nodes: nodes,
            _scheduler: scheduler,
            controllers,
            _registry: registry,
            _apiserver: apiserver,
        },
        image,
    )
}

#[test]
fn a_deployment_runs_rolls_out_rolls_back_and_scales() {
    let (cluster, image) = start(&[], &[]);
    cluster.wait_for_nodes();

    let v1 = format!("{image}:1");
    cluster.ok(&[
        "create",
        "deployment",
        "web",
        "--image",
        &v1,
        "--replicas",
        "3",
        "--",
        "sh",
        "-c",
        "echo hello from $(hostname) version ${VERSION:-1}; exec sleep 3600",
    ]);
    cluster.ok(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
    let pods = cluster.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert_eq!(pods.split_whitespace().count(), 3, "three pods were scheduled: {pods}");
    let logs = cluster.ok(&["logs", "deployment/web"]);
    assert!(
        logs.starts_with("hello from web-") && logs.trim_end().ends_with("version 1"),
        "{logs}"
    );

    // A new image rolls out; undo brings the first one back.
    let v2 = format!("{image}:2");
    cluster.ok(&["set", "image", "deployment/web", &format!("busybox={v2}")]);
    let status = cluster.ours(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
    assert!(
        status.ends_with("deployment \"web\" successfully rolled out\n"),
        "{status}"
    );
    cluster.wait_for_image(&v2);
    let logs = cluster.ok(&["logs", "deployment/web"]);
    assert!(logs.trim_end().ends_with("version 2"), "{logs}");
    let history = cluster.ours(&["rollout", "history", "deployment/web"]);
    assert_eq!(history, cluster.ok(&["rollout", "history", "deployment/web"]));
    assert_eq!(
        history,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"
    );
    let undone = cluster.ours(&["rollout", "undo", "deployment/web"]);
    assert_eq!(undone, "deployment.apps/web rolled back\n");
    cluster.ours(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
    cluster.ok(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
    cluster.wait_for_image(&v1);
    // The old ReplicaSet came back as revision 3; both clients see the same history.
    let history = cluster.ours(&["rollout", "history", "deployment/web"]);
    assert_eq!(history, cluster.ok(&["rollout", "history", "deployment/web"]));
    assert!(history.ends_with("2         <none>\n3         <none>\n\n"), "{history}");
    let revision = cluster.ours(&["rollout", "history", "deployment/web", "--revision=3"]);
    assert_eq!(
        revision,
        cluster.ok(&["rollout", "history", "deployment/web", "--revision=3"])
    );
    assert!(revision.contains(&v1), "{revision}");

    // Scaling down stops pods for real: the kubelets confirm their deletion.
    cluster.ok(&["scale", "deployment/web", "--replicas", "1"]);
    cluster.wait("one pod left", Duration::from_secs(90), || {
        let (_, out, _) = cluster.kubectl(&["get", "pods", "-l", "app=web", "--no-headers"]);
        out.lines().count() == 1 && out.contains("Running")
    });
}

#[test]
fn a_busy_deployment_is_autoscaled_on_its_real_cpu_usage() {
    // Fast metrics and autoscaler periods, so the whole chain turns in seconds.
    let (cluster, image) = start(
        &["--metric-resolution", "2s"],
        &["--horizontal-pod-autoscaler-sync-period", "3s"],
    );
    cluster.wait_for_nodes();

    // One pod that burns all the CPU it gets against a request of 50m.
    let manifest = tempfile::NamedTempFile::new().expect("manifest file");
    let yaml = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: busy
spec:
  replicas: 1
  selector:
    matchLabels: {{app: busy}}
  template:
    metadata:
      labels: {{app: busy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: busy
        image: {image}:1
        command: [sh, -c, "while :; do :; done"]
        resources:
          requests: {{cpu: 50m}}
"#
    );
    std::fs::write(manifest.path(), yaml).expect("writing the manifest");
    let manifest = manifest.path().display().to_string();
    cluster.ok(&["apply", "-f", &manifest]);
    cluster.ok(&["rollout", "status", "deployment/busy", "--timeout", "120s"]);
    let created = cluster.ok(&["autoscale", "deployment", "busy", "--min=1", "--max=3", "--cpu=50%"]);
    assert_eq!(created, "horizontalpodautoscaler.autoscaling/busy autoscaled\n");

    // The autoscaler reads the pods' usage from the Metrics API: far above 50% of 50m.
    cluster.wait("the HPA's current CPU utilisation", Duration::from_secs(60), || {
        let (_, out, _) = cluster.kubectl(&["get", "hpa", "busy", "--no-headers"]);
        cpu_utilisation(&out).is_some_and(|percent| percent > 100)
    });
    // It scales the Deployment to its maximum, and the three pods really run.
    cluster.wait("three running busy pods", Duration::from_secs(90), || {
        let (_, out, _) = cluster.kubectl(&["get", "pods", "-l", "app=busy", "--no-headers"]);
        out.lines()
            .filter(|l| l.split_whitespace().nth(2) == Some("Running"))
            .count()
            == 3
    });
    cluster.wait(
        "the deployment at three ready replicas",
        Duration::from_secs(60),
        || {
            let (_, out, _) = cluster.kubectl(&[
                "get",
                "deployment",
                "busy",
                "-o",
                "jsonpath={.spec.replicas} {.status.readyReplicas}",
            ]);
            out == "3 3"
        },
    );
    let events = cluster.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulRescale,involvedObject.kind=HorizontalPodAutoscaler",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("New size: 3; reason: cpu resource utilization (percentage of request) above target"),
        "{events}"
    );
    // Its next sync sees the three replicas, held at the maximum.
    cluster.wait("the HPA's status at three replicas", Duration::from_secs(30), || {
        let (_, out, _) = cluster.kubectl(&[
            "get",
            "hpa",
            "busy",
            "-o",
            "jsonpath={.status.currentReplicas} {.status.desiredReplicas} \
             {.status.conditions[?(@.type==\"ScalingLimited\")].reason}",
        ]);
        out == "3 3 TooManyReplicas"
    });
    // `kubectl top` reads the same Metrics API.
    cluster.wait("three busy pods in kubectl top", Duration::from_secs(30), || {
        let (ok, out, _) = cluster.kubectl(&["top", "pod", "-l", "app=busy", "--no-headers"]);
        ok && out.lines().count() == 3
    });

    // Deleting the deployment stops the busy loops.
    cluster.ok(&["delete", "hpa", "busy"]);
    cluster.ok(&["delete", "deployment", "busy"]);
    cluster.wait("no busy pods", Duration::from_secs(60), || {
        let (ok, out, _) = cluster.kubectl(&["get", "pods", "-l", "app=busy", "--no-headers"]);
        ok && out.trim().is_empty()
    });
}

/// The current CPU utilisation, in percent, in a `kubectl get hpa` line (TARGETS reads
/// `cpu: 1900%/50%`, or `cpu: <unknown>/50%` before the first metrics).
fn cpu_utilisation(line: &str) -> Option<u32> {
    let (_, targets) = line.split_once("cpu: ")?;
    targets.split_once("%/")?.0.parse().ok()
}
