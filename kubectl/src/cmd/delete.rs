//! `kubectl delete`: by type and names, `type/name`, `-f`, `-l` or `--all`; with upstream's
//! propagation (`--cascade`), grace period, `--ignore-not-found` and waiting until the
//! objects are gone (`--wait`, the default).

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::cmd::get::targets;
use crate::cmd::select::{self, Fetch, Info, SelectFlags, TypeAlone};
use crate::error::Error;
use crate::request;

/// Delete resources by file names, stdin, resources and names, or by resources and selector.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// TYPE NAME... | TYPE/NAME...
    pub args: Vec<String>,
    #[command(flatten)]
    pub select: SelectFlags,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// `background`, `orphan` or `foreground` (`true` = background, `false` = orphan).
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// Seconds given to the resource to terminate gracefully (-1: the resource's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Immediate shutdown (grace period 1).
    #[arg(long)]
    pub now: bool,
    /// Immediate deletion (grace period 0); may leave processes running on the node.
    #[arg(long)]
    pub force: bool,
    /// Wait for resources to be gone before returning.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait before giving up (0: no limit).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// `name` prints only `kind/name`.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
}

/// Runs `kubectl delete`.
pub async fn run(ctx: &mut Context, args: &DeleteArgs) -> Result<(), Error> {
    let discovery = ctx.discovery().await?;
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    let dry_run = crate::cmd::apply::DryRun::parse(&args.dry_run)?;
    let propagation = match args.cascade.as_str() {
        "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => {
            return Err(Error::Usage(format!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
            )));
        }
    };
    let grace = if args.force {
        Some(0)
    } else if args.now {
        Some(1)
    } else {
        (args.grace_period >= 0).then_some(args.grace_period)
    };
    let timeout = component_base::parse_duration(&args.timeout)
        .map_err(|e| Error::Usage(format!("invalid --timeout {}: {e}", args.timeout)))?;

    if args.args.is_empty() && args.select.filenames.is_empty() {
        return Err(Error::Usage(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'".into(),
        ));
    }
    let mut errors = Vec::new();
    let selection =
        select::select_with(ctx, &args.args, &args.select, Fetch::Nothing, TypeAlone::NeedsSelector).await?;
    let victims: Vec<Info> = selection.items.into_iter().collect::<Result<_, _>>()?;
    if victims.is_empty() && args.select.filenames.is_empty() {
        ctx.err(
            &if args.select.all_namespaces || !victims_namespaced(&discovery, &args.args) {
                "No resources found\n".to_string()
            } else {
                format!("No resources found in {namespace} namespace.\n")
            },
        );
        return Ok(());
    }

    let mut deleted = Vec::new();
    for victim in victims {
        let mut options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation});
        if let Some(grace) = grace {
            options["gracePeriodSeconds"] = grace.into();
        }
        let url = victim.resource.object_url(victim.namespace.as_deref(), &victim.name);
        let result = match dry_run {
            crate::cmd::apply::DryRun::Client => Ok(Value::Null),
            crate::cmd::apply::DryRun::Server => {
                options["dryRun"] = json!(["All"]);
                request::send(
                    &client,
                    Method::DELETE,
                    &url,
                    "application/json",
                    Some("application/json"),
                    serde_json::to_vec(&options)?,
                )
                .await
            }
            crate::cmd::apply::DryRun::None => {
                request::send(
                    &client,
                    Method::DELETE,
                    &url,
                    "application/json",
                    Some("application/json"),
                    serde_json::to_vec(&options)?,
                )
                .await
            }
        };
        match result {
            Ok(response) => {
                let uid = response["metadata"]["uid"].as_str().map(str::to_string);
                if args.force {
                    ctx.err("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.\n");
                }
                let suffix = match dry_run {
                    crate::cmd::apply::DryRun::None => "",
                    crate::cmd::apply::DryRun::Client => " (dry run)",
                    crate::cmd::apply::DryRun::Server => " (server dry run)",
                };
                let line = if args.output.as_deref() == Some("name") {
                    format!("{}/{}\n", victim.resource.kind_prefix(), victim.name)
                } else {
                    deleted_line(&victim, suffix)
                };
                ctx.out(&line);
                if dry_run == crate::cmd::apply::DryRun::None {
                    deleted.push((victim, uid));
                }
            }
            Err(error) if error.is_not_found() && args.ignore_not_found => {}
            Err(error) => errors.push(match &victim.source {
                Some(source) => crate::cmd::apply::when(error, "deleting", source),
                None => error,
            }),
        }
    }

    if args.wait && !args.force {
        let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
        for (victim, uid) in &deleted {
            wait_gone(&client, victim, uid.as_deref(), deadline).await?;
        }
    }
    let last = errors.pop();
    for error in errors {
        ctx.err(&format!("{}\n", error.render()));
    }
    last.map_or(Ok(()), Err)
}

/// Upstream's line: `pod "x" deleted from default namespace` (no namespace part for
/// cluster-scoped objects).
fn deleted_line(victim: &Info, suffix: &str) -> String {
    let kind = victim.resource.kind_prefix();
    match &victim.namespace {
        Some(ns) => format!("{kind} \"{}\" deleted from {ns} namespace{suffix}\n", victim.name),
        None => format!("{kind} \"{}\" deleted{suffix}\n", victim.name),
    }
}

fn victims_namespaced(discovery: &crate::discovery::Discovery, args: &[String]) -> bool {
    targets(discovery, args).is_ok_and(|t| t.iter().all(|t| t.resource.namespaced))
}

/// Polls until the object is gone (or replaced by one with another uid).
async fn wait_gone(
    client: &kube::Client,
    victim: &Info,
    uid: Option<&str>,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let url = victim.resource.object_url(victim.namespace.as_deref(), &victim.name);
    let mut delay = Duration::from_millis(50);
    loop {
        match request::get(client, &url, "application/json").await {
            Err(error) if error.is_not_found() => return Ok(()),
            Err(error) => return Err(error),
            Ok(object) => {
                if uid.is_some() && object["metadata"]["uid"].as_str() != uid {
                    return Ok(());
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Error::Message(format!(
                "timed out waiting for the condition on {}/{}",
                victim.resource.plural_group(),
                victim.name
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
