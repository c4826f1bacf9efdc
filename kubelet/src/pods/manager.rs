//! The pod manager: watches the pods bound to this node, runs one worker per pod, cleans up
//! what belongs to pods that no longer exist (deleted while the kubelet was down), and answers
//! the HTTPS server's questions about pods and their logs.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::pleg::Pleg;
use super::start::parse_container_id;
use super::worker::{self, StatusTarget};
use crate::server::{LogError, LogTarget, NodeView};
use crate::streaming::{ExecTarget, StreamError};

struct Entry {
    tx: watch::Sender<Option<Pod>>,
    /// (namespace, name) the worker reports to; for static pods the mirror pod.
    key: (String, String),
}

/// All pods this kubelet runs, by UID.
#[derive(Clone)]
pub struct PodManager {
    ctx: Arc<Context>,
    pods: Arc<Mutex<BTreeMap<String, Entry>>>,
    pleg: Arc<Pleg>,
}

impl PodManager {
    pub fn new(ctx: Arc<Context>) -> PodManager {
        PodManager {
            ctx,
            pods: Arc::default(),
            pleg: Arc::default(),
        }
    }

    /// Relists the runtime and wakes the workers whose containers changed, until `cancel`.
    pub async fn run_pleg(&self, cancel: CancellationToken) {
        self.pleg.clone().run(self.ctx.runtime.clone(), cancel).await;
    }

    /// Delivers the latest version of a pod to its worker, starting one if needed.
    pub fn update(&self, uid: &str, pod: Pod, target: StatusTarget) {
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = pods.get(uid) {
            let _ = entry.tx.send(Some(pod));
            return;
        }
        let (tx, rx) = watch::channel(Some(pod));
        let key = (target.namespace.clone(), target.name.clone());
        pods.insert(uid.to_string(), Entry { tx, key });
        let ctx = self.ctx.clone();
        let uid = uid.to_string();
        let registry = self.pods.clone();
        let pleg = self.pleg.clone();
        let wake = pleg.subscribe(&uid);
        tokio::spawn(async move {
            worker::run(ctx, uid.clone(), target, rx, wake).await;
            // Under the registry's lock, so a new worker for the same UID (a static pod put
            // back) cannot subscribe in between.
            let mut pods = registry.lock().unwrap_or_else(|e| e.into_inner());
            pods.remove(&uid);
            pleg.unsubscribe(&uid);
        });
    }

    /// Tells the worker of `uid` that its pod is gone (it stops and cleans up).
    pub fn remove(&self, uid: &str) {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = pods.get(uid) {
            let _ = entry.tx.send(None);
        }
    }

    /// Cleans up pods the runtime or the pod directory knows but the API does not.
    fn clean_orphans(&self, known: &HashSet<String>) {
        let mut uids: HashSet<String> = self
            .ctx
            .runtime
            .list()
            .into_iter()
            .filter_map(|(id, _)| parse_container_id(&id).map(|(uid, _, _)| uid.to_string()))
            .collect();
        uids.extend(self.ctx.runtime.list_sandboxes().into_iter().map(|s| s.id));
        for entry in std::fs::read_dir(self.ctx.root_dir.join("pods"))
            .into_iter()
            .flatten()
            .flatten()
        {
            uids.insert(entry.file_name().to_string_lossy().into_owned());
        }
        let running: HashSet<String> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for uid in uids {
            if known.contains(&uid) || running.contains(&uid) {
                continue;
            }
            tracing::info!(%uid, "cleaning up a pod that no longer exists");
            let (tx, rx) = watch::channel(None);
            drop(tx);
            let ctx = self.ctx.clone();
            let target = StatusTarget {
                namespace: String::new(),
                name: String::new(),
                is_static: true,
            };
            tokio::spawn(worker::run(ctx, uid, target, rx, Arc::default()));
        }
    }

