//! `kubectl apply -f` (client-side, with upstream's last-applied annotation and three-way
//! strategic merge patch, so ours and upstream's can be mixed on the same objects;
//! `--server-side` sends an apply patch instead) and `kubectl create -f`.

use std::time::Duration;

use http::Method;
use serde_json::{Map, Value};

use crate::cmd::{Context, apply_migrate};
use crate::discovery::{Discovery, Resource};
use crate::error::Error;
use crate::manifest::{self, Manifest};
use crate::printer::{self, OutputFormat};
use crate::request;

/// The annotation holding the last applied manifest.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What upstream prints after the message of a server-side apply conflict.
const SSA_CONFLICT_HELP: &str = "Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts";

/// How many times a conflicting patch is recomputed and resent (upstream's `maxPatchRetry`).
const MAX_PATCH_RETRY: usize = 5;

/// Apply a configuration to a resource by file name or stdin.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApplyArgs {
    /// The files that contain the configurations to apply (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Apply on the server (server-side apply) instead of computing a patch here.
    #[arg(long)]
    pub server_side: bool,
    /// With --server-side, take ownership of fields other managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// The field manager name.
    #[arg(long)]
    pub field_manager: Option<String>,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Only validate fields the server knows (`strict`, `warn`, `ignore`; `true` = strict).
    #[arg(long, default_value = "strict", num_args = 0..=1, default_missing_value = "strict")]
    pub validate: String,
    /// Leave the last-applied annotation as it is (`kubectl diff`'s dry runs).
    #[arg(skip)]
    pub keep_last_applied: bool,
    /// Delete the objects of the pruned kinds matching -l (or --all) that are not in the files.
    #[arg(long)]
    pub prune: bool,
    /// Selector (label query): only these objects of the files are applied (and pruned).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// With --prune, select all objects of the pruned kinds.
    #[arg(long)]
    pub all: bool,
    /// The kinds --prune considers (`group/version/Kind`, `core` for the core group).
    #[arg(long = "prune-allowlist")]
    pub prune_allowlist: Vec<String>,
}

/// What apply or create did to one object, as printed.
pub enum Outcome {
    Created(Value),
    Configured(Value),
    Unchanged(Value),
    ServerSideApplied(Value),
}

/// Runs `kubectl apply`.
pub async fn run(ctx: &mut Context, args: &ApplyArgs) -> Result<(), Error> {
    let manifests = manifest::read_all(&args.filenames, args.recursive)?;
    let dry_run = DryRun::parse(&args.dry_run)?;
    let format = OutputFormat::parse(args.output.as_deref())?;
    let discovery = ctx.discovery().await?;
    let validation = field_validation(&args.validate)?;
    crate::cmd::prune::check(
        &discovery,
        args.prune,
        args.all,
        args.selector.as_deref(),
        &args.prune_allowlist,
    )?;
    let manifests = select_manifests(manifests, args.selector.as_deref())?;
    let mut visited = crate::cmd::prune::Visited::default();
    let mut last_error = None;
    for manifest in manifests {
        let result = apply_one(ctx, &discovery, &manifest, args, dry_run, validation)
            .await
            .map_err(|e| match e {
                Error::Api(status) if args.server_side && status.code == 409 => {
                    Error::Message(format!("{}\n{SSA_CONFLICT_HELP}", status.message))
                }
                e => e,
            });
        match result {
            Ok((resource, outcome)) => {
                let (verb, object) = match outcome {
                    Outcome::Created(o) => ("created", o),
                    Outcome::Configured(o) => ("configured", o),
                    Outcome::Unchanged(o) => ("unchanged", o),
                    Outcome::ServerSideApplied(o) => ("serverside-applied", o),
                };
                visited.add(&resource, &object);
                print_outcome(ctx, &format, &resource, &object, verb, dry_run, &discovery)?;
            }
            Err(error) => {
                if let Some(previous) = last_error.replace(error) {
                    ctx.err(&format!("{}\n", Error::render(&previous)));
                }
            }
        }
    }
    if args.prune && last_error.is_none() {
        let mut printer = crate::cmd::select::Printer::new(args.output.as_deref(), dry_run)?;
        let selector = args.selector.as_deref();
        crate::cmd::prune::run(
            ctx,
            &discovery,
            &visited,
            selector,
            &args.prune_allowlist,
            dry_run,
            &mut printer,
        )
        .await?;
    }
    last_error.map_or(Ok(()), Err)
}

