//! The pure status step of a pod worker: phase, conditions and container statuses from what
//! the runtime reports (upstream's `generateAPIPodStatus` and `getPhase`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    Pod, PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::{ContainerObs, Exit, Observed, RunState, SandboxObs, is_sidecar};

/// What the worker knows besides the runtime's report.
#[derive(Debug, Clone, Default)]
pub struct WorkerView {
    /// Why a container is not running, set by the worker (image pull errors, back-off, config
    /// errors): container name → (reason, message).
    pub waiting: BTreeMap<String, (String, String)>,
    /// Readiness probe results (containers without a probe are ready once running).
    pub ready: BTreeMap<String, bool>,
    /// Startup probe results (containers without a probe are started once running).
    pub started: BTreeMap<String, bool>,
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
}

fn terminated(exit: &Exit, container_id: Option<&str>) -> ContainerStateTerminated {
    let reason = if exit.oom_killed {
        "OOMKilled"
    } else if exit.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    ContainerStateTerminated {
        exit_code: exit.exit_code,
        signal: exit.signal,
        reason: Some(reason.to_string()),
        message: exit.message.clone(),
        started_at: exit.started_at.map(Time),
        finished_at: Some(Time(exit.finished_at)),
        container_id: container_id.map(str::to_string),
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: message.map(str::to_string),
        }),
        ..Default::default()
    }
}

/// The status of one container.
fn container_status(
    container: &Container,
    obs: Option<&ContainerObs>,
    view: &WorkerView,
    default_waiting: &str,
) -> ContainerStatus {
    let image = container.image.clone().unwrap_or_default();
    let mut status = ContainerStatus {
        name: container.name.clone(),
        image: image.clone(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let worker_waiting = view.waiting.get(&container.name);
    let Some(obs) = obs else {
        let (reason, message) = worker_waiting
            .map(|(r, m)| (r.as_str(), Some(m.as_str())))
            .unwrap_or((default_waiting, None));
        status.state = Some(waiting(reason, message));
        return status;
    };
    let container_id = format!("kaji://{}", obs.id);
    status.restart_count = obs.attempt as i32;
    status.image_id = obs.image_id.clone();
    status.image = obs.image.clone();
    status.last_state = obs.previous.as_ref().map(|exit| ContainerState {
        terminated: Some(terminated(exit, None)),
        ..Default::default()
    });
    match &obs.state {
        RunState::Created => {
            status.container_id = Some(container_id);
            status.state = Some(waiting("ContainerCreating", None));
        }
        RunState::Running { started_at } => {
            status.container_id = Some(container_id);
            let started = view
                .started
                .get(&container.name)
                .copied()
                .unwrap_or(container.startup_probe.is_none());
            status.started = Some(started);
            status.ready = started
                && view
                    .ready
                    .get(&container.name)
                    .copied()
                    .unwrap_or(container.readiness_probe.is_none());
            status.state = Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*started_at)),
                }),
                ..Default::default()
            });
        }
        RunState::Exited(exit) => {
            status.container_id = Some(container_id.clone());
            if let Some((reason, message)) = worker_waiting {
                // Restarting (back-off or a new attempt being set up): waiting, with the exit
                // as the last state.
                status.state = Some(waiting(reason, Some(message)));
                status.last_state = Some(ContainerState {
                    terminated: Some(terminated(exit, Some(&container_id))),
                    ..Default::default()
                });
            } else {
                status.state = Some(ContainerState {
                    terminated: Some(terminated(exit, Some(&container_id))),
                    ..Default::default()
                });
            }
        }
    }
    status
}

