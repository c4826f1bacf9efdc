//! `kubectl diff -f`: for each manifest, the live object and the object a server-side dry
//! run of the apply yields, written as YAML into two temporary directories laid out as
//! upstream lays them out (`LIVE-*/` and `MERGED-*/`, one `group.version.Kind.ns.name`
//! file per object; managed fields left out, Secret values masked; the dry run leaves the
//! last-applied annotation alone), compared by `$KUBECTL_EXTERNAL_DIFF` or `diff -u -N`.
//! Exit code 0: no differences, 1: differences, >1: trouble.

use std::path::{Path, PathBuf};

use http::Method;
use rand::Rng;
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::apply::{self, ApplyArgs, DryRun};
use crate::discovery::Discovery;
use crate::error::Error;
use crate::manifest::{self, Manifest};
use crate::request;

/// Diff the live version against a would-be applied version.
#[derive(clap::Args, Debug, Clone)]
pub struct DiffArgs {
    /// The files that contain the configurations to diff.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Compare against a server-side apply instead of a client-side one.
    #[arg(long)]
    pub server_side: bool,
    /// With --server-side, take ownership of fields other managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// The field manager name.
    #[arg(long, default_value = "kubectl-client-side-apply")]
    pub field_manager: String,
    /// Keep managedFields in the compared objects.
    #[arg(long)]
    pub show_managed_fields: bool,
}

/// Runs `kubectl diff`; errors exit with code 2, as upstream's `CheckDiffErr`.
pub async fn run(ctx: &mut Context, args: &DiffArgs) -> Result<(), Error> {
    match compare(ctx, args).await {
        Ok(0) => Ok(()),
        Ok(code) => Err(Error::Exit {
            code,
            message: String::new(),
        }),
        Err(Error::Exit { code, message }) => Err(Error::Exit { code, message }),
        Err(error) => Err(Error::Exit {
            code: 2,
            message: error.render(),
        }),
    }
}

async fn compare(ctx: &mut Context, args: &DiffArgs) -> Result<i32, Error> {
    let manifests = manifest::read_all(&args.filenames, args.recursive)?;
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    let apply_args = ApplyArgs {
        filenames: args.filenames.clone(),
        server_side: args.server_side,
        force_conflicts: args.force_conflicts,
        field_manager: (args.server_side || args.field_manager != "kubectl-client-side-apply")
            .then(|| args.field_manager.clone()),
        validate: "strict".into(),
        keep_last_applied: true,
        ..Default::default()
    };
    let live_dir = TempDir::new("LIVE")?;
    let merged_dir = TempDir::new("MERGED")?;
    for manifest in manifests {
        let mut placed = manifest.clone();
        let placement = apply::place(ctx, &discovery, &mut placed, false).await?;
        // Conflicts are retried with a fresh live object, the last time with a warning.
        let mut attempt = 1;
        let (live, merged) = loop {
            let last = attempt == MAX_RETRIES;
            let result = live_and_merged(
                ctx,
                &discovery,
                &client,
                args,
                &apply_args,
                &manifest,
                &placed,
                &placement,
                last,
            )
            .await;
            match result {
                Err(Error::Api(status)) if status.code == 409 && attempt < MAX_RETRIES => attempt += 1,
                other => break other?,
            }
        };
        let mut merged = Some(merged);
        let mut live = live;
        for object in [&mut live, &mut merged].into_iter().flatten() {
            tidy(object, args.show_managed_fields);
        }
        if placement.resource.kind == "Secret" {
            mask_secrets(live.as_mut(), merged.as_mut());
        }
        let group = if placement.resource.group.is_empty() {
            String::new()
        } else {
            format!("{}.", placement.resource.group)
        };
        let name = format!(
            "{group}{}.{}.{}.{}",
            placement.resource.version,
            placement.resource.kind,
            placement.namespace.as_deref().unwrap_or_default(),
            placement.name
        );
        for (dir, object) in [(&live_dir, &live), (&merged_dir, &merged)] {
            let text = object.as_ref().map(crate::printer::yaml::to_yaml).unwrap_or_default();
            std::fs::write(dir.path.join(&name), text)?;
        }
    }
    run_diff(&live_dir.path, &merged_dir.path)
}

/// Upstream's diff reports the server's errors without apply's `error when ...` prefix.
fn without_source(error: Error, source: &str) -> Error {
    match error {
        Error::Api(mut status) => {
            for doing in ["applying patch", "creating", "retrieving current configuration of"] {
                let prefix = format!("error when {doing} \"{source}\": ");
                if let Some(rest) = status.message.strip_prefix(&prefix) {
                    status.message = rest.to_string();
                }
            }
            Error::Api(status)
        }
        other => other,
    }
}

/// Managed fields are left out unless asked for.
fn tidy(object: &mut Value, show_managed_fields: bool) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && !show_managed_fields
    {
        metadata.remove("managedFields");
    }
}

