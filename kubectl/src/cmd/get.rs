//! `kubectl get`: Tables from the server for human output, full objects for `-o
//! yaml|json|name|jsonpath|custom-columns`, `--watch` streams, `--raw` paths.

use futures::{AsyncBufReadExt, StreamExt};
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::sort::SortField;
use crate::discovery::{Discovery, Resource};
use crate::error::Error;
use crate::printer::table::{self, TabWriter, TableOptions};
use crate::printer::{self, OutputFormat};
use crate::request::{self, TABLE_ACCEPT};

/// Display one or many resources.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GetArgs {
    /// TYPE[.VERSION][.GROUP] [NAME ...] | TYPE[.VERSION][.GROUP]/NAME ...
    pub args: Vec<String>,
    /// Output format: json, yaml, name, wide, jsonpath=..., custom-columns=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// List the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing/getting the requested object, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes to the requested object(s), without listing/getting first.
    #[arg(long)]
    pub watch_only: bool,
    /// When printing, show all labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// Keep metadata.managedFields in JSON and YAML output.
    #[arg(long)]
    pub show_managed_fields: bool,
    /// Label keys to present as columns.
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// When using the default or custom-column output format, don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// List the resource type for the requested object(s).
    #[arg(long)]
    pub show_kind: bool,
    /// If the requested object does not exist the command will return exit code 0.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Return large lists in chunks rather than all at once (0 disables).
    #[arg(long, default_value_t = 500)]
    pub chunk_size: u32,
    /// Raw URI to request from the server.
    #[arg(long)]
    pub raw: Option<String>,
    /// Sort list types using this JSONPath expression (e.g. `{.metadata.name}`).
    #[arg(long)]
    pub sort_by: Option<String>,
}

/// One requested resource type and the names asked for (none: the whole collection).
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: Resource,
    pub names: Vec<String>,
}

/// Turns `get`'s positional arguments into targets, in order.
pub fn targets(discovery: &Discovery, args: &[String]) -> Result<Vec<Target>, Error> {
    let Some(first) = args.first() else {
        return Err(Error::Usage(
            "Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples".into(),
        ));
    };
    let mut targets: Vec<Target> = Vec::new();
    if first.contains('/') {
        for arg in args {
            let Some((word, name)) = arg.split_once('/') else {
                return Err(Error::Usage("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'".to_string()));
            };
            if name.is_empty() {
                return Err(Error::Usage(
                    "arguments in resource/name form must have a single resource and name".to_string(),
                ));
            }
            let resource = discovery.resolve(word)?.clone();
            match targets.last_mut() {
                Some(last) if last.resource == resource => last.names.push(name.to_string()),
                _ => targets.push(Target {
                    resource,
                    names: vec![name.to_string()],
                }),
            }
        }
        return Ok(targets);
    }
    let names: Vec<String> = args[1..].to_vec();
    // Each type once, as upstream's builder keeps one mapping per kind (`get ns,cm,ns`).
    let mut add = |resource: &crate::discovery::Resource| {
        if !targets.iter().any(|t| t.resource == *resource) {
            targets.push(Target {
                resource: resource.clone(),
                names: names.clone(),
            });
        }
    };
    for word in first.split(',').filter(|w| !w.is_empty()) {
        let category = discovery.category(word);
        if !category.is_empty() && discovery.resolve(word).is_err() {
            category.into_iter().for_each(&mut add);
            continue;
        }
        add(discovery.resolve(word)?);
    }
    Ok(targets)
}

