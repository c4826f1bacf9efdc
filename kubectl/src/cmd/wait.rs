//! `kubectl wait`: waits, object by object and condition by condition, for objects to be
//! created or deleted, for a status condition, or for a JSONPath value, listing each object by
//! name and then watching it as upstream's `UntilWithSync` does; `condition met` per object
//! and condition, upstream's timeout and not-found errors.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::objects::{self, Failure, Found, Selection};
use crate::error::Error;
use crate::printer::OutputFormat;
use crate::request;

/// Experimental: Wait for a specific condition on one or many resources.
#[derive(clap::Args, Debug, Clone)]
pub struct WaitArgs {
    /// ([-f FILENAME] | resource.group/resource.name | resource.group [(-l label | --all)])
    pub args: Vec<String>,
    /// identifying the resource.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively. Useful when you want to
    /// manage related manifests organized within the same directory.
    #[arg(short = 'R', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub recursive: bool,
    /// Selector (label query) to filter on, supports '=', '==', and '!='.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on, supports '=', '==', and '!='.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Select all resources in the namespace of the specified resource types
    #[arg(long)]
    pub all: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// The condition to wait on: [create|delete|condition=condition-name[=condition-value]|jsonpath='{JSONPath expression}'=[JSONPath value]].
    #[arg(long = "for")]
    pub conditions: Vec<String>,
    /// The length of time to wait before giving up. Zero means check once and don't wait,
    /// negative means wait for a week.
    #[arg(long, default_value = "30s", allow_hyphen_values = true)]
    pub timeout: String,
    /// Output format. One of: (json, yaml, name, jsonpath, jsonpath-as-json).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// One `--for`.
#[derive(Debug)]
enum Condition {
    Create,
    Delete,
    Status {
        name: String,
        value: String,
    },
    JsonPath {
        path: jsonpath::JsonPath,
        value: Option<String>,
    },
}

impl Condition {
    fn parse(text: &str) -> Result<Self, Error> {
        let lower = text.to_lowercase();
        if lower == "delete" {
            return Ok(Self::Delete);
        }
        if lower == "create" {
            return Ok(Self::Create);
        }
        if let Some(rest) = text.strip_prefix("condition=") {
            let (name, value) = rest.split_once('=').unwrap_or((rest, "true"));
            return Ok(Self::Status {
                name: name.to_string(),
                value: value.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("jsonpath=") {
            let parts = split_on_single_equals(rest);
            if parts.is_empty() || parts.len() > 2 {
                return Err(Error::Message(
                    "jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 or --for=jsonpath='{.status.readyReplicas}'".into(),
                ));
            }
            let expression = jsonpath::relaxed_expression(&parts[0]).map_err(|e| Error::Message(e.to_string()))?;
            let value = match parts.get(1) {
                None => None,
                Some(value) => {
                    let value = value.trim_matches(['\'', '"']);
                    if value.is_empty() {
                        return Err(Error::Message(
                            "jsonpath wait has to have a value after equal sign, like --for=jsonpath='{.status.readyReplicas}'=3".into(),
                        ));
                    }
                    Some(value.to_string())
                }
            };
            if expression.is_empty() {
                return Err(Error::Message("jsonpath expression cannot be empty".into()));
            }
            let path = jsonpath::JsonPath::parse(&expression)
                .map_err(|e| Error::Message(e.to_string()))?
                .allow_missing_keys(true);
            return Ok(Self::JsonPath { path, value });
        }
        Err(Error::Message(format!(
            "unrecognized condition: {}",
            objects::go_quote(text)
        )))
    }

    /// Whether `object` satisfies a status or JSONPath condition (errors end the wait).
    fn check(&self, object: &Value) -> Result<bool, Error> {
        match self {
            Self::Create | Self::Delete => Ok(true),
            Self::Status { name, value } => Ok(status_condition_met(object, name, value)),
            Self::JsonPath { path, value } => jsonpath_met(path, value.as_deref(), object),
        }
    }
}

/// Splits on single `=`; `==` stays in the text (upstream's `splitJSONPathInput`).
fn split_on_single_equals(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '=' {
            if chars.peek() == Some(&'=') {
                chars.next();
                current.push_str("==");
                continue;
            }
            out.push(std::mem::take(&mut current));
            continue;
        }
        current.push(c);
    }
    out.push(current);
    out
}

/// The first condition of the type (case-folded) with a status decides; a condition older
/// than the object's generation does not count yet.
fn status_condition_met(object: &Value, name: &str, value: &str) -> bool {
    let conditions = object["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for condition in conditions {
        let Some(kind) = condition["type"].as_str() else {
            continue;
        };
        if kind.to_lowercase() != name.to_lowercase() {
            continue;
        }
        let Some(status) = condition["status"].as_str() else {
            continue;
        };
        if let Some(generation) = object["metadata"]["generation"].as_i64() {
            let observed = condition["observedGeneration"]
                .as_i64()
                .or_else(|| object["status"]["observedGeneration"].as_i64());
            if observed.is_some_and(|observed| observed < generation) {
                return false;
            }
        }
        return status.to_lowercase() == value.to_lowercase();
    }
    false
}

fn jsonpath_met(path: &jsonpath::JsonPath, value: Option<&str>, object: &Value) -> Result<bool, Error> {
    let results = path.find_results(object).map_err(|e| Error::Message(e.to_string()))?;
    if results.is_empty() || results[0].is_empty() {
        return Ok(false);
    }
    if results.len() > 1 {
        return Err(Error::Message(
            "given jsonpath expression matches more than one list".into(),
        ));
    }
    if results[0].len() > 1 {
        return Err(Error::Message(
            "given jsonpath expression matches more than one value".into(),
        ));
    }
    let Some(wanted) = value else {
        return Ok(true);
    };
    let found = &results[0][0];
    if found.is_object() || found.is_array() {
        return Err(Error::Message(
            "jsonpath leads to a nested object or list which is not supported".into(),
        ));
    }
    Ok(jsonpath::go_sprint(found).trim() == wanted.trim())
}

/// Runs `kubectl wait`.
pub async fn run(ctx: &mut Context, args: &WaitArgs) -> Result<(), Error> {
    let timeout = parse_timeout(&args.timeout)?;
    if args.conditions.is_empty() {
        return Err(Error::Message("unrecognized condition: []".into()));
    }
    let mut conditions = args
        .conditions
        .iter()
        .map(|text| Condition::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let format = match args.output.as_deref() {
        None => None,
        Some(output) => Some(OutputFormat::parse(Some(output))?),
    };
    if args.args.is_empty() && args.filenames.is_empty() {
        return Err(Error::Usage(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'".into(),
        ));
    }
    let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
    let named = args.args.iter().any(|a| a.contains('/')) || args.args.len() > 1 || !args.filenames.is_empty();
    if !named && !selecting {
        return Err(Error::Usage(
            "resource(s) were provided, but no name was specified".into(),
        ));
    }
    let selection = Selection {
        args: &args.args,
        filenames: &args.filenames,
        recursive: args.recursive,
        selector: args.selector.as_deref(),
        field_selector: args.field_selector.as_deref(),
        all_namespaces: args.all_namespaces,
    };
    // `create` is waited for first: until every named object exists.
    if conditions.iter().any(|c| matches!(c, Condition::Create)) {
        wait_for_creation(ctx, selection, timeout).await?;
    }
    let for_delete = conditions.iter().any(|c| matches!(c, Condition::Delete));
    let deadline = Instant::now() + timeout;
    let client = ctx.client().await?;
    let discovery = ctx.discovery().await?;
    let mut failures = Vec::new();
    let mut visited = 0;
    for found in objects::resolve_continue(ctx, selection).await? {
        let found = match found {
            Ok(found) => found,
            Err(error) if for_delete && error.is_not_found() => continue,
            Err(error) => {
                failures.push(Failure::One(error));
                continue;
            }
        };
        visited += 1;
        for condition in conditions.iter_mut() {
            let waited = match condition {
                Condition::Create => Ok(found.object.clone()),
                Condition::Delete => until_deleted(&client, &found, timeout, deadline).await,
                _ => until_met(&client, &found, condition, timeout, deadline).await,
            };
            match waited {
                Ok(object) => {
                    let text = match &format {
                        None => format!("{} condition met\n", found.display_name()),
                        Some(OutputFormat::Name) => format!("{}\n", found.display_name()),
                        Some(format) => {
                            let object = if object.is_null() { found.object.clone() } else { object };
                            crate::cmd::get::render_objects(format, vec![object], true, false, &discovery)?
                        }
                    };
                    ctx.out(&text);
                }
                Err(error) => {
                    failures.push(Failure::One(error));
                    break;
                }
            }
        }
    }
    if visited == 0 && failures.is_empty() && !for_delete {
        return Err(Error::Message("no matching resources found".into()));
    }
    objects::finish(failures)
}

/// `--timeout`: Go durations; negative means a week.
fn parse_timeout(text: &str) -> Result<Duration, Error> {
    match text.strip_prefix('-') {
        Some(positive) => match objects::duration_flag(positive, "timeout", "wait") {
            Ok(_) => Ok(Duration::from_secs(168 * 3600)),
            Err(_) => objects::duration_flag(text, "timeout", "wait"),
        },
        None => objects::duration_flag(text, "timeout", "wait"),
    }
}

/// Polls until every object `selection` names exists.
async fn wait_for_creation(ctx: &mut Context, selection: Selection<'_>, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let results = objects::resolve_continue(ctx, selection).await?;
        let missing = results.iter().any(|r| matches!(r, Err(e) if e.is_not_found()));
        if !missing {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Message("timed out waiting for the condition".into()));
        }
        tokio::time::sleep(Duration::from_millis(500).min(deadline - Instant::now())).await;
    }
}

fn timed_out(found: &Found) -> Error {
    Error::Message(format!(
        "timed out waiting for the condition on {}/{}",
        found.resource.plural, found.name
    ))
}

fn not_met(found: &Found) -> Error {
    Error::Message(format!(
        "condition not met for {}/{}",
        found.resource.plural, found.name
    ))
}

/// The object's collection URL with a name field selector, and the list of it.
async fn list_by_name(client: &kube::Client, found: &Found) -> Result<(String, Value), Error> {
    let field_selector = format!("metadata.name={}", found.name);
    let collection = request::with_query(
        &found.resource.collection_url(found.namespace.as_deref()),
        &[("fieldSelector", &field_selector)],
    );
    let list = request::get(client, &collection, "application/json").await?;
    Ok((collection, list))
}

/// Waits until the object is gone; its last state is the result.
async fn until_deleted(
    client: &kube::Client,
    found: &Found,
    timeout: Duration,
    deadline: Instant,
) -> Result<Value, Error> {
    let current = match request::get(client, &found.url(), "application/json").await {
        Ok(object) => object,
        Err(error) if error.is_not_found() => return Ok(found.object.clone()),
        Err(error) => return Err(error),
    };
    if timeout.is_zero() {
        return Err(not_met(found));
    }
    let watching = async {
        let (collection, list) = list_by_name(client, found).await?;
        if list["items"].as_array().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let version = list["metadata"]["resourceVersion"].as_str().unwrap_or_default();
        objects::watch_until(client, &collection, version, async |kind, _| {
            Ok((kind == "DELETED").then_some(()))
        })
        .await
    };
    match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), watching).await {
        Ok(Ok(())) => Ok(current),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(timed_out(found)),
    }
}

