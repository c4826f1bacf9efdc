//! Tests for pod status generation.

use super::*;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::pods::plan::ContainerObs;

fn pod(init: &[&str], containers: &[&str], policy: &str) -> Pod {
    let c = |n: &&str| Container {
        name: n.to_string(),
        image: Some("busybox".into()),
        ..Default::default()
    };
    Pod {
        spec: Some(PodSpec {
            init_containers: (!init.is_empty()).then(|| init.iter().map(c).collect()),
            containers: containers.iter().map(c).collect(),
            restart_policy: Some(policy.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn exit(code: i32) -> Exit {
    Exit {
        exit_code: code,
        signal: None,
        oom_killed: false,
        started_at: Some(jiff::Timestamp::UNIX_EPOCH),
        finished_at: jiff::Timestamp::UNIX_EPOCH,
        message: None,
    }
}

fn obs(states: &[(&str, RunState, u32)]) -> Observed {
    Observed {
        sandbox: SandboxObs::Ready,
        containers: states
            .iter()
            .map(|(n, s, attempt)| {
                (
                    n.to_string(),
                    ContainerObs {
                        id: format!("c-{n}"),
                        attempt: *attempt,
                        image: "busybox".into(),
                        image_id: "docker.io/library/busybox@sha256:1".into(),
                        state: s.clone(),
                        previous: None,
                    },
                )
            })
            .collect(),
    }
}

fn running() -> RunState {
    RunState::Running {
        started_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

fn now() -> Time {
    Time(jiff::Timestamp::from_second(100).unwrap())
}

fn cond<'a>(status: &'a PodStatus, t: &str) -> &'a PodCondition {
    status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == t)
        .unwrap()
}

#[test]
fn new_pod_is_pending_and_creating() {
    let p = pod(&[], &["a"], "Always");
    let status = pod_status(&p, &obs(&[]), &WorkerView::default(), &now());
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let a = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        a.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(),
        Some("ContainerCreating")
    );
    assert_eq!(cond(&status, "Ready").status, "False");
    assert_eq!(
        cond(&status, "Ready").message.as_deref(),
        Some("containers with unready status: [a]")
    );
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
}

#[test]
fn running_pod_is_ready() {
    let p = pod(&[], &["a"], "Always");
    let status = pod_status(&p, &obs(&[("a", running(), 0)]), &WorkerView::default(), &now());
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&status, "Ready").status, "True");
    let a = &status.container_statuses.as_ref().unwrap()[0];
    assert!(a.ready);
    assert_eq!(a.container_id.as_deref(), Some("kaji://c-a"));
}

#[test]
fn readiness_probe_gates_ready() {
    let mut p = pod(&[], &["a"], "Always");
    p.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Default::default());
    let o = obs(&[("a", running(), 0)]);
    let status = pod_status(&p, &o, &WorkerView::default(), &now());
    assert_eq!(cond(&status, "Ready").status, "False");
    let mut view = WorkerView::default();
    view.ready.insert("a".into(), true);
    assert_eq!(cond(&pod_status(&p, &o, &view, &now()), "Ready").status, "True");
}

#[test]
fn init_containers_gate_initialized() {
    let p = pod(&["i"], &["a"], "Always");
    let status = pod_status(&p, &obs(&[("i", running(), 0)]), &WorkerView::default(), &now());
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(
        cond(&status, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [i]")
    );
    let a = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        a.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(),
        Some("PodInitializing")
    );
    let done = pod_status(
        &p,
        &obs(&[("i", RunState::Exited(exit(0)), 0)]),
        &WorkerView::default(),
        &now(),
    );
    assert_eq!(cond(&done, "Initialized").status, "True");
}

#[test]
fn phases() {
    let exited = |c| RunState::Exited(exit(c));
    let v = WorkerView::default();
    let phase_of = |policy, states: &[(&str, RunState, u32)]| {
        pod_status(&pod(&[], &["a", "b"], policy), &obs(states), &v, &now())
            .phase
            .unwrap()
    };
    assert_eq!(
        phase_of("Never", &[("a", exited(0), 0), ("b", exited(0), 0)]),
        "Succeeded"
    );
    assert_eq!(phase_of("Never", &[("a", exited(0), 0), ("b", exited(1), 0)]), "Failed");
    assert_eq!(
        phase_of("OnFailure", &[("a", exited(0), 0), ("b", exited(1), 0)]),
        "Running"
    );
    assert_eq!(
        phase_of("Never", &[("a", running(), 0), ("b", exited(1), 0)]),
        "Running"
    );
    let failed_init = pod_status(&pod(&["i"], &["a"], "Never"), &obs(&[("i", exited(1), 0)]), &v, &now());
    assert_eq!(failed_init.phase.as_deref(), Some("Failed"));
}

#[test]
fn crash_loop_shows_waiting_with_last_state() {
    let p = pod(&[], &["a"], "Always");
    let mut view = WorkerView::default();
    view.waiting.insert(
        "a".into(),
        (
            "CrashLoopBackOff".into(),
            "back-off 10s restarting failed container=a pod=p_ns(uid)".into(),
        ),
    );
    let mut e = exit(3);
    e.oom_killed = true;
    let status = pod_status(&p, &obs(&[("a", RunState::Exited(e), 2)]), &view, &now());
    let a = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(a.restart_count, 2);
    assert_eq!(
        a.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(),
        Some("CrashLoopBackOff")
    );
    let last = a.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 3);
    assert_eq!(last.reason.as_deref(), Some("OOMKilled"));
    assert_eq!(status.phase.as_deref(), Some("Running"));
}

#[test]
fn transition_times_are_kept() {
    let mut p = pod(&[], &["a"], "Always");
    let first = pod_status(
        &p,
        &obs(&[("a", running(), 0)]),
        &WorkerView::default(),
        &Time(jiff::Timestamp::UNIX_EPOCH),
    );
    p.status = Some(first);
    let second = pod_status(&p, &obs(&[("a", running(), 0)]), &WorkerView::default(), &now());
    assert_eq!(
        cond(&second, "Ready").last_transition_time.as_ref().unwrap().0,
        jiff::Timestamp::UNIX_EPOCH
    );
    assert_eq!(second.start_time.unwrap().0, jiff::Timestamp::UNIX_EPOCH);
}

#[test]
fn qos_classes() {
    let resources = |req: &[(&str, &str)], lim: &[(&str, &str)]| ResourceRequirements {
        requests: Some(
            req.iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        ),
        limits: Some(
            lim.iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        ),
        ..Default::default()
    };
    let mut p = pod(&[], &["a"], "Always");
    let spec = p.spec.as_mut().unwrap();
    spec.containers[0].resources = Some(resources(&[("cpu", "500m")], &[("cpu", "1000m"), ("memory", "1Gi")]));
    assert_eq!(qos_class(spec), "Burstable");
    spec.containers[0].resources = Some(resources(&[], &[("cpu", "1"), ("memory", "1Gi")]));
    assert_eq!(qos_class(spec), "Guaranteed");
}
