//! `kubectl replace -f`: PUTs each manifest over the live object (taking the live
//! resourceVersion when the manifest has none); `--force` deletes the objects, waits until
//! they are gone and creates them again.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;

use crate::cmd::Context;
use crate::cmd::apply::{DryRun, LAST_APPLIED, place, when, with_last_applied};
use crate::cmd::select::Printer;
use crate::error::Error;
use crate::manifest;
use crate::request;

/// Replace a resource by file name or stdin.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplaceArgs {
    /// Not supported: objects are named by -f.
    pub args: Vec<String>,
    /// The files that contain the configurations to replace.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete and re-create the resources.
    #[arg(long)]
    pub force: bool,
    /// With --force: seconds given to the resource to terminate gracefully (-1: its default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// With --force: `background`, `orphan` or `foreground`.
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// With --force: how long to wait for the deletion (0: five minutes).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// With --force: wait for the deletion (always done; accepted for compatibility).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub wait: Option<String>,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Record the manifest in the last-applied annotation, for later `apply`.
    #[arg(long)]
    pub save_config: bool,
    /// Server-side field validation (`strict`, `warn`, `ignore`).
    #[arg(long, default_value = "strict", num_args = 0..=1, default_missing_value = "strict")]
    pub validate: String,
    /// The field manager name.
    #[arg(long, default_value = "kubectl-replace")]
    pub field_manager: String,
}

/// Runs `kubectl replace`.
pub async fn run(ctx: &mut Context, args: &ReplaceArgs) -> Result<(), Error> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    let mut printer = Printer::new(args.output.as_deref(), dry_run)?;
    printer.separate_documents = true;
    if args.filenames.is_empty() {
        return Err(Error::Usage("must specify one of -f and -k".into()));
    }
    if args.force && dry_run != DryRun::None {
        return Err(Error::Usage("--dry-run can not be used when --force is set".into()));
    }
    let validation = crate::cmd::apply::field_validation(&args.validate)?;
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    let mut placed = Vec::new();
    for mut manifest in manifest::read_all(&args.filenames, args.recursive)? {
        let placement = place(ctx, &discovery, &mut manifest, false).await?;
        if args.save_config || manifest.object["metadata"]["annotations"].get(LAST_APPLIED).is_some() {
            manifest.object = with_last_applied(&manifest.object);
        }
        placed.push((manifest, placement));
    }
    let params = |dry_run: DryRun| {
        vec![
            ("dryRun", if dry_run == DryRun::Server { "All" } else { "" }),
            ("fieldManager", args.field_manager.as_str()),
            ("fieldValidation", validation),
        ]
    };
    let mut errors = Vec::new();
    if args.force {
        let timeout = component_base::parse_duration(&args.timeout)
            .map_err(|e| Error::Usage(format!("invalid --timeout {}: {e}", args.timeout)))?;
        let timeout = if timeout.is_zero() {
            Duration::from_secs(300)
        } else {
            timeout
        };
        let propagation = match args.cascade.as_str() {
            "foreground" => "Foreground",
            "orphan" | "false" => "Orphan",
            _ => "Background",
        };
        let mut options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation});
        if args.grace_period >= 0 {
            options["gracePeriodSeconds"] = json!(args.grace_period);
        }
        for (_, placement) in &placed {
            let url = placement
                .resource
                .object_url(placement.namespace.as_deref(), &placement.name);
            let body = serde_json::to_vec(&options)?;
            match request::send(
                &client,
                Method::DELETE,
                &url,
                "application/json",
                Some("application/json"),
                body,
            )
            .await
            {
                Ok(_) => {
                    let kind = placement.resource.kind_prefix();
                    ctx.out(&match &placement.namespace {
                        Some(ns) => format!("{kind} \"{}\" deleted from {ns} namespace\n", placement.name),
                        None => format!("{kind} \"{}\" deleted\n", placement.name),
                    });
                }
                Err(error) if error.is_not_found() => {}
                Err(error) => errors.push(error),
            }
        }
        for (manifest, placement) in placed {
            let url = placement
                .resource
                .object_url(placement.namespace.as_deref(), &placement.name);
            let deadline = Instant::now() + timeout;
            loop {
                match request::get(&client, &url, "application/json").await {
                    Err(error) if error.is_not_found() => break,
                    Err(error) => return Err(error),
                    Ok(_) if Instant::now() > deadline => {
                        return Err(Error::Message("timed out waiting for the condition".into()));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            let collection = placement.resource.collection_url(placement.namespace.as_deref());
            let url = request::with_query(&collection, &params(DryRun::None));
            let body = serde_json::to_vec(&manifest.object)?;
            match request::send(
                &client,
                Method::POST,
                &url,
                "application/json",
                Some("application/json"),
                body,
            )
            .await
            {
                Ok(created) => printer.print(ctx, Some(&discovery), &placement.resource, &created, "replaced")?,
                Err(error) => errors.push(when(error, "creating", &manifest.source)),
            }
        }
        return crate::cmd::objects::finish(errors);
    }
    for (mut manifest, placement) in placed {
        if dry_run == DryRun::Client {
            printer.print(ctx, Some(&discovery), &placement.resource, &manifest.object, "replaced")?;
            continue;
        }
        let url = placement
            .resource
            .object_url(placement.namespace.as_deref(), &placement.name);
        let result = async {
            if manifest.object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
                && let Ok(live) = request::get(&client, &url, "application/json").await
            {
                manifest.object["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
            }
            let put = request::with_query(&url, &params(dry_run));
            let body = serde_json::to_vec(&manifest.object)?;
            request::send(
                &client,
                Method::PUT,
                &put,
                "application/json",
                Some("application/json"),
                body,
            )
            .await
        }
        .await;
        match result {
            Ok(replaced) => printer.print(ctx, Some(&discovery), &placement.resource, &replaced, "replaced")?,
            Err(error) => errors.push(when(error, "replacing", &manifest.source)),
        }
    }
    crate::cmd::objects::finish(errors)
}
