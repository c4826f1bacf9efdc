//! `kubectl label` and `kubectl annotate`: `KEY=VALUE` and `KEY-` changes to an object's
//! labels or annotations, sent as a JSON merge patch of `metadata`, with upstream's
//! `--overwrite` rule, `--list`, `--resource-version` precondition, `--local` and dry runs.

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Map, Value, json};

use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::select::{self, Info, SelectFlags};
use crate::error::Error;
use crate::request;

/// The flags `label` and `annotate` share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetaArgs {
    /// TYPE NAME... | TYPE/NAME..., then KEY=VALUE or KEY- pairs.
    pub args: Vec<String>,
    #[command(flatten)]
    pub select: SelectFlags,
    /// Allow existing values to be overwritten.
    #[arg(long)]
    pub overwrite: bool,
    /// Display the current values for the given resource.
    #[arg(long)]
    pub list: bool,
    /// Change the objects of -f locally, without contacting the server.
    #[arg(long)]
    pub local: bool,
    /// Only succeed if this is the current resource-version of the (single) object.
    #[arg(long)]
    pub resource_version: Option<String>,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The field manager name.
    #[arg(long)]
    pub field_manager: Option<String>,
}

/// Which map of `metadata` a command edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Self::Labels => "labels",
            Self::Annotations => "annotations",
        }
    }

    fn manager(self) -> &'static str {
        match self {
            Self::Labels => "kubectl-label",
            Self::Annotations => "kubectl-annotate",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Labels => "label",
            Self::Annotations => "annotation",
        }
    }
}

/// The parsed changes.
#[derive(Debug)]
struct Changes {
    set: BTreeMap<String, String>,
    remove: Vec<String>,
}

/// Runs `kubectl label`.
pub async fn label(ctx: &mut Context, args: &MetaArgs) -> Result<(), Error> {
    run(ctx, args, Field::Labels).await
}

/// Runs `kubectl annotate`.
pub async fn annotate(ctx: &mut Context, args: &MetaArgs) -> Result<(), Error> {
    run(ctx, args, Field::Annotations).await
}

