//! The pure decide step of a pod worker: from a pod's spec and what the runtime reports, the
//! next actions (upstream's `computePodActions`): create the sandbox, run init containers in
//! order, start or restart containers per `restartPolicy` with crash-loop back-off, replace
//! containers whose image changed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// What the runtime reports about one attempt of a container.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Created but not (yet) known to be running.
    Created,
    Running {
        started_at: jiff::Timestamp,
    },
    Exited(Exit),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: jiff::Timestamp,
    /// Why the kubelet stopped it, when it did (e.g. a failed liveness probe).
    pub message: Option<String>,
}

/// The latest attempt of a container in the current sandbox, and the one before it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerObs {
    /// The runtime's id of the latest attempt.
    pub id: String,
    /// 0 for the first attempt; equals the restart count.
    pub attempt: u32,
    /// The image the latest attempt was started from.
    pub image: String,
    pub image_id: String,
    pub state: RunState,
    pub previous: Option<Exit>,
}

/// The pod sandbox (the namespaces the containers share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxObs {
    Missing,
    Ready,
    /// Its holder process is gone: every container must be restarted in a new one.
    Dead,
}

/// What the worker knows about a pod's containers, by container name.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub sandbox: SandboxObs,
    pub containers: BTreeMap<String, ContainerObs>,
}

/// One step for the worker to carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Stop every container and the sandbox (the sandbox died, or the pod is done).
    KillPod,
    CreateSandbox,
    Start {
        name: String,
        init: bool,
    },
    Kill {
        name: String,
        reason: String,
    },
}

/// The decision and when to look again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Containers waiting for their restart back-off to expire, and until when.
    pub backing_off: BTreeMap<String, Instant>,
}

/// Crash-loop back-off as upstream's kubelet keeps it: the first exit restarts at once, then
/// 10 s doubling up to 5 min; a container that ran for 10 minutes starts over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub delay: Duration,
    pub until: Instant,
}

pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long before exiting restarts without back-off.
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);

impl Backoff {
    /// The back-off after an exit, given the previous one.
    pub fn next(previous: Option<&Backoff>, ran_for: Duration, now: Instant) -> Backoff {
        let delay = match previous {
            Some(previous) if ran_for < BACKOFF_RESET && previous.delay.is_zero() => BACKOFF_INITIAL,
            Some(previous) if ran_for < BACKOFF_RESET => (previous.delay * 2).min(BACKOFF_MAX),
            _ => Duration::ZERO,
        };
        Backoff {
            delay,
            until: now + delay,
        }
    }
}

/// Whether an exited container is restarted under `policy`.
pub fn should_restart(policy: &str, exit: &Exit) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit.exit_code != 0,
        _ => true,
    }
}

fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

/// Sidecars: init containers with `restartPolicy: Always` keep running beside the app.
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// Decides the next actions for a pod that is not being deleted. `backoffs` holds the current
/// crash-loop back-off per container name.
pub fn decide(spec: &PodSpec, observed: &Observed, backoffs: &BTreeMap<String, Backoff>, now: Instant) -> Plan {
    let mut plan = Plan::default();
    let policy = restart_policy(spec);
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();

    let mut containers = observed.containers.clone();
    match observed.sandbox {
        SandboxObs::Ready => {}
        SandboxObs::Missing | SandboxObs::Dead => {
            if is_finished(spec, observed) {
                return plan;
            }
            if observed.sandbox == SandboxObs::Dead {
                plan.actions.push(Action::KillPod);
            }
            plan.actions.push(Action::CreateSandbox);
            // In a new sandbox every container starts again (init containers first), except
            // that with restartPolicy Never, containers that already ran are not rerun.
            containers.retain(|_, obs| policy == "Never" && matches!(obs.state, RunState::Exited(_)));
        }
    }

    // May this exited container start again now? Records the back-off otherwise.
    let restart_now = |name: &str, plan: &mut Plan| -> bool {
        match backoffs.get(name) {
            Some(backoff) if backoff.until > now => {
                plan.backing_off.insert(name.to_string(), backoff.until);
                false
            }
            _ => true,
        }
    };

    // Init containers, one at a time, in order. Sidecars count as done once running.
    for init in init_containers {
        match containers.get(&init.name).map(|obs| &obs.state) {
            None => {
                plan.actions.push(Action::Start {
                    name: init.name.clone(),
                    init: true,
                });
                return plan;
            }
            Some(RunState::Created) => return plan,
            Some(RunState::Running { .. }) => {
                if is_sidecar(init) {
                    continue;
                }
                return plan;
            }
            Some(RunState::Exited(exit)) => {
                if exit.exit_code == 0 && !is_sidecar(init) {
                    continue;
                }
                if policy == "Never" && !is_sidecar(init) {
                    return plan; // the pod has failed
                }
                if restart_now(&init.name, &mut plan) {
                    plan.actions.push(Action::Start {
                        name: init.name.clone(),
                        init: true,
                    });
                }
                if !is_sidecar(init) {
                    return plan;
                }
            }
        }
    }

    for container in spec.containers.iter() {
        match containers.get(&container.name) {
            None => plan.actions.push(Action::Start {
                name: container.name.clone(),
                init: false,
            }),
            Some(obs) => match &obs.state {
                RunState::Created => {}
                RunState::Running { .. } => {
                    if container.image.as_deref().is_some_and(|image| image != obs.image) {
                        plan.actions.push(Action::Kill {
                            name: container.name.clone(),
                            reason: format!("Container {} definition changed, will be restarted", container.name),
                        });
                    }
                }
                RunState::Exited(exit) => {
                    let image_changed = container.image.as_deref().is_some_and(|image| image != obs.image);
                    if (should_restart(policy, exit) || image_changed && policy != "Never")
                        && restart_now(&container.name, &mut plan)
                    {
                        plan.actions.push(Action::Start {
                            name: container.name.clone(),
                            init: false,
                        });
                    }
                }
            },
        }
    }
    plan
}

/// True when the pod has run to completion and nothing will ever restart: every container
/// exited and the restart policy keeps them down (or an init container failed under Never).
pub fn is_finished(spec: &PodSpec, observed: &Observed) -> bool {
    let policy = restart_policy(spec);
    if policy == "Always" {
        return false;
    }
    let exit_of = |name: &str| match observed.containers.get(name).map(|obs| &obs.state) {
        Some(RunState::Exited(exit)) => Some(exit.clone()),
        _ => None,
    };
    if policy == "Never" {
        let failed_init = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| !is_sidecar(c))
            .any(|c| exit_of(&c.name).is_some_and(|exit| exit.exit_code != 0));
        if failed_init {
            return true;
        }
    }
    !spec.containers.is_empty()
        && spec.containers.iter().all(|c| match exit_of(&c.name) {
            Some(exit) => !should_restart(policy, &exit),
            None => false,
        })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
