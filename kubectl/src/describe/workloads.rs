//! Workload controllers: Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs, CronJobs and
//! ReplicationControllers, each with its pod template and events.

use jiff::Zoned;
use serde_json::Value;

use super::common::{
    annotations_multiline, arr, bool_ptr, controller_of, format_label_selector, format_labels, human_duration, i,
    int_or_string, labels_multiline, labels_multiline_indent, opt_i, rfc1123z, s, selector_string, str_map, ts,
};
use super::events::describe_events;
use super::pod::{describe_pod_template, quantity_text};
use super::writer::PrefixWriter;

/// Pod phase counts of a controller's pods.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PodCounts {
    pub(crate) running: usize,
    pub(crate) waiting: usize,
    pub(crate) succeeded: usize,
    pub(crate) failed: usize,
}

impl PodCounts {
    /// Counts the pods controlled by `uid` by phase.
    pub(crate) fn of(pods: &[Value], uid: &str) -> Self {
        let mut c = Self::default();
        for p in pods {
            if super::common::controller_uid(p) != Some(uid) {
                continue;
            }
            match s(p, "/status/phase") {
                "Running" => c.running += 1,
                "Pending" => c.waiting += 1,
                "Succeeded" => c.succeeded += 1,
                "Failed" => c.failed += 1,
                _ => {}
            }
        }
        c
    }

    fn text(&self) -> String {
        format!(
            "{} Running / {} Waiting / {} Succeeded / {} Failed",
            self.running, self.waiting, self.succeeded, self.failed
        )
    }
}

fn header(w: &mut PrefixWriter, obj: &Value) {
    w.write(0, &format!("Name:\t{}\n", s(obj, "/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s(obj, "/metadata/namespace")));
}

fn meta(w: &mut PrefixWriter, obj: &Value) {
    labels_multiline(w, "Labels", &str_map(obj, "/metadata/labels"));
    annotations_multiline(w, "Annotations", &str_map(obj, "/metadata/annotations"));
}

fn replica_sets_text(rss: &[Value]) -> String {
    let parts: Vec<String> = rss
        .iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                s(rs, "/metadata/name"),
                i(rs, "/status/replicas"),
                i(rs, "/spec/replicas")
            )
        })
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(", ")
    }
}

/// The report for a Deployment with its old and new ReplicaSets.
pub(crate) fn render_deployment(
    d: &Value,
    old_rss: &[Value],
    new_rss: &[Value],
    events: Option<&[Value]>,
    now: &Zoned,
) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, d);
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(ts(d, "/metadata/creationTimestamp"), now)
        ),
    );
    meta(&mut w, d);
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(d.pointer("/spec/selector"))),
    );
    w.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            i(d, "/spec/replicas"),
            i(d, "/status/updatedReplicas"),
            i(d, "/status/replicas"),
            i(d, "/status/availableReplicas"),
            i(d, "/status/unavailableReplicas")
        ),
    );
    w.write(0, &format!("StrategyType:\t{}\n", s(d, "/spec/strategy/type")));
    w.write(0, &format!("MinReadySeconds:\t{}\n", i(d, "/spec/minReadySeconds")));
    if let Some(ru) = d.pointer("/spec/strategy/rollingUpdate").filter(|v| !v.is_null()) {
        w.write(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(ru.get("maxUnavailable")),
                int_or_string(ru.get("maxSurge"))
            ),
        );
    }
    describe_pod_template(d.pointer("/spec/template"), &mut w, now);
    conditions_type_status_reason(&mut w, arr(d, "/status/conditions"));
    if !old_rss.is_empty() || !new_rss.is_empty() {
        w.write(0, &format!("OldReplicaSets:\t{}\n", replica_sets_text(old_rss)));
        w.write(0, &format!("NewReplicaSet:\t{}\n", replica_sets_text(new_rss)));
    }
    describe_events(events, &mut w, now);
    w.finish()
}

fn conditions_type_status_reason(w: &mut PrefixWriter, conditions: &[Value]) {
    if conditions.is_empty() {
        return;
    }
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n");
    w.write(1, "----\t------\t------\n");
    for c in conditions {
        w.write(
            1,
            &format!("{} \t{}\t{}\n", s(c, "/type"), s(c, "/status"), s(c, "/reason")),
        );
    }
}

