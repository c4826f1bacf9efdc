//! One pod's worker: a task that reconciles the pod with what runs on the node whenever the
//! pod changes, the PLEG reports a change of its containers or sandbox, a probe or back-off is
//! due, or a slow resync timer fires; it reports status, and on deletion stops everything gracefully and removes every trace before it
//! confirms the deletion to the apiserver.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::{Notify, watch};

use super::context::Context;
use super::plan::{Action, Backoff, ContainerObs, Exit, Observed, RunState, SandboxObs, decide};
use super::probes::{self, ProbeTarget, Prober};
use super::start::{self, AttemptMeta, StartFailure, StartRequest, attempt_dir, container_id, parse_container_id};
use super::status::{WorkerView, pod_status};
use super::volumes;

/// How soon a worker looks again after it acted (started or killed something, made a sandbox).
const AFTER_ACTION: Duration = Duration::from_millis(500);
/// How often a worker re-syncs while nothing happens (changes of its containers wake it
/// through the PLEG; upstream's sync frequency is a minute).
const RESYNC: Duration = Duration::from_secs(10);
/// How long a deleted pod's containers may take to stop when nothing else says.
const DEFAULT_GRACE: i64 = 30;

/// Messages to a worker: the latest version of the pod, or `None` once it is gone from the
/// API (or from the static pod directory).
pub type PodUpdates = watch::Receiver<Option<Pod>>;

/// Where a worker reports status: the pod itself, or the mirror pod of a static pod.
#[derive(Debug, Clone)]
pub struct StatusTarget {
    pub namespace: String,
    pub name: String,
    /// Static pods have no API object of their own to delete.
    pub is_static: bool,
}

struct Worker {
    ctx: Arc<Context>,
    uid: String,
    target: StatusTarget,
    backoffs: BTreeMap<String, Backoff>,
    start_backoffs: BTreeMap<String, Backoff>,
    view: WorkerView,
    /// Attempts whose exit already set a back-off: (container, attempt).
    seen_exits: std::collections::HashSet<(String, u32)>,
    prober: Prober,
    last_status: Option<PodStatus>,
}

/// Probes reach the pod's network through its sandbox and exec through the runtime.
struct PodProbeTarget {
    netns: Option<std::path::PathBuf>,
    runtime: Arc<runtime::Runtime>,
}

impl ProbeTarget for PodProbeTarget {
    fn netns(&self) -> Option<std::path::PathBuf> {
        self.netns.clone()
    }

