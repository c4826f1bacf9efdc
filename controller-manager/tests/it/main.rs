//! Integration tests: the controllers in-process against a real `kube-apiserver` on its
//! embedded store. Pods never run (there is no kubelet): tests mark them Ready themselves by
//! patching `pods/status`, as a kubelet would.

mod cronjob;
mod daemonset;
mod deployment;
mod endpointslice;
mod garbagecollector;
mod horizontalpodautoscaling;
mod job;
mod namespace;
mod node;
mod replicaset;
mod resourcequota;
mod serviceaccount;
mod statefulset;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use testkit::apiserver::ApiServer;
use tokio_util::sync::CancellationToken;

/// A running apiserver with the selected controllers running against it.
pub struct Harness {
    pub client: Client,
    pub kubeconfig: std::path::PathBuf,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<controller_manager::Result<()>>>,
    // Dropped last: stops the apiserver.
    _server: ApiServer,
}

impl Harness {
    /// Starts an apiserver and the controllers named in `controllers` (a `--controllers` value).
    pub async fn start(controllers: &str) -> Result<Self> {
        Self::start_with(controllers, &["--leader-elect=false"]).await
    }

    /// Like `start`, with more flags.
    pub async fn start_with(controllers: &str, flags: &[&str]) -> Result<Self> {
        Self::start_with_clock(controllers, flags, controller_manager::clock::Clock::default()).await
    }

    /// Like `start_with`, with the controllers reading `clock`.
    pub async fn start_with_clock(
        controllers: &str,
        flags: &[&str],
        clock: controller_manager::clock::Clock,
    ) -> Result<Self> {
        component_base::init_logging();
        let binary = testkit::workspace_binary("kube-apiserver")?;
        let server = ApiServer::start_embedded(&binary, &[])?;
        let kubeconfig = server.kubeconfig();
        let mut args = vec![
            "kube-controller-manager".to_string(),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--controllers={controllers}"),
        ];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        let options = controller_manager::Options::try_parse_from(args)?;
        let client = controller_manager::client(&options).await?;
        let token = CancellationToken::new();
        let task = tokio::spawn(controller_manager::run_with_clock(
            options,
            client.clone(),
            token.clone(),
            clock,
        ));
        Ok(Harness {
            client,
            kubeconfig,
            token,
            task: Some(task),
            _server: server,
        })
    }

    /// Creates a namespace for one test.
    pub async fn namespace(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        api.create(&PostParams::default(), &ns).await?;
        Ok(())
    }

    /// The pods of `namespace` matching `selector`, excluding those being deleted.
    pub async fn live_pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pods = api.list(&ListParams::default().labels(selector)).await?;
        Ok(pods
            .items
            .into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .collect())
    }

    /// Runs the real `kubectl` against the apiserver; returns (success, stdout + stderr).
    pub async fn kubectl(&self, args: &[&str]) -> Result<(bool, String)> {
        let output = tokio::process::Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .output()
            .await
            .context("running kubectl")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), text))
    }

    /// Marks a pod Running and Ready with an IP, as a kubelet would.
    pub async fn mark_ready(&self, namespace: &str, name: &str, ip: &str) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            ],
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .with_context(|| format!("marking pod {namespace}/{name} ready"))?;
        Ok(())
    }

    /// Marks every live pod matching `selector` that is not Ready yet as Ready; returns how
    /// many were marked.
    pub async fn mark_all_ready(&self, namespace: &str, selector: &str) -> Result<usize> {
        let mut marked = 0;
        for pod in self.live_pods(namespace, selector).await? {
            let ready = pod
                .status
                .as_ref()
                .and_then(|status| status.conditions.as_ref())
                .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready {
                let name = pod.metadata.name.clone().unwrap_or_default();
                self.mark_ready(namespace, &name, &next_ip()).await?;
                marked += 1;
            }
        }
        Ok(marked)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A ReplicaSet or Deployment named `web` of `replicas` nginx pods labelled `app=web`.
pub fn web_workload<K: serde::de::DeserializeOwned>(replicas: u32) -> Result<K> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }))?)
}

/// A fresh pod IP.
pub fn next_ip() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("10.244.{}.{}", n / 250, n % 250 + 2)
}

/// Polls `check` until it returns `Some`, failing after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() > deadline {
            match last_error {
                Some(error) => bail!("timed out waiting for {what}: last error: {error:#}"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
