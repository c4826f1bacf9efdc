//! What every pod worker shares: the API client, the runtime, the image store, node facts,
//! the on-disk layout under `--root-dir` and the event recorder.

use std::path::PathBuf;
use std::sync::Arc;

use component_base::events::EventRecorder;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};

use super::files::DnsConfig;

/// Shared by all pod workers.
pub struct Context {
    pub client: kube::Client,
    pub node_name: String,
    pub node_ip: String,
    pub root_dir: PathBuf,
    pub runtime: Arc<runtime::Runtime>,
    pub images: Arc<images::ImageStore>,
    pub dns: DnsConfig,
    pub allocatable_milli_cpu: i128,
    pub allocatable_memory: i128,
    /// `--pod-manifest-path`, for telling static pods from orphans.
    pub pod_manifest_path: Option<PathBuf>,
    /// Pod interfaces and addresses.
    pub network: Arc<crate::network::PodNetworking>,
    /// Services, ConfigMaps and Secrets for pod starts.
    pub sources: super::sources::SourceCache,
    /// `--streaming-connection-idle-timeout` (`None`: never).
    pub streaming_idle_timeout: Option<std::time::Duration>,
    recorder: EventRecorder,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        node_name: String,
        node_ip: String,
        root_dir: PathBuf,
        runtime: Arc<runtime::Runtime>,
        images: Arc<images::ImageStore>,
        dns: DnsConfig,
        allocatable_milli_cpu: i128,
        allocatable_memory: i128,
    ) -> Context {
        // core/v1 Events with source and counts, as upstream's kubelet writes them.
        let recorder = EventRecorder::new(client.clone(), "kubelet", Some(node_name.clone()));
        let network = Arc::new(crate::network::PodNetworking::new(false, String::new(), &root_dir));
        Context {
            client: client.clone(),
            node_name,
            node_ip,
            root_dir,
            runtime,
            images,
            dns,
            allocatable_milli_cpu,
            allocatable_memory,
            pod_manifest_path: None,
            network,
            sources: super::sources::SourceCache::uncached(client.clone()),
            streaming_idle_timeout: Some(crate::server::STREAMING_IDLE_TIMEOUT),
            recorder,
        }
    }

    /// `<root-dir>/pods/<uid>`: volumes, /etc files, container root filesystems.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid)
    }

    /// `<root-dir>/logs`: container logs, `<namespace>_<pod>_<uid>/<container>/<attempt>.log`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root_dir.join("logs")
    }

    /// Publishes an event about `pod` (in the background: events never slow a pod down).
    pub fn event(&self, pod: &Pod, warning: bool, reason: &str, note: String, field_path: Option<String>) {
        let reference = ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Pod".to_string()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        };
        let recorder = self.recorder.clone();
        let reason = reason.to_string();
        tokio::spawn(async move {
            if let Err(error) = recorder.record(&reference, warning, &reason, &note).await {
                tracing::debug!(%error, "publishing an event");
            }
        });
    }
}
