//! Table tests for the pod worker's decide step.

use super::*;
use k8s_openapi::api::core::v1::Container;

fn container(name: &str) -> Container {
    Container {
        name: name.into(),
        image: Some("busybox".into()),
        ..Default::default()
    }
}

fn spec(init: &[&str], containers: &[&str], policy: &str) -> PodSpec {
    PodSpec {
        init_containers: (!init.is_empty()).then(|| init.iter().map(|n| container(n)).collect()),
        containers: containers.iter().map(|n| container(n)).collect(),
        restart_policy: Some(policy.into()),
        ..Default::default()
    }
}

fn exited(code: i32) -> RunState {
    RunState::Exited(Exit {
        exit_code: code,
        signal: None,
        oom_killed: false,
        started_at: None,
        finished_at: jiff::Timestamp::UNIX_EPOCH,
        message: None,
    })
}

fn running() -> RunState {
    RunState::Running {
        started_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

fn observed(sandbox: SandboxObs, states: &[(&str, RunState)]) -> Observed {
    Observed {
        sandbox,
        containers: states
            .iter()
            .map(|(name, state)| {
                (
                    name.to_string(),
                    ContainerObs {
                        id: format!("id-{name}"),
                        attempt: 0,
                        image: "busybox".into(),
                        image_id: "sha256:1".into(),
                        state: state.clone(),
                        previous: None,
                    },
                )
            })
            .collect(),
    }
}

fn start(name: &str, init: bool) -> Action {
    Action::Start {
        name: name.into(),
        init,
    }
}

#[test]
fn decide_table() {
    use SandboxObs::*;
    let cases: Vec<(&str, PodSpec, Observed, Vec<Action>)> = vec![
        (
            "new pod: sandbox then every container",
            spec(&[], &["a", "b"], "Always"),
            observed(Missing, &[]),
            vec![Action::CreateSandbox, start("a", false), start("b", false)],
        ),
        (
            "new pod with init containers: only the first init container",
            spec(&["i1", "i2"], &["a"], "Always"),
            observed(Missing, &[]),
            vec![Action::CreateSandbox, start("i1", true)],
        ),
        (
            "first init done: the second",
            spec(&["i1", "i2"], &["a"], "Always"),
            observed(Ready, &[("i1", exited(0))]),
            vec![start("i2", true)],
        ),
        (
            "init running: wait",
            spec(&["i1", "i2"], &["a"], "Always"),
            observed(Ready, &[("i1", running())]),
            vec![],
        ),
        (
            "all init done: app containers",
            spec(&["i1"], &["a"], "Always"),
            observed(Ready, &[("i1", exited(0))]),
            vec![start("a", false)],
        ),
        (
            "init failed under Never: nothing more",
            spec(&["i1"], &["a"], "Never"),
            observed(Ready, &[("i1", exited(1))]),
            vec![],
        ),
        (
            "init failed under OnFailure: rerun it",
            spec(&["i1"], &["a"], "OnFailure"),
            observed(Ready, &[("i1", exited(1))]),
            vec![start("i1", true)],
        ),
        (
            "Always restarts a clean exit",
            spec(&[], &["a"], "Always"),
            observed(Ready, &[("a", exited(0))]),
            vec![start("a", false)],
        ),
        (
            "OnFailure keeps a clean exit down",
            spec(&[], &["a"], "OnFailure"),
            observed(Ready, &[("a", exited(0))]),
            vec![],
        ),
        (
            "OnFailure restarts a failure",
            spec(&[], &["a"], "OnFailure"),
            observed(Ready, &[("a", exited(2))]),
            vec![start("a", false)],
        ),
        (
            "Never keeps a failure down",
            spec(&[], &["a"], "Never"),
            observed(Ready, &[("a", exited(2))]),
            vec![],
        ),
        (
            "dead sandbox: kill everything and start over, init first",
            spec(&["i1"], &["a"], "Always"),
            observed(Dead, &[("i1", exited(0)), ("a", running())]),
            vec![Action::KillPod, Action::CreateSandbox, start("i1", true)],
        ),
        (
            "finished pod gets no new sandbox",
            spec(&[], &["a"], "Never"),
            observed(Missing, &[("a", exited(0))]),
            vec![],
        ),
    ];
    for (name, spec, observed, expected) in cases {
        let plan = decide(&spec, &observed, &BTreeMap::new(), Instant::now());
        assert_eq!(plan.actions, expected, "{name}");
    }
}

#[test]
fn image_change_restarts_the_container() {
    let mut s = spec(&[], &["a"], "Always");
    s.containers[0].image = Some("busybox:2".into());
    let plan = decide(
        &s,
        &observed(SandboxObs::Ready, &[("a", running())]),
        &BTreeMap::new(),
        Instant::now(),
    );
    assert!(matches!(&plan.actions[..], [Action::Kill { name, .. }] if name == "a"));
}

#[test]
fn backoff_delays_restarts() {
    let now = Instant::now();
    let backoffs = BTreeMap::from([(
        "a".to_string(),
        Backoff {
            delay: BACKOFF_INITIAL,
            until: now + BACKOFF_INITIAL,
        },
    )]);
    let s = spec(&[], &["a"], "Always");
    let obs = observed(SandboxObs::Ready, &[("a", exited(1))]);
    let plan = decide(&s, &obs, &backoffs, now);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.backing_off.get("a"), Some(&(now + BACKOFF_INITIAL)));
    let later = decide(&s, &obs, &backoffs, now + BACKOFF_INITIAL + Duration::from_millis(1));
    assert_eq!(later.actions, vec![start("a", false)]);
}

#[test]
fn backoff_doubles_caps_and_resets() {
    let now = Instant::now();
    let first = Backoff::next(None, Duration::ZERO, now);
    assert_eq!(first.delay, Duration::ZERO, "the first exit restarts at once");
    let second = Backoff::next(Some(&first), Duration::from_secs(1), now);
    assert_eq!(second.delay, Duration::from_secs(10));
    let third = Backoff::next(Some(&second), Duration::from_secs(1), now);
    assert_eq!(third.delay, Duration::from_secs(20));
    let mut b = second;
    for _ in 0..10 {
        b = Backoff::next(Some(&b), Duration::from_secs(1), now);
    }
    assert_eq!(b.delay, BACKOFF_MAX);
    let reset = Backoff::next(Some(&b), BACKOFF_RESET, now);
    assert_eq!(reset.delay, Duration::ZERO);
}

#[test]
fn sidecar_init_containers_run_beside_the_app() {
    let mut s = spec(&["side"], &["a"], "Always");
    s.init_containers.as_mut().unwrap()[0].restart_policy = Some("Always".into());
    let plan = decide(
        &s,
        &observed(SandboxObs::Ready, &[("side", running())]),
        &BTreeMap::new(),
        Instant::now(),
    );
    assert_eq!(plan.actions, vec![start("a", false)]);
}

#[test]
fn finished() {
    let s = spec(&[], &["a", "b"], "OnFailure");
    assert!(!is_finished(&s, &observed(SandboxObs::Ready, &[("a", exited(0))])));
    assert!(is_finished(
        &s,
        &observed(SandboxObs::Ready, &[("a", exited(0)), ("b", exited(0))])
    ));
    assert!(!is_finished(
        &s,
        &observed(SandboxObs::Ready, &[("a", exited(0)), ("b", exited(1))])
    ));
    assert!(!is_finished(
        &spec(&[], &["a"], "Always"),
        &observed(SandboxObs::Ready, &[("a", exited(0))])
    ));
}
