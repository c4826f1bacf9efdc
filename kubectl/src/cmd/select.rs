//! The objects a mutating command works on, chosen as upstream's resource builder chooses
//! them: `TYPE NAME...`, `TYPE/NAME...`, `-f` manifests, or `TYPE` with `-l`/`--all`, each
//! fetched fresh from the server; per-object failures are kept in order so the command can
//! go on with the rest (upstream's `ContinueOnError`).

use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::get::{Target, render_objects, targets};
use crate::discovery::{Discovery, Resource};
use crate::error::Error;
use crate::manifest;
use crate::printer::OutputFormat;
use crate::request;

/// How the objects were named on the command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectFlags {
    /// Files identifying the resources.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Select all resources, in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// If true, check the specified action in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// One object to work on, as fetched.
#[derive(Debug, Clone)]
pub struct Info {
    pub resource: Resource,
    /// None for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub object: Value,
    /// The manifest it came from (`-f`).
    pub source: Option<String>,
}

impl Info {
    /// The object's URL.
    pub fn url(&self) -> String {
        self.resource.object_url(self.namespace.as_deref(), &self.name)
    }

    /// `deployment.apps/web`, as upstream's name printer starts its lines.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.resource.kind_prefix(), self.name)
    }

    /// `deployments.apps "web"`, as upstream's per-object errors name it.
    pub fn quoted(&self) -> String {
        format!("{} \"{}\"", self.resource.plural_group(), self.name)
    }
}

/// The selected objects (or why one could not be fetched), in order, and whether a single
/// object was named (upstream's "single item implied").
pub struct Selection {
    pub items: Vec<Result<Info, Error>>,
    pub single: bool,
}

/// What a selection fetches from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Every object as the server has it now (upstream's `Latest()`).
    Latest,
    /// Named objects fetched; objects from `-f` as the files have them (namespace filled in).
    Named,
    /// Nothing fetched (upstream's `RequireObject(false)`): named objects carry no body
    /// (`Value::Null`), objects from `-f` are as the files have them; a type with a selector
    /// is still listed.
    Nothing,
}

/// What a type named without names selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeAlone {
    /// Only with `-l`, `--field-selector` or `--all` (upstream's
    /// `ResourceTypeOrNameArgs(false, ...)`): "resource(s) were provided, but no name was
    /// specified" otherwise.
    NeedsSelector,
    /// Every object of the type, filtered by any selector (`ResourceTypeOrNameArgs(true, ...)`).
    ListsAll,
}

/// Resolves and fetches the objects `args` and `flags` name.
pub async fn select(ctx: &mut Context, args: &[String], flags: &SelectFlags) -> Result<Selection, Error> {
    select_with(ctx, args, flags, Fetch::Latest, TypeAlone::NeedsSelector).await
}