/// Runs `kubectl get`.
pub async fn run(ctx: &mut Context, args: &GetArgs) -> Result<(), Error> {
    if let Some(path) = &args.raw {
        let conn = ctx.connection().await?;
        let request = http::Request::get(path.as_str())
            .body(Vec::new())
            .map_err(|e| Error::Message(e.to_string()))?;
        let text = conn.client.request_text(request).await?;
        ctx.out(&text);
        return Ok(());
    }
    let format = OutputFormat::parse(args.output.as_deref())?;
    let sort = args.sort_by.as_deref().map(SortField::parse);
    let discovery = ctx.discovery().await?;
    let targets = targets(&discovery, &args.args)?;
    let namespace = ctx.connection().await?.namespace.clone();
    let kinds: std::collections::BTreeSet<&str> = targets.iter().map(|t| t.resource.kind.as_str()).collect();
    let with_kind = args.show_kind || kinds.len() > 1;

    let mut errors = Vec::new();
    let mut printed_any = false;
    let mut writer = TabWriter::default();
    if args.watch_only {
        // Nothing listed first.
    } else if format.wants_table() {
        let options = TableOptions {
            wide: format == OutputFormat::Wide,
            with_namespace: args.all_namespaces,
            show_labels: args.show_labels,
            label_columns: args.label_columns.clone(),
            no_headers: args.no_headers,
            ..Default::default()
        };
        let mut last_columns: Option<Value> = None;
        let mut namespace_column = false;
        let mut fetched = Vec::new();
        for target in &targets {
            fetched.push(fetch(ctx, target, args, &namespace, TABLE_ACCEPT, &mut errors).await?);
        }
        if let Some(sort) = &sort {
            sort.check_tables(&fetched)?;
        }
        for ((index, target), tables) in targets.iter().enumerate().zip(fetched) {
            let mut options = options.clone();
            options.kind_prefix = with_kind.then(|| target.resource.kind_prefix());
            // With -A, cluster-scoped resources have no NAMESPACE column, unless a namespaced
            // type came before them (upstream's printer flags keep the column once one set it)
            // or this is a watch's listing.
            namespace_column |= args.all_namespaces && (target.resource.namespaced || args.watch);
            options.with_namespace = namespace_column;
            let mut printed_here = false;
            for mut table in tables {
                if let Some(sort) = &sort
                    && !sort.sort_table(&mut table)?
                {
                    continue;
                }
                let rows = table["rows"].as_array().map_or(0, Vec::len);
                if rows == 0 {
                    continue;
                }
                if !printed_here && index > 0 && printed_any && !args.no_headers {
                    ctx.out("\n");
                    writer = TabWriter::default();
                    last_columns = None;
                }
                let columns = table["columnDefinitions"].clone();
                let same_columns = last_columns.as_ref() == Some(&columns);
                let grid = table::grid(&table, &options);
                ctx.out(&table::render(&grid, args.no_headers || same_columns, &mut writer));
                last_columns = Some(columns);
                printed_here = true;
                printed_any = true;
            }
        }
    } else {
        let mut objects = Vec::new();
        let mut single = targets.len() == 1 && targets[0].names.len() == 1;
        for target in &targets {
            for object in fetch(ctx, target, args, &namespace, "application/json", &mut errors).await? {
                if object.get("items").is_some() {
                    single = false;
                    let items = object["items"].as_array().cloned().unwrap_or_default();
                    objects.extend(items.into_iter().map(|item| with_type(item, &target.resource)));
                } else {
                    objects.push(with_type(object, &target.resource));
                }
            }
        }
        printed_any = !objects.is_empty();
        if let Some(sort) = &sort
            && objects.len() > 1
        {
            sort.sort_objects(&mut objects)?;
        }
        if printed_any || !single {
            let text = render_objects_with(
                &format,
                objects,
                single,
                args.no_headers,
                &discovery,
                args.show_managed_fields,
            )?;
            ctx.out(&text);
        }
    }
    let all_namespaced = targets.iter().all(|t| t.resource.namespaced);
    let listed = targets.iter().all(|t| t.names.is_empty());
    if !printed_any && errors.is_empty() && listed && format.wants_table() && !args.watch_only {
        if all_namespaced && !args.all_namespaces {
            ctx.err(&format!("No resources found in {namespace} namespace.\n"));
        } else {
            ctx.err("No resources found\n");
        }
    }
    if args.watch || args.watch_only {
        if targets.len() != 1 {
            return Err(Error::Usage("you may only specify a single resource type".to_string()));
        }
        let headers_printed = printed_any && !args.no_headers;
        return watch(
            ctx,
            &targets[0],
            args,
            &namespace,
            &format,
            &mut writer,
            headers_printed,
        )
        .await;
    }
    finish(ctx, errors, args.ignore_not_found)
}

