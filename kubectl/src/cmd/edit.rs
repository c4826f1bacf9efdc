//! `kubectl edit`: writes the objects (YAML or JSON, a `List` for several) under
//! upstream's header comment to a temporary file, runs `$KUBE_EDITOR` / `$EDITOR` (`vi` by
//! default; through `$SHELL -c` when it has arguments), and sends what changed as a patch.
//! Failures re-open the file with the reasons in the header; saving it unchanged then
//! gives up, keeping a copy.

use std::path::{Path, PathBuf};

use http::Method;
use rand::Rng;
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::select::{self, Info, SelectFlags};
use crate::error::Error;
use crate::printer;
use crate::request;

const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit. If an error occurs while saving this file will be\n# reopened with the relevant failures.\n#\n";

/// Edit a resource on the server.
#[derive(clap::Args, Debug, Clone)]
pub struct EditArgs {
    /// TYPE NAME... | TYPE/NAME...
    pub args: Vec<String>,
    #[command(flatten)]
    pub select: SelectFlags,
    /// The format to edit in: yaml (default) or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The field manager name.
    #[arg(long, default_value = "kubectl-edit")]
    pub field_manager: String,
    /// Server-side field validation (`strict`, `warn`, `ignore`).
    #[arg(long, default_value = "strict", num_args = 0..=1, default_missing_value = "strict")]
    pub validate: String,
}

/// Why a round of edits failed, as written into the header of the re-opened file.
struct Reason {
    head: String,
    details: Vec<String>,
}

/// Runs `kubectl edit`.
pub async fn run(ctx: &mut Context, args: &EditArgs) -> Result<(), Error> {
    let json = match args.output.as_deref() {
        None | Some("yaml") => false,
        Some("json") => true,
        Some(_) => return Err(Error::Usage("the edit mode only supports yaml and json output".into())),
    };
    if args.args.is_empty() && args.select.filenames.is_empty() {
        return Err(Error::Usage(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'".into(),
        ));
    }
    let selection = select::select(ctx, &args.args, &args.select).await?;
    let mut originals = Vec::new();
    for item in selection.items {
        originals.push(item?);
    }
    if originals.is_empty() {
        return Err(Error::Message("edit cancelled, no objects found".into()));
    }
    let document = match originals.as_slice() {
        [one] => one.object.clone(),
        many => printer::list_of(many.iter().map(|i| i.object.clone()).collect()),
    };
    let serialize = |value: &Value| {
        if json {
            printer::to_json(value)
        } else {
            printer::yaml::to_yaml(value)
        }
    };
    let path = temp_path(json);
    let mut body = serialize(&document);
    let mut reasons: Vec<Reason> = Vec::new();
    let mut failed_before = false;
    loop {
        let written = format!("{}{body}", header(&reasons));
        std::fs::write(&path, &written)?;
        run_editor(&path)?;
        let edited = std::fs::read_to_string(&path)?;
        let stripped = strip_comments(&edited);
        if stripped == strip_comments(&written) {
            if failed_before {
                ctx.err(&format!(
                    "A copy of your changes has been stored to \"{}\"\n",
                    path.display()
                ));
                return Err(Error::Message("Edit cancelled, no valid changes were saved.".into()));
            }
            let _ = std::fs::remove_file(&path);
            ctx.err("Edit cancelled, no changes made.\n");
            return Ok(());
        }
        let parsed = if stripped.trim().is_empty() {
            Err("invalid object to validate".to_string())
        } else {
            crate::manifest::parse(&stripped, "edited file").map_err(|e| {
                e.to_string()
                    .trim_start_matches("error parsing edited file: ")
                    .to_string()
            })
        };
        reasons = match parsed {
            // Upstream's client-side validation rejects the file as a whole.
            Err(message) => {
                let first = &originals[0];
                ctx.err(&format!(
                    "error: {} \"{}\" is invalid\n",
                    first.resource.plural_group(),
                    first.name
                ));
                vec![Reason {
                    head: format!("{} \"{}\" was not valid", first.resource.plural_group(), first.name),
                    details: vec![format!(
                        "<nil>: Invalid value: \"The edited file failed validation\": {message}"
                    )],
                }]
            }
            Ok(edited) => {
                let edited: Vec<Value> = edited.into_iter().map(|m| m.object).collect();
                if !same_objects(&originals, &edited) {
                    ctx.err(&format!(
                        "A copy of your changes has been stored to \"{}\"\n",
                        path.display()
                    ));
                    return Err(Error::Message(
                        "At least one of apiVersion, kind and name was changed".into(),
                    ));
                }
                apply_edits(ctx, args, &originals, &edited).await?
            }
        };
        if reasons.is_empty() {
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        failed_before = true;
        body = stripped;
    }
}

/// Patches each object that changed; returns the failures.
async fn apply_edits(
    ctx: &mut Context,
    args: &EditArgs,
    originals: &[Info],
    edited: &[Value],
) -> Result<Vec<Reason>, Error> {
    let mut reasons = Vec::new();
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    let mut printer = select::Printer::new(args.output.as_deref(), crate::cmd::apply::DryRun::None)?;
    let validation = crate::cmd::apply::field_validation(&args.validate)?;
    for (info, modified) in originals.iter().zip(edited) {
        let resource = &info.resource;
        let meta = api::patch::patch_meta_for_kind(&resource.group, &resource.version, &resource.kind);
        let (patch, content_type) = if meta.root_name().is_some() {
            let patch = api::patch::two_way_merge_patch(&info.object, modified, &meta)
                .map_err(|e| Error::Message(e.to_string()))?;
            (patch, "application/strategic-merge-patch+json")
        } else {
            (merge_patch(&info.object, modified), "application/merge-patch+json")
        };
        if patch.as_object().is_some_and(serde_json::Map::is_empty) {
            printer.print(ctx, Some(&discovery), resource, &info.object, "skipped")?;
            continue;
        }
        let url = request::with_query(
            &info.url(),
            &[
                ("fieldManager", args.field_manager.as_str()),
                ("fieldValidation", validation),
            ],
        );
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
            Ok(patched) => printer.print(ctx, Some(&discovery), resource, &patched, "edited")?,
            Err(Error::Api(status)) if status.reason == "Invalid" => {
                ctx.err(&format!(
                    "error: {} \"{}\" is invalid\n",
                    resource.plural_group(),
                    info.name
                ));
                let details = status
                    .details
                    .as_ref()
                    .map(|d| d.causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect())
                    .unwrap_or_default();
                reasons.push(Reason {
                    head: format!("{} \"{}\" was not valid", resource.plural_group(), info.name),
                    details,
                });
            }
            Err(error) => {
                ctx.err(&format!("{}\n", error.render()));
                reasons.push(Reason {
                    head: error.to_string(),
                    details: Vec::new(),
                });
            }
        }
    }
    Ok(reasons)
}

