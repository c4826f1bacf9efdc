//! The kubelet runs real pods from a real registry: integration tests as root against a real
//! apiserver, a local registry and the built-in runtime.

mod common;

use common::{Node1, container_state, phase};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_runs_to_completion_with_its_environment_and_logs() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "hello"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": node.image,
                    "command": ["sh", "-c", "echo hello $GREETING from $(hostname); exit 3"],
                    "env": [{"name": "GREETING", "value": "world"}],
                }],
            },
        }),
    )
    .await;
    let pod = node
        .wait_pod("default", "hello", "phase Failed", |p| phase(p) == "Failed")
        .await;
    let status = container_state(&pod, "main");
    let terminated = status.state.and_then(|s| s.terminated).expect("terminated");
    assert_eq!(terminated.exit_code, 3);
    assert_eq!(terminated.reason.as_deref(), Some("Error"));
    assert!(status.image_id.contains("@sha256:"), "{}", status.image_id);
    let logs = node
        .pods("default")
        .logs("hello", &Default::default())
        .await
        .expect("logs");
    assert_eq!(logs, "hello world from hello\n", "{}", node.kubelet.log_tail());
}

#[tokio::test(flavor = "multi_thread")]
async fn config_maps_secrets_and_downward_api_reach_the_container() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Api, PostParams};
    let node = Node1::start(&[]).await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"},
        "data": {"color": "blue", "app.conf": "listen 80\n"},
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(node.client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(node.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "consumer", "labels": {"tier": "web"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": node.image,
                    "command": ["sh", "-c",
                        "echo color=$COLOR pw=$PASSWORD pod=$POD_NAME; cat /etc/app/app.conf; cat /secrets/password; echo; cat /info/labels; echo; cat /etc/hostname"],
                    "env": [
                        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "volumeMounts": [
                        {"name": "conf", "mountPath": "/etc/app"},
                        {"name": "secret", "mountPath": "/secrets"},
                        {"name": "info", "mountPath": "/info"},
                    ],
                }],
                "volumes": [
                    {"name": "conf", "configMap": {"name": "settings"}},
                    {"name": "secret", "secret": {"secretName": "creds"}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                ],
            },
        }),
    )
    .await;
    node.wait_pod("default", "consumer", "phase Succeeded", |p| phase(p) == "Succeeded")
        .await;
    // Through the real upstream kubectl.
    let output = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            &node.apiserver.kubeconfig().display().to_string(),
            "logs",
            "consumer",
        ])
        .output()
        .expect("running kubectl");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "color=blue pw=hunter2 pod=consumer\nlisten 80\nhunter2\ntier=\"web\"\nconsumer\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_containers_restart_with_back_off() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "crasher"},
            "spec": {"containers": [{"name": "main", "image": node.image, "command": ["sh", "-c", "echo attempt; exit 1"]}]},
        }),
    )
    .await;
    let pod = node
        .wait_pod("default", "crasher", "a restart, then CrashLoopBackOff", |p| {
            let c = container_state(p, "main");
            c.restart_count == 1
                && c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
        })
        .await;
    let c = container_state(&pod, "main");
    let last = c.last_state.and_then(|s| s.terminated).expect("last state");
    assert_eq!(last.exit_code, 1);
    assert_eq!(phase(&pod), "Running");
    let message = c
        .state
        .and_then(|s| s.waiting)
        .and_then(|w| w.message)
        .unwrap_or_default();
    assert!(
        message.starts_with("back-off 10s restarting failed container=main pod=crasher_default("),
        "{message}"
    );
    let previous = node
        .pods("default")
        .logs(
            "crasher",
            &kube::api::LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .expect("previous logs");
    assert_eq!(previous, "attempt\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limits_are_enforced() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "hog"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": node.image,
                    "command": ["sh", "-c", "head -c 200000000 /dev/zero | tail"],
                    "resources": {"limits": {"memory": "16Mi"}},
                }],
            },
        }),
    )
    .await;
    let pod = node
        .wait_pod("default", "hog", "phase Failed", |p| phase(p) == "Failed")
        .await;
    let terminated = container_state(&pod, "main")
        .state
        .and_then(|s| s.terminated)
        .expect("terminated");
    assert_eq!(terminated.reason.as_deref(), Some("OOMKilled"));
    assert_eq!(pod.status.and_then(|s| s.qos_class).as_deref(), Some("Burstable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_pod_stops_it_gracefully_and_leaves_nothing_behind() {
    use kube::api::DeleteParams;
    let node = Node1::start(&[]).await;
    let created = node
        .create_pod(
            "default",
            json!({
                "metadata": {"name": "graceful"},
                "spec": {
                    "terminationGracePeriodSeconds": 20,
                    "containers": [{
                        "name": "main",
                        "image": node.image,
                        "command": ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done"],
                    }],
                },
            }),
        )
        .await;
    let uid = created.metadata.uid.clone().unwrap();
    node.wait_pod("default", "graceful", "Running", |p| phase(p) == "Running")
        .await;
    let started = std::time::Instant::now();
    node.pods("default")
        .delete("graceful", &DeleteParams::default())
        .await
        .unwrap();
    node.wait_gone("default", "graceful").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the container stopped on SIGTERM, well before its grace period"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&uid), "no mount of the pod is left");
    assert!(
        !node.kubelet.root_dir.join("pods").join(&uid).exists(),
        "the pod directory is removed"
    );
    for entry in std::fs::read_dir("/sys/fs/cgroup/memory")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = entry;
    }
    let pod_cgroup = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(&node.kubelet.cgroup_root)
        .join("kubepods")
        .join(format!("pod{uid}"));
    assert!(
        !pod_cgroup.exists(),
        "the pod cgroup is removed: {}",
        pod_cgroup.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_kubelet_adopts_running_containers_and_sees_exits_it_missed() {
    let mut node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "survivor"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "long", "image": node.image, "command": ["sleep", "3600"]},
                    {"name": "short", "image": node.image, "command": ["sh", "-c", "sleep 3; exit 5"]},
                ],
            },
        }),
    )
    .await;
    let before = node
        .wait_pod("default", "survivor", "both containers running", |p| {
            ["long", "short"]
                .iter()
                .all(|c| container_state(p, c).state.and_then(|s| s.running).is_some())
        })
        .await;
    node.kubelet.kill();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    node.kubelet.restart().expect("restarting the kubelet");
    let after = node
        .wait_pod("default", "survivor", "the short container's exit", |p| {
            container_state(p, "short").state.and_then(|s| s.terminated).is_some()
        })
        .await;
    let short = container_state(&after, "short")
        .state
        .and_then(|s| s.terminated)
        .unwrap();
    assert_eq!(short.exit_code, 5);
    let long_before = container_state(&before, "long");
    let long_after = container_state(&after, "long");
    assert_eq!(
        long_after.container_id, long_before.container_id,
        "the same container, adopted"
    );
    assert_eq!(long_after.restart_count, 0);
    assert_eq!(
        long_after.state.and_then(|s| s.running).and_then(|r| r.started_at),
        long_before.state.and_then(|s| s.running).and_then(|r| r.started_at)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn static_pods_run_from_files_with_mirror_pods() {
    let manifests = tempfile::tempdir().unwrap();
    let dir = manifests.path().display().to_string();
    let node = Node1::start(&["--pod-manifest-path", &dir]).await;
    let mirror = format!("web-{}", node.kubelet.node_name);
    std::fs::write(
        manifests.path().join("web.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: kube-system\nspec:\n  containers:\n  - name: main\n    image: {}\n    command: [sleep, '3600']\n",
            node.image
        ),
    )
    .unwrap();
    let pod = node
        .wait_pod("kube-system", &mirror, "the mirror pod Running", |p| {
            phase(p) == "Running"
        })
        .await;
    assert!(
        pod.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("kubernetes.io/config.mirror")
    );
    std::fs::remove_file(manifests.path().join("web.yaml")).unwrap();
    node.wait_gone("kube-system", &mirror).await;
    node.wait(
        "the static pod's containers to stop",
        std::time::Duration::from_secs(30),
        || async {
            std::fs::read_dir(node.kubelet.root_dir.join("pods"))
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn image_pull_errors_and_registry_credentials() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, PostParams};
    let node = Node1::start(&[]).await;
    let private = testkit::registry::Registry::start_with_basic_auth("alice", "s3cret").unwrap();
    let image = testkit::registry::OciImage::busybox().unwrap();
    image
        .push(private.host(), "private/busybox:1", Some(("alice", "s3cret")))
        .unwrap();
    // The kubelet only knows the first registry as insecure: restart it knowing both.
    drop(node);
    let node = Node1::start(&["--insecure-registry", private.host()]).await;
    let missing = format!("{}/nope:1", node.registry.host());
    node.create_pod(
        "default",
        json!({"metadata": {"name": "missing"}, "spec": {"containers": [{"name": "main", "image": missing}]}}),
    )
    .await;
    node.wait_pod("default", "missing", "ImagePullBackOff", |p| {
        container_state(p, "main")
            .state
            .and_then(|s| s.waiting)
            .is_some_and(|w| w.reason.as_deref() == Some("ImagePullBackOff"))
    })
    .await;
    let private_image = format!("{}/private/busybox:1", private.host());
    node.create_pod(
        "default",
        json!({"metadata": {"name": "denied"}, "spec": {"containers": [{"name": "main", "image": private_image, "command": ["sleep", "60"]}]}}),
    )
    .await;
    // ErrImagePull turns into ImagePullBackOff at the next sync: a slow poll may see either.
    let denied = node
        .wait_pod("default", "denied", "ErrImagePull", |p| {
            container_state(p, "main")
                .state
                .and_then(|s| s.waiting)
                .is_some_and(|w| matches!(w.reason.as_deref(), Some("ErrImagePull" | "ImagePullBackOff")))
        })
        .await;
    let message = container_state(&denied, "main")
        .state
        .and_then(|s| s.waiting)
        .and_then(|w| w.message)
        .unwrap();
    assert!(
        message.contains(&format!("Failed to pull image \"{private_image}\"")),
        "{message}"
    );
    let auth = base64_encode("alice:s3cret");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "pull"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json!({"auths": {private.host(): {"auth": auth}}}).to_string()},
    }))
    .unwrap();
    Api::<Secret>::namespaced(node.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    node.create_pod(
        "default",
        json!({"metadata": {"name": "allowed"}, "spec": {
            "imagePullSecrets": [{"name": "pull"}],
            "containers": [{"name": "main", "image": private_image, "command": ["sleep", "60"]}]}}),
    )
    .await;
    node.wait_pod("default", "allowed", "Running", |p| phase(p) == "Running")
        .await;
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_gate_readiness_and_restart_unhealthy_containers() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "probed"},
            "spec": {"containers": [
                {
                    "name": "web",
                    "image": node.image,
                    "command": ["sh", "-c", "sleep 2; mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www"],
                    "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
                },
                {
                    "name": "flaky",
                    "image": node.image,
                    "command": ["sh", "-c", "touch /tmp/alive; sleep 4; rm /tmp/alive; sleep 3600"],
                    "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2},
                },
            ]},
        }),
    )
    .await;
    let pod = node
        .wait_pod("default", "probed", "web ready", |p| container_state(p, "web").ready)
        .await;
    assert!(container_state(&pod, "web").state.and_then(|s| s.running).is_some());
    node.wait_pod("default", "probed", "flaky restarted by its liveness probe", |p| {
        container_state(p, "flaky").restart_count >= 1
    })
    .await;
    // The repeated probe failure is one core/v1 Event counted twice, from the kubelet on its
    // node, as upstream's kubelet records it (so `kubectl get events --sort-by=.lastTimestamp`
    // has something to sort by).
    node.wait_event(
        "default",
        "the liveness failure event counted twice",
        std::time::Duration::from_secs(10),
        |e| {
            e.reason.as_deref() == Some("Unhealthy")
                && e.involved_object.field_path.as_deref() == Some("spec.containers{flaky}")
                && e.count >= Some(2)
                && e.first_timestamp.is_some()
                && e.last_timestamp >= e.first_timestamp
                && e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet")
                && e.source.as_ref().and_then(|s| s.host.as_deref()) == Some(node.kubelet.node_name.as_str())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_readiness_probes_follow_the_health_service() {
    use tonic_health::ServingStatus;
    // A real gRPC health server (the test's own, on loopback) probed by a hostNetwork pod's
    // readiness probe: the kubelet's probe shares the node's network, which is ours here.
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("app", ServingStatus::NotServing).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "grpc-probed"},
            "spec": {
                "hostNetwork": true,
                "containers": [{
                    "name": "app",
                    "image": node.image,
                    "command": ["sleep", "3600"],
                    "readinessProbe": {"grpc": {"port": port, "service": "app"}, "periodSeconds": 1},
                }],
            },
        }),
    )
    .await;
    node.wait_pod("default", "grpc-probed", "running, not ready", |p| {
        let c = container_state(p, "app");
        c.state.and_then(|s| s.running).is_some() && !c.ready
    })
    .await;
    node.wait_event(
        "default",
        "an Unhealthy event naming the gRPC status",
        std::time::Duration::from_secs(30),
        |e| {
            e.reason.as_deref() == Some("Unhealthy")
                && e.involved_object.name.as_deref() == Some("grpc-probed")
                && e.message.as_deref()
                    == Some(r#"Readiness probe failed: service unhealthy (responded with "NOT_SERVING")"#)
        },
    )
    .await;
    reporter.set_service_status("app", ServingStatus::Serving).await;
    node.wait_pod("default", "grpc-probed", "ready once SERVING", |p| {
        container_state(p, "app").ready
    })
    .await;
    reporter.set_service_status("app", ServingStatus::NotServing).await;
    node.wait_pod("default", "grpc-probed", "not ready again", |p| {
        !container_state(p, "app").ready
    })
    .await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_hooks_run_after_start_and_before_stop() {
    use kube::api::DeleteParams;
    let node = Node1::start(&[]).await;
    let out = tempfile::tempdir().unwrap();
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "hooked"},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "containers": [{
                    "name": "main",
                    "image": node.image,
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "out", "mountPath": "/out"}],
                    "lifecycle": {
                        "postStart": {"exec": {"command": ["sh", "-c", "echo post > /out/post"]}},
                        "preStop": {"exec": {"command": ["sh", "-c", "echo pre > /out/pre"]}},
                    },
                }],
                "volumes": [{"name": "out", "hostPath": {"path": out.path().display().to_string()}}],
            },
        }),
    )
    .await;
    node.wait_pod("default", "hooked", "Running", |p| phase(p) == "Running")
        .await;
    node.wait(
        "the postStart hook's file",
        std::time::Duration::from_secs(10),
        || async { std::fs::read_to_string(out.path().join("post")).is_ok_and(|s| s == "post\n") },
    )
    .await;
    node.pods("default")
        .delete("hooked", &DeleteParams::default())
        .await
        .unwrap();
    node.wait_gone("default", "hooked").await;
    assert_eq!(std::fs::read_to_string(out.path().join("pre")).unwrap(), "pre\n");
}