/// Prints every error but the last on stderr; the last becomes the command's error.
fn finish(ctx: &mut Context, errors: Vec<Error>, ignore_not_found: bool) -> Result<(), Error> {
    let mut errors: Vec<Error> = errors
        .into_iter()
        .filter(|e| !(ignore_not_found && e.is_not_found()))
        .collect();
    let last = errors.pop();
    for error in errors {
        ctx.err(&format!("{}\n", error.render()));
    }
    last.map_or(Ok(()), Err)
}

/// The Tables or objects of one target: each page of the collection, or each named object.
/// Per-name failures are collected, as upstream reports them after printing the rest.
async fn fetch(
    ctx: &mut Context,
    target: &Target,
    args: &GetArgs,
    namespace: &str,
    accept: &str,
    errors: &mut Vec<Error>,
) -> Result<Vec<Value>, Error> {
    let client = ctx.connection().await?.client.clone();
    let ns = (!args.all_namespaces || !target.names.is_empty()).then_some(namespace);
    let mut out = Vec::new();
    // Sorting a Table needs the objects behind its rows.
    let sorting_table = args.sort_by.is_some() && accept == TABLE_ACCEPT;
    let include_object = if sorting_table { "Object" } else { "" };
    if target.names.is_empty() {
        let base = target.resource.collection_url(ns);
        let limit = args.chunk_size.to_string();
        let mut continue_token = String::new();
        loop {
            let url = request::with_query(
                &base,
                &[
                    ("labelSelector", args.selector.as_deref().unwrap_or_default()),
                    ("fieldSelector", args.field_selector.as_deref().unwrap_or_default()),
                    (
                        "limit",
                        if args.chunk_size > 0 && !sorting_table {
                            &limit
                        } else {
                            ""
                        },
                    ),
                    ("continue", &continue_token),
                    ("includeObject", include_object),
                ],
            );
            let page = request::get(&client, &url, accept).await?;
            continue_token = page["metadata"]["continue"].as_str().unwrap_or_default().to_string();
            out.push(page);
            if continue_token.is_empty() {
                break;
            }
        }
        return Ok(out);
    }
    for name in &target.names {
        let url = request::with_query(
            &target.resource.object_url(ns, name),
            &[("includeObject", include_object)],
        );
        match request::get(&client, &url, accept).await {
            Ok(object) => out.push(object),
            Err(error) => errors.push(error),
        }
    }
    Ok(out)
}

/// List items come without `apiVersion`/`kind`; kubectl prints them with.
fn with_type(mut object: Value, resource: &Resource) -> Value {
    if let Some(map) = object.as_object_mut() {
        if !map.contains_key("apiVersion") {
            map.insert("apiVersion".into(), resource.api_version().into());
        }
        if !map.contains_key("kind") {
            map.insert("kind".into(), resource.kind.clone().into());
        }
    }
    object
}

/// `kind.group/name` for `-o name`.
pub fn object_name(object: &Value, discovery: &Discovery) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let prefix = discovery
        .for_kind(api_version, kind)
        .map(|r| r.kind_prefix())
        .unwrap_or_else(|_| kind.to_lowercase());
    format!("{prefix}/{}", object["metadata"]["name"].as_str().unwrap_or_default())
}

/// Drops `metadata.managedFields`, as upstream's JSON and YAML printers do unless
/// `--show-managed-fields`.
pub fn omit_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// Full objects in a non-table format; `single` prints a lone object rather than a List.
/// `metadata.managedFields` is left out of JSON and YAML, as upstream does by default.
pub fn render_objects(
    format: &OutputFormat,
    objects: Vec<Value>,
    single: bool,
    no_headers: bool,
    discovery: &Discovery,
) -> Result<String, Error> {
    render_objects_with(format, objects, single, no_headers, discovery, false)
}