/// Upstream's masker: Secret values become `***`, or `*** (before)` / `*** (after)`
/// where the two sides differ.
fn mask_secrets(live: Option<&mut Value>, merged: Option<&mut Value>) {
    let mut empty_from = Value::Null;
    let mut empty_to = Value::Null;
    let from_object = live.unwrap_or(&mut empty_from);
    let to_object = merged.unwrap_or(&mut empty_to);
    let from = from_object["data"].as_object().cloned().unwrap_or_default();
    let to = to_object["data"].as_object().cloned().unwrap_or_default();
    let mut masked_from = serde_json::Map::new();
    let mut masked_to = serde_json::Map::new();
    for (key, value) in &from {
        match to.get(key) {
            Some(other) if other != value => {
                masked_from.insert(key.clone(), "*** (before)".into());
                masked_to.insert(key.clone(), "*** (after)".into());
            }
            Some(_) => {
                masked_from.insert(key.clone(), "***".into());
                masked_to.insert(key.clone(), "***".into());
            }
            None => {
                masked_from.insert(key.clone(), "***".into());
            }
        }
    }
    for key in to.keys().filter(|k| !from.contains_key(*k)) {
        masked_to.insert(key.clone(), "***".into());
    }
    if from_object.get("data").is_some_and(Value::is_object) {
        from_object["data"] = Value::Object(masked_from);
    }
    if to_object.get("data").is_some_and(Value::is_object) {
        to_object["data"] = Value::Object(masked_to);
    }
}

/// Runs the diff program over the two directories; its exit code is the result.
fn run_diff(live: &Path, merged: &Path) -> Result<i32, Error> {
    let external = std::env::var("KUBECTL_EXTERNAL_DIFF")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (program, mut extra): (String, Vec<String>) = match &external {
        Some(command) => {
            let mut words = command.split_whitespace().map(str::to_string);
            let program = words.next().unwrap_or_default();
            (program, words.collect())
        }
        None => ("diff".into(), vec!["-u".into(), "-N".into()]),
    };
    extra.push(live.display().to_string());
    extra.push(merged.display().to_string());
    let status = std::process::Command::new(&program)
        .args(&extra)
        .status()
        .map_err(|e| Error::Exit {
            code: 2,
            message: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("error: failed to run \"{program}\": executable file not found in $PATH")
                }
                _ => format!(
                    "error: failed to run \"{program}\": {}",
                    crate::cmd::select::os_error(&e)
                ),
            },
        })?;
    Ok(status.code().unwrap_or(2))
}

/// A temporary directory named `PREFIX-<number>`, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(prefix: &str) -> Result<Self, Error> {
        let number: u32 = rand::rng().random();
        let path = std::env::temp_dir().join(format!("{prefix}-{number}"));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How often a conflicting dry run is retried (upstream's `maxRetries`).
const MAX_RETRIES: usize = 4;

/// The live object (`None`: absent) and the object as the apply would leave it; the last
/// attempt says so in klog's format, as upstream does before diffing without its lock.
#[allow(clippy::too_many_arguments)]
async fn live_and_merged(
    ctx: &mut Context,
    discovery: &Discovery,
    client: &kube::Client,
    args: &DiffArgs,
    apply_args: &ApplyArgs,
    manifest: &Manifest,
    placed: &Manifest,
    placement: &apply::Placement,
    last_attempt: bool,
) -> Result<(Option<Value>, Value), Error> {
    let url = placement
        .resource
        .object_url(placement.namespace.as_deref(), &placement.name);
    let live = match request::get(client, &url, "application/json").await {
        Ok(live) => Some(live),
        Err(error) if error.is_not_found() => None,
        Err(error) => return Err(error),
    };
    if last_attempt {
        let group_version = match placement.resource.group.as_str() {
            "" => format!("/{}", placement.resource.version),
            _ => placement.resource.api_version(),
        };
        ctx.err(&crate::printer::klog_warning(
            "diff.go:723",
            &format!(
                "Object ({group_version}, Kind={}: {}) keeps changing, diffing without lock",
                placement.resource.kind, placement.name
            ),
        ));
    }
    // Upstream compares against the live version whatever resourceVersion the file has.
    let mut manifest = manifest.clone();
    if let Some(live) = &live
        && manifest.object["metadata"].get("resourceVersion").is_some()
    {
        manifest.object["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
    }
    // A missing object is created as the file has it (no last-applied annotation).
    let merged = if live.is_none() && !args.server_side {
        let collection = placement.resource.collection_url(placement.namespace.as_deref());
        let url = request::with_query(
            &collection,
            &[("dryRun", "All"), ("fieldManager", args.field_manager.as_str())],
        );
        let body = serde_json::to_vec(&placed.object)?;
        request::send(
            client,
            Method::POST,
            &url,
            "application/json",
            Some("application/json"),
            body,
        )
        .await?
    } else {
        let applied = apply::apply_one(ctx, discovery, &manifest, apply_args, DryRun::Server, "Strict").await;
        applied
            .map_err(|e| without_source(e, &manifest.source))?
            .1
            .into_object()
    };
    Ok((live, merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_like_upstream() {
        let mut live = json!({"data": {"same": "YQ==", "changed": "Yg==", "gone": "Yw=="}});
        let mut merged = json!({"data": {"same": "YQ==", "changed": "ZA==", "added": "ZQ=="}});
        mask_secrets(Some(&mut live), Some(&mut merged));
        assert_eq!(
            live["data"],
            json!({"same": "***", "changed": "*** (before)", "gone": "***"})
        );
        assert_eq!(
            merged["data"],
            json!({"same": "***", "changed": "*** (after)", "added": "***"})
        );
    }
}