/// Whether the edited objects are the originals (same apiVersion, kind and name, in order).
fn same_objects(originals: &[Info], edited: &[Value]) -> bool {
    edited.len() == originals.len()
        && originals.iter().zip(edited).all(|(o, e)| {
            o.object["apiVersion"] == e["apiVersion"]
                && o.object["kind"] == e["kind"]
                && o.object["metadata"]["name"] == e["metadata"]["name"]
        })
}

/// RFC 7386 merge patch from `original` to `modified` (for kinds without strategic merge).
fn merge_patch(original: &Value, modified: &Value) -> Value {
    match (original, modified) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in b {
                match a.get(key) {
                    Some(old) if old == value => {}
                    Some(old) if old.is_object() && value.is_object() => {
                        patch.insert(key.clone(), merge_patch(old, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        (_, other) => other.clone(),
    }
}

/// The header, with the failures of the last round when there were some.
fn header(reasons: &[Reason]) -> String {
    let mut out = HEADER.to_string();
    for reason in reasons {
        out.push_str(&format!("# {}:\n", reason.head));
        for detail in &reason.details {
            out.push_str(&format!("# * {detail}\n"));
        }
        out.push_str("#\n");
    }
    out
}

/// The text without its comment lines (those whose first non-blank character is `#`).
fn strip_comments(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect()
}

fn temp_path(json: bool) -> PathBuf {
    let number: u32 = rand::rng().random();
    std::env::temp_dir().join(format!("kubectl-edit-{number}.{}", if json { "json" } else { "yaml" }))
}

/// Runs the editor on `path` and waits for it.
fn run_editor(path: &Path) -> Result<(), Error> {
    let editor = ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    let status = if editor.contains(' ') {
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/bash".into());
        std::process::Command::new(shell)
            .arg("-c")
            .arg(format!("{editor} \"{}\"", path.display()))
            .status()
    } else {
        std::process::Command::new(&editor).arg(path).status()
    };
    match status {
        Ok(status) if status.success() => Ok(()),
        _ => Err(Error::Message(format!(
            "there was a problem with the editor \"{editor}\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comments_are_stripped_and_reasons_listed() {
        assert_eq!(strip_comments("# a\nb: 1\n  # c\nd: 2"), "b: 1\nd: 2");
        let text = header(&[Reason {
            head: "configmaps \"c\" was not valid".into(),
            details: vec!["data: bad".into()],
        }]);
        assert!(
            text.ends_with("#\n# configmaps \"c\" was not valid:\n# * data: bad\n#\n"),
            "{text}"
        );
    }

    #[test]
    fn merge_patches_set_changes_and_null_removals() {
        let patch = merge_patch(
            &json!({"a": 1, "b": {"c": 1, "d": 2}}),
            &json!({"a": 1, "b": {"c": 3}, "e": 4}),
        );
        assert_eq!(patch, json!({"b": {"c": 3, "d": null}, "e": 4}));
    }
}
