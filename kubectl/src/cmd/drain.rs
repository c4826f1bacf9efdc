//! `kubectl cordon`, `uncordon` and `drain`: marking nodes unschedulable (a strategic merge
//! patch of `spec.unschedulable`), then evicting (the `pods/eviction` subresource) or deleting
//! the node's pods, with upstream's pod filters (DaemonSet-managed, mirror, local storage,
//! unreplicated), warnings, errors and waiting for the pods to be gone.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::objects::{self, Failure, Found, Selection};
use crate::error::Error;
use crate::request;

/// Mark node as unschedulable (or, for uncordon, schedulable).
#[derive(clap::Args, Debug, Clone)]
pub struct CordonArgs {
    /// NODE
    pub nodes: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
}

/// Drain node in preparation for maintenance.
#[derive(clap::Args, Debug, Clone)]
pub struct DrainArgs {
    #[command(flatten)]
    pub cordon: CordonArgs,
    /// Continue even if there are pods that do not declare a controller.
    #[arg(long)]
    pub force: bool,
    /// Ignore DaemonSet-managed pods.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (local data that will be deleted when
    /// the node is drained).
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Period of time in seconds given to each pod to terminate gracefully. If negative, the
    /// default value specified in the pod will be used.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// The length of time to wait before giving up, zero means infinite.
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Label selector to filter pods on the node.
    #[arg(long)]
    pub pod_selector: Option<String>,
    /// Force drain to use delete, even if eviction is supported.
    #[arg(long)]
    pub disable_eviction: bool,
}

/// Runs `kubectl cordon` (`unschedulable`: true) or `kubectl uncordon`.
pub async fn cordon(ctx: &mut Context, args: &CordonArgs, unschedulable: bool) -> Result<(), Error> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    let nodes = nodes(ctx, args, if unschedulable { "cordon" } else { "uncordon" }).await?;
    let mut failures = Vec::new();
    for node in &nodes {
        if let Err(error) = set_unschedulable(ctx, node, unschedulable, dry_run).await {
            failures.push(Failure::One(error));
        }
    }
    objects::finish(failures)
}

/// The nodes named or selected.
async fn nodes(ctx: &mut Context, args: &CordonArgs, command: &str) -> Result<Vec<Found>, Error> {
    if args.nodes.is_empty() && args.selector.is_none() {
        return Err(Error::Message(format!(
            "USAGE: {command} NODE [flags]\nSee 'kubectl {command} -h' for help and examples"
        )));
    }
    let mut words = vec!["nodes".to_string()];
    words.extend(args.nodes.iter().cloned());
    let selection = Selection {
        args: &words,
        selector: args.selector.as_deref(),
        ..Default::default()
    };
    objects::resolve(ctx, selection).await
}

/// Cordons or uncordons one node, printing upstream's line.
async fn set_unschedulable(ctx: &mut Context, node: &Found, unschedulable: bool, dry_run: DryRun) -> Result<(), Error> {
    let verb = if unschedulable { "cordoned" } else { "uncordoned" };
    let suffix = dry_run_suffix(dry_run);
    if (node.object["spec"]["unschedulable"] == true) == unschedulable {
        ctx.out(&format!("node/{} already {verb}{suffix}\n", node.name));
        return Ok(());
    }
    if dry_run != DryRun::Client {
        let client = ctx.client().await?;
        let url = if dry_run == DryRun::Server {
            request::with_query(&node.url(), &[("dryRun", "All")])
        } else {
            node.url()
        };
        let value = if unschedulable { json!(true) } else { Value::Null };
        let patch = json!({"spec": {"unschedulable": value}});
        request::strategic_merge_patch(&client, &url, &patch).await?;
    }
    ctx.out(&format!("node/{} {verb}{suffix}\n", node.name));
    Ok(())
}

fn dry_run_suffix(dry_run: DryRun) -> &'static str {
    match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    }
}

