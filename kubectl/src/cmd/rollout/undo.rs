//! `kubectl rollout undo`: rolls a Deployment back to the pod template of one of its
//! ReplicaSets (a JSON patch of `spec.template` and the annotations), or a DaemonSet /
//! StatefulSet to a ControllerRevision (its data sent as a strategic merge patch), as
//! upstream's `polymorphichelpers` rollbackers do.

use http::Method;
use serde_json::{Map, Value, json};

use super::history::{apply_revision, controller_revisions_of, cr_revision, replica_sets_of};
use super::{ObjectArgs, Workload, visit};
use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::objects::{self, Found};
use crate::error::Error;
use crate::request;

/// The label every ReplicaSet of a Deployment adds to its template.
const HASH_LABEL: &str = "pod-template-hash";

/// Annotations a rollback keeps from the Deployment instead of copying from the ReplicaSet.
const KEPT_ANNOTATIONS: [&str; 6] = [
    crate::cmd::apply::LAST_APPLIED,
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// Undo a previous rollout.
#[derive(clap::Args, Debug, Clone)]
pub struct UndoArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
    /// The revision to rollback to. Default to 0 (last revision).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub to_revision: i64,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "unchanged")]
    pub dry_run: String,
}

/// Runs `kubectl rollout undo`.
pub(super) async fn run(ctx: &mut Context, args: &UndoArgs) -> Result<(), Error> {
    let dry_run = match args.dry_run.as_str() {
        "unchanged" => {
            ctx.err(&crate::printer::klog_warning(
                "helpers.go:714",
                "--dry-run is deprecated and can be replaced with --dry-run=client.",
            ));
            DryRun::Client
        }
        other => DryRun::parse(other)?,
    };
    let selection = args.objects.selection(args.selector.as_deref())?;
    let to_revision = args.to_revision;
    let suffix = match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    };
    visit(ctx, selection, ("rollbacker", "rollbacker"), async |client, found, workload, warnings| {
        if found.object["metadata"]["annotations"].get(crate::cmd::apply::LAST_APPLIED).is_some() {
            // Upstream warns before it looks at anything else.
            *warnings = format!(
                "Warning: resource {}/{} was previously managed with 'kubectl apply'. Rolling back will not update the kubectl.kubernetes.io/last-applied-configuration annotation, which may cause unexpected behavior on future 'kubectl apply' operations. Consider using 'kubectl apply' with your previous configuration file instead.\n",
                found.resource.plural, found.name
            );
        }
        if to_revision < 0 {
            return Err(not_found(to_revision));
        }
        let result = match workload {
            Workload::Deployment => deployment(client, found, to_revision, dry_run).await?,
            Workload::DaemonSet | Workload::StatefulSet => from_history(client, found, to_revision, dry_run).await?,
        };
        Ok(format!("{} {result}{suffix}\n", found.display_name()))
    })
    .await
}

fn not_found(revision: i64) -> Error {
    Error::Message(format!("unable to find specified revision {revision} in history"))
}

/// Upstream's `DeploymentRollbacker`.
async fn deployment(client: &kube::Client, found: &Found, to_revision: i64, dry_run: DryRun) -> Result<String, Error> {
    // Upstream reads the Deployment again through the typed client.
    let d = request::get(client, &found.url(), "application/json").await?;
    let found = Found {
        object: d,
        ..found.clone()
    };
    let d = &found.object;
    let mut latest: Option<(i64, Value)> = None;
    let mut previous: Option<(i64, Value)> = None;
    let mut chosen = None;
    for rs in replica_sets_of(client, &found).await? {
        let Some(Ok(revision)) = rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .map(str::parse::<i64>)
        else {
            continue;
        };
        if to_revision == 0 {
            if latest.as_ref().is_none_or(|(l, _)| *l < revision) {
                previous = latest.take();
                latest = Some((revision, rs));
            } else if previous.as_ref().is_none_or(|(p, _)| *p < revision) {
                previous = Some((revision, rs));
            }
        } else if revision == to_revision {
            chosen = Some(rs);
            break;
        }
    }
    let rs = match (to_revision, chosen, previous) {
        (0, _, Some((_, rs))) => rs,
        (0, _, None) => {
            return Err(Error::Message(format!(
                "no rollout history found for deployment {}",
                objects::go_quote(&found.name)
            )));
        }
        (_, Some(rs), _) => rs,
        (revision, None, _) => return Err(not_found(revision)),
    };
    let mut template = rs["spec"]["template"].clone();
    if dry_run == DryRun::Client {
        return Ok(crate::describe::pod_template_text(&template));
    }
    if d["spec"]["paused"] == true {
        return Err(Error::Message(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
                .into(),
        ));
    }
    if same_template(&template, &d["spec"]["template"]) {
        return Ok(format!(
            "skipped rollback (current template already matches revision {to_revision})"
        ));
    }
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(HASH_LABEL);
    }
    as_typed_go_marshals(&mut template);
    let mut annotations = Map::new();
    for key in KEPT_ANNOTATIONS {
        if let Some(value) = d["metadata"]["annotations"].get(key) {
            annotations.insert(key.to_string(), value.clone());
        }
    }
    if let Some(from_rs) = rs["metadata"]["annotations"].as_object() {
        for (key, value) in from_rs {
            if !KEPT_ANNOTATIONS.contains(&key.as_str()) {
                annotations.insert(key.clone(), value.clone());
            }
        }
    }
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    send_patch(
        client,
        &found,
        dry_run,
        "application/json-patch+json",
        &patch,
        to_revision,
    )
    .await?;
    Ok("rolled back".into())
}

