//! Shared fixture for the kubelet's integration tests: an apiserver (embedded store), a local
//! registry with a busybox image, and one kubelet node.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use testkit::apiserver::ApiServer;
use testkit::kubelet::Kubelet;
use testkit::registry::{ImageOptions, Registry};

pub struct Node1 {
    pub kubelet: Kubelet,
    pub client: kube::Client,
    pub image: String,
    pub registry: Registry,
    pub apiserver: ApiServer,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like()[..8])
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:016x}", nanos ^ (u128::from(std::process::id()) << 40))
        .chars()
        .rev()
        .collect()
}

pub async fn client_for(apiserver: &ApiServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(apiserver.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

impl Node1 {
    /// Starts everything and waits until the node is Ready.
    pub async fn start(extra_kubelet_args: &[&str]) -> Node1 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let apiserver =
            ApiServer::start_embedded(&testkit::workspace_binary("kube-apiserver").expect("apiserver"), &[])
                .expect("starting the apiserver");
        let registry = Registry::start().expect("starting the registry");
        let image = format!("{}/busybox:1", registry.host());
        testkit::registry::push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default())
            .expect("pushing busybox");
        let node_name = unique("node");
        let mut args = vec!["--insecure-registry", registry.host()];
        args.extend_from_slice(extra_kubelet_args);
        let kubelet = Kubelet::start(
            env!("CARGO_BIN_EXE_kubelet").as_ref(),
            &apiserver.kubeconfig(),
            &node_name,
            &args,
        )
        .expect("starting the kubelet");
        let client = client_for(&apiserver).await;
        let fixture = Node1 {
            kubelet,
            client,
            image,
            registry,
            apiserver,
        };
        let nodes: Api<Node> = Api::all(fixture.client.clone());
        fixture
            .wait("node Ready", Duration::from_secs(30), || async {
                nodes
                    .get_opt(&fixture.kubelet.node_name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|n| {
                        n.status
                            .and_then(|s| s.conditions)
                            .into_iter()
                            .flatten()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            })
            .await;
        fixture
    }

    /// Polls `check` until it holds or panics after `timeout` with the kubelet's log.
    pub async fn wait<F, Fut>(&self, what: &str, timeout: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for {what}\n--- kubelet log ---\n{}",
            self.kubelet.log_tail()
        );
    }

    pub fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates a pod bound to this node from a JSON spec (`spec.nodeName` filled in).
    pub async fn create_pod(&self, namespace: &str, mut pod: serde_json::Value) -> Pod {
        pod["spec"]["nodeName"] = serde_json::json!(self.kubelet.node_name);
        let pod: Pod = serde_json::from_value(pod).expect("pod JSON");
        self.pods(namespace)
            .create(&PostParams::default(), &pod)
            .await
            .expect("creating the pod")
    }

    /// Waits until `check` holds for the pod.
    pub async fn wait_pod(&self, namespace: &str, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
        let api = self.pods(namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(Some(pod)) = api.get_opt(name).await {
                if check(&pod) {
                    return pod;
                }
                last = Some(pod);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for pod {name}: {what}\nlast: {}\n--- kubelet log ---\n{}",
            serde_json::to_string_pretty(&last.and_then(|p| p.status)).unwrap_or_default(),
            self.kubelet.log_tail()
        );
    }
}

impl Node1 {
    /// Waits until the pod is gone from the API.
    pub async fn wait_gone(&self, namespace: &str, name: &str) {
        let api = self.pods(namespace);
        self.wait(&format!("pod {name} to be gone"), Duration::from_secs(30), || async {
            api.get_opt(name).await.ok().flatten().is_none()
        })
        .await;
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub fn container_state(pod: &Pod, name: &str) -> k8s_openapi::api::core::v1::ContainerStatus {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .into_iter()
        .flatten()
        .find(|c| c.name == name)
        .unwrap_or_default()
}
