//! `kubectl rollout restart|pause|resume`: one strategic merge patch per object (the
//! `kubectl.kubernetes.io/restartedAt` template annotation, or `spec.paused`), with
//! upstream's per-object messages and errors collected until the end.

use serde_json::{Value, json};

use super::ObjectArgs;
use crate::cmd::Context;
use crate::cmd::objects::{self, Failure, Found};
use crate::error::Error;
use crate::request;

/// The template annotation `restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Mark the provided resource as paused, or resume it.
#[derive(clap::Args, Debug, Clone)]
pub struct PatchArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Name of the manager used to track field ownership.
    #[arg(long, default_value = "kubectl-rollout")]
    pub field_manager: String,
}

/// Restart a resource.
#[derive(clap::Args, Debug, Clone)]
pub struct RestartArgs {
    #[command(flatten)]
    pub common: PatchArgs,
}

/// Which change the command makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Restart,
    Pause,
    Resume,
}

/// Runs `kubectl rollout restart|pause|resume`.
pub(super) async fn run(ctx: &mut Context, args: &PatchArgs, action: Action) -> Result<(), Error> {
    let selection = args.objects.selection(args.selector.as_deref())?;
    let client = ctx.client().await?;
    let now = restart_time();
    let (found, fetch_errors): (Vec<_>, Vec<_>) = objects::resolve_continue(ctx, selection)
        .await?
        .into_iter()
        .partition(Result::is_ok);
    let found: Vec<Found> = found.into_iter().filter_map(Result::ok).collect();
    let fetch_errors: Vec<Error> = fetch_errors.into_iter().filter_map(Result::err).collect();
    let mut errors = Vec::new();
    match fetch_errors.len() {
        0 => {}
        1 => errors.extend(fetch_errors.into_iter().map(Failure::One)),
        _ => errors.push(Failure::Many(fetch_errors)),
    }
    if found.is_empty() && errors.is_empty() {
        let namespace = ctx.namespace().await?;
        ctx.err(&format!("No resources found in {namespace} namespace.\n"));
        return Ok(());
    }
    for found in found {
        let patch = match patch_for(&found, action, &now) {
            Ok(patch) => patch,
            Err(reason) => {
                errors.push(Failure::One(Error::Aggregate(format!(
                    "error: {} {reason}",
                    found.quoted()
                ))));
                continue;
            }
        };
        let Some(patch) = patch else {
            match action {
                Action::Restart => errors.push(Failure::One(Error::Message(format!(
                    "failed to create patch for {}: if restart has already been triggered within the past second, please wait before attempting to trigger another",
                    found.name
                )))),
                Action::Pause => ctx.out(&format!("{} already paused\n", found.display_name())),
                Action::Resume => ctx.out(&format!("{} already resumed\n", found.display_name())),
            }
            continue;
        };
        let url = request::with_query(&found.url(), &[("fieldManager", &args.field_manager)]);
        let sent = request::strategic_merge_patch(&client, &url, &patch).await;
        match sent {
            Ok(_) => {
                let done = match action {
                    Action::Restart => "restarted",
                    Action::Pause => "paused",
                    Action::Resume => "resumed",
                };
                ctx.out(&format!("{} {done}\n", found.display_name()));
            }
            Err(error) => errors.push(Failure::One(Error::Message(format!(
                "failed to patch: {}",
                objects::error_text(&error)
            )))),
        }
    }
    objects::finish(errors)
}

/// The patch `action` makes to the object (`None`: nothing would change), or why the kind
/// does not support it.
fn patch_for(found: &Found, action: Action, now: &str) -> Result<Option<Value>, String> {
    let group = found.resource.group.as_str();
    let kind = found.resource.kind.as_str();
    let deployment = matches!(group, "apps" | "extensions") && kind == "Deployment";
    let paused = found.object["spec"]["paused"] == true;
    match action {
        Action::Pause | Action::Resume if !deployment => Err(format!(
            "{} is not supported",
            if action == Action::Pause { "pausing" } else { "resuming" }
        )),
        Action::Pause if paused => Err("is already paused".into()),
        Action::Pause => Ok(Some(json!({"spec": {"paused": true}}))),
        Action::Resume if !paused => Err("is not paused".into()),
        Action::Resume => Ok(Some(json!({"spec": {"paused": null}}))),
        Action::Restart => {
            let restartable = deployment
                || (matches!(group, "apps" | "extensions") && kind == "DaemonSet")
                || (group == "apps" && kind == "StatefulSet");
            if !restartable {
                return Err("restarting is not supported".into());
            }
            if deployment && paused {
                return Err("can't restart paused deployment (run rollout resume first)".into());
            }
            let current = &found.object["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT];
            if current == now {
                return Ok(None);
            }
            Ok(Some(
                json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}),
            ))
        }
    }
}

/// Now in the local time zone as Go's `time.RFC3339` prints it (`Z` for UTC).
fn restart_time() -> String {
    let now = jiff::Zoned::now();
    if now.offset().seconds() == 0 {
        now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        now.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Resource;

    fn found(group: &str, kind: &str, object: Value) -> Found {
        Found {
            resource: Resource {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
                singular: kind.to_lowercase(),
                short_names: vec![],
                namespaced: true,
                verbs: vec![],
                categories: vec![],
                preferred: true,
            },
            namespace: Some("ns".into()),
            name: "web".into(),
            object,
            source: None,
        }
    }

    #[test]
    fn patches_and_refusals_match_upstream() {
        let running = found("apps", "Deployment", json!({"spec": {}}));
        let paused = found("apps", "Deployment", json!({"spec": {"paused": true}}));
        assert_eq!(
            patch_for(&running, Action::Pause, "t").unwrap(),
            Some(json!({"spec": {"paused": true}}))
        );
        assert_eq!(patch_for(&paused, Action::Pause, "t").unwrap_err(), "is already paused");
        assert_eq!(patch_for(&running, Action::Resume, "t").unwrap_err(), "is not paused");
        assert_eq!(
            patch_for(&paused, Action::Restart, "t").unwrap_err(),
            "can't restart paused deployment (run rollout resume first)"
        );
        let cm = found("", "ConfigMap", json!({}));
        assert_eq!(
            patch_for(&cm, Action::Pause, "t").unwrap_err(),
            "pausing is not supported"
        );
        assert_eq!(
            patch_for(&cm, Action::Restart, "t").unwrap_err(),
            "restarting is not supported"
        );
        let restarted = found(
            "apps",
            "DaemonSet",
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "t"}}}}}),
        );
        assert_eq!(patch_for(&restarted, Action::Restart, "t").unwrap(), None);
        assert!(restart_time().len() >= 20);
    }
}
