//! `kubectl rollout status`: lists the object by name, then watches it, printing the status
//! viewer's message after every change until the rollout is done (or once with
//! `--watch=false`), as upstream's `UntilWithSync` loop does.

use serde_json::Value;

use super::{ObjectArgs, Workload};
use crate::cmd::Context;
use crate::cmd::objects::{self, Found};
use crate::error::Error;
use crate::request;

/// Show the status of the rollout.
#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
    /// Watch the status of the rollout until it's done.
    #[arg(short = 'w', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub watch: bool,
    /// Pin to a specific revision for showing its status. Defaults to 0 (last revision).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub revision: i64,
    /// The length of time to wait before ending watch, zero means never.
    #[arg(long, default_value = "0s")]
    pub timeout: String,
}

/// Runs `kubectl rollout status`.
pub(super) async fn run(ctx: &mut Context, args: &StatusArgs) -> Result<(), Error> {
    let timeout = objects::duration_flag(&args.timeout, "timeout", "rollout status")?;
    let selection = args.objects.selection(None)?;
    if args.revision < 0 {
        return Err(Error::Message(format!(
            "revision must be a positive integer: {}",
            args.revision
        )));
    }
    let found = objects::resolve(ctx, selection).await?;
    if found.len() != 1 {
        return Err(Error::Message(format!(
            "rollout status is only supported on individual resources and resource collections - {} resources were found",
            found.len()
        )));
    }
    let target = &found[0];
    let Some(workload) = Workload::of(&target.resource.group, &target.resource.kind) else {
        return Err(Error::Message(format!(
            "no status viewer has been implemented for {}",
            objects::group_kind(&target.resource)
        )));
    };
    let client = ctx.client().await?;
    let watching = follow(ctx, &client, target, workload, args);
    if timeout.is_zero() {
        return watching.await;
    }
    match tokio::time::timeout(timeout, watching).await {
        Ok(result) => result,
        Err(_) => Err(Error::Message("timed out waiting for the condition".into())),
    }
}

/// Lists the object, then watches it, printing each status until done.
async fn follow(
    ctx: &mut Context,
    client: &kube::Client,
    target: &Found,
    workload: Workload,
    args: &StatusArgs,
) -> Result<(), Error> {
    let field_selector = format!("metadata.name={}", target.name);
    let collection = request::with_query(
        &target.resource.collection_url(target.namespace.as_deref()),
        &[("fieldSelector", &field_selector)],
    );
    let list = request::get(client, &collection, "application/json").await?;
    for object in list["items"].as_array().cloned().unwrap_or_default() {
        if show(ctx, client, workload, &object, args).await? {
            return Ok(());
        }
    }
    let version = list["metadata"]["resourceVersion"].as_str().unwrap_or_default();
    objects::watch_until(client, &collection, version, async |kind, object| match kind {
        "ADDED" | "MODIFIED" => Ok(show(ctx, client, workload, object, args).await?.then_some(())),
        "DELETED" => Err(Error::Message("object has been deleted".into())),
        _ => Ok(None),
    })
    .await
}

/// Prints the status of `object`; whether the command is finished.
async fn show(
    ctx: &mut Context,
    client: &kube::Client,
    workload: Workload,
    object: &Value,
    args: &StatusArgs,
) -> Result<bool, Error> {
    let (message, done) = match workload {
        Workload::Deployment => {
            let (message, done) = deployment_status(object, args.revision)?;
            if done {
                (message, done)
            } else {
                (with_pod_warning(client, object, message).await, done)
            }
        }
        Workload::DaemonSet => daemon_set_status(object)?,
        Workload::StatefulSet => stateful_set_status(object)?,
    };
    ctx.out(&message);
    Ok(done || !args.watch)
}