    fn exec(&self, container_id: &str, args: &[String], timeout: Duration) -> Result<(i32, String), String> {
        match self.runtime.exec_sync(container_id, args, timeout) {
            Ok(output) => {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                Ok((output.exit_code, text))
            }
            Err(runtime::RuntimeError::Timeout(_)) => Err(format!("command {args:?} timed out")),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Runs the worker for pod `uid` until the pod is gone and cleaned up. `wake` is notified when
/// the pod's containers or sandbox change (see `pleg`).
pub async fn run(ctx: Arc<Context>, uid: String, target: StatusTarget, mut updates: PodUpdates, wake: Arc<Notify>) {
    let mut worker = Worker {
        ctx,
        uid,
        target,
        backoffs: BTreeMap::new(),
        start_backoffs: BTreeMap::new(),
        view: WorkerView::default(),
        seen_exits: Default::default(),
        prober: Prober::default(),
        last_status: None,
    };
    worker.view.host_ip = Some(worker.ctx.node_ip.clone());
    // A restarted kubelet finds the address its pod already holds.
    worker.view.pod_ip = worker.ctx.network.pod_ip(&worker.uid).map(|ip| ip.to_string());
    let mut last_pod: Option<Pod> = None;
    loop {
        let current = updates.borrow_and_update().clone();
        match current {
            None => {
                worker.terminate(last_pod.as_ref(), 0).await;
                return;
            }
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(DEFAULT_GRACE);
                worker.terminate(Some(&pod), grace).await;
                if !worker.target.is_static {
                    worker.confirm_deletion(&pod).await;
                }
                return;
            }
            Some(pod) => {
                let wait = worker.sync(&pod).await;
                last_pod = Some(pod);
                tokio::select! {
                    changed = updates.changed() => {
                        if changed.is_err() {
                            // The manager dropped us: the kubelet is shutting down. Containers
                            // keep running (fail-static).
                            return;
                        }
                    }
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

impl Worker {
    fn pod_dir(&self) -> std::path::PathBuf {
        self.ctx.pod_dir(&self.uid)
    }

    /// What runs for this pod now (read off the tokio workers: it reads files).
    async fn observe(&self) -> Observed {
        let runtime = self.ctx.runtime.clone();
        let uid = self.uid.clone();
        let pod_dir = self.pod_dir();
        tokio::task::spawn_blocking(move || observe(&runtime, &uid, &pod_dir))
            .await
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
    }

    /// One reconcile pass; returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> Duration {
        let spec = pod.spec.clone().unwrap_or_default();
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        if spec.host_network.unwrap_or(false) {
            self.view.pod_ip = Some(self.ctx.node_ip.clone());
        } else if let Some(ip) = &self.view.pod_ip {
            self.ctx.network.sync_host_ports(&self.uid, pod, ip).await;
        }
        // A finished pod keeps its sandbox: removing it would remove the containers whose
        // exits the status and `kubectl logs` still show.
        let mut observed = self.observe().await;
        self.record_exits(&observed);
        if self.probe(pod, &observed).await {
            observed = self.observe().await;
            self.record_exits(&observed);
        }

        let now = Instant::now();
        let plan = decide(&spec, &observed, &self.backoffs, now);
        let needs_start = plan.actions.iter().any(|a| matches!(a, Action::Start { .. }));
        let (env_sources, volume_sources) = if needs_start {
            start::fetch_sources(&self.ctx, pod).await
        } else {
            Default::default()
        };
        let mut prepared = None;
        for action in &plan.actions {
            match action {
                Action::KillPod => self.kill_all(None, &observed, 0).await,
                Action::CreateSandbox => {
                    if let Err(error) = self.ctx.network.ready()
                        && !spec.host_network.unwrap_or(false)
                    {
                        self.ctx.event(
                            pod,
                            true,
                            "NetworkNotReady",
                            format!("network is not ready: {error}"),
                            None,
                        );
                        return Duration::from_secs(2);
                    }
                    if let Err(error) = self.create_sandbox(pod).await {
                        self.ctx.event(
                            pod,
                            true,
                            "FailedCreatePodSandBox",
                            format!("Failed to create pod sandbox: {error}"),
                            None,
                        );
                        return Duration::from_secs(2);
                    }
                }
                Action::Kill { name, reason } => {
                    if let Some(obs) = observed.containers.get(name) {
                        self.ctx
                            .event(pod, false, "Killing", reason.clone(), Some(field_path(&spec, name)));
                        self.stop_container(Some(pod), name, &obs.id, grace_of(pod)).await;
                    }
                }
                Action::Start { name, init } => {
                    if let Some(backoff) = self.start_backoffs.get(name)
                        && backoff.until > now
                    {
                        continue;
                    }
                    let Some(container) = find_container(&spec, name, *init) else {
                        continue;
                    };
                    if prepared.is_none() {
                        match self.prepare_volumes(pod, &volume_sources, &env_sources).await {
                            Ok(v) => prepared = Some(v),
                            Err(error) => {
                                self.ctx.event(
                                    pod,
                                    true,
                                    "FailedMount",
                                    format!("MountVolume.SetUp failed: {error}"),
                                    None,
                                );
                                return Duration::from_secs(2);
                            }
                        }
                    }
                    let volumes = prepared.as_ref().cloned().unwrap_or_default();
                    let attempt = observed.containers.get(name).map_or(0, |obs| obs.attempt + 1);
                    self.start_one(pod, container, attempt, &env_sources, &volumes).await;
                    // Init containers run one at a time: look again right away.
                    if *init {
                        break;
                    }
                }
            }
        }
        // Crash-loop back-off: say so in the status, once per back-off.
        for name in plan.backing_off.keys() {
            let delay = self.backoffs.get(name).map(|b| b.delay).unwrap_or_default();
            let message = format!(
                "back-off {} restarting failed container={name} pod={pod_name}_{namespace}({})",
                humantime(delay),
                self.uid
            );
            if self.view.waiting.get(name).map(|(r, _)| r.as_str()) != Some("CrashLoopBackOff") {
                self.ctx.event(
                    pod,
                    true,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {pod_name}_{namespace}({})",
                        self.uid
                    ),
                    Some(field_path(&spec, name)),
                );
            }
            self.view
                .waiting
                .insert(name.clone(), ("CrashLoopBackOff".to_string(), message));
        }

        let observed = self.observe().await;
        self.report(pod, &observed).await;

        let mut wait = if plan.actions.is_empty() { RESYNC } else { AFTER_ACTION };
        if let Some(due) = self.prober.next_due() {
            wait = wait.min(due.saturating_duration_since(Instant::now()) + Duration::from_millis(10));
        }
        for until in plan
            .backing_off
            .values()
            .chain(self.start_backoffs.values().map(|b| &b.until))
        {
            if *until > now {
                wait = wait.min(until.saturating_duration_since(now) + Duration::from_millis(10));
            }
        }
        wait
    }

    /// Sets up the pod's volumes (off the tokio workers: it writes files and mounts).
    async fn prepare_volumes(
        &self,
        pod: &Pod,
        volume_sources: &volumes::VolumeSources,
        env_sources: &super::env::EnvSources,
    ) -> Result<BTreeMap<String, volumes::PreparedVolume>, String> {
        let (pod, pod_dir) = (pod.clone(), self.pod_dir());
        let (volume_sources, env_sources) = (volume_sources.clone(), env_sources.clone());
        tokio::task::spawn_blocking(move || volumes::prepare(&pod, &pod_dir, &volume_sources, &env_sources))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// How probes and hooks reach this pod (None when its sandbox is gone).
    fn probe_target(&self, pod: &Pod) -> Option<Arc<dyn ProbeTarget>> {
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        let netns = if host_network {
            None
        } else {
            let sandbox = self.ctx.runtime.sandbox(&self.uid).ok()?;
            Some(std::path::PathBuf::from(format!("/proc/{}/ns/net", sandbox.pid)))
        };
        Some(Arc::new(PodProbeTarget {
            netns,
            runtime: self.ctx.runtime.clone(),
        }))
    }

    /// Runs the probes that are due; kills containers that failed liveness or startup.
    /// Returns whether it killed any.
    async fn probe(&mut self, pod: &Pod, observed: &Observed) -> bool {
        let spec = pod.spec.clone().unwrap_or_default();
        let now_ts = jiff::Timestamp::now();
        let now = Instant::now();
        let mut running = Vec::new();
        for container in spec.init_containers.iter().flatten().chain(spec.containers.iter()) {
            if let Some(obs) = observed.containers.get(&container.name)
                && let RunState::Running { started_at } = &obs.state
            {
                let age = now_ts.duration_since(*started_at).unsigned_abs();
                running.push((
                    container,
                    obs.attempt,
                    obs.id.clone(),
                    now.checked_sub(age).unwrap_or(now),
                ));
            }
        }
        if running.is_empty() {
            return false;
        }
        let Some(target) = self.probe_target(pod) else {
            return false;
        };
        let outcome = self
            .prober
            .run(&running, target, &mut self.view.ready, &mut self.view.started)
            .await;
        for (name, message) in outcome.unhealthy {
            self.ctx
                .event(pod, true, "Unhealthy", message, Some(field_path(&spec, &name)));
        }
        let killed = !outcome.kill.is_empty();
        for (name, reason) in outcome.kill {
            if let Some(obs) = observed.containers.get(&name) {
                self.ctx
                    .event(pod, false, "Killing", reason, Some(field_path(&spec, &name)));
                self.stop_container(Some(pod), &name, &obs.id, grace_of(pod)).await;
                self.prober.forget(&name, &mut self.view.ready, &mut self.view.started);
            }
        }
        killed
    }

    /// Sets the back-off for containers whose latest attempt exited and that will restart.
    fn record_exits(&mut self, observed: &Observed) {
        for (name, obs) in &observed.containers {
            if let RunState::Exited(exit) = &obs.state {
                if !self.seen_exits.insert((name.clone(), obs.attempt)) {
                    continue;
                }
                self.prober.forget(name, &mut self.view.ready, &mut self.view.started);
                let ran_for = exit
                    .started_at
                    .map(|s| exit.finished_at.duration_since(s).unsigned_abs())
                    .unwrap_or_default();
                let backoff = Backoff::next(self.backoffs.get(name), ran_for, Instant::now());
                self.backoffs.insert(name.clone(), backoff);
            }
        }
    }

    async fn start_one(
        &mut self,
        pod: &Pod,
        container: &Container,
        attempt: u32,
        env_sources: &super::env::EnvSources,
        volumes: &BTreeMap<String, volumes::PreparedVolume>,
    ) {
        let spec = pod.spec.clone().unwrap_or_default();
        let field = Some(field_path(&spec, &container.name));
        let image = match start::ensure_image(&self.ctx, pod, container).await {
            Ok(image) => image,
            Err(failure) => {
                self.fail_start(pod, container, failure, true);
                return;
            }
        };
        let request = StartRequest {
            pod,
            container,
            attempt,
            image: &image,
            env_sources,
            volumes,
        };
        match start::start_attempt(&self.ctx, request).await {
            Ok(id) => {
                self.ctx.event(
                    pod,
                    false,
                    "Created",
                    format!("Created container: {}", container.name),
                    field.clone(),
                );
                self.ctx.event(
                    pod,
                    false,
                    "Started",
                    format!("Started container {}", container.name),
                    field.clone(),
                );
                if let Some(handler) = container.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
                    && let Some(target) = self.probe_target(pod)
                    && let Err(message) =
                        probes::run_hook(handler, container, &id, Duration::from_secs(30), target).await
                {
                    self.ctx.event(
                        pod,
                        true,
                        "FailedPostStartHook",
                        format!("PostStartHook failed: {message}"),
                        field,
                    );
                    self.stop_container(None, &container.name, &id, grace_of(pod)).await;
                }
                self.view.waiting.remove(&container.name);
                self.start_backoffs.remove(&container.name);
                self.prune_attempts(&container.name, attempt).await;
            }
            Err(failure) => {
                self.ctx
                    .event(pod, true, "Failed", format!("Error: {}", failure.message), field);
                self.fail_start(pod, container, failure, false);
            }
        }
    }

    fn fail_start(&mut self, pod: &Pod, container: &Container, failure: StartFailure, pull: bool) {
        let name = container.name.clone();
        let previous = self.start_backoffs.get(&name).copied();
        if failure.backoff {
            self.start_backoffs.insert(
                name.clone(),
                Backoff::next(previous.as_ref(), Duration::ZERO, Instant::now()),
            );
        }
        // The second failed pull in a row shows as ImagePullBackOff, as upstream.
        let (reason, message) = if pull && previous.is_some() && failure.reason == "ErrImagePull" {
            let image = container.image.clone().unwrap_or_default();
            let spec = pod.spec.clone().unwrap_or_default();
            self.ctx.event(
                pod,
                false,
                "BackOff",
                format!("Back-off pulling image \"{image}\""),
                Some(field_path(&spec, &name)),
            );
            (
                "ImagePullBackOff".to_string(),
                format!("Back-off pulling image \"{image}\": {}", failure.message),
            )
        } else {
            (failure.reason, failure.message)
        };
        self.view.waiting.insert(name, (reason, message));
    }

    /// Removes attempts older than the previous one (kept for `logs --previous`).
    async fn prune_attempts(&self, name: &str, latest: u32) {
        let Some(keep_from) = latest.checked_sub(1) else { return };
        for attempt in 0..keep_from {
            let id = container_id(&self.uid, name, attempt);
            self.remove_container(&id, name, attempt).await;
        }
    }

    async fn remove_container(&self, id: &str, name: &str, attempt: u32) {
        let rt = self.ctx.runtime.clone();
        let id = id.to_string();
        let dir = attempt_dir(&self.pod_dir(), name, attempt);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = rt.remove_container(&id);
            let _ = images::unmount_rootfs(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        })
        .await;
    }

    /// A new sandbox (namespaces and pod cgroup) with the pod's network interface in it.
    async fn create_sandbox(&mut self, pod: &Pod) -> Result<(), String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let host_network = spec.host_network.unwrap_or(false);
        let sandbox_spec = runtime::SandboxSpec {
            id: self.uid.clone(),
            pod_uid: self.uid.clone(),
            hostname: super::files::hostname(pod),
            host_network,
            share_process_namespace: spec.share_process_namespace.unwrap_or(false),
            resources: runtime::Resources::default(),
        };
        let rt = self.ctx.runtime.clone();
        let pod_dir = self.pod_dir();
        // Off the tokio workers: the runtime waits for the holder's status.
        let sandbox = tokio::task::spawn_blocking(move || {
            // A dead sandbox goes with its containers; their root filesystems are ours to
            // unmount.
            if rt.remove_sandbox(&sandbox_spec.id).is_ok() {
                for dir in attempt_dirs(&pod_dir) {
                    let _ = images::unmount_rootfs(&dir);
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            rt.create_sandbox(&sandbox_spec)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if host_network {
            self.view.pod_ip = Some(self.ctx.node_ip.clone());
            return Ok(());
        }
        let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", sandbox.pid));
        match self.ctx.network.setup_pod(&self.uid, &netns).await {
            Ok(ip) => {
                self.view.pod_ip = ip.map(|ip| ip.to_string());
                Ok(())
            }
            Err(error) => {
                let _ = self.ctx.runtime.remove_sandbox(&self.uid);
                Err(format!("setting up the pod network: {error}"))
            }
        }
    }

    /// SIGTERM, up to `grace` seconds, then SIGKILL.
    async fn stop_container(&self, pod: Option<&Pod>, name: &str, id: &str, grace: i64) {
        let mut grace = grace;
        let container = pod.and_then(|p| p.spec.as_ref()).and_then(|spec| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == name)
        });
        if let (Some(pod), Some(container), Some(handler)) = (
            pod,
            container,
            container
                .and_then(|c| c.lifecycle.as_ref())
                .and_then(|l| l.pre_stop.as_ref()),
        ) && grace > 0
            && let Some(target) = self.probe_target(pod)
        {
            let started = Instant::now();
            if let Err(message) =
                probes::run_hook(handler, container, id, Duration::from_secs(grace as u64), target).await
            {
                let spec = pod.spec.clone().unwrap_or_default();
                self.ctx.event(
                    pod,
                    true,
                    "FailedPreStopHook",
                    format!("PreStopHook failed: {message}"),
                    Some(field_path(&spec, name)),
                );
            }
            grace = (grace - started.elapsed().as_secs() as i64).max(0);
        }
        let rt = self.ctx.runtime.clone();
        let id = id.to_string();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = rt.kill(&id, SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(grace.max(0) as u64);
            loop {
                match rt.container_state(&id) {
                    Ok(runtime::ContainerState::Running { .. }) | Ok(runtime::ContainerState::Created) => {}
                    _ => return,
                }
                if Instant::now() >= deadline {
                    let _ = rt.kill(&id, SIGKILL);
                    // Wait for the shim to record the exit.
                    for _ in 0..100 {
                        if !matches!(rt.container_state(&id), Ok(runtime::ContainerState::Running { .. })) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await;
    }

    async fn kill_all(&self, pod: Option<&Pod>, observed: &Observed, grace: i64) {
        let stops = observed
            .containers
            .iter()
            .filter(|(_, c)| !matches!(c.state, RunState::Exited(_)))
            .map(|(name, c)| self.stop_container(pod, name, &c.id, grace));
        futures::future::join_all(stops).await;
    }

    /// Stops every container (in parallel, each with `grace` seconds), then removes containers,
    /// root filesystems, the sandbox, volumes, the pod directory and its logs.
    async fn terminate(&mut self, pod: Option<&Pod>, grace: i64) {
        let observed = self.observe().await;
        if let Some(pod) = pod {
            let spec = pod.spec.clone().unwrap_or_default();
            for (name, obs) in &observed.containers {
                if !matches!(obs.state, RunState::Exited(_)) {
                    self.ctx.event(
                        pod,
                        false,
                        "Killing",
                        format!("Stopping container {name}"),
                        Some(field_path(&spec, name)),
                    );
                }
            }
        }
        self.kill_all(pod, &observed, grace).await;
        for (id, _) in self.ctx.runtime.list_with_prefix(&format!("{}_", self.uid)) {
            if let Some((uid, name, attempt)) = parse_container_id(&id)
                && uid == self.uid
            {
                self.remove_container(&id, name, attempt).await;
            }
        }
        let _ = self.ctx.runtime.remove_sandbox(&self.uid);
        self.ctx.network.teardown_pod(&self.uid).await;
        let pod_dir = self.pod_dir();
        let logs = self.ctx.logs_dir();
        let uid = self.uid.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(error) = volumes::cleanup(&pod_dir) {
                tracing::warn!(%error, "cleaning up pod volumes");
            }
            let _ = std::fs::remove_dir_all(&pod_dir);
            for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().ends_with(&format!("_{uid}")) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        })
        .await;
    }

    /// Deletes the pod object for good once nothing of it is left on the node.
    async fn confirm_deletion(&self, pod: &Pod) {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.target.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(error) = api.delete(&self.target.name, &params).await {
            tracing::debug!(%error, pod = %self.target.name, "confirming pod deletion");
        }
    }

    /// Posts the status when it changed.
    async fn report(&mut self, pod: &Pod, observed: &Observed) {
        let mut status = pod_status(pod, observed, &self.view, &Time(jiff::Timestamp::now()));
        if let Some(last) = &self.last_status {
            // Keep times stable when nothing but the clock moved.
            if strip_times(last) == strip_times(&status) {
                return;
            }
            status.start_time = last.start_time.clone().or(status.start_time);
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.target.namespace);
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(&self.target.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => self.last_status = Some(status),
            Err(error) => tracing::debug!(%error, pod = %self.target.name, "posting pod status"),
        }
    }
}

fn strip_times(status: &PodStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(conditions) = value.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conditions {
            if let Some(c) = c.as_object_mut() {
                c.remove("lastTransitionTime");
                c.remove("lastProbeTime");
            }
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("startTime");
    }
    value
}

/// What runs for pod `uid` now, from the runtime and the attempt directories.
fn observe(runtime: &runtime::Runtime, uid: &str, pod_dir: &std::path::Path) -> Observed {
    let sandbox = match runtime.sandbox_state(uid) {
        Ok(runtime::SandboxState::Ready) => SandboxObs::Ready,
        Ok(runtime::SandboxState::NotReady) => SandboxObs::Dead,
        Err(_) => SandboxObs::Missing,
    };
    let mut attempts: BTreeMap<String, BTreeMap<u32, (String, RunState)>> = BTreeMap::new();
    for (id, state) in runtime.list_with_prefix(&format!("{uid}_")) {
        let Some((of, name, attempt)) = parse_container_id(&id) else {
            continue;
        };
        if of != uid {
            continue;
        }
        attempts
            .entry(name.to_string())
            .or_default()
            .insert(attempt, (id.clone(), run_state(state)));
    }
    let mut containers = BTreeMap::new();
    for (name, by_attempt) in attempts {
        let Some((&attempt, (id, state))) = by_attempt.iter().next_back() else {
            continue;
        };
        let previous = attempt
            .checked_sub(1)
            .and_then(|p| by_attempt.get(&p))
            .and_then(|(_, s)| match s {
                RunState::Exited(exit) => Some(exit.clone()),
                _ => None,
            });
        let meta: Option<AttemptMeta> = std::fs::read(attempt_dir(pod_dir, &name, attempt).join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut state = state.clone();
        if let RunState::Exited(exit) = &mut state
            && exit.message.is_none()
        {
            let log = attempt_dir(pod_dir, &name, attempt).join("termination-log");
            exit.message = std::fs::read_to_string(log).ok().filter(|m| !m.is_empty());
        }
        containers.insert(
            name,
            ContainerObs {
                id: id.clone(),
                attempt,
                image: meta.as_ref().map(|m| m.image.clone()).unwrap_or_default(),
                image_id: meta.map(|m| m.image_id).unwrap_or_default(),
                state,
                previous,
            },
        );
    }
    Observed { sandbox, containers }
}

fn run_state(state: runtime::ContainerState) -> RunState {
    match state {
        runtime::ContainerState::Created => RunState::Created,
        runtime::ContainerState::Running { started_at, .. } => RunState::Running { started_at },
        runtime::ContainerState::Exited {
            exit_code,
            signal,
            oom_killed,
            started_at,
            finished_at,
        } => RunState::Exited(Exit {
            exit_code,
            signal,
            oom_killed,
            started_at,
            finished_at,
            message: None,
        }),
        runtime::ContainerState::Unknown => RunState::Exited(Exit {
            exit_code: 255,
            signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: jiff::Timestamp::now(),
            message: Some("The container could not be located when the pod was terminated".to_string()),
        }),
    }
}

/// Every `<pod dir>/containers/<name>/<attempt>` directory.
fn attempt_dirs(pod_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for name in std::fs::read_dir(pod_dir.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for attempt in std::fs::read_dir(name.path()).into_iter().flatten().flatten() {
            out.push(attempt.path());
        }
    }
    out
}

fn find_container<'a>(spec: &'a k8s_openapi::api::core::v1::PodSpec, name: &str, init: bool) -> Option<&'a Container> {
    if init {
        spec.init_containers.iter().flatten().find(|c| c.name == name)
    } else {
        spec.containers.iter().find(|c| c.name == name)
    }
}

fn field_path(spec: &k8s_openapi::api::core::v1::PodSpec, name: &str) -> String {
    if spec.init_containers.iter().flatten().any(|c| c.name == name) {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

fn grace_of(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE)
}

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

/// Go's duration formatting for whole seconds and minutes (`10s`, `2m40s`, `5m0s`).
fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}
