//! Pod rows: the STATUS reason logic, READY, RESTARTS and the wide columns, against the strings
//! upstream prints.

use serde_json::{Value, json};

use super::testutil::{ago, cells, core, expect_columns, now};

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(300)},
        "spec": spec,
        "status": status,
    })
}

fn one_container() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"})
}

/// READY, STATUS, RESTARTS of a pod.
fn summary(p: &Value) -> (String, String, String) {
    let c = cells(core("pods"), p);
    let s = |i: usize| c[i].as_str().unwrap_or("?").to_string();
    (s(1), s(2), s(3))
}

fn expect(p: &Value, ready: &str, status: &str, restarts: &str) {
    assert_eq!(
        summary(p),
        (ready.to_string(), status.to_string(), restarts.to_string())
    );
}

#[test]
fn columns() {
    expect_columns(
        core("pods"),
        "Name,Ready,Status,Restarts,Age|IP,Node,Nominated Node,Readiness Gates",
    );
}

#[test]
fn running_pod_all_cells() {
    let p = pod(
        one_container(),
        json!({
            "phase": "Running",
            "podIP": "10.244.0.37", "podIPs": [{"ip": "10.244.0.37"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": ago(290)}}}],
        }),
    );
    assert_eq!(
        cells(core("pods"), &p),
        vec![
            json!("web-1"),
            json!("1/1"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.244.0.37"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn crash_loop_back_off() {
    let p = pod(
        one_container(),
        json!({
            "phase": "Running",
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(120)}}}],
        }),
    );
    expect(&p, "0/1", "CrashLoopBackOff", "5 (2m ago)");
}

#[test]
fn restart_age_uses_latest_termination() {
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}},
                {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(45)}}},
            ],
        }),
    );
    expect(&p, "2/2", "Running", "3 (45s ago)");
}

#[test]
fn restarts_without_termination_time() {
    let p = pod(
        one_container(),
        json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true,
            "restartCount": 2, "state": {"running": {}}}]}),
    );
    expect(&p, "1/1", "Running", "2");
}

#[test]
fn image_pull_back_off_and_container_creating() {
    for reason in [
        "ImagePullBackOff",
        "ErrImagePull",
        "ContainerCreating",
        "CreateContainerConfigError",
    ] {
        let p = pod(
            one_container(),
            json!({"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": reason}}}]}),
        );
        expect(&p, "0/1", reason, "0");
    }
}

fn with_init(statuses: Value, conditions: Value) -> Value {
    pod(
        json!({
            "initContainers": [{"name": "init-a"}, {"name": "init-b"}],
            "containers": [{"name": "app"}],
        }),
        json!({
            "phase": "Pending",
            "conditions": conditions,
            "initContainerStatuses": statuses,
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}}}],
        }),
    )
}

#[test]
fn init_container_progress() {
    let done =
        json!({"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let running = json!({"name": "init-b", "restartCount": 0, "state": {"running": {}}});
    let p = with_init(json!([done, running]), json!([]));
    expect(&p, "0/1", "Init:1/2", "0");

    let waiting = json!({"name": "init-a", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}});
    let p = with_init(json!([waiting]), json!([]));
    expect(&p, "0/1", "Init:0/2", "0");
}

#[test]
fn init_container_failures() {
    let cases = [
        (
            json!({"waiting": {"reason": "ImagePullBackOff"}}),
            0,
            "Init:ImagePullBackOff",
        ),
        (
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            3,
            "Init:CrashLoopBackOff",
        ),
        (
            json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
            0,
            "Init:Error",
        ),
        (json!({"terminated": {"exitCode": 2}}), 0, "Init:ExitCode:2"),
        (
            json!({"terminated": {"exitCode": 137, "signal": 9}}),
            0,
            "Init:Signal:9",
        ),
    ];
    for (state, restarts, want) in cases {
        let status = json!({"name": "init-a", "restartCount": restarts, "state": state,
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}});
        let p = with_init(json!([status]), json!([]));
        let want_restarts = if restarts == 0 {
            "0".to_string()
        } else {
            format!("{restarts} (30s ago)")
        };
        expect(&p, "0/1", want, &want_restarts);
    }
}