/// The report for a ReplicaSet; `pods` is `Err(message)` when its pods could not be listed.
pub(crate) fn render_replica_set(
    rs: &Value,
    pods: Result<PodCounts, String>,
    events: Option<&[Value]>,
    now: &Zoned,
) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, rs);
    w.write(
        0,
        &format!("Selector:\t{}\n", format_label_selector(rs.pointer("/spec/selector"))),
    );
    meta(&mut w, rs);
    if let Some(c) = controller_of(rs) {
        w.write(0, &format!("Controlled By:\t{c}\n"));
    }
    w.write(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            i(rs, "/status/replicas"),
            i(rs, "/spec/replicas")
        ),
    );
    w.write(0, "Pods Status:\t");
    match pods {
        Ok(c) => w.write(0, &format!("{}\n", c.text())),
        Err(e) => w.write(0, &format!("error in fetching pods: {e}\n")),
    }
    describe_pod_template(rs.pointer("/spec/template"), &mut w, now);
    conditions_type_status_reason(&mut w, arr(rs, "/status/conditions"));
    describe_events(events, &mut w, now);
    w.finish()
}

/// The report for a ReplicationController.
pub(crate) fn render_replication_controller(
    rc: &Value,
    pods: PodCounts,
    events: Option<&[Value]>,
    now: &Zoned,
) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, rc);
    w.write(
        0,
        &format!("Selector:\t{}\n", format_labels(&str_map(rc, "/spec/selector"))),
    );
    meta(&mut w, rc);
    w.write(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            i(rc, "/status/replicas"),
            i(rc, "/spec/replicas")
        ),
    );
    w.write(0, &format!("Pods Status:\t{}\n", pods.text()));
    describe_pod_template(rc.pointer("/spec/template"), &mut w, now);
    conditions_type_status_reason(&mut w, arr(rc, "/status/conditions"));
    describe_events(events, &mut w, now);
    w.finish()
}

/// The report for a DaemonSet.
pub(crate) fn render_daemon_set(ds: &Value, pods: PodCounts, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, ds);
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(ds.pointer("/spec/selector"))),
    );
    w.write(
        0,
        &format!(
            "Node-Selector:\t{}\n",
            format_labels(&str_map(ds, "/spec/template/spec/nodeSelector"))
        ),
    );
    meta(&mut w, ds);
    for (label, ptr) in [
        ("Desired Number of Nodes Scheduled", "/status/desiredNumberScheduled"),
        ("Current Number of Nodes Scheduled", "/status/currentNumberScheduled"),
        (
            "Number of Nodes Scheduled with Up-to-date Pods",
            "/status/updatedNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Available Pods",
            "/status/numberAvailable",
        ),
        ("Number of Nodes Misscheduled", "/status/numberMisscheduled"),
    ] {
        w.write(0, &format!("{label}: {}\n", i(ds, ptr)));
    }
    w.write(0, &format!("Pods Status:\t{}\n", pods.text()));
    describe_pod_template(ds.pointer("/spec/template"), &mut w, now);
    describe_events(events, &mut w, now);
    w.finish()
}

