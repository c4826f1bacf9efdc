//! The objects a command's arguments name, fetched from the server, as upstream's resource
//! builder resolves them with `ResourceTypeOrNameArgs(true, ...)` and `Latest()`:
//! `TYPE NAME...`, `TYPE/NAME...`, `TYPE` alone (every object of the type, filtered by `-l`),
//! or the objects of `-f` manifests.

use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::select::{self, Fetch, SelectFlags, TypeAlone};
use crate::discovery::Resource;
use crate::error::Error;
use crate::request;

/// One object, as the server has it now.
pub type Found = select::Info;

/// What names the objects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub args: &'a [String],
    pub filenames: &'a [String],
    pub recursive: bool,
    pub selector: Option<&'a str>,
    pub field_selector: Option<&'a str>,
    pub all_namespaces: bool,
}

impl Selection<'_> {
    /// Whether nothing at all was named (upstream: "required resource not specified").
    pub fn is_empty(&self) -> bool {
        self.args.is_empty() && self.filenames.is_empty()
    }
}

/// Fetches every object `selection` names, in order; the first failure is the error.
pub async fn resolve(ctx: &mut Context, selection: Selection<'_>) -> Result<Vec<Found>, Error> {
    resolve_continue(ctx, selection).await?.into_iter().collect()
}

/// Fetches every object `selection` names, in order, a failure in the place of each name that
/// could not be fetched (upstream's `ContinueOnError()`): the command handles the objects it
/// has and reports the failures at the end. A type named alone means every object of it.
pub async fn resolve_continue(ctx: &mut Context, selection: Selection<'_>) -> Result<Vec<Result<Found, Error>>, Error> {
    let flags = SelectFlags {
        filenames: selection.filenames.to_vec(),
        recursive: selection.recursive,
        selector: selection.selector.map(str::to_string),
        field_selector: selection.field_selector.map(str::to_string),
        all: false,
        all_namespaces: selection.all_namespaces,
    };
    let selected = select::select_with(ctx, selection.args, &flags, Fetch::Latest, TypeAlone::ListsAll).await?;
    Ok(selected.items)
}

/// One entry of upstream's error list: an error, or an aggregate of errors (the fetch errors
/// of `restart`, `pause` and `resume` when there are several; the pod errors of a node
/// `drain` could not empty).
#[derive(Debug)]
pub enum Failure {
    One(Error),
    Many(Vec<Error>),
}

/// Reports the failures as upstream's `CheckErr` does with its aggregate of them: a lone error
/// as usual (`error: ...`); a lone aggregate, or several failures, one per line, API errors as
/// `Error from server ...` and the others without the `error: ` prefix; a nested aggregate
/// in a line as `[a, b]`.
pub fn finish<F: Into<Failure>>(failures: Vec<F>) -> Result<(), Error> {
    let mut failures: Vec<Failure> = failures.into_iter().map(Into::into).collect();
    let errors: Vec<Error> = match failures.len() {
        0 => return Ok(()),
        1 => match failures.remove(0) {
            Failure::One(error) => return Err(error),
            Failure::Many(errors) => errors,
        },
        _ => failures
            .into_iter()
            .map(|failure| match failure {
                Failure::One(error) => error,
                Failure::Many(errors) if errors.len() == 1 => Error::Aggregate(error_text(&errors[0])),
                Failure::Many(errors) => Error::Aggregate(format!(
                    "[{}]",
                    errors.iter().map(error_text).collect::<Vec<_>>().join(", ")
                )),
            })
            .collect(),
    };
    let lines: Vec<String> = errors
        .iter()
        .map(|error| match error {
            Error::Api(_) => error.render(),
            other => other.to_string(),
        })
        .collect();
    Err(Error::Aggregate(lines.join("\n")))
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::One(error)
    }
}

/// Whether `object` has a controller ownerReference with `uid`.
pub fn controlled_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true && r["uid"] == uid))
}

/// Go's `%q` of a string (the common cases: quotes, backslashes, control characters).
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The events of a watch on `collection_url` (a list URL with its selectors), from
/// `resource_version`, one parsed JSON event at a time.
pub async fn watch(
    client: &kube::Client,
    collection_url: &str,
    resource_version: &str,
) -> Result<impl futures::Stream<Item = Result<Value, Error>> + use<>, Error> {
    use futures::{AsyncBufReadExt, StreamExt};
    let url = request::with_query(
        collection_url,
        &[
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("watch", "true"),
        ],
    );
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| Error::Message(e.to_string()))?;
    let stream = client.request_stream(request).await?;
    Ok(stream.lines().filter_map(|line| async move {
        match line {
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(serde_json::from_str::<Value>(&line).map_err(Error::from)),
            Err(error) => Some(Err(Error::from(error))),
        }
    }))
}

/// Watches `collection_url` from `resource_version`, resuming from the last version seen when
/// the server ends the stream, and hands each event's type and object to `handle` until it
/// returns a value. Bookmarks are skipped; an `ERROR` event ends the watch with its message.
pub async fn watch_until<T>(
    client: &kube::Client,
    collection_url: &str,
    resource_version: &str,
    mut handle: impl AsyncFnMut(&str, &Value) -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    use futures::StreamExt;
    let mut resource_version = resource_version.to_string();
    loop {
        let mut events = Box::pin(watch(client, collection_url, &resource_version).await?);
        while let Some(event) = events.next().await {
            let event = event?;
            let object = &event["object"];
            let kind = event["type"].as_str().unwrap_or_default();
            if kind == "ERROR" {
                return Err(Error::Message(
                    object["message"].as_str().unwrap_or("watch error").to_string(),
                ));
            }
            if let Some(version) = object["metadata"]["resourceVersion"].as_str() {
                resource_version = version.to_string();
            }
            if kind == "BOOKMARK" {
                continue;
            }
            if let Some(done) = handle(kind, object).await? {
                return Ok(done);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `TYPE.group` as upstream's `schema.GroupKind` prints itself (`Deployment.apps`, `Pod`).
pub fn group_kind(resource: &Resource) -> String {
    if resource.group.is_empty() {
        resource.kind.clone()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

/// An error's text as Go's `%v` of a client error shows it (the API's message alone).
pub fn error_text(error: &Error) -> String {
    match error {
        Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// A Go duration flag (`--timeout`), with cobra's error when it does not parse.
pub fn duration_flag(text: &str, flag: &str, command: &str) -> Result<std::time::Duration, Error> {
    component_base::parse_duration(text).map_err(|e| {
        // Go names a number without a unit apart.
        let number = !text.is_empty()
            && text
                .trim_start_matches(['-', '+'])
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.');
        let reason = if number {
            format!("missing unit in duration {}", go_quote(text))
        } else {
            e.to_string()
        };
        Error::Usage(format!(
            "invalid argument {} for \"--{flag}\" flag: time: {reason}\nSee 'kubectl {command} --help' for usage.",
            go_quote(text)
        ))
    })
}