/// Upstream's `getPhase`.
pub fn phase(spec: &PodSpec, init: &[ContainerStatus], containers: &[ContainerStatus]) -> &'static str {
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let exit_code = |s: &ContainerState| s.terminated.as_ref().map(|t| t.exit_code);
    let mut pending_init = 0;
    let mut failed_init = 0;
    for (status, container) in init.iter().zip(spec.init_containers.iter().flatten()) {
        let state = status.state.clone().unwrap_or_default();
        if is_sidecar(container) {
            if state.running.is_none() || status.started != Some(true) {
                pending_init += 1;
            }
            continue;
        }
        match exit_code(&state) {
            Some(0) => {}
            Some(_) => failed_init += 1,
            None if state.waiting.is_some()
                && status
                    .last_state
                    .as_ref()
                    .and_then(exit_code)
                    .is_some_and(|code| code != 0) =>
            {
                failed_init += 1
            }
            None => pending_init += 1,
        }
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for status in containers {
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(code) = exit_code(&state) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if status.last_state.as_ref().and_then(exit_code).is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>, now: &Time) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(now.clone()),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's status as the kubelet reports it. Conditions keep their transition times from
/// `pod.status` while their status holds; PodScheduled (the scheduler's) is kept as is.
pub fn pod_status(pod: &Pod, observed: &Observed, view: &WorkerView, now: &Time) -> PodStatus {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let previous = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();

    let init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(c, observed.containers.get(&c.name), view, "PodInitializing"))
        .collect();
    let initialized = init_specs.iter().zip(&init_statuses).all(|(c, s)| {
        let state = s.state.clone().unwrap_or_default();
        if is_sidecar(c) {
            state.running.is_some() && s.started == Some(true)
        } else {
            state.terminated.is_some_and(|t| t.exit_code == 0)
        }
    });
    let default_waiting = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, observed.containers.get(&c.name), view, default_waiting))
        .collect();
    let phase = phase(spec, &init_statuses, &statuses);
    let terminal = matches!(phase, "Succeeded" | "Failed");

    let mut conditions = Vec::new();
    if let Some(scheduled) = previous.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled") {
        conditions.push(scheduled.clone());
    }
    conditions.push(condition(
        "PodReadyToStartContainers",
        observed.sandbox == SandboxObs::Ready,
        None,
        None,
        now,
    ));
    let incomplete: Vec<&str> = init_specs
        .iter()
        .zip(&init_statuses)
        .filter(|(c, s)| {
            let state = s.state.clone().unwrap_or_default();
            if is_sidecar(c) {
                state.running.is_none()
            } else {
                state.terminated.is_none_or(|t| t.exit_code != 0)
            }
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    conditions.push(if initialized || terminal && incomplete.is_empty() {
        condition("Initialized", true, None, None, now)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", incomplete.join(" "))),
            now,
        )
    });
    let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    let (ready, reason, message) = if terminal {
        (false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{}]", unready.join(" "))),
        )
    };
    conditions.push(condition("ContainersReady", ready, reason, message.clone(), now));
    conditions.push(condition("Ready", ready, reason, message, now));
    for c in conditions.iter_mut() {
        if let Some(old) = previous.conditions.iter().flatten().find(|o| o.type_ == c.type_)
            && old.status == c.status
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }

    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: view.host_ip.clone().or(previous.host_ip),
        host_ips: view
            .host_ip
            .clone()
            .map(|ip| vec![k8s_openapi::api::core::v1::HostIP { ip }])
            .or(previous.host_ips),
        pod_ip: view.pod_ip.clone(),
        pod_ips: view.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        start_time: previous.start_time.or_else(|| Some(now.clone())),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        qos_class: Some(qos_class(spec).to_string()),
        ..Default::default()
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    use api::validation::quantity::Quantity;
    match (
        Quantity::parse(a).and_then(|q| q.milli_value()),
        Quantity::parse(b).and_then(|q| q.milli_value()),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// Upstream's QoS class: Guaranteed when every container has equal cpu and memory requests and
/// limits, BestEffort when none has any, Burstable otherwise.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let requests = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        let limits = c.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
        for name in ["cpu", "memory"] {
            let request = requests.get(name).or(limits.get(name));
            let limit = limits.get(name);
            if request.is_some() || limit.is_some() {
                any = true;
            }
            match (request, limit) {
                (Some(r), Some(l)) if same_quantity(&r.0, &l.0) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