/// The report for a StatefulSet.
pub(crate) fn render_stateful_set(ss: &Value, pods: PodCounts, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, ss);
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(ts(ss, "/metadata/creationTimestamp"), now)
        ),
    );
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(ss.pointer("/spec/selector"))),
    );
    meta(&mut w, ss);
    w.write(0, &format!("Service Name:\t{}\n", s(ss, "/spec/serviceName")));
    w.write(
        0,
        &format!("Pod Management Policy:\t{}\n", s(ss, "/spec/podManagementPolicy")),
    );
    w.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} total\n",
            i(ss, "/spec/replicas"),
            i(ss, "/status/replicas")
        ),
    );
    w.write(
        0,
        &format!("Update Strategy:\t{}\n", s(ss, "/spec/updateStrategy/type")),
    );
    if let Some(ru) = ss
        .pointer("/spec/updateStrategy/rollingUpdate")
        .filter(|v| !v.is_null())
        && let Some(p) = opt_i(ru, "/partition")
    {
        w.write(1, &format!("Partition:\t{p}\n"));
        if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
            w.write(1, &format!("MaxUnavailable:\t{}\n", int_or_string(Some(mu))));
        }
    }
    if let Some(p) = ss
        .pointer("/spec/persistentVolumeClaimRetentionPolicy")
        .filter(|v| !v.is_null())
    {
        w.write(0, "Persistent Volume Claim Retention Policy:\n");
        w.write(1, &format!("WhenDeleted:\t{}\n", s(p, "/whenDeleted")));
        w.write(1, &format!("WhenScaled:\t{}\n", s(p, "/whenScaled")));
    }
    w.write(0, &format!("Pods Status:\t{}\n", pods.text()));
    describe_pod_template(ss.pointer("/spec/template"), &mut w, now);
    let templates = arr(ss, "/spec/volumeClaimTemplates");
    if templates.is_empty() {
        w.write(0, "Volume Claims:\t<none>\n");
    } else {
        w.write(0, "Volume Claims:\n");
        for pvc in templates {
            w.write(1, &format!("Name:\t{}\n", s(pvc, "/metadata/name")));
            w.write(1, &format!("StorageClass:\t{}\n", pvc_class(pvc)));
            labels_multiline_indent(&mut w, "  ", "Labels", &str_map(pvc, "/metadata/labels"));
            labels_multiline_indent(&mut w, "  ", "Annotations", &str_map(pvc, "/metadata/annotations"));
            match pvc.pointer("/spec/resources/requests/storage") {
                Some(q) => w.write(1, &format!("Capacity:\t{}\n", quantity_text(q))),
                None => w.write(1, "Capacity:\t<default>\n"),
            }
            w.write(
                1,
                &format!(
                    "Access Modes:\t{}\n",
                    super::common::go_slice(arr(pvc, "/spec/accessModes"))
                ),
            );
        }
    }
    describe_events(events, &mut w, now);
    w.finish()
}

/// The storage class of a claim: the beta annotation wins over the field.
fn pvc_class(pvc: &Value) -> &str {
    if let Some(c) = pvc
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
    {
        return c;
    }
    s(pvc, "/spec/storageClassName")
}

/// The report for a Job.
pub(crate) fn render_job(job: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, job);
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(job.pointer("/spec/selector"))),
    );
    meta(&mut w, job);
    if let Some(c) = controller_of(job) {
        w.write(0, &format!("Controlled By:\t{c}\n"));
    }
    if let Some(p) = opt_i(job, "/spec/parallelism") {
        w.write(0, &format!("Parallelism:\t{p}\n"));
    }
    match opt_i(job, "/spec/completions") {
        Some(c) => w.write(0, &format!("Completions:\t{c}\n")),
        None => w.write(0, "Completions:\t<unset>\n"),
    }
    let mode = s(job, "/spec/completionMode");
    if !mode.is_empty() {
        w.write(0, &format!("Completion Mode:\t{mode}\n"));
    }
    if let Some(v) = job.pointer("/spec/suspend").and_then(Value::as_bool) {
        w.write(0, &format!("Suspend:\t{v}\n"));
    }
    if let Some(v) = opt_i(job, "/spec/backoffLimit") {
        w.write(0, &format!("Backoff Limit:\t{v}\n"));
    }
    if let Some(v) = opt_i(job, "/spec/ttlSecondsAfterFinished") {
        w.write(0, &format!("TTL Seconds After Finished:\t{v}\n"));
    }
    let start = ts(job, "/status/startTime");
    let done = ts(job, "/status/completionTime");
    if start.is_some() {
        w.write(0, &format!("Start Time:\t{}\n", rfc1123z(start, now)));
    }
    if done.is_some() {
        w.write(0, &format!("Completed At:\t{}\n", rfc1123z(done, now)));
    }
    if let (Some(a), Some(b)) = (start, done) {
        let nanos = b.as_nanosecond() - a.as_nanosecond();
        w.write(0, &format!("Duration:\t{}\n", human_duration(nanos)));
    }
    if let Some(v) = opt_i(job, "/spec/activeDeadlineSeconds") {
        w.write(0, &format!("Active Deadline Seconds:\t{v}s\n"));
    }
    let (active, succeeded, failed) = (
        i(job, "/status/active"),
        i(job, "/status/succeeded"),
        i(job, "/status/failed"),
    );
    match opt_i(job, "/status/ready") {
        None => w.write(
            0,
            &format!("Pods Statuses:\t{active} Active / {succeeded} Succeeded / {failed} Failed\n"),
        ),
        Some(ready) => w.write(
            0,
            &format!("Pods Statuses:\t{active} Active ({ready} Ready) / {succeeded} Succeeded / {failed} Failed\n"),
        ),
    }
    if mode == "Indexed" {
        w.write(
            0,
            &format!(
                "Completed Indexes:\t{}\n",
                cap_indexes(s(job, "/status/completedIndexes"), 50)
            ),
        );
    }
    describe_pod_template(job.pointer("/spec/template"), &mut w, now);
    describe_events(events, &mut w, now);
    w.finish()
}