    /// Watches pods with `spec.nodeName` = this node until `cancel`.
    pub async fn watch_api(&self, cancel: CancellationToken) {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.ctx.node_name));
        let mut stream = watcher(api, config).boxed();
        let mut initial: HashSet<String> = HashSet::new();
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                event = stream.next() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            match event {
                Ok(watcher::Event::Init) => initial.clear(),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let Some(uid) = pod.metadata.uid.clone() {
                        initial.insert(uid.clone());
                        self.apply(&uid, pod);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    let mut known = initial.clone();
                    known.extend(crate::static_pods::static_uids(
                        self.ctx.pod_manifest_path.as_deref(),
                        &self.ctx.node_name,
                    ));
                    self.clean_orphans(&known);
                }
                Ok(watcher::Event::Apply(pod)) => {
                    if let Some(uid) = pod.metadata.uid.clone() {
                        self.apply(&uid, pod);
                    }
                }
                Ok(watcher::Event::Delete(pod)) => {
                    if let Some(uid) = pod.metadata.uid.as_deref() {
                        self.remove(uid);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "watching pods");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn apply(&self, uid: &str, pod: Pod) {
        // Mirror pods are the API's view of static pods: the static pod's worker owns them.
        if pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(crate::static_pods::MIRROR_ANNOTATION))
        {
            return;
        }
        let target = StatusTarget {
            namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            is_static: false,
        };
        self.update(uid, pod, target);
    }

    fn find(&self, namespace: &str, name: &str) -> Option<(String, Pod)> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.iter().find_map(|(uid, entry)| {
            (entry.key.0 == namespace && entry.key.1 == name)
                .then(|| entry.tx.borrow().clone().map(|pod| (uid.clone(), pod)))
                .flatten()
        })
    }
}

impl NodeView for PodManager {
    fn image_store(&self) -> Arc<images::ImageStore> {
        self.ctx.images.clone()
    }

    fn streaming_idle_timeout(&self) -> Option<std::time::Duration> {
        self.ctx.streaming_idle_timeout
    }

    fn resource_metrics(&self) -> String {
        crate::resource_metrics::render(&crate::resource_metrics::collect(&self.ctx.runtime, &self.pods()))
    }

    fn locate_log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogTarget, LogError> {
        let (uid, found) = self
            .find(namespace, pod)
            .ok_or_else(|| LogError::PodNotFound(format!("{namespace}/{pod}")))?;
        let spec = found.spec.unwrap_or_default();
        let known = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.name == container);
        if !known {
            return Err(LogError::ContainerNotFound {
                pod: pod.to_string(),
                container: container.to_string(),
            });
        }
        let pod_name = found.metadata.name.clone().unwrap_or_default();
        let dir = crate::logs::pod_log_dir(&self.ctx.logs_dir(), namespace, &pod_name, &uid).join(container);
        let attempts = crate::logs::attempts(&dir);
        let attempt = if previous {
            attempts
                .iter()
                .rev()
                .nth(1)
                .copied()
                .ok_or_else(|| LogError::NoPrevious {
                    pod: pod.to_string(),
                    container: container.to_string(),
                })?
        } else {
            attempts.last().copied().ok_or_else(|| LogError::NotStarted {
                pod: pod.to_string(),
                container: container.to_string(),
                reason: "ContainerCreating".to_string(),
            })?
        };
        let path = dir.join(format!("{attempt}.log"));
        let runtime = self.ctx.runtime.clone();
        let id = super::start::container_id(&uid, container, attempt);
        let latest = !previous;
        Ok(LogTarget {
            path,
            still_running: Box::new(move || {
                latest
                    && matches!(
                        runtime.container_state(&id),
                        Ok(runtime::ContainerState::Running { .. })
                    )
            }),
        })
    }

    fn pods(&self) -> Vec<Pod> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.values().filter_map(|e| e.tx.borrow().clone()).collect()
    }

    fn exec_target(&self, namespace: &str, pod: &str, container: &str) -> Result<ExecTarget, StreamError> {
        let (uid, _) = self.find(namespace, pod).ok_or(StreamError::PodNotFound)?;
        let latest = self
            .ctx
            .runtime
            .list()
            .into_iter()
            .filter(|(_, state)| matches!(state, runtime::ContainerState::Running { .. }))
            .filter_map(|(id, _)| {
                let (of, name, attempt) = parse_container_id(&id)?;
                (of == uid && name == container)
                    .then_some(attempt)
                    .map(|a| (a, id.clone()))
            })
            .max_by_key(|(attempt, _)| *attempt);
        match latest {
            Some((_, container_id)) => Ok(ExecTarget {
                runtime: self.ctx.runtime.clone(),
                container_id,
            }),
            None => Err(StreamError::ContainerNotFound(container.to_string())),
        }
    }
}