async fn run(ctx: &mut Context, args: &MetaArgs, field: Field) -> Result<(), Error> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    // Upstream's label checks `-o` only when printing (after the change is made).
    let mut printer = match select::Printer::new(args.output.as_deref(), dry_run) {
        Ok(mut printer) => {
            printer.separate_documents = field == Field::Annotations;
            Ok(printer)
        }
        Err(error) if field == Field::Labels => Err(error),
        Err(error) => return Err(error),
    };
    let (resources, pairs) = select::split_pairs(&args.args, field.singular())?;
    let changes = match field {
        Field::Labels => parse_labels(&pairs)?,
        Field::Annotations => parse_annotations(&pairs)?,
    };
    if args.list && args.output.is_some() {
        return Err(Error::Usage("--list and --output may not be specified together".into()));
    }
    if args.select.all && args.select.selector.is_some() {
        return Err(Error::Usage("cannot set --all and --selector at the same time".into()));
    }
    if args.select.all && args.select.field_selector.is_some() {
        return Err(Error::Usage(
            "cannot set --all and --field-selector at the same time".into(),
        ));
    }
    if args.local {
        if dry_run == DryRun::Server {
            return Err(Error::Usage(
                "cannot specify --local and --dry-run=server - did you mean --dry-run=client?".into(),
            ));
        }
        let example = if field == Field::Labels {
            "pod.yaml"
        } else {
            "rsrc.yaml"
        };
        let example_json = if field == Field::Labels {
            "pod.json"
        } else {
            "rsrc.json"
        };
        if !resources.is_empty() {
            return Err(Error::Usage(format!(
                "can only use local files by -f {example} or --filename={example_json} when --local=true is set"
            )));
        }
        if args.select.filenames.is_empty() {
            return Err(Error::Usage(format!(
                "one or more files must be specified as -f {example} or --filename={example_json}"
            )));
        }
    } else if resources.is_empty() && args.select.filenames.is_empty() {
        return Err(Error::Usage(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>".into(),
        ));
    }
    if changes.set.is_empty() && changes.remove.is_empty() && !args.list {
        return Err(Error::Usage(format!(
            "at least one {} update is required",
            field.singular()
        )));
    }
    if field == Field::Annotations {
        let both: Vec<&str> = changes
            .remove
            .iter()
            .filter(|k| changes.set.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !both.is_empty() {
            return Err(Error::Usage(format!(
                "can not both modify and remove the following annotation(s) in the same command: {}",
                both.join(", ")
            )));
        }
    }

    let selection = if args.local {
        select::local(&args.select)?
    } else {
        select::select(ctx, &resources, &args.select).await?
    };
    if !selection.single && args.resource_version.is_some() {
        return Err(Error::Usage(
            "--resource-version may only be used with a single resource".into(),
        ));
    }
    let discovery = if args.local { None } else { Some(ctx.discovery().await?) };
    let mut errors = Vec::new();
    for item in selection.items {
        let result = match item {
            Ok(info) => {
                let local = args.local || args.list || dry_run == DryRun::Client;
                change_one(ctx, info, args, field, &changes, local, dry_run, selection.single).await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(Some((info, object, verb))) => match &mut printer {
                Ok(printer) => printer.print(ctx, discovery.as_deref(), &info.resource, &object, verb)?,
                Err(error) => errors.push(Error::Usage(error.to_string())),
            },
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }
    crate::cmd::objects::finish(errors)
}

/// Changes one object; returns what to print (None: `--list` printed already).
#[allow(clippy::too_many_arguments)]
async fn change_one(
    ctx: &mut Context,
    mut info: Info,
    args: &MetaArgs,
    field: Field,
    changes: &Changes,
    local: bool,
    dry_run: DryRun,
    single: bool,
) -> Result<Option<(Info, Value, &'static str)>, Error> {
    let old = current(&info.object, field);
    if field == Field::Labels && !local {
        for key in &changes.remove {
            if !old.contains_key(key) {
                ctx.out(&format!("{} \"{key}\" not found.\n", field.singular()));
            }
        }
    }
    if !args.overwrite {
        check_overwrites(&old, &changes.set, field)?;
    }
    let mut new = old.clone();
    for (key, value) in &changes.set {
        new.insert(key.clone(), value.clone());
    }
    for key in &changes.remove {
        new.remove(key);
    }
    let verb = match field {
        Field::Labels => label_verb(&old, &new),
        Field::Annotations => "annotated",
    };
    set_map(&mut info.object, field, &new);
    if let Some(version) = &args.resource_version {
        info.object["metadata"]["resourceVersion"] = Value::String(version.clone());
    }
    let mut output = info.object.clone();
    // Upstream's label sends nothing when the labels stay the same.
    let unchanged = field == Field::Labels && old == new;
    if !local && !unchanged {
        let mut delta = Map::new();
        for (key, value) in &new {
            if old.get(key) != Some(value) {
                delta.insert(key.clone(), Value::String(value.clone()));
            }
        }
        for key in old.keys().filter(|k| !new.contains_key(*k)) {
            delta.insert(key.clone(), Value::Null);
        }
        let mut metadata = Map::new();
        if !delta.is_empty() {
            metadata.insert(field.key().into(), Value::Object(delta));
        }
        if let Some(version) = &args.resource_version {
            metadata.insert("resourceVersion".into(), Value::String(version.clone()));
        }
        if !metadata.is_empty() {
            let manager = args.field_manager.as_deref().unwrap_or(field.manager());
            let url = request::with_query(
                &info.url(),
                &[
                    ("dryRun", if dry_run == DryRun::Server { "All" } else { "" }),
                    ("fieldManager", manager),
                ],
            );
            let client = ctx.client().await?;
            let body = crate::printer::to_compact_json(&json!({"metadata": metadata}));
            let patched = request::send(
                &client,
                Method::PATCH,
                &url,
                "application/json",
                Some("application/merge-patch+json"),
                body.into_bytes(),
            )
            .await?;
            if field == Field::Annotations {
                output = patched;
            }
        }
    }
    if args.list {
        let indent = if single {
            ""
        } else {
            ctx.out(&format!(
                "Listing {} for {}.{}/{}:\n",
                field.key(),
                info.resource.kind,
                info.resource.group,
                info.name
            ));
            " "
        };
        for (key, value) in current(&output, field) {
            ctx.out(&format!("{indent}{key}={value}\n"));
        }
        return Ok(None);
    }
    Ok(Some((info, output, verb)))
}

/// The object's labels or annotations.
fn current(object: &Value, field: Field) -> BTreeMap<String, String> {
    object["metadata"][field.key()]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn set_map(object: &mut Value, field: Field, map: &BTreeMap<String, String>) {
    let value: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(field.key().into(), Value::Object(value));
    }
}

/// Upstream's message: labels added or changed, removed, both, or none.
fn label_verb(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> &'static str {
    let removed = old.keys().any(|k| !new.contains_key(k));
    let added = new.iter().any(|(k, v)| old.get(k) != Some(v));
    match (added, removed) {
        (true, true) => "modified",
        (true, false) => "labeled",
        (false, true) => "unlabeled",
        (false, false) => "not labeled",
    }
}

fn check_overwrites(old: &BTreeMap<String, String>, set: &BTreeMap<String, String>, field: Field) -> Result<(), Error> {
    let clashes: Vec<(&String, &String)> = set
        .iter()
        .filter_map(|(k, v)| old.get(k).filter(|current| *current != v).map(|current| (k, current)))
        .collect();
    if clashes.is_empty() {
        return Ok(());
    }
    let message = match field {
        Field::Labels => {
            let each: Vec<String> = clashes
                .iter()
                .map(|(k, v)| format!("'{k}' already has a value ({v}), and --overwrite is false"))
                .collect();
            if each.len() == 1 {
                each[0].clone()
            } else {
                format!("[{}]", each.join(", "))
            }
        }
        Field::Annotations => {
            let each: Vec<String> = clashes
                .iter()
                .filter(|(k, _)| k.as_str() != "kubernetes.io/change-cause")
                .map(|(k, v)| format!("'{k}' already has a value ({v})"))
                .collect();
            if each.is_empty() {
                return Ok(());
            }
            format!(
                "--overwrite is false but found the following declared annotation(s): {}",
                each.join("; ")
            )
        }
    };
    Err(Error::Message(message))
}

/// Upstream's `parseLabels`: `key=value` (one `=`, a valid label value) or `key-`.
fn parse_labels(pairs: &[String]) -> Result<Changes, Error> {
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for pair in pairs {
        if pair.contains('=') {
            let parts: Vec<&str> = pair.split('=').collect();
            if parts.len() != 2 {
                return Err(Error::Usage(format!("invalid label spec: {pair}")));
            }
            let problems = api::validation::names::is_valid_label_value(parts[1]);
            if !problems.is_empty() {
                return Err(Error::Usage(format!(
                    "invalid label value: \"{pair}\": {}",
                    problems.join(";")
                )));
            }
            set.insert(parts[0].to_string(), parts[1].to_string());
        } else if let Some(key) = pair.strip_suffix('-') {
            remove.push(key.to_string());
        } else {
            return Err(Error::Usage(format!("unknown label spec: {pair}")));
        }
    }
    if remove.iter().any(|k| set.contains_key(k)) {
        return Err(Error::Usage(
            "can not both modify and remove a label in the same command".into(),
        ));
    }
    Ok(Changes { set, remove })
}

/// Upstream's `ParsePairs` for annotations: `key=value` (the value may hold `=`) or `key-`.
fn parse_annotations(pairs: &[String]) -> Result<Changes, Error> {
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    let mut invalid = Vec::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                set.insert(key.to_string(), value.to_string());
            }
            _ => match pair.strip_suffix('-') {
                Some(key) if pair != "-" => remove.push(key.to_string()),
                _ => invalid.push(pair.as_str()),
            },
        }
    }
    if !invalid.is_empty() {
        return Err(Error::Usage(format!(
            "invalid annotation format: {}",
            invalid.join(", ")
        )));
    }
    Ok(Changes { set, remove })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_messages_follow_what_changed() {
        let old = map(&[("a", "1"), ("b", "2")]);
        assert_eq!(label_verb(&old, &old), "not labeled");
        assert_eq!(label_verb(&old, &map(&[("a", "1"), ("b", "3")])), "labeled");
        assert_eq!(label_verb(&old, &map(&[("a", "1")])), "unlabeled");
        assert_eq!(label_verb(&old, &map(&[("a", "1"), ("c", "1")])), "modified");
    }

    #[test]
    fn pairs_parse_like_upstream() {
        let labels = parse_labels(&["a=1".into(), "b-".into()]).unwrap();
        assert_eq!(labels.set, map(&[("a", "1")]));
        assert_eq!(labels.remove, ["b"]);
        assert_eq!(
            parse_labels(&["a=1=2".into()]).unwrap_err().to_string(),
            "invalid label spec: a=1=2"
        );
        assert!(
            parse_labels(&["a=-x".into()])
                .unwrap_err()
                .to_string()
                .starts_with("invalid label value: \"a=-x\": a valid label")
        );
        assert!(parse_labels(&["a=1".into(), "a-".into()]).is_err());
        let annotations = parse_annotations(&["a=1=2".into(), "b-".into()]).unwrap();
        assert_eq!(annotations.set, map(&[("a", "1=2")]));
        assert_eq!(
            parse_annotations(&["=x".into(), "y".into()]).unwrap_err().to_string(),
            "invalid annotation format: =x, y"
        );
    }

    #[test]
    fn overwrites_are_refused_unless_the_value_is_the_same() {
        let old = map(&[("a", "1")]);
        assert!(check_overwrites(&old, &map(&[("a", "1")]), Field::Labels).is_ok());
        assert_eq!(
            check_overwrites(&old, &map(&[("a", "2")]), Field::Labels)
                .unwrap_err()
                .to_string(),
            "'a' already has a value (1), and --overwrite is false"
        );
        assert_eq!(
            check_overwrites(&old, &map(&[("a", "2")]), Field::Annotations)
                .unwrap_err()
                .to_string(),
            "--overwrite is false but found the following declared annotation(s): 'a' already has a value (1)"
        );
    }
}