/// Waits until a status or JSONPath condition holds; the object that met it is the result.
async fn until_met(
    client: &kube::Client,
    found: &Found,
    condition: &Condition,
    timeout: Duration,
    deadline: Instant,
) -> Result<Value, Error> {
    if timeout.is_zero() {
        let object = request::get(client, &found.url(), "application/json").await?;
        return if condition.check(&object)? {
            Ok(object)
        } else {
            Err(not_met(found))
        };
    }
    let watching = async {
        let (collection, list) = list_by_name(client, found).await?;
        let Some(object) = list["items"].as_array().and_then(|items| items.first()) else {
            return Err(Error::Api(Box::new(not_found_status(found))));
        };
        if condition.check(object)? {
            return Ok(object.clone());
        }
        let version = list["metadata"]["resourceVersion"].as_str().unwrap_or_default();
        objects::watch_until(client, &collection, version, async |kind, object| match kind {
            "ADDED" | "MODIFIED" if condition.check(object)? => Ok(Some(object.clone())),
            _ => Ok(None),
        })
        .await
    };
    match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), watching).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(found)),
    }
}

/// The NotFound status upstream makes when the object is gone before the watch starts.
fn not_found_status(found: &Found) -> kube::core::Status {
    let mut status = kube::core::Status::failure(&format!("{} not found", found.quoted()), "NotFound");
    status.code = 404;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_parse_like_upstream() {
        assert!(matches!(Condition::parse("Delete").unwrap(), Condition::Delete));
        let Condition::Status { name, value } = Condition::parse("condition=Ready=False").unwrap() else {
            panic!("status condition")
        };
        assert_eq!((name.as_str(), value.as_str()), ("Ready", "False"));
        assert_eq!(
            Condition::parse("foo").unwrap_err().to_string(),
            "unrecognized condition: \"foo\""
        );
        assert!(
            Condition::parse("jsonpath={.a}=")
                .unwrap_err()
                .to_string()
                .contains("value after equal sign")
        );
        assert_eq!(split_on_single_equals("a==b=c"), ["a==b", "c"]);
    }

    #[test]
    fn status_conditions_fold_case_and_respect_generations() {
        let pod = json!({"metadata": {"generation": 2},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(status_condition_met(&pod, "ready", "true"));
        assert!(!status_condition_met(&pod, "Ready", "False"));
        let stale = json!({"metadata": {"generation": 3},
            "status": {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]}});
        assert!(!status_condition_met(&stale, "Ready", "True"));
    }

    #[test]
    fn jsonpath_values_compare_as_printed() {
        let object = json!({"status": {"replicas": 3, "ready": true, "list": [1, 2]}});
        let path = |p: &str| jsonpath::JsonPath::parse(p).unwrap().allow_missing_keys(true);
        assert!(jsonpath_met(&path("{.status.replicas}"), Some("3"), &object).unwrap());
        assert!(jsonpath_met(&path("{.status.ready}"), Some("true"), &object).unwrap());
        assert!(!jsonpath_met(&path("{.status.missing}"), None, &object).unwrap());
        assert!(jsonpath_met(&path("{.status.list}"), Some("x"), &object).is_err());
        assert!(jsonpath_met(&path("{.status.list[*]}"), None, &object).is_err());
    }
}
