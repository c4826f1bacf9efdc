//! `kubectl rollout history`: the revisions of a Deployment (its ReplicaSets' revision
//! annotations) or of a DaemonSet / StatefulSet (its ControllerRevisions), as a
//! `REVISION  CHANGE-CAUSE` table or, with `--revision`, that revision's pod template.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ObjectArgs, Workload, visit};
use crate::cmd::Context;
use crate::cmd::objects::{self, Found};
use crate::error::Error;
use crate::request;

/// The annotation recording why a revision was made.
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// View rollout history.
#[derive(clap::Args, Debug, Clone)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
    /// See the details, including podTemplate of the revision specified.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub revision: i64,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// Runs `kubectl rollout history`.
pub(super) async fn run(ctx: &mut Context, args: &HistoryArgs) -> Result<(), Error> {
    let selection = args.objects.selection(args.selector.as_deref())?;
    if args.revision < 0 {
        return Err(Error::Message(format!(
            "revision must be a positive integer: {}",
            args.revision
        )));
    }
    let revision = args.revision;
    visit(
        ctx,
        selection,
        ("history", "history viewer"),
        async |client, found, workload, _| {
            let history = view(client, found, workload, revision).await?;
            let with_revision = if revision > 0 {
                format!("with revision #{revision}")
            } else {
                String::new()
            };
            Ok(format!("{} {with_revision}\n{history}\n", found.display_name()))
        },
    )
    .await
}

/// The ReplicaSets a Deployment controls.
pub(super) async fn replica_sets_of(client: &kube::Client, owner: &Found) -> Result<Vec<Value>, Error> {
    controlled(client, owner, "replicasets").await
}

/// The ControllerRevisions a DaemonSet or StatefulSet controls.
pub(super) async fn controller_revisions_of(client: &kube::Client, owner: &Found) -> Result<Vec<Value>, Error> {
    controlled(client, owner, "controllerrevisions").await
}

/// The `apps/v1` objects of `plural` that `owner`'s selector selects and that it controls.
async fn controlled(client: &kube::Client, owner: &Found, plural: &str) -> Result<Vec<Value>, Error> {
    let selector = crate::describe::label_selector_query(owner.object.pointer("/spec/selector"));
    let namespace = owner.namespace.as_deref().unwrap_or_default();
    let url = request::with_query(
        &format!("/apis/apps/v1/namespaces/{namespace}/{plural}"),
        &[("labelSelector", &selector)],
    );
    let uid = owner.object["metadata"]["uid"].as_str().unwrap_or_default();
    let list = request::get(client, &url, "application/json").await?;
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|item| objects::controlled_by(item, uid))
        .collect())
}

/// A ControllerRevision's `revision`.
pub(super) fn cr_revision(cr: &Value) -> i64 {
    cr["revision"].as_i64().unwrap_or(0)
}

/// The object as it was at a ControllerRevision: its data applied to the current object
/// as a strategic merge patch.
pub(super) fn apply_revision(owner: &Found, cr: &Value) -> Result<Value, Error> {
    let meta = api::patch::patch_meta_for_kind(&owner.resource.group, &owner.resource.version, &owner.resource.kind);
    api::patch::strategic_merge(&owner.object, &cr["data"], &meta).map_err(|e| Error::Message(e.to_string()))
}

/// Upstream's `HistoryViewer.ViewHistory` text.
async fn view(client: &kube::Client, found: &Found, workload: Workload, revision: i64) -> Result<String, Error> {
    match workload {
        Workload::Deployment => {
            let mut history: BTreeMap<i64, Value> = BTreeMap::new();
            for rs in replica_sets_of(client, found).await? {
                let Some(Ok(number)) = rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .map(str::parse::<i64>)
                else {
                    continue;
                };
                let mut template = rs["spec"]["template"].clone();
                if let Some(cause) = rs["metadata"]["annotations"][CHANGE_CAUSE]
                    .as_str()
                    .filter(|c| !c.is_empty())
                {
                    template["metadata"]["annotations"][CHANGE_CAUSE] = cause.into();
                }
                history.insert(number, template);
            }
            if history.is_empty() {
                return Ok("No rollout history found.".into());
            }
            if revision > 0 {
                let template = history
                    .get(&revision)
                    .ok_or_else(|| Error::Message("unable to find the specified revision".into()))?;
                return Ok(crate::describe::pod_template_text(template));
            }
            Ok(table(history.iter().map(|(n, t)| (*n, change_cause(t)))))
        }
        Workload::DaemonSet | Workload::StatefulSet => {
            let revisions = controller_revisions_of(client, found).await?;
            let history: BTreeMap<i64, &Value> = revisions.iter().map(|cr| (cr_revision(cr), cr)).collect();
            if history.is_empty() {
                return Ok("No rollout history found.".into());
            }
            if revision > 0 {
                let cr = history
                    .get(&revision)
                    .ok_or_else(|| Error::Message("unable to find the specified revision".into()))?;
                let applied = apply_revision(found, cr).map_err(|_| {
                    Error::Message(format!(
                        "unable to parse history {}",
                        cr["metadata"]["name"].as_str().unwrap_or_default()
                    ))
                })?;
                return Ok(crate::describe::pod_template_text(&applied["spec"]["template"]));
            }
            Ok(table(history.iter().map(|(n, cr)| (*n, change_cause(cr)))))
        }
    }
}

fn change_cause(object: &Value) -> String {
    object["metadata"]["annotations"][CHANGE_CAUSE]
        .as_str()
        .filter(|c| !c.is_empty())
        .unwrap_or("<none>")
        .to_string()
}

/// The `REVISION  CHANGE-CAUSE` table.
fn table(rows: impl Iterator<Item = (i64, String)>) -> String {
    let mut text = String::from("REVISION\tCHANGE-CAUSE\n");
    for (revision, cause) in rows {
        text.push_str(&format!("{revision}\t{cause}\n"));
    }
    crate::describe::align_tabbed(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_table_is_aligned_like_tabbed_string() {
        let rows = vec![(1, "<none>".to_string()), (12, "kubectl set image".to_string())];
        assert_eq!(
            table(rows.into_iter()),
            "REVISION  CHANGE-CAUSE\n1         <none>\n12        kubectl set image\n"
        );
    }
}
