//! `kubectl describe`: which objects (names, name prefixes, `type/name`, `-l`, a whole type)
//! and the reports from [`crate::describe`], separated by blank lines as upstream does.

use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::get::targets;
use crate::error::Error;
use crate::request;

/// Show details of a specific resource or group of resources.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DescribeArgs {
    /// TYPE [NAME_PREFIX] | TYPE/NAME
    pub args: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Whether to show events (accepted; events are always shown).
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub show_events: bool,
}

/// Runs `kubectl describe`.
pub async fn run(ctx: &mut Context, args: &DescribeArgs) -> Result<(), Error> {
    let discovery = ctx.discovery().await?;
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    let mut described = Vec::new();
    let mut listed = false;
    let targets = targets(&discovery, &args.args)?;
    // `describe TYPE NAME` with no such object describes every object whose name starts with
    // NAME (upstream's DescribeMatchingResources), each report followed by a newline.
    let prefix_form = args.args.len() == 2 && !args.args[0].contains('/');
    for target in &targets {
        let ns = (target.resource.namespaced && !args.all_namespaces).then_some(namespace.as_str());
        let list_url = request::with_query(
            &target.resource.collection_url(ns),
            &[("labelSelector", args.selector.as_deref().unwrap_or_default())],
        );
        let mut objects: Vec<Value> = Vec::new();
        if target.names.is_empty() {
            listed = true;
            let list = request::get(&client, &list_url, "application/json").await?;
            objects.extend(list["items"].as_array().cloned().unwrap_or_default());
        }
        for name in &target.names {
            match request::get(&client, &target.resource.object_url(ns, name), "application/json").await {
                Ok(object) => objects.push(object),
                Err(error) if error.is_not_found() && prefix_form => {
                    let list = request::get(&client, &list_url, "application/json").await?;
                    let matches: Vec<Value> = list["items"]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter(|o| {
                                    o["metadata"]["name"]
                                        .as_str()
                                        .is_some_and(|n| n.starts_with(name.as_str()))
                                })
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    if matches.is_empty() {
                        return Err(error);
                    }
                    let api_resource = target.resource.api_resource();
                    for object in matches {
                        let report = crate::describe::describe(&client, &api_resource, &object, false)
                            .await
                            .map_err(|e| Error::Message(e.to_string()))?;
                        ctx.out(&format!("{report}\n"));
                    }
                    return Ok(());
                }
                Err(error) => errors.push(error),
            }
        }
        described.push((target.resource.api_resource(), objects));
    }
    // Upstream fetches and prints events only when the command describes one object, named
    // exactly (not found by listing).
    let total: usize = described.iter().map(|(_, o)| o.len()).sum();
    let show_events = args.show_events && !listed && total == 1;
    let mut reports = Vec::new();
    for (api_resource, objects) in described {
        for object in objects {
            let report = crate::describe::describe(&client, &api_resource, &object, show_events)
                .await
                .map_err(|e| Error::Message(e.to_string()))?;
            reports.push(report);
        }
    }
    if reports.is_empty() && errors.is_empty() {
        ctx.err(&format!("No resources found in {namespace} namespace.\n"));
    }
    ctx.out(&reports.join("\n\n"));
    let last = errors.pop();
    for error in errors {
        ctx.err(&format!("{}\n", error.render()));
    }
    last.map_or(Ok(()), Err)
}