#[test]
fn initialized_condition_reads_main_containers() {
    let failed =
        json!({"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
    let p = with_init(json!([failed]), json!([{"type": "Initialized", "status": "True"}]));
    // The main container's waiting reason replaces the init reason once the pod is initialized.
    expect(&p, "0/1", "PodInitializing", "0");
}

#[test]
fn terminated_containers() {
    let cases = [
        (json!({"exitCode": 0, "reason": "Completed"}), "Succeeded", "Completed"),
        (json!({"exitCode": 1, "reason": "Error"}), "Failed", "Error"),
        (json!({"exitCode": 137, "reason": "OOMKilled"}), "Running", "OOMKilled"),
        (json!({"exitCode": 3}), "Failed", "ExitCode:3"),
        (json!({"exitCode": 143, "signal": 15}), "Failed", "Signal:15"),
    ];
    for (terminated, phase, want) in cases {
        let p = pod(
            one_container(),
            json!({"phase": phase, "containerStatuses": [{"name": "app", "ready": false,
                "restartCount": 0, "state": {"terminated": terminated}}]}),
        );
        expect(&p, "0/1", want, "0");
    }
}

#[test]
fn completed_with_running_sidecar_like_container() {
    let statuses = json!([
        {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}},
    ]);
    let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    // Statuses are read from the last one: b runs, then a's "Completed" is the reason.
    let ready = pod(
        spec.clone(),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": statuses}),
    );
    expect(&ready, "1/2", "Running", "0");
    let not_ready = pod(
        spec,
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": statuses}),
    );
    expect(&not_ready, "1/2", "NotReady", "0");
}

#[test]
fn restartable_init_containers_count_as_containers() {
    let p = pod(
        json!({
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}],
        }),
        json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}],
        }),
    );
    expect(&p, "2/2", "Running", "1 (10m ago)");
}

#[test]
fn terminating_and_node_lost() {
    let status = json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true,
        "restartCount": 0, "state": {"running": {}}}]});
    let mut p = pod(one_container(), status.clone());
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    expect(&p, "1/1", "Terminating", "0");

    let mut lost = p.clone();
    lost["status"]["reason"] = json!("NodeLost");
    expect(&lost, "1/1", "Unknown", "0");

    // A finished pod being deleted keeps its final reason.
    let mut done = pod(
        one_container(),
        json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    done["metadata"]["deletionTimestamp"] = json!(ago(5));
    expect(&done, "0/1", "Completed", "0");
}

#[test]
fn pod_reason_and_scheduling_gates() {
    let evicted = pod(one_container(), json!({"phase": "Failed", "reason": "Evicted"}));
    expect(&evicted, "0/1", "Evicted", "0");
    let gated = pod(
        one_container(),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    expect(&gated, "0/1", "SchedulingGated", "0");
}

#[test]
fn pending_pod_wide_cells() {
    let p = pod(json!({"containers": [{"name": "app"}]}), json!({"phase": "Pending"}));
    let c = cells(core("pods"), &p);
    assert_eq!(
        &c[1..],
        &[
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("5m"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn wide_nominated_node_and_readiness_gates() {
    let p = pod(
        json!({
            "containers": [{"name": "app"}],
            "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}],
        }),
        json!({
            "phase": "Pending",
            "nominatedNodeName": "node-2",
            "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}],
            "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}],
        }),
    );
    let c = cells(core("pods"), &p);
    assert_eq!(
        &c[5..],
        &[json!("fd00::5"), json!("<none>"), json!("node-2"), json!("1/2")]
    );
    let mut legacy = p.clone();
    legacy["status"]["podIP"] = json!("10.0.0.5");
    assert_eq!(cells(core("pods"), &legacy)[5], "10.0.0.5");
}

#[test]
fn row_conditions_for_finished_pods() {
    let done = pod(one_container(), json!({"phase": "Succeeded"}));
    let t = super::table(
        core("pods"),
        &[done],
        super::IncludeObject::None,
        true,
        json!({}),
        now(),
    );
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    let failed = pod(one_container(), json!({"phase": "Failed"}));
    let t = super::table(
        core("pods"),
        &[failed],
        super::IncludeObject::None,
        true,
        json!({}),
        now(),
    );
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Failed");
    let running = pod(one_container(), json!({"phase": "Running"}));
    let t = super::table(
        core("pods"),
        &[running],
        super::IncludeObject::None,
        true,
        json!({}),
        now(),
    );
    assert!(t["rows"][0].get("conditions").is_none());
}

#[test]
fn malformed_pods_do_not_panic() {
    for p in [
        json!(null),
        json!(42),
        json!({"metadata": "x", "spec": [], "status": "y"}),
        json!({"spec": {"containers": "nope", "initContainers": [1, null]},
               "status": {"initContainerStatuses": [{"name": 3, "state": []}], "containerStatuses": [null, "x"]}}),
        json!({"metadata": {"name": 7, "creationTimestamp": "yesterday", "deletionTimestamp": {}},
               "status": {"containerStatuses": [{"restartCount": "many", "lastState": {"terminated": {"finishedAt": 5}}}]}}),
    ] {
        let c = cells(core("pods"), &p);
        assert_eq!(c[4], json!("<unknown>"));
    }
}