/// Runs `kubectl drain`.
pub async fn drain(ctx: &mut Context, args: &DrainArgs) -> Result<(), Error> {
    let timeout = objects::duration_flag(&args.timeout, "timeout", "drain")?;
    let dry_run = DryRun::parse(&args.cordon.dry_run)?;
    let nodes = nodes(ctx, &args.cordon, "drain").await?;
    for node in &nodes {
        set_unschedulable(ctx, node, true, dry_run).await?;
    }
    let suffix = dry_run_suffix(dry_run);
    let mut failures = Vec::new();
    let mut pending = Vec::new();
    for node in &nodes {
        match drain_node(ctx, node, args, dry_run, timeout).await {
            Ok(()) => ctx.out(&format!("node/{} drained{suffix}\n", node.name)),
            Err(failure) => {
                let text = match &failure {
                    Failure::One(error) => objects::error_text(error),
                    Failure::Many(errors) if errors.len() == 1 => objects::error_text(&errors[0]),
                    Failure::Many(errors) => format!(
                        "[{}]",
                        errors.iter().map(objects::error_text).collect::<Vec<_>>().join(", ")
                    ),
                };
                ctx.err(&format!(
                    "error: unable to drain node {} due to error: {text}, continuing command...\n",
                    objects::go_quote(&node.name)
                ));
                pending.push(node.name.clone());
                failures.push(failure);
            }
        }
    }
    if !pending.is_empty() {
        let list: String = pending.iter().map(|name| format!(" {name}\n")).collect();
        ctx.err(&format!("There are pending nodes to be drained:\n{list}"));
    }
    objects::finish(failures)
}

/// Why a pod is or is not evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Delete,
    DeleteWithWarning(&'static str),
    Skip,
    SkipWithWarning(&'static str),
    Refuse(String),
}

/// Upstream's filters, in order: a refusal or skip stops the chain, otherwise the last filter
/// (unreplicated pods) decides, which drops the warnings of the earlier ones.
async fn verdict(client: &kube::Client, pod: &Value, args: &DrainArgs) -> Verdict {
    let finished = matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    let controller = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true));
    if let Some(owner) = controller.filter(|r| r["kind"] == "DaemonSet")
        && !finished
    {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = owner["name"].as_str().unwrap_or_default();
        let url = format!("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}");
        match request::get(client, &url, "application/json").await {
            // An orphan: deleted with --force (its warning is dropped by the later filters).
            Err(error) if error.is_not_found() && args.force => {}
            Err(error) => return Verdict::Refuse(objects::error_text(&error)),
            Ok(_) if !args.ignore_daemonsets => {
                return Verdict::Refuse(
                    "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)".into(),
                );
            }
            Ok(_) => return Verdict::SkipWithWarning("ignoring DaemonSet-managed Pods"),
        }
    }
    if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        return Verdict::Skip;
    }
    let local_storage = pod["spec"]["volumes"]
        .as_array()
        .is_some_and(|volumes| volumes.iter().any(|v| v.get("emptyDir").is_some()));
    if local_storage && !finished && !args.delete_emptydir_data {
        return Verdict::Refuse(
            "cannot delete Pods with local storage (use --delete-emptydir-data to override)".into(),
        );
    }
    if controller.is_none() && !finished {
        if !args.force {
            return Verdict::Refuse("cannot delete Pods that declare no controller (use --force to override)".into());
        }
        return Verdict::DeleteWithWarning("deleting Pods that declare no controller");
    }
    Verdict::Delete
}

/// `ns/name` of a pod.
fn pod_key(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Messages with their pods (`msg: ns/a, ns/b`), in order of first appearance.
fn grouped<'a>(items: impl Iterator<Item = (&'a str, String)>) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (message, pod) in items {
        match groups.iter_mut().find(|(m, _)| *m == message) {
            Some((_, pods)) => pods.push(pod),
            None => groups.push((message, vec![pod])),
        }
    }
    groups
        .into_iter()
        .map(|(message, pods)| format!("{message}: {}", pods.join(", ")))
        .collect()
}

/// The pods of a node to evict, and the warning line about the others.
struct Deletions {
    pods: Vec<Value>,
    warnings: String,
}

/// The pods of the node to evict, or the refusals.
async fn pods_for_deletion(client: &kube::Client, node: &str, args: &DrainArgs) -> Result<Deletions, Failure> {
    let field_selector = format!("spec.nodeName={node}");
    let url = request::with_query(
        "/api/v1/pods",
        &[
            ("labelSelector", args.pod_selector.as_deref().unwrap_or_default()),
            ("fieldSelector", &field_selector),
        ],
    );
    let list = request::get(client, &url, "application/json")
        .await
        .map_err(Failure::One)?;
    let mut verdicts = Vec::new();
    for pod in list["items"].as_array().cloned().unwrap_or_default() {
        let verdict = verdict(client, &pod, args).await;
        verdicts.push((pod, verdict));
    }
    let refusals = grouped(verdicts.iter().filter_map(|(pod, v)| match v {
        Verdict::Refuse(message) => Some((message.as_str(), pod_key(pod))),
        _ => None,
    }));
    if !refusals.is_empty() {
        return Err(Failure::Many(refusals.into_iter().map(Error::Message).collect()));
    }
    let warnings = grouped(verdicts.iter().filter_map(|(pod, v)| match v {
        Verdict::DeleteWithWarning(message) | Verdict::SkipWithWarning(message) => Some((*message, pod_key(pod))),
        _ => None,
    }));
    let pods = verdicts
        .into_iter()
        .filter(|(_, v)| matches!(v, Verdict::Delete | Verdict::DeleteWithWarning(_)))
        .map(|(pod, _)| pod)
        .collect();
    Ok(Deletions {
        pods,
        warnings: warnings.join("; "),
    })
}