fn cap_indexes(indexes: &str, soft_limit: usize) -> String {
    if indexes.is_empty() {
        return "<none>".into();
    }
    let bytes = indexes.as_bytes();
    let mut ix = soft_limit;
    while ix < bytes.len() && bytes[ix] != b',' {
        ix += 1;
    }
    if ix >= bytes.len() {
        indexes.to_string()
    } else {
        format!("{}...", &indexes[..=ix])
    }
}

/// The report for a CronJob.
pub(crate) fn render_cron_job(cj: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, cj);
    meta(&mut w, cj);
    w.write(0, &format!("Schedule:\t{}\n", s(cj, "/spec/schedule")));
    w.write(
        0,
        &format!("Concurrency Policy:\t{}\n", s(cj, "/spec/concurrencyPolicy")),
    );
    w.write(0, &format!("Suspend:\t{}\n", bool_ptr(cj.pointer("/spec/suspend"))));
    let tz = cj
        .pointer("/spec/timeZone")
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    w.write(0, &format!("Time Zone:\t{tz}\n"));
    for (label, ptr, unit) in [
        ("Successful Job History Limit", "/spec/successfulJobsHistoryLimit", ""),
        ("Failed Job History Limit", "/spec/failedJobsHistoryLimit", ""),
        ("Starting Deadline Seconds", "/spec/startingDeadlineSeconds", "s"),
    ] {
        match opt_i(cj, ptr) {
            Some(v) => w.write(0, &format!("{label}:\t{v}{unit}\n")),
            None => w.write(0, &format!("{label}:\t<unset>\n")),
        }
    }
    let jt = cj.pointer("/spec/jobTemplate").unwrap_or(&Value::Null);
    match jt.pointer("/spec/selector").filter(|v| !v.is_null()) {
        Some(sel) => w.write(0, &format!("Selector:\t{}\n", selector_string(Some(sel)))),
        None => w.write(0, "Selector:\t<unset>\n"),
    }
    for (label, ptr) in [
        ("Parallelism", "/spec/parallelism"),
        ("Completions", "/spec/completions"),
    ] {
        match opt_i(jt, ptr) {
            Some(v) => w.write(0, &format!("{label}:\t{v}\n")),
            None => w.write(0, &format!("{label}:\t<unset>\n")),
        }
    }
    if let Some(v) = opt_i(jt, "/spec/activeDeadlineSeconds") {
        w.write(0, &format!("Active Deadline Seconds:\t{v}s\n"));
    }
    describe_pod_template(jt.pointer("/spec/template"), &mut w, now);
    match ts(cj, "/status/lastScheduleTime") {
        Some(t) => w.write(0, &format!("Last Schedule Time:\t{}\n", rfc1123z(Some(t), now))),
        None => w.write(0, "Last Schedule Time:\t<unset>\n"),
    }
    w.write(0, "Active Jobs:\t");
    let active: Vec<&str> = arr(cj, "/status/active").iter().map(|j| s(j, "/name")).collect();
    if active.is_empty() {
        w.line("<none>");
    } else {
        w.write(0, &active.join(", "));
        w.line("");
    }
    describe_events(events, &mut w, now);
    w.finish()
}
