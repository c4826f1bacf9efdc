//! `kubectl set image|env`: change the pod template of workloads (or a pod's spec) and send
//! the difference as a strategic merge patch, printing `deployment.apps/web image updated`;
//! objects the change leaves as they were are skipped silently, as upstream does.

pub mod env;
pub mod image;

use http::Method;
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::select::{self, Info, Printer, SelectFlags};
use crate::error::Error;
use crate::request;

/// Configure application resources.
#[derive(clap::Args, Debug, Clone)]
pub struct SetCommand {
    #[command(subcommand)]
    pub command: SetSubcommand,
}

/// The `set` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SetSubcommand {
    /// Update the image of a pod template.
    Image(image::ImageArgs),
    /// Update environment variables on a pod template.
    Env(env::EnvArgs),
}

/// Runs `kubectl set`.
pub async fn run(ctx: &mut Context, command: &SetCommand) -> Result<(), Error> {
    match &command.command {
        SetSubcommand::Image(args) => image::run(ctx, args).await,
        SetSubcommand::Env(args) => env::run(ctx, args).await,
    }
}

/// The flags `set` subcommands share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SetFlags {
    #[command(flatten)]
    pub select: SelectFlags,
    /// Change the -f objects locally, without contacting the server.
    #[arg(long)]
    pub local: bool,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The field manager name.
    #[arg(long, default_value = "kubectl-set")]
    pub field_manager: String,
}

/// Where the pod spec of a kind lives, as a JSON pointer.
pub fn pod_spec_path(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet" | "Job" | "ReplicationController" | "PodTemplate" => {
            Some(if kind == "PodTemplate" {
                "/template/spec"
            } else {
                "/spec/template/spec"
            })
        }
        _ => None,
    }
}

/// The objects to change: from -f alone with `--local`, else fetched.
pub async fn objects(ctx: &mut Context, resources: &[String], flags: &SetFlags) -> Result<select::Selection, Error> {
    if flags.local {
        if flags.select.filenames.is_empty() {
            return Err(Error::Usage(
                "you must specify resources by --filename when --local is set.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'".into(),
            ));
        }
        return select::local(&flags.select);
    }
    if resources.is_empty() && flags.select.filenames.is_empty() {
        return Err(Error::Usage(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>".into(),
        ));
    }
    select::select(ctx, resources, &flags.select).await
}

/// Upstream's "not a pod or does not have a pod template" error.
pub fn no_pod_template(info: &Info) -> Error {
    Error::Message(format!(
        "{}/{} the object is not a pod or does not have a pod template: *{}.{}",
        info.resource.plural, info.name, info.resource.version, info.resource.kind
    ))
}

/// Sends the strategic merge patch from `info.object` to `modified` (nothing when they are
/// the same) and prints `<what> updated`; with `--local` or a client dry run, prints
/// `modified`.
pub async fn send_change(
    ctx: &mut Context,
    info: &Info,
    modified: &Value,
    flags: &SetFlags,
    printer: &mut Printer,
    what: &str,
) -> Result<(), Error> {
    let verb = format!("{what} updated");
    let meta = api::patch::patch_meta_for_kind(&info.resource.group, &info.resource.version, &info.resource.kind);
    let patch =
        api::patch::two_way_merge_patch(&info.object, modified, &meta).map_err(|e| Error::Message(e.to_string()))?;
    if patch.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(());
    }
    let dry_run = DryRun::parse(&flags.dry_run)?;
    let discovery = if flags.local {
        None
    } else {
        Some(ctx.discovery().await?)
    };
    if flags.local || dry_run == DryRun::Client {
        let typed = typed_view(modified.clone(), &info.resource.kind);
        return printer.print(ctx, discovery.as_deref(), &info.resource, &typed, &verb);
    }
    let url = request::with_query(
        &info.url(),
        &[
            ("dryRun", if dry_run == DryRun::Server { "All" } else { "" }),
            ("fieldManager", &flags.field_manager),
        ],
    );
    let client = ctx.client().await?;
    let body = crate::printer::to_compact_json(&patch).into_bytes();
    let patched = request::send(
        &client,
        Method::PATCH,
        &url,
        "application/json",
        Some("application/strategic-merge-patch+json"),
        body,
    )
    .await
    .map_err(|e| match e {
        Error::Api(status) => Error::Message(format!(
            "failed to patch {what} update to pod template: {}",
            status.message
        )),
        other => other,
    })?;
    let typed = typed_view(patched, &info.resource.kind);
    printer.print(ctx, discovery.as_deref(), &info.resource, &typed, &verb)
}

/// The object as upstream prints it after decoding it into its Go type: struct fields
/// without `omitempty` effect (`status`, a container's `resources`, a template's
/// `metadata`, a Deployment's `strategy`) appear as `{}` when absent.
pub fn typed_view(mut object: Value, kind: &str) -> Value {
    fn ensure(map: &mut Value, key: &str) {
        if let Some(map) = map.as_object_mut() {
            map.entry(key).or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    let Some(path) = pod_spec_path(kind) else { return object };
    ensure(&mut object, "metadata");
    ensure(&mut object, "status");
    if kind == "Deployment"
        && let Some(spec) = object.get_mut("spec")
    {
        ensure(spec, "strategy");
    }
    if let Some(template_path) = path.strip_suffix("/spec")
        && kind != "Pod"
        && let Some(template) = object.pointer_mut(template_path)
    {
        ensure(template, "metadata");
    }
    if let Some(spec) = object.pointer_mut(path) {
        for list in ["containers", "initContainers"] {
            for container in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                ensure(container, "resources");
            }
        }
    }
    object
}
