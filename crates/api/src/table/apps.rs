//! Workloads: deployments, replica sets, stateful sets, daemon sets, controller revisions, jobs,
//! cron jobs, and horizontal pod autoscalers.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, between, containers, format_label_selector, format_labels, selector_string, since};
use super::value::Read;
use super::{AGE, Column, NAME, Printer, col, wide};
use crate::quantity::canonical as quantity;

const fn printer(columns: &'static [Column], cells: fn(&Value, Timestamp) -> Vec<Value>) -> Printer {
    Printer {
        columns,
        cells,
        null_rows_when_empty: false,
    }
}

const CONTAINERS: Column = wide("Containers", "string", "Names of each container in the template.");
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// `spec.replicas`, defaulted to 1 as decoding does.
fn replicas(o: &Value) -> i64 {
    o.opt_int(&["spec", "replicas"]).unwrap_or(1)
}

// ---- deployments ----

pub(crate) static DEPLOYMENT: Printer = printer(
    &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", d::DEP_UPDATED),
        col("Available", "string", d::DEP_AVAILABLE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::DEP_SELECTOR),
    ],
    |o, now| {
        let (names, images) = containers(o.at(&["spec", "template", "spec"]));
        let selector = selector_string(o.at(&["spec", "selector"])).unwrap_or_else(|()| "<invalid>".to_string());
        vec![
            o.name().into(),
            format!("{}/{}", o.int_at(&["status", "readyReplicas"]), replicas(o)).into(),
            o.int_at(&["status", "updatedReplicas"]).into(),
            o.int_at(&["status", "availableReplicas"]).into(),
            age(o, now),
            names,
            images,
            selector.into(),
        ]
    },
);

// ---- replica sets ----

pub(crate) static REPLICA_SET: Printer = printer(
    &[
        NAME,
        col("Desired", "integer", d::RS_SPEC_REPLICAS),
        col("Current", "integer", d::RS_STATUS_REPLICAS),
        col("Ready", "integer", d::RS_READY),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::RS_SELECTOR),
    ],
    |o, now| {
        let (names, images) = containers(o.at(&["spec", "template", "spec"]));
        vec![
            o.name().into(),
            replicas(o).into(),
            o.int_at(&["status", "replicas"]).into(),
            o.int_at(&["status", "readyReplicas"]).into(),
            age(o, now),
            names,
            images,
            format_label_selector(o.at(&["spec", "selector"])).into(),
        ]
    },
);

// ---- stateful sets ----

pub(crate) static STATEFUL_SET: Printer = printer(
    &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    |o, now| {
        let (names, images) = containers(o.at(&["spec", "template", "spec"]));
        vec![
            o.name().into(),
            format!("{}/{}", o.int_at(&["status", "readyReplicas"]), replicas(o)).into(),
            age(o, now),
            names,
            images,
        ]
    },
);

// ---- daemon sets ----

pub(crate) static DAEMON_SET: Printer = printer(
    &[
        NAME,
        col("Desired", "integer", d::DS_DESIRED),
        col("Current", "integer", d::DS_CURRENT),
        col("Ready", "integer", d::DS_READY),
        col("Up-to-date", "integer", d::DS_UPDATED),
        col("Available", "integer", d::DS_AVAILABLE),
        col("Node Selector", "string", d::NODE_SELECTOR),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::DS_SELECTOR),
    ],
    |o, now| {
        let (names, images) = containers(o.at(&["spec", "template", "spec"]));
        vec![
            o.name().into(),
            o.int_at(&["status", "desiredNumberScheduled"]).into(),
            o.int_at(&["status", "currentNumberScheduled"]).into(),
            o.int_at(&["status", "numberReady"]).into(),
            o.int_at(&["status", "updatedNumberScheduled"]).into(),
            o.int_at(&["status", "numberAvailable"]).into(),
            format_labels(o.map_at(&["spec", "template", "spec", "nodeSelector"])).into(),
            age(o, now),
            names,
            images,
            format_label_selector(o.at(&["spec", "selector"])).into(),
        ]
    },
);

// ---- controller revisions ----