/// Resolves the objects `args` and `flags` name, fetching what `fetch` says; per-object
/// fetch failures stay in place, in order.
pub async fn select_with(
    ctx: &mut Context,
    args: &[String],
    flags: &SelectFlags,
    fetch: Fetch,
    type_alone: TypeAlone,
) -> Result<Selection, Error> {
    if flags.all && flags.selector.is_some() {
        return Err(Error::Usage("cannot set --all and --selector at the same time".into()));
    }
    if flags.all && flags.field_selector.is_some() {
        return Err(Error::Usage(
            "cannot set --all and --field-selector at the same time".into(),
        ));
    }
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    if !flags.filenames.is_empty() {
        if !args.is_empty() {
            return Err(Error::Usage(
                "when paths, URLs, or stdin is provided as input, you may not specify resource arguments as well"
                    .into(),
            ));
        }
        let manifests = manifest::read_all(&flags.filenames, flags.recursive)?;
        let single = flags.filenames.len() == 1
            && flags.filenames[0] != "-"
            && !std::path::Path::new(&flags.filenames[0]).is_dir();
        let mut items = Vec::new();
        for mut manifest in manifests {
            let placement = crate::cmd::apply::place(ctx, &discovery, &mut manifest, false).await?;
            let url = placement
                .resource
                .object_url(placement.namespace.as_deref(), &placement.name);
            let fetched = if fetch == Fetch::Latest {
                request::get(&client, &url, "application/json").await
            } else {
                Ok(manifest.object.clone())
            };
            items.push(fetched.map(|object| Info {
                resource: placement.resource,
                namespace: placement.namespace,
                name: placement.name,
                object,
                source: Some(manifest.source.clone()),
            }));
        }
        return Ok(Selection { items, single });
    }
    let namespace = ctx.namespace().await?;
    let selecting = flags.all || flags.selector.is_some() || flags.field_selector.is_some();
    let resolved = targets(&discovery, args)?;
    let single = !selecting && resolved.len() == 1 && resolved[0].names.len() == 1;
    let mut items = Vec::new();
    for Target { resource, names } in resolved {
        let ns = resource.namespaced.then(|| namespace.clone());
        if !names.is_empty() {
            if flags.selector.is_some() || flags.field_selector.is_some() {
                return Err(Error::Usage(
                    "name cannot be provided when a selector is specified".into(),
                ));
            }
            for name in names {
                let fetched = if fetch == Fetch::Nothing {
                    Ok(Value::Null)
                } else {
                    let url = resource.object_url(ns.as_deref(), &name);
                    request::get(&client, &url, "application/json").await
                };
                items.push(fetched.map(|object| Info {
                    resource: resource.clone(),
                    namespace: ns.clone(),
                    name,
                    object,
                    source: None,
                }));
            }
            continue;
        }
        if !selecting && type_alone == TypeAlone::NeedsSelector {
            return Err(Error::Usage(
                "resource(s) were provided, but no name was specified".into(),
            ));
        }
        let list_ns = if flags.all_namespaces { None } else { ns.as_deref() };
        let url = request::with_query(
            &resource.collection_url(list_ns),
            &[
                ("labelSelector", flags.selector.as_deref().unwrap_or_default()),
                ("fieldSelector", flags.field_selector.as_deref().unwrap_or_default()),
            ],
        );
        let list = request::get(&client, &url, "application/json").await?;
        for mut item in list["items"].as_array().cloned().unwrap_or_default() {
            if let Some(map) = item.as_object_mut() {
                map.insert("apiVersion".into(), resource.api_version().into());
                map.insert("kind".into(), resource.kind.clone().into());
            }
            items.push(Ok(Info {
                resource: resource.clone(),
                namespace: item["metadata"]["namespace"].as_str().map(str::to_string),
                name: item["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                object: item,
                source: None,
            }));
        }
    }
    Ok(Selection { items, single })
}

/// An I/O error worded as Go words it (`no such file or directory`).
pub fn os_error(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Upstream's `GetResourcesAndPairs`: the leading arguments name resources, the rest are
/// `KEY=VALUE` or `KEY-` pairs (`kind` names them in the error).
pub fn split_pairs(args: &[String], kind: &str) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut resources = Vec::new();
    let mut pairs = Vec::new();
    for arg in args {
        let is_pair = (arg.contains('=') && !arg.starts_with('=')) || (arg.ends_with('-') && arg != "-");
        if is_pair {
            pairs.push(arg.clone());
        } else if pairs.is_empty() {
            resources.push(arg.clone());
        } else {
            return Err(Error::Usage(format!(
                "all resources must be specified before {kind} changes: {arg}"
            )));
        }
    }
    Ok((resources, pairs))
}

/// The objects of `-f` as the files have them, without contacting the server (`--local`).
pub fn local(flags: &SelectFlags) -> Result<Selection, Error> {
    let manifests = manifest::read_all(&flags.filenames, flags.recursive)?;
    let single = flags.filenames.len() == 1 && !std::path::Path::new(&flags.filenames[0]).is_dir();
    let items = manifests
        .into_iter()
        .map(|m| {
            let resource = resource_for_kind(
                m.object["apiVersion"].as_str().unwrap_or_default(),
                m.object["kind"].as_str().unwrap_or_default(),
            );
            Ok(Info {
                resource,
                namespace: m.object["metadata"]["namespace"].as_str().map(str::to_string),
                name: m.object["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                object: m.object,
                source: Some(m.source),
            })
        })
        .collect();
    Ok(Selection { items, single })
}

/// A resource for a manifest's kind without asking the server (`--local`): only its kind
/// and group matter, for the printed `kind.group/name`.
pub fn resource_for_kind(api_version: &str, kind: &str) -> Resource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Resource {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        plural: format!("{}s", kind.to_lowercase()),
        singular: kind.to_lowercase(),
        short_names: Vec::new(),
        namespaced: true,
        verbs: Vec::new(),
        categories: Vec::new(),
        preferred: true,
    }
}

/// Prints what a mutating command did to each object: `kind.group/name <verb>` (with the
/// dry-run suffix), or the object in the `-o` format (YAML documents separated by `---`).
pub struct Printer {
    format: OutputFormat,
    dry_run: DryRun,
    printed: usize,
    /// Whether YAML documents after the first start with `---` (one printer for the whole
    /// command, as `annotate` has; `label` makes a fresh one per object).
    pub separate_documents: bool,
    /// Whether `(dry run)` / `(server dry run)` follows the verb.
    pub dry_run_suffix: bool,
    /// Whether `-o json` keeps Go's struct field order (objects upstream holds typed).
    pub typed_json: bool,
}

impl Printer {
    /// Checks `-o` as upstream's printer flags of mutating commands do (no tables).
    pub fn new(output: Option<&str>, dry_run: DryRun) -> Result<Self, Error> {
        let format = match OutputFormat::parse(output) {
            Ok(OutputFormat::Wide | OutputFormat::CustomColumns(_) | OutputFormat::CustomColumnsFile(_)) | Err(_) => {
                return Err(Error::Usage(format!(
                    "unable to match a printer suitable for the output format \"{}\", allowed formats are: go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,kyaml,name,template,templatefile,yaml",
                    output.unwrap_or_default()
                )));
            }
            Ok(format) => format,
        };
        Ok(Self {
            format,
            dry_run,
            printed: 0,
            separate_documents: false,
            dry_run_suffix: true,
            typed_json: false,
        })
    }

    /// Whether objects are printed in full (`-o yaml|json|jsonpath`).
    pub fn prints_objects(&self) -> bool {
        !matches!(self.format, OutputFormat::Table | OutputFormat::Name)
    }

    /// Prints one object's outcome.
    pub fn print(
        &mut self,
        ctx: &mut Context,
        discovery: Option<&Discovery>,
        resource: &Resource,
        object: &Value,
        verb: &str,
    ) -> Result<(), Error> {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let text = match &self.format {
            OutputFormat::Table => {
                let suffix = match if self.dry_run_suffix {
                    self.dry_run
                } else {
                    DryRun::None
                } {
                    DryRun::None => "",
                    DryRun::Client => " (dry run)",
                    DryRun::Server => " (server dry run)",
                };
                format!("{}/{name} {verb}{suffix}\n", resource.kind_prefix())
            }
            OutputFormat::Name => format!("{}/{name}\n", resource.kind_prefix()),
            OutputFormat::Json if self.typed_json => {
                let mut object = object.clone();
                crate::cmd::get::omit_managed_fields(&mut object);
                crate::printer::gojson::to_json(&object)
            }
            format => {
                let empty = Discovery::default();
                let text = render_objects(format, vec![object.clone()], true, false, discovery.unwrap_or(&empty))?;
                if self.format == OutputFormat::Yaml && self.separate_documents && self.printed > 0 {
                    format!("---\n{text}")
                } else {
                    text
                }
            }
        };
        self.printed += 1;
        ctx.out(&text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resources_come_before_pairs() {
        let (resources, pairs) = split_pairs(&strings(&["pod", "x", "a=1", "b-"]), "label").unwrap();
        assert_eq!(resources, ["pod", "x"]);
        assert_eq!(pairs, ["a=1", "b-"]);
        let (resources, pairs) = split_pairs(&strings(&["pod", "=x", "-"]), "label").unwrap();
        assert_eq!(resources, ["pod", "=x", "-"]);
        assert!(pairs.is_empty());
        let error = split_pairs(&strings(&["pod", "a=1", "x"]), "label").unwrap_err();
        assert_eq!(
            error.to_string(),
            "all resources must be specified before label changes: x"
        );
    }
}