/// With `-l`, only the manifests whose labels match are applied.
fn select_manifests(manifests: Vec<Manifest>, selector: Option<&str>) -> Result<Vec<Manifest>, Error> {
    let Some(text) = selector else { return Ok(manifests) };
    let selector = api::selector::LabelSelector::parse(text).map_err(|e| Error::Usage(e.to_string()))?;
    let chosen: Vec<Manifest> = manifests
        .into_iter()
        .filter(|m| {
            let labels = m.object["metadata"]["labels"]
                .as_object()
                .map(|l| {
                    l.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            selector.matches(&labels)
        })
        .collect();
    if chosen.is_empty() {
        return Err(Error::Usage("no objects passed to apply".into()));
    }
    Ok(chosen)
}

impl Outcome {
    /// The object the server returned (or, unchanged, the live one).
    pub fn into_object(self) -> Value {
        match self {
            Self::Created(o) | Self::Configured(o) | Self::Unchanged(o) | Self::ServerSideApplied(o) => o,
        }
    }
}

/// `--dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl DryRun {
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "none" | "false" => Ok(Self::None),
            "client" | "true" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            other => Err(Error::Usage(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            ))),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Client => " (dry run)",
            Self::Server => " (server dry run)",
        }
    }
}

/// `--validate`'s value as the `fieldValidation` query parameter.
pub fn field_validation(text: &str) -> Result<&'static str, Error> {
    match text {
        "strict" | "true" => Ok("Strict"),
        "warn" => Ok("Warn"),
        "ignore" | "false" => Ok("Ignore"),
        other => Err(Error::Usage(format!(
            "invalid - validate option \"{other}\"; must be one of: strict (or true), warn, ignore (or false)"
        ))),
    }
}

fn print_outcome(
    ctx: &mut Context,
    format: &OutputFormat,
    resource: &Resource,
    object: &Value,
    verb: &str,
    dry_run: DryRun,
    discovery: &Discovery,
) -> Result<(), Error> {
    match format {
        OutputFormat::Table | OutputFormat::Wide => {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            ctx.out(&format!(
                "{}/{name} {verb}{}\n",
                resource.kind_prefix(),
                dry_run.suffix()
            ));
        }
        other => {
            let text = crate::cmd::get::render_objects(other, vec![object.clone()], true, false, discovery)?;
            ctx.out(&text);
        }
    }
    Ok(())
}

/// Where one manifest goes: its resource, namespace (None for cluster-scoped) and name.
pub struct Placement {
    pub resource: Resource,
    pub namespace: Option<String>,
    pub name: String,
}

/// Resolves a manifest's kind and fills in its namespace as kubectl does (the context's
/// namespace when it has none; an explicit `--namespace` that disagrees is an error).
pub async fn place(
    ctx: &mut Context,
    discovery: &Discovery,
    manifest: &mut Manifest,
    allow_generate_name: bool,
) -> Result<Placement, Error> {
    let api_version = manifest.object["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = manifest.object["kind"].as_str().unwrap_or_default().to_string();
    let resource = discovery.for_kind(&api_version, &kind)?.clone();
    let (default_ns, explicit) = {
        let conn = ctx.connection().await?;
        (conn.namespace.clone(), conn.namespace_explicit)
    };
    let metadata = manifest
        .object
        .as_object_mut()
        .expect("manifests are objects")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        return Err(Error::Message(format!(
            "error validating data from {}: metadata is not an object",
            manifest.source
        )));
    }
    let namespace = if resource.namespaced {
        let namespace = match metadata["namespace"].as_str().filter(|s| !s.is_empty()) {
            Some(ns) if explicit && ns != default_ns => {
                return Err(Error::Message(format!(
                    "the namespace from the provided object \"{ns}\" does not match the namespace \"{default_ns}\". You must pass '--namespace={ns}' to perform this operation."
                )));
            }
            Some(ns) => ns.to_string(),
            None => default_ns,
        };
        metadata["namespace"] = Value::String(namespace.clone());
        Some(namespace)
    } else {
        None
    };
    let name = metadata["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() && !(allow_generate_name && metadata["generateName"].is_string()) {
        let what = if metadata["generateName"].is_string() {
            "cannot use generate name with apply"
        } else {
            "resource name may not be empty"
        };
        return Err(Error::Message(format!(
            "error when retrieving current configuration of:\nResource: \"{}\", GroupVersionKind: \"{}, Kind={}\"\nName: \"\", Namespace: \"{}\"\nfrom server for: \"{}\": {what}",
            resource.plural_group(),
            api_version,
            kind,
            namespace.clone().unwrap_or_default(),
            manifest.source
        )));
    }
    Ok(Placement {
        resource,
        namespace,
        name,
    })
}

