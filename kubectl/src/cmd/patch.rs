//! `kubectl patch`: sends a strategic merge (default), JSON merge or JSON patch, given
//! with `-p` or `--patch-file` as JSON or YAML, to the named objects (or their
//! `--subresource`), or applies it to `-f` objects locally with `--local`; prints
//! `patched` or `patched (no change)`.

use http::Method;
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::select::{self, SelectFlags};
use crate::error::Error;
use crate::request;

/// Update fields of a resource using strategic merge patch, a JSON merge patch, or a JSON patch.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PatchArgs {
    /// TYPE NAME | TYPE/NAME ...
    pub args: Vec<String>,
    /// The patch to be applied to the resource JSON file.
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file containing a patch to be applied to the resource.
    #[arg(long)]
    pub patch_file: Option<String>,
    /// The type of patch being provided; one of [json merge strategic].
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// If specified, patch will operate on the subresource of the requested object.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Files identifying the resource to update.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Patch the -f objects locally, without contacting the server.
    #[arg(long)]
    pub local: bool,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The field manager name.
    #[arg(long, default_value = "kubectl-patch")]
    pub field_manager: String,
}

/// The patch types and their media types.
fn content_type(patch_type: &str) -> Option<&'static str> {
    match patch_type.to_lowercase().as_str() {
        "json" => Some("application/json-patch+json"),
        "merge" => Some("application/merge-patch+json"),
        "strategic" => Some("application/strategic-merge-patch+json"),
        _ => None,
    }
}

/// Runs `kubectl patch`.
pub async fn run(ctx: &mut Context, args: &PatchArgs) -> Result<(), Error> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    let mut printer = select::Printer::new(args.output.as_deref(), dry_run)?;
    // Upstream's patch names its operation after the dry-run suffix is set, dropping it.
    printer.dry_run_suffix = false;
    let given = args.patch.as_deref().unwrap_or_default();
    let file = args.patch_file.as_deref().unwrap_or_default();
    if !given.is_empty() && !file.is_empty() {
        return Err(Error::Usage("cannot specify --patch and --patch-file together".into()));
    }
    if given.is_empty() && file.is_empty() {
        return Err(Error::Usage(
            "must specify --patch or --patch-file containing the contents of the patch".into(),
        ));
    }
    if args.local && !args.args.is_empty() {
        return Err(Error::Usage("cannot specify --local and server resources".into()));
    }
    if args.local && dry_run == DryRun::Server {
        return Err(Error::Usage(
            "cannot specify --local and --dry-run=server - did you mean --dry-run=client?".into(),
        ));
    }
    let Some(media_type) = content_type(&args.patch_type) else {
        return Err(Error::Usage(format!(
            "--type must be one of [json merge strategic], not \"{}\"",
            args.patch_type
        )));
    };
    let text = if file.is_empty() {
        given.to_string()
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            Error::Message(format!(
                "unable to read patch file: open {file}: {}",
                select::os_error(&e)
            ))
        })?
    };
    let body = to_json(&text).map_err(|e| Error::Message(format!("unable to parse \"{given}\": {e}")))?;

    let flags = SelectFlags {
        filenames: args.filenames.clone(),
        recursive: args.recursive,
        ..Default::default()
    };
    let selection = if args.local {
        select::local(&flags)?
    } else {
        select::select_with(
            ctx,
            &args.args,
            &flags,
            select::Fetch::Named,
            select::TypeAlone::NeedsSelector,
        )
        .await?
    };
    let client = if args.local { None } else { Some(ctx.client().await?) };
    let mut errors = Vec::new();
    let mut count = 0;
    for item in selection.items {
        let info = match item {
            Ok(info) => info,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        count += 1;
        let result = match (&client, dry_run) {
            (Some(client), DryRun::None | DryRun::Server) => {
                let mut url = info.url();
                if let Some(subresource) = &args.subresource {
                    url = format!("{url}/{subresource}");
                }
                let url = request::with_query(
                    &url,
                    &[
                        ("dryRun", if dry_run == DryRun::Server { "All" } else { "" }),
                        ("fieldManager", &args.field_manager),
                    ],
                );
                request::send(
                    client,
                    Method::PATCH,
                    &url,
                    "application/json",
                    Some(media_type),
                    body.clone().into_bytes(),
                )
                .await
            }
            _ => patch_locally(&info.object, &body, &args.patch_type),
        };
        match result {
            Ok(patched) => {
                let verb = if patched == info.object {
                    "patched (no change)"
                } else {
                    "patched"
                };
                let resource = select::resource_for_kind(
                    patched["apiVersion"].as_str().unwrap_or_default(),
                    patched["kind"].as_str().unwrap_or_default(),
                );
                let discovery = match &client {
                    Some(_) => Some(ctx.discovery().await?),
                    None => None,
                };
                printer.print(ctx, discovery.as_deref(), &resource, &patched, verb)?;
            }
            Err(error) => errors.push(error),
        }
    }
    crate::cmd::objects::finish(errors)?;
    if count == 0 {
        return Err(Error::Message("no objects passed to patch".into()));
    }
    Ok(())
}

/// The patch as JSON: JSON text is kept as it is (the server judges it), YAML converted.
fn to_json(text: &str) -> Result<String, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Ok(text.to_string());
    }
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| format!("yaml: {}", e.to_string().lines().next().unwrap_or_default()))?;
    Ok(serde_json::to_string(&value).unwrap_or_default())
}

/// `--local` and `--dry-run=client`: the patch applied here.
pub(crate) fn patch_locally(object: &Value, body: &str, patch_type: &str) -> Result<Value, Error> {
    let patch: Value = serde_json::from_str(body).map_err(|e| Error::Message(e.to_string()))?;
    let mut doc = object.clone();
    match patch_type.to_lowercase().as_str() {
        "json" => {
            let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| Error::Message(e.to_string()))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| Error::Message(e.to_string()))?;
            Ok(doc)
        }
        "merge" => {
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        _ => {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind = object["kind"].as_str().unwrap_or_default();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let meta = api::patch::patch_meta_for_kind(group, version, kind);
            if meta.root_name().is_none() {
                return Err(Error::Message(format!(
                    "strategic merge patch is not supported for {group}/{version}, Kind={kind} locally, try --type merge"
                )));
            }
            api::patch::strategic_merge(object, &patch, &meta).map_err(|e| Error::Message(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_patches_become_json_and_json_stays_as_given() {
        assert_eq!(to_json("data:\n  a: b\n").unwrap(), r#"{"data":{"a":"b"}}"#);
        assert_eq!(to_json("{bad").unwrap(), "{bad");
        assert!(to_json("data: [").is_err());
    }

    #[test]
    fn local_patches_of_each_type() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let merged = patch_locally(&cm, r#"{"data":{"a":null,"b":"2"}}"#, "merge").unwrap();
        assert_eq!(merged["data"], json!({"b": "2"}));
        let strategic = patch_locally(&cm, r#"{"data":{"c":"3"}}"#, "strategic").unwrap();
        assert_eq!(strategic["data"], json!({"a": "1", "c": "3"}));
        let ops = patch_locally(&cm, r#"[{"op":"replace","path":"/data/a","value":"9"}]"#, "json").unwrap();
        assert_eq!(ops["data"]["a"], "9");
        assert!(patch_locally(&cm, r#"[{"op":"remove","path":"/data/x"}]"#, "json").is_err());
    }
}