pub(crate) static CONTROLLER_REVISION: Printer = printer(
    &[
        NAME,
        col("Controller", "string", "Controller of the object"),
        col("Revision", "string", d::CR_REVISION),
        AGE,
    ],
    |o, now| {
        let controller = o
            .list_at(&["metadata", "ownerReferences"])
            .iter()
            .find(|r| r.bool_at(&["controller"]))
            .map_or_else(|| "<none>".to_string(), controller_name);
        vec![
            o.name().into(),
            controller.into(),
            o.int_at(&["revision"]).into(),
            age(o, now),
        ]
    },
);

/// `formatResourceName` of a controller reference: `kind.group/name` in lower case.
fn controller_name(r: &Value) -> String {
    let api_version = r.str_at(&["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = r.str_at(&["kind"]);
    let name = r.str_at(&["name"]);
    match (kind, group) {
        ("", "") => name.to_string(),
        (kind, "") => format!("{}/{name}", kind.to_lowercase()),
        (kind, group) => format!("{}/{name}", format!("{kind}.{group}").to_lowercase()),
    }
}

// ---- jobs ----

pub(crate) static JOB: Printer = printer(
    &[
        NAME,
        col("Status", "string", "Status of the job."),
        col("Completions", "string", d::JOB_SUCCEEDED),
        col("Duration", "string", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::JOB_SELECTOR),
    ],
    job_cells,
);

/// `hasJobCondition`: the first condition of the type decides.
fn job_condition(o: &Value, type_: &str) -> bool {
    o.list_at(&["status", "conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == type_)
        .is_some_and(|c| c.str_at(&["status"]) == "True")
}

fn job_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = o.int_at(&["status", "succeeded"]);
    let completions = o.opt_int(&["spec", "completions"]);
    let parallelism = o.opt_int(&["spec", "parallelism"]);
    // Decoding defaults both to 1 when neither is set, and parallelism to 1 when unset.
    let (completions, parallelism) = match (completions, parallelism) {
        (None, None) => (Some(1), 1),
        (c, p) => (c, p.unwrap_or(1)),
    };
    let done = match completions {
        Some(c) => format!("{succeeded}/{c}"),
        None if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        None => format!("{succeeded}/1"),
    };
    let duration = match (
        o.time_at(&["status", "startTime"]),
        o.time_at(&["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => between(start, end),
    };
    let status = if job_condition(o, "Complete") {
        "Complete"
    } else if job_condition(o, "Failed") {
        "Failed"
    } else if o.has(&["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if job_condition(o, "Suspended") {
        "Suspended"
    } else if job_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if job_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = containers(o.at(&["spec", "template", "spec"]));
    vec![
        o.name().into(),
        status.into(),
        done.into(),
        duration.into(),
        age(o, now),
        names,
        images,
        format_label_selector(o.at(&["spec", "selector"])).into(),
    ]
}

// ---- cron jobs ----

pub(crate) static CRON_JOB: Printer = printer(
    &[
        NAME,
        col("Schedule", "string", d::CJ_SCHEDULE),
        col("Timezone", "string", d::CJ_TZ),
        col("Suspend", "boolean", d::CJ_SUSPEND),
        col("Active", "integer", d::CJ_ACTIVE),
        col("Last Schedule", "string", d::CJ_LAST),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::JOB_SELECTOR),
    ],
    |o, now| {
        let last = if o.has(&["status", "lastScheduleTime"]) {
            since(o.time_at(&["status", "lastScheduleTime"]), now)
        } else {
            "<none>".to_string()
        };
        let time_zone = o.opt_str(&["spec", "timeZone"]).unwrap_or("<none>");
        // `printBoolPtr`; decoding defaults `suspend` to false.
        let suspend = match o.at(&["spec", "suspend"]) {
            Value::Bool(true) => "True",
            Value::Bool(false) | Value::Null => "False",
            _ => "<unset>",
        };
        let job = o.at(&["spec", "jobTemplate", "spec"]);
        let (names, images) = containers(job.at(&["template", "spec"]));
        vec![
            o.name().into(),
            o.str_at(&["spec", "schedule"]).into(),
            time_zone.into(),
            suspend.into(),
            o.list_at(&["status", "active"]).len().into(),
            last.into(),
            age(o, now),
            names,
            images,
            format_label_selector(job.at(&["selector"])).into(),
        ]
    },
);

// ---- horizontal pod autoscalers ----

pub(crate) static HPA: Printer = printer(
    &[
        NAME,
        col("Reference", "string", d::HPA_REF),
        col("Targets", "string", d::HPA_METRICS),
        col("MinPods", "string", d::HPA_MIN),
        col("MaxPods", "string", d::HPA_MAX),
        col("Replicas", "string", d::HPA_CURRENT),
        AGE,
    ],
    |o, now| {
        let reference = format!(
            "{}/{}",
            o.str_at(&["spec", "scaleTargetRef", "kind"]),
            o.str_at(&["spec", "scaleTargetRef", "name"])
        );
        // Decoding defaults minReplicas to 1.
        let min = match o.at(&["spec", "minReplicas"]) {
            Value::Null => "1".to_string(),
            v => super::value::as_int(v).map_or_else(|| "<unset>".to_string(), |n| n.to_string()),
        };
        vec![
            o.name().into(),
            reference.into(),
            hpa_targets(o).into(),
            min.into(),
            o.int_at(&["spec", "maxReplicas"]).into(),
            o.int_at(&["status", "currentReplicas"]).into(),
            age(o, now),
        ]
    },
);

/// A quantity behind a pointer: `<nil>` when unset, as Go prints a nil `*Quantity`.
fn ptr_quantity(v: &Value) -> String {
    if v.is_null() { "<nil>".to_string() } else { quantity(v) }
}

/// `formatHPAMetrics`: each metric's current value against its target (statuses matched by
/// position), the first two and how many more.
fn hpa_targets(o: &Value) -> String {
    // Decoding defaults an empty metric list to 80% average CPU utilization.
    let defaulted;
    let mut specs = o.list_at(&["spec", "metrics"]);
    if specs.is_empty() {
        defaulted = [serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}})];
        specs = &defaulted;
    }
    let statuses = o.list_at(&["status", "currentMetrics"]);
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i).unwrap_or(&Value::Null);
        let entry = match spec.str_at(&["type"]) {
            source @ ("External" | "Object") => {
                let key = if source == "External" { "external" } else { "object" };
                let current = status.at(&[key]);
                let target = spec.at(&[key, "target"]);
                if target.has(&["averageValue"]) {
                    let now = if current.has(&["current", "averageValue"]) {
                        quantity(current.at(&["current", "averageValue"]))
                    } else {
                        "<unknown>".to_string()
                    };
                    format!("{now}/{} (avg)", quantity(target.at(&["averageValue"])))
                } else {
                    let now = if current.is_null() {
                        "<unknown>".to_string()
                    } else {
                        ptr_quantity(current.at(&["current", "value"]))
                    };
                    format!("{now}/{}", ptr_quantity(target.at(&["value"])))
                }
            }
            "Pods" => {
                let current = status.at(&["pods"]);
                let now = if current.is_null() {
                    "<unknown>".to_string()
                } else {
                    ptr_quantity(current.at(&["current", "averageValue"]))
                };
                format!("{now}/{}", ptr_quantity(spec.at(&["pods", "target", "averageValue"])))
            }
            source @ ("Resource" | "ContainerResource") => {
                let key = if source == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let current = status.at(&[key]);
                let name = spec.str_at(&[key, "name"]);
                let target = spec.at(&[key, "target"]);
                if target.has(&["averageValue"]) {
                    let now = if current.is_null() {
                        "<unknown>".to_string()
                    } else {
                        ptr_quantity(current.at(&["current", "averageValue"]))
                    };
                    format!("{name}: {now}/{}", quantity(target.at(&["averageValue"])))
                } else {
                    let now = current
                        .opt_int(&["current", "averageUtilization"])
                        .map_or_else(|| "<unknown>".to_string(), |n| format!("{n}%"));
                    let goal = target
                        .opt_int(&["averageUtilization"])
                        .map_or_else(|| "<auto>".to_string(), |n| format!("{n}%"));
                    format!("{name}: {now}/{goal}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    if list.len() > 2 {
        return format!("{} + {} more...", list[..2].join(", "), list.len() - 2);
    }
    list.join(", ")
}