/// A message for a rollout still in progress.
fn waiting(message: String) -> Result<(String, bool), Error> {
    Ok((message, false))
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn name(object: &Value) -> String {
    objects::go_quote(object["metadata"]["name"].as_str().unwrap_or_default())
}

/// A Deployment's `deployment.kubernetes.io/revision` (0 without one).
pub(super) fn revision_of(object: &Value) -> Result<i64, String> {
    match object["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str() {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| format!("strconv.ParseInt: parsing {}: invalid syntax", objects::go_quote(text))),
    }
}

/// Upstream's `DeploymentStatusViewer` (without the pod warning).
fn deployment_status(d: &Value, revision: i64) -> Result<(String, bool), Error> {
    let name = name(d);
    if revision > 0 {
        let current =
            revision_of(d).map_err(|e| Error::Message(format!("cannot get the revision of deployment {name}: {e}")))?;
        if revision != current {
            return Err(Error::Message(format!(
                "desired revision ({revision}) is different from the running revision ({current})"
            )));
        }
    }
    if int(d, "/metadata/generation") > int(d, "/status/observedGeneration") {
        return waiting("Waiting for deployment spec update to be observed...\n".into());
    }
    let conditions = d["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
    {
        return Err(Error::Message(format!(
            "deployment {name} exceeded its progress deadline"
        )));
    }
    let updated = int(d, "/status/updatedReplicas");
    let replicas = int(d, "/status/replicas");
    let available = int(d, "/status/availableReplicas");
    if let Some(wanted) = d.pointer("/spec/replicas").and_then(Value::as_i64)
        && updated < wanted
    {
        return waiting(format!(
            "Waiting for deployment {name} rollout to finish: {updated} out of {wanted} new replicas have been updated...\n"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "Waiting for deployment {name} rollout to finish: {} old replicas are pending termination...\n",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "Waiting for deployment {name} rollout to finish: {available} of {updated} updated replicas are available...\n"
        ));
    }
    Ok((format!("deployment {name} successfully rolled out\n"), true))
}

/// Appends the first problem of the Deployment's pods (unschedulable, image pull or crash
/// loop) to a waiting message, as upstream's `appendWarning` does.
async fn with_pod_warning(client: &kube::Client, d: &Value, message: String) -> String {
    let selector = crate::describe::label_selector_query(d.pointer("/spec/selector"));
    let namespace = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let url = request::with_query(
        &format!("/api/v1/namespaces/{namespace}/pods"),
        &[("labelSelector", &selector)],
    );
    let Ok(pods) = request::get(client, &url, "application/json").await else {
        return message;
    };
    match pod_warning(pods["items"].as_array().map(Vec::as_slice).unwrap_or_default()) {
        Some(warning) => format!("{} (Warning: {warning})\n", message.trim()),
        None => message,
    }
}

fn pod_warning(pods: &[Value]) -> Option<String> {
    const REASONS: [&str; 5] = [
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    ];
    for pod in pods {
        let conditions = pod["status"]["conditions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(c) = conditions
            .iter()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False" && c["reason"] == "Unschedulable")
        {
            return Some(c["message"].as_str().unwrap_or_default().to_string());
        }
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for status in statuses {
            let waiting = &status["state"]["waiting"];
            let reason = waiting["reason"].as_str().unwrap_or_default();
            if waiting.is_object() && REASONS.contains(&reason) {
                return Some(format!(
                    "{reason} - {}",
                    waiting["message"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    None
}

/// Upstream's `DaemonSetStatusViewer`.
fn daemon_set_status(ds: &Value) -> Result<(String, bool), Error> {
    if ds["spec"]["updateStrategy"]["type"] != "RollingUpdate" {
        return Err(Error::Message(
            "rollout status is only available for RollingUpdate strategy type".into(),
        ));
    }
    let name = name(ds);
    if int(ds, "/metadata/generation") > int(ds, "/status/observedGeneration") {
        return waiting("Waiting for daemon set spec update to be observed...\n".into());
    }
    let desired = int(ds, "/status/desiredNumberScheduled");
    let updated = int(ds, "/status/updatedNumberScheduled");
    let available = int(ds, "/status/numberAvailable");
    if updated < desired {
        return waiting(format!(
            "Waiting for daemon set {name} rollout to finish: {updated} out of {desired} new pods have been updated...\n"
        ));
    }
    if available < desired {
        return waiting(format!(
            "Waiting for daemon set {name} rollout to finish: {available} of {desired} updated pods are available...\n"
        ));
    }
    Ok((format!("daemon set {name} successfully rolled out\n"), true))
}

/// Upstream's `StatefulSetStatusViewer`.
fn stateful_set_status(sts: &Value) -> Result<(String, bool), Error> {
    let strategy = &sts["spec"]["updateStrategy"];
    if strategy["type"] != "RollingUpdate" {
        return Err(Error::Message(
            "rollout status is only available for RollingUpdate strategy type".into(),
        ));
    }
    let observed = int(sts, "/status/observedGeneration");
    if observed == 0 || int(sts, "/metadata/generation") > observed {
        return waiting("Waiting for statefulset spec update to be observed...\n".into());
    }
    let replicas = sts.pointer("/spec/replicas").and_then(Value::as_i64);
    let ready = int(sts, "/status/readyReplicas");
    if let Some(replicas) = replicas
        && ready < replicas
    {
        return Ok((format!("Waiting for {} pods to be ready...\n", replicas - ready), false));
    }
    let updated = int(sts, "/status/updatedReplicas");
    if strategy["rollingUpdate"].is_object() {
        if let (Some(replicas), Some(partition)) = (replicas, strategy["rollingUpdate"]["partition"].as_i64())
            && updated < replicas - partition
        {
            return waiting(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...\n",
                replicas - partition
            ));
        }
        return Ok((
            format!("partitioned roll out complete: {updated} new pods have been updated...\n"),
            true,
        ));
    }
    let update_revision = sts["status"]["updateRevision"].as_str().unwrap_or_default();
    let current_revision = sts["status"]["currentRevision"].as_str().unwrap_or_default();
    if update_revision != current_revision {
        return waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}...\n"
        ));
    }
    Ok((
        format!(
            "statefulset rolling update complete {} pods at revision {current_revision}...\n",
            int(sts, "/status/currentReplicas")
        ),
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2, "annotations": {"deployment.kubernetes.io/revision": "3"}},
               "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn deployment_messages_follow_upstreams_order() {
        let cases = [
            (
                json!({"observedGeneration": 1}),
                "Waiting for deployment spec update to be observed...\n",
                false,
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 1}),
                "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n",
                false,
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4}),
                "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...\n",
                false,
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 1}),
                "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...\n",
                false,
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}),
                "deployment \"web\" successfully rolled out\n",
                true,
            ),
        ];
        for (status, message, done) in cases {
            assert_eq!(
                deployment_status(&deployment(status), 0).unwrap(),
                (message.to_string(), done)
            );
        }
        let stuck = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]});
        assert_eq!(
            deployment_status(&deployment(stuck), 0).unwrap_err().to_string(),
            "deployment \"web\" exceeded its progress deadline"
        );
        assert_eq!(
            deployment_status(&deployment(json!({})), 2).unwrap_err().to_string(),
            "desired revision (2) is different from the running revision (3)"
        );
    }

    #[test]
    fn pod_problems_become_warnings() {
        let pods = [
            json!({"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}}]}}),
        ];
        assert_eq!(pod_warning(&pods).unwrap(), "ErrImagePull - no such image");
        let pending = [
            json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}]}}),
        ];
        assert_eq!(pod_warning(&pending).unwrap(), "0/1 nodes");
        assert!(pod_warning(&[json!({})]).is_none());
    }

    #[test]
    fn stateful_set_partitions_and_revisions() {
        let sts = json!({"metadata": {"name": "db", "generation": 1},
            "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
            "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1}});
        assert_eq!(
            stateful_set_status(&sts).unwrap().0,
            "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...\n"
        );
        let ds = json!({"metadata": {"name": "agent"}, "spec": {"updateStrategy": {"type": "OnDelete"}}});
        assert!(daemon_set_status(&ds).is_err());
    }
}