/// Upstream's `DaemonSetRollbacker` and `StatefulSetRollbacker`.
async fn from_history(
    client: &kube::Client,
    found: &Found,
    to_revision: i64,
    dry_run: DryRun,
) -> Result<String, Error> {
    let mut history = controller_revisions_of(client, found).await?;
    if to_revision == 0 && history.len() <= 1 {
        return Err(Error::Message("no last revision to roll back to".into()));
    }
    history.sort_by_key(cr_revision);
    let target = if to_revision == 0 {
        history.get(history.len() - 2)
    } else {
        history.iter().find(|cr| cr_revision(cr) == to_revision)
    };
    let Some(target) = target else {
        return Err(not_found(to_revision));
    };
    if dry_run == DryRun::Client {
        let applied = apply_revision(found, target)?;
        return Ok(format!(
            "will roll back to {}",
            crate::describe::pod_template_text(&applied["spec"]["template"])
        ));
    }
    // Upstream compares the bytes of the patch it would make from the typed object with the
    // revision's data: equal values here, with what Go's encoding of the type always writes.
    let mut current = found.object["spec"]["template"].clone();
    as_typed_go_marshals(&mut current);
    current["metadata"]["creationTimestamp"] = Value::Null;
    current["$patch"] = "replace".into();
    if json!({"spec": {"template": current}}) == target["data"] {
        return Ok(format!(
            "skipped rollback (current template already matches revision {to_revision})"
        ));
    }
    let patch = &target["data"];
    send_patch(
        client,
        found,
        dry_run,
        "application/strategic-merge-patch+json",
        patch,
        to_revision,
    )
    .await?;
    Ok("rolled back".into())
}

/// Sends the rollback patch; a failure reads `failed restoring revision N: ...`.
async fn send_patch(
    client: &kube::Client,
    found: &Found,
    dry_run: DryRun,
    content_type: &str,
    patch: &Value,
    to_revision: i64,
) -> Result<Value, Error> {
    let url = if dry_run == DryRun::Server {
        request::with_query(&found.url(), &[("dryRun", "All")])
    } else {
        found.url()
    };
    request::send(
        client,
        Method::PATCH,
        &url,
        "application/json",
        Some(content_type),
        serde_json::to_vec(patch)?,
    )
    .await
    .map_err(|e| {
        Error::Message(format!(
            "failed restoring revision {to_revision}: {}",
            objects::error_text(&e)
        ))
    })
}

/// Adds what Go's encoding of a typed pod template always writes: every container's
/// `resources` (a struct, which `omitempty` never omits).
fn as_typed_go_marshals(template: &mut Value) {
    for list in ["containers", "initContainers"] {
        if let Some(containers) = template["spec"][list].as_array_mut() {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                container.entry("resources").or_insert_with(|| json!({}));
            }
        }
    }
}

/// Whether two pod templates are equal but for the `pod-template-hash` label, with empty and
/// missing values treated alike (upstream's semantic equality).
fn same_template(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
            labels.remove(HASH_LABEL);
        }
        normalised(&t)
    };
    strip(a) == strip(b)
}

/// `value` without nulls, empty maps and empty lists (which typed Go objects cannot tell from
/// absent ones); `None` when nothing is left.
fn normalised(value: &Value) -> Option<Value> {
    let kept = match value {
        Value::Null => return None,
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| normalised(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalised(v).unwrap_or(Value::Null)).collect()),
        other => other.clone(),
    };
    let empty = kept.as_object().is_some_and(|m| m.is_empty()) || kept.as_array().is_some_and(|a| a.is_empty());
    (!empty).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compare_without_the_hash_label_and_empty_fields() {
        let rs = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}, "creationTimestamp": null},
                        "spec": {"containers": [{"name": "c", "image": "nginx", "env": []}]}});
        let d =
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        assert!(same_template(&rs, &d));
        let other = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        assert!(!same_template(&rs, &other));
    }
}
