//! Pods: `READY` n/m, the `STATUS` reason (upstream's `printPod`: init containers first, then
//! the last container that is waiting or terminated, `Terminating` while deleting), `RESTARTS`
//! with when the last restart was, and the wide columns.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::descriptions as d;
use super::format::{age, or_none, since};
use super::value::Read;
use super::{AGE, Column, NAME, Printer, col, wide};

const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", d::POD_IP),
    wide("Node", "string", d::NODE_NAME),
    wide("Nominated Node", "string", d::NOMINATED),
    wide("Readiness Gates", "string", d::READINESS_GATES),
];

pub(crate) static POD: Printer = Printer {
    columns: COLUMNS,
    cells,
    null_rows_when_empty: false,
};

/// The row conditions upstream attaches to a finished pod.
pub(crate) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match pod.str_at(&["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// `podutil.IsRestartableInitContainer`: an init container with `restartPolicy: Always`.
fn is_sidecar(pod: &Value, name: &str) -> bool {
    pod.list_at(&["spec", "initContainers"])
        .iter()
        .find(|c| c.str_at(&["name"]) == name)
        .is_some_and(|c| c.str_at(&["restartPolicy"]) == "Always")
}

/// The later of `latest` and the container's last termination time.
fn last_termination(status: &Value, latest: Option<Timestamp>) -> Option<Timestamp> {
    if !status.has(&["lastState", "terminated"]) {
        return latest;
    }
    match (status.time_at(&["lastState", "terminated", "finishedAt"]), latest) {
        (Some(t), Some(l)) if l < t => Some(t),
        (Some(t), None) => Some(t),
        _ => latest,
    }
}

/// The first condition of `type_` has status `True`.
fn first_condition_true(pod: &Value, type_: &str) -> bool {
    pod.list_at(&["status", "conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == type_)
        .is_some_and(|c| c.str_at(&["status"]) == "True")
}

/// Any condition of `type_` has status `True`.
fn any_condition_true(pod: &Value, type_: &str) -> bool {
    pod.list_at(&["status", "conditions"])
        .iter()
        .any(|c| c.str_at(&["type"]) == type_ && c.str_at(&["status"]) == "True")
}

/// A terminated state's reason, or `Signal:N` / `ExitCode:N` without one.
fn terminated_reason(terminated: &Value) -> String {
    let reason = terminated.str_at(&["reason"]);
    if !reason.is_empty() {
        return reason.to_string();
    }
    let signal = terminated.int_at(&["signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!("ExitCode:{}", terminated.int_at(&["exitCode"]))
    }
}

struct Summary {
    ready: i64,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

fn summarize(pod: &Value) -> Summary {
    let phase = pod.str_at(&["status", "phase"]);
    let mut reason = match pod.str_at(&["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    for c in pod.list_at(&["status", "conditions"]) {
        if c.str_at(&["type"]) == "PodScheduled" && c.str_at(&["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }
    let init_specs = pod.list_at(&["spec", "initContainers"]);
    let mut total = pod.list_at(&["spec", "containers"]).len();
    total += init_specs
        .iter()
        .filter(|c| c.str_at(&["restartPolicy"]) == "Always")
        .count();

    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;
    let mut initializing = false;
    for (i, status) in pod.list_at(&["status", "initContainerStatuses"]).iter().enumerate() {
        let count = status.int_at(&["restartCount"]);
        restarts += count;
        last_restart = last_termination(status, last_restart);
        let sidecar = is_sidecar(pod, status.str_at(&["name"]));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = last_termination(status, last_sidecar_restart);
        }
        let terminated = status.at(&["state", "terminated"]);
        let waiting = status.at(&["state", "waiting"]);
        if !terminated.is_null() && terminated.int_at(&["exitCode"]) == 0 {
            continue;
        }
        if sidecar && status.bool_at(&["started"]) {
            if status.bool_at(&["ready"]) {
                ready += 1;
            }
            continue;
        }
        if !terminated.is_null() {
            reason = format!("Init:{}", terminated_reason(terminated));
        } else if !waiting.is_null()
            && !waiting.str_at(&["reason"]).is_empty()
            && waiting.str_at(&["reason"]) != "PodInitializing"
        {
            reason = format!("Init:{}", waiting.str_at(&["reason"]));
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || first_condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in pod.list_at(&["status", "containerStatuses"]).iter().rev() {
            restarts += status.int_at(&["restartCount"]);
            last_restart = last_termination(status, last_restart);
            let waiting = status.at(&["state", "waiting"]);
            let terminated = status.at(&["state", "terminated"]);
            if !waiting.is_null() && !waiting.str_at(&["reason"]).is_empty() {
                reason = waiting.str_at(&["reason"]).to_string();
            } else if !terminated.is_null() {
                reason = terminated_reason(terminated);
            } else if status.bool_at(&["ready"]) && status.has(&["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        // Back to "Running" while a container still runs.
        if reason == "Completed" && has_running {
            reason = if any_condition_true(pod, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if pod.has(&["metadata", "deletionTimestamp"]) {
        if pod.str_at(&["status", "reason"]) == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }
    Summary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let s = summarize(pod);
    let restarts = match s.last_restart {
        Some(t) if s.restarts != 0 => format!("{} ({} ago)", s.restarts, since(Some(t), now)),
        _ => s.restarts.to_string(),
    };
    // Conversion makes `podIP` authoritative over `podIPs`, and fills `podIPs` from it.
    let ip = match pod.str_at(&["status", "podIP"]) {
        "" => pod
            .list_at(&["status", "podIPs"])
            .first()
            .map(|ip| ip.str_at(&["ip"]))
            .unwrap_or(""),
        ip => ip,
    };
    let gates = pod.list_at(&["spec", "readinessGates"]);
    let readiness = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| first_condition_true(pod, g.str_at(&["conditionType"])))
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        Value::from(pod.name()),
        Value::from(format!("{}/{}", s.ready, s.total)),
        Value::from(s.reason),
        Value::from(restarts),
        age(pod, now),
        Value::from(or_none(ip)),
        Value::from(or_none(pod.str_at(&["spec", "nodeName"]))),
        Value::from(or_none(pod.str_at(&["status", "nominatedNodeName"]))),
        Value::from(readiness),
    ]
}