/// Evicts or deletes the node's pods and waits until they are gone.
async fn drain_node(
    ctx: &mut Context,
    node: &Found,
    args: &DrainArgs,
    dry_run: DryRun,
    timeout: Duration,
) -> Result<(), Failure> {
    let client = ctx.client().await.map_err(Failure::One)?;
    let Deletions { pods, warnings } = pods_for_deletion(&client, &node.name, args).await?;
    if !warnings.is_empty() {
        ctx.err(&format!("Warning: {warnings}\n"));
    }
    let suffix = dry_run_suffix(dry_run);
    if dry_run == DryRun::Client {
        for pod in &pods {
            ctx.out(&format!("evicting pod {}{suffix}\n", pod_key(pod)));
        }
        return Ok(());
    }
    let result = remove_pods(ctx, &client, &pods, args, dry_run, timeout).await;
    if let Err(error) = &result
        && let Ok(still) = pods_for_deletion(&client, &node.name, args).await
        && !still.pods.is_empty()
    {
        let list: String = still
            .pods
            .iter()
            .map(|p| format!("pod/{}\n", p["metadata"]["name"].as_str().unwrap_or_default()))
            .collect();
        ctx.err(&format!(
            "There are pending pods in node {} when an error occurred: {}\n{list}",
            objects::go_quote(&node.name),
            objects::error_text(error)
        ));
    }
    // Upstream collects the eviction errors into an aggregate.
    result.map_err(|error| Failure::Many(vec![error]))
}

async fn remove_pods(
    ctx: &mut Context,
    client: &kube::Client,
    pods: &[Value],
    args: &DrainArgs,
    dry_run: DryRun,
    timeout: Duration,
) -> Result<(), Error> {
    let suffix = dry_run_suffix(dry_run);
    let started = Instant::now();
    let mut options = json!({});
    if args.grace_period >= 0 {
        options["gracePeriodSeconds"] = args.grace_period.into();
    }
    if dry_run == DryRun::Server {
        options["dryRun"] = json!(["All"]);
    }
    for pod in pods {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let url = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let sent = if args.disable_eviction {
            let mut body = options.clone();
            body["kind"] = "DeleteOptions".into();
            body["apiVersion"] = "v1".into();
            request::send(
                client,
                Method::DELETE,
                &url,
                "application/json",
                Some("application/json"),
                serde_json::to_vec(&body)?,
            )
            .await
        } else {
            ctx.out(&format!("evicting pod {}{suffix}\n", pod_key(pod)));
            let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace}, "deleteOptions": options});
            request::send(
                client,
                Method::POST,
                &format!("{url}/eviction"),
                "application/json",
                Some("application/json"),
                serde_json::to_vec(&eviction)?,
            )
            .await
        };
        match sent {
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(error),
            Ok(_) => {}
        }
    }
    if dry_run == DryRun::Server {
        return Ok(());
    }
    let verb = if args.disable_eviction { "deleted" } else { "evicted" };
    for pod in pods {
        let url = format!(
            "/api/v1/namespaces/{}/pods/{}",
            pod["metadata"]["namespace"].as_str().unwrap_or_default(),
            pod["metadata"]["name"].as_str().unwrap_or_default()
        );
        loop {
            match request::get(client, &url, "application/json").await {
                Err(error) if error.is_not_found() => break,
                Ok(current) if current["metadata"]["uid"] != pod["metadata"]["uid"] => break,
                Err(error) => return Err(error),
                Ok(_) => {}
            }
            if !timeout.is_zero() && started.elapsed() >= timeout {
                return Err(Error::Message(format!(
                    "error when waiting for pod {} in namespace {} to terminate: context deadline exceeded",
                    objects::go_quote(pod["metadata"]["name"].as_str().unwrap_or_default()),
                    objects::go_quote(pod["metadata"]["namespace"].as_str().unwrap_or_default())
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        ctx.out(&format!(
            "pod/{} {verb}\n",
            pod["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_group_their_pods_in_order() {
        let items = [
            ("a", "ns/p1".to_string()),
            ("b", "ns/p2".to_string()),
            ("a", "ns/p3".to_string()),
        ];
        assert_eq!(grouped(items.into_iter()), ["a: ns/p1, ns/p3", "b: ns/p2"]);
    }
}
