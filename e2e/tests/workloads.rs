//! The whole control plane and two nodes, driven through the real upstream kubectl: a
//! Deployment is scheduled, its pods really run on the kubelets, `rollout status` waits for
//! them, `logs` reads them, a new image rolls out and `rollout undo` brings the old one back,
//! and scaling down stops pods. Our own kubectl follows the second rollout, shows the same
//! history as upstream's and does the undo.
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

fn start() -> (Cluster, String) {
    let bin = |name: &str| testkit::workspace_binary(name).expect(name);
    let apiserver = ApiServer::start_embedded(&bin("kube-apiserver"), &[]).expect("apiserver");
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
    let controllers =
        Component::start(&bin("kube-controller-manager"), &["--kubeconfig", &kubeconfig]).expect("controller-manager");
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
    let (cluster, image) = start();
    cluster.wait("two Ready nodes", Duration::from_secs(60), || {
        let (_, out, _) = cluster.kubectl(&["get", "nodes", "--no-headers"]);
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count()
            == 2
    });

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