/// Upstream's follow-up of a server-side apply on a formerly client-side applied object
/// (see [`apply_migrate`]): failures are warnings, the apply itself succeeded.
async fn migrate_client_side_apply<F>(
    ctx: &mut Context,
    client: &kube::Client,
    object_url: &str,
    applied: Value,
    manager: &str,
    validation: &str,
    send_apply: impl Fn() -> F,
) -> Value
where
    F: std::future::Future<Output = Result<Value, Error>>,
{
    let current = match apply_migrate::keep_last_applied(client, object_url, applied.clone(), manager, validation).await
    {
        Ok(current) => current,
        Err(e) => {
            ctx.err(&format!(
                "Warning: failed to preserve last-applied-configuration annotation: {e}\n"
            ));
            return applied;
        }
    };
    match apply_migrate::upgrade_managed_fields(client, object_url, current, manager, validation).await {
        Ok(true) => match send_apply().await {
            Ok(reapplied) => reapplied,
            Err(e) => {
                ctx.err(&format!("Warning: failed to re-apply configuration after performing Server-Side Apply migration. This is non-fatal and will be retried next time you apply. Error: {e}\n"));
                applied
            }
        },
        Ok(false) => applied,
        Err(e) => {
            ctx.err(&format!("Warning: server rejected managed fields migration to Server-Side Apply. This is non-fatal and will be retried next time you apply. Error: {e}\n"));
            applied
        }
    }
}

/// Applies one manifest (as `kubectl apply` does for each object; `kubectl diff` runs it
/// as a server dry run to learn the merged object).
pub async fn apply_one(
    ctx: &mut Context,
    discovery: &Discovery,
    manifest: &Manifest,
    args: &ApplyArgs,
    dry_run: DryRun,
    validation: &str,
) -> Result<(Resource, Outcome), Error> {
    let mut manifest = manifest.clone();
    let placement = place(ctx, discovery, &mut manifest, false).await?;
    let client = ctx.client().await?;
    let ns = placement.namespace.as_deref();
    let object_url = placement.resource.object_url(ns, &placement.name);
    let dry_run_param = if dry_run == DryRun::Server { "All" } else { "" };

    if args.server_side {
        let manager = args.field_manager.as_deref().unwrap_or("kubectl");
        let url = request::with_query(
            &object_url,
            &[
                ("fieldManager", manager),
                ("fieldValidation", validation),
                ("force", if args.force_conflicts { "true" } else { "" }),
                ("dryRun", dry_run_param),
            ],
        );
        let body = serde_json::to_vec(&manifest.object)?;
        let send_apply = || {
            request::send(
                &client,
                Method::PATCH,
                &url,
                "application/json",
                Some("application/apply-patch+yaml"),
                body.clone(),
            )
        };
        // A conflict stays as the server words it (`apply` adds its advice, `diff` prints it).
        let mut applied = send_apply().await.map_err(|e| match e {
            Error::Api(status) if status.code == 409 => Error::Api(status),
            e => when(e, "applying patch", &manifest.source),
        })?;
        if dry_run == DryRun::None {
            applied =
                migrate_client_side_apply(ctx, &client, &object_url, applied, manager, validation, send_apply).await;
        }
        return Ok((placement.resource, Outcome::ServerSideApplied(applied)));
    }

    let modified = if args.keep_last_applied {
        without_last_applied(&manifest.object)
    } else {
        with_last_applied(&manifest.object)
    };
    let manager = args.field_manager.as_deref().unwrap_or("kubectl-client-side-apply");
    let write_params = [
        ("fieldManager", manager),
        ("fieldValidation", validation),
        ("dryRun", dry_run_param),
    ];

    for attempt in 0..=MAX_PATCH_RETRY {
        let current = match request::get(&client, &object_url, "application/json").await {
            Ok(current) => current,
            Err(error) if error.is_not_found() => {
                if dry_run == DryRun::Client {
                    return Ok((placement.resource, Outcome::Created(modified)));
                }
                let url = request::with_query(&placement.resource.collection_url(ns), &write_params);
                let created = request::send(
                    &client,
                    Method::POST,
                    &url,
                    "application/json",
                    Some("application/json"),
                    serde_json::to_vec(&modified)?,
                )
                .await
                .map_err(|e| when(e, "creating", &manifest.source))?;
                return Ok((placement.resource, Outcome::Created(created)));
            }
            Err(error) => return Err(when(error, "retrieving current configuration of", &manifest.source)),
        };
        let original: Option<Value> = current["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok());
        let resource = &placement.resource;
        if attempt == 0 && current["metadata"]["annotations"].get(LAST_APPLIED).is_none() && !args.keep_last_applied {
            ctx.err(&format!(
                "Warning: resource {}/{} is missing the {LAST_APPLIED} annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively by either kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically.\n",
                resource.plural,
                placement.name
            ));
        }
        let meta = api::patch::patch_meta_for_kind(&resource.group, &resource.version, &resource.kind);
        let content_type = if meta.root_name().is_some() {
            "application/strategic-merge-patch+json"
        } else {
            "application/merge-patch+json"
        };
        let patch = api::patch::three_way_merge_patch(original.as_ref(), &modified, &current, &meta, true)
            .map_err(|e| Error::Message(format!("error when applying patch to {}: {e}", manifest.source)))?;
        if patch.as_object().is_some_and(Map::is_empty) {
            return Ok((placement.resource, Outcome::Unchanged(current)));
        }
        if dry_run == DryRun::Client {
            return Ok((placement.resource, Outcome::Configured(current)));
        }
        let url = request::with_query(&object_url, &write_params);
        let body = printer::to_compact_json(&patch).into_bytes();
        match request::send(
            &client,
            Method::PATCH,
            &url,
            "application/json",
            Some(content_type),
            body,
        )
        .await
        {
            Ok(patched) => return Ok((placement.resource, Outcome::Configured(patched))),
            Err(Error::Api(status)) if status.code == 409 && attempt < MAX_PATCH_RETRY => {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(error) => return Err(when(error, "applying patch", &manifest.source)),
        }
    }
    Err(Error::Message(format!(
        "error when applying patch to {}: too many conflicts",
        manifest.source
    )))
}

/// The manifest with an annotations map (empty if it had none) but no last-applied
/// annotation: upstream's `GetModifiedConfiguration` without annotating.
pub fn without_last_applied(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = annotations.as_object_mut() {
            map.remove(LAST_APPLIED);
        } else {
            *annotations = Value::Object(Map::new());
        }
    }
    object
}

/// The manifest with the last-applied annotation set to itself, as upstream's
/// `GetModifiedConfiguration`: the object without that annotation (an empty `annotations`
/// map if it had none), as compact JSON with sorted keys and a trailing newline.
pub fn with_last_applied(object: &Value) -> Value {
    let mut object = object.clone();
    let metadata = object
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut);
    let Some(metadata) = metadata else { return object };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Some(map) = annotations.as_object_mut() {
        map.remove(LAST_APPLIED);
    }
    let text = printer::to_compact_json(&object) + "\n";
    object["metadata"]["annotations"][LAST_APPLIED] = Value::String(text);
    object
}

