//! Integration tests against a real kube-apiserver (embedded store) with fake Node objects.
//! Build the apiserver first: `cargo build -p apiserver --bin kube-apiserver`.

mod leader_election;
mod scheduling;

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testkit::apiserver::ApiServer;

/// A running apiserver and an admin client.
pub struct Cluster {
    pub server: ApiServer,
    pub client: kube::Client,
}

impl Cluster {
    pub async fn start() -> Result<Self> {
        let binary = testkit::workspace_binary("kube-apiserver")?;
        let server = tokio::task::spawn_blocking(move || ApiServer::start_embedded(&binary, &[])).await??;
        let client = client(&server).await?;
        Ok(Self { server, client })
    }

    /// A fake node with `cpu` and `memory` allocatable and `extra` merged into it.
    pub async fn add_node(&self, name: &str, cpu: &str, extra: Value) -> Result<()> {
        let mut node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        });
        merge(&mut node, extra);
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .create(&PostParams::default(), &serde_json::from_value(node)?)
            .await
            .context("creating node")?;
        let status = json!({"status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .context("node status")?;
        Ok(())
    }

    /// A pod in `default` requesting `cpu`, with `extra` merged into it.
    pub async fn add_pod(&self, name: &str, cpu: &str, extra: Value) -> Result<()> {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]},
        });
        merge(&mut pod, extra);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        pods.create(&PostParams::default(), &serde_json::from_value(pod)?)
            .await
            .context("creating pod")?;
        Ok(())
    }

    /// Waits until `name` is bound and returns its node.
    pub async fn wait_bound(&self, name: &str, timeout: Duration) -> Result<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        wait_for(timeout, || async {
            let pod = pods.get(name).await.ok()?;
            pod.spec?.node_name.filter(|n| !n.is_empty())
        })
        .await
        .with_context(|| format!("pod {name} was not bound in {timeout:?}"))
    }

    pub async fn node_of(&self, name: &str) -> Result<Option<String>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        Ok(pods.get(name).await?.spec.and_then(|s| s.node_name))
    }

    /// Events about pod `name` with `reason`.
    pub async fn events_for(&self, name: &str, reason: &str) -> Result<Vec<Event>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect())
    }
}

pub async fn client(server: &ApiServer) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}