/// [`render_objects`], keeping managedFields when `show_managed_fields`.
pub fn render_objects_with(
    format: &OutputFormat,
    mut objects: Vec<Value>,
    single: bool,
    no_headers: bool,
    discovery: &Discovery,
    show_managed_fields: bool,
) -> Result<String, Error> {
    if !show_managed_fields && matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        objects.iter_mut().for_each(omit_managed_fields);
    }
    let value = if single && objects.len() == 1 {
        objects.into_iter().next().unwrap_or_default()
    } else {
        printer::list_of(objects)
    };
    Ok(match format {
        OutputFormat::Json => printer::to_json(&value),
        OutputFormat::Yaml => printer::yaml::to_yaml(&value),
        OutputFormat::Name => {
            let items = match value.get("items") {
                Some(items) => items.as_array().cloned().unwrap_or_default(),
                None => vec![value],
            };
            items.iter().map(|o| object_name(o, discovery) + "\n").collect()
        }
        OutputFormat::JsonPath(template) => printer::jsonpath(template, &value, false)?,
        OutputFormat::JsonPathAsJson(template) => printer::jsonpath(template, &value, true)?,
        OutputFormat::CustomColumns(spec) | OutputFormat::CustomColumnsFile(spec) => {
            let items = match value.get("items") {
                Some(items) => items.as_array().cloned().unwrap_or_default(),
                None => vec![value],
            };
            let from_file = matches!(format, OutputFormat::CustomColumnsFile(_));
            printer::custom_columns(spec, from_file, &items, no_headers)?
        }
        OutputFormat::Table | OutputFormat::Wide => unreachable!("tables are printed by the caller"),
    })
}

/// `--watch`: streams changes after the listing, one row (or object) per event.
async fn watch(
    ctx: &mut Context,
    target: &Target,
    args: &GetArgs,
    namespace: &str,
    format: &OutputFormat,
    writer: &mut TabWriter,
    mut headers_printed: bool,
) -> Result<(), Error> {
    let client = ctx.connection().await?.client.clone();
    let ns = (!args.all_namespaces || !target.names.is_empty()).then_some(namespace);
    let field_selector = match target.names.as_slice() {
        [] => args.field_selector.clone().unwrap_or_default(),
        [name] => format!("metadata.name={name}"),
        _ => return Err(Error::Usage("watch is only supported on individual resources and resource collections, but multiple resources were found".into())),
    };
    // The listing above printed the state; resume from the collection's current version.
    let list_url = request::with_query(
        &target.resource.collection_url(ns),
        &[
            ("labelSelector", args.selector.as_deref().unwrap_or_default()),
            ("fieldSelector", &field_selector),
            ("limit", "1"),
        ],
    );
    let list = request::get(&client, &list_url, "application/json").await?;
    let resource_version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = request::with_query(
        &target.resource.collection_url(ns),
        &[
            ("labelSelector", args.selector.as_deref().unwrap_or_default()),
            ("fieldSelector", &field_selector),
            ("resourceVersion", &resource_version),
            ("watch", "true"),
        ],
    );
    let accept = if format.wants_table() {
        TABLE_ACCEPT
    } else {
        "application/json"
    };
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|e| Error::Message(e.to_string()))?;
    let stream = client.request_stream(request).await?;
    let mut lines = stream.lines();
    let mut columns = Value::Null;
    let options = TableOptions {
        wide: *format == OutputFormat::Wide,
        // Unlike a listing, a watch shows the column for cluster-scoped resources too.
        with_namespace: args.all_namespaces,
        show_labels: args.show_labels,
        label_columns: args.label_columns.clone(),
        ..Default::default()
    };
    let discovery = ctx.discovery().await?;
    while let Some(line) = lines.next().await {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Value = serde_json::from_str(&line)?;
        if event["type"] == "ERROR" {
            return Err(Error::Message(
                event["object"]["message"].as_str().unwrap_or("watch error").to_string(),
            ));
        }
        let mut object = event["object"].clone();
        if format.wants_table() {
            if object["columnDefinitions"].as_array().is_some_and(|c| !c.is_empty()) {
                columns = object["columnDefinitions"].clone();
            } else {
                object["columnDefinitions"] = columns.clone();
            }
            let grid = table::grid(&object, &options);
            let no_headers = headers_printed || args.no_headers;
            ctx.out(&table::render(&grid, no_headers, writer));
            headers_printed = true;
        } else {
            object = with_type(object, &target.resource);
            ctx.out(&render_objects(format, vec![object], true, true, &discovery)?);
        }
    }
    Ok(())
}