/// Adds upstream's `error when <doing> "<source>": ` to a server error's message.
pub fn when(error: Error, doing: &str, source: &str) -> Error {
    match error {
        Error::Api(mut status) => {
            status.message = format!("error when {doing} \"{source}\": {}", status.message);
            Error::Api(status)
        }
        other => other,
    }
}

/// Create a resource from a file or from stdin.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CreateArgs {
    /// Files that contain the configuration to create (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Also record the manifest in the last-applied annotation, for later `apply`.
    #[arg(long)]
    pub save_config: bool,
}

/// Runs `kubectl create -f`.
pub async fn create(ctx: &mut Context, args: &CreateArgs) -> Result<(), Error> {
    let manifests = manifest::read_all(&args.filenames, args.recursive)?;
    let dry_run = DryRun::parse(&args.dry_run)?;
    let format = OutputFormat::parse(args.output.as_deref())?;
    let discovery = ctx.discovery().await?;
    let mut last_error = None;
    for mut manifest in manifests {
        let result = async {
            let placement = place(ctx, &discovery, &mut manifest, true).await?;
            let object = if args.save_config {
                with_last_applied(&manifest.object)
            } else {
                manifest.object.clone()
            };
            if dry_run == DryRun::Client {
                return Ok((placement.resource, object));
            }
            let client = ctx.client().await?;
            let url = request::with_query(
                &placement.resource.collection_url(placement.namespace.as_deref()),
                &[
                    ("fieldManager", "kubectl-create"),
                    ("fieldValidation", "Strict"),
                    ("dryRun", if dry_run == DryRun::Server { "All" } else { "" }),
                ],
            );
            let created = request::send(
                &client,
                Method::POST,
                &url,
                "application/json",
                Some("application/json"),
                serde_json::to_vec(&object)?,
            )
            .await
            .map_err(|e| when(e, "creating", &manifest.source))?;
            Ok::<_, Error>((placement.resource, created))
        }
        .await;
        match result {
            Ok((resource, object)) => print_outcome(ctx, &format, &resource, &object, "created", dry_run, &discovery)?,
            Err(error) => {
                if let Some(previous) = last_error.replace(error) {
                    ctx.err(&format!("{}\n", previous.render()));
                }
            }
        }
    }
    last_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_applied_is_the_manifest_itself_sorted_with_empty_annotations() {
        let manifest = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "namespace": "default"}, "data": {"b": "2", "a": "1"}});
        let modified = with_last_applied(&manifest);
        assert_eq!(
            modified["metadata"]["annotations"][LAST_APPLIED],
            "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\",\"b\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"c\",\"namespace\":\"default\"}}\n"
        );
        // Applying the result again gives the same annotation (no recursion).
        assert_eq!(with_last_applied(&modified), modified);
    }
}
