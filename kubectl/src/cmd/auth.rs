//! `kubectl auth can-i` (a SelfSubjectAccessReview, or a SelfSubjectRulesReview for `--list`)
//! and `kubectl auth whoami` (a SelfSubjectReview), printed as upstream prints them.

use http::Method;
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::error::Error;
use crate::printer::table::TabWriter;
use crate::printer::{self, OutputFormat};

/// A SelfSubjectReview in the field order of the Go type, as upstream's JSON printer writes it.
#[derive(serde::Serialize)]
struct TypedReview<'a> {
    kind: &'a Value,
    #[serde(rename = "apiVersion")]
    api_version: &'a Value,
    metadata: &'a Value,
    status: TypedStatus<'a>,
}

#[derive(serde::Serialize)]
struct TypedStatus<'a> {
    #[serde(rename = "userInfo")]
    user_info: TypedUser<'a>,
}

#[derive(serde::Serialize)]
struct TypedUser<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<&'a Value>,
}

fn typed_json(review: &Value) -> Result<String, Error> {
    let info = &review["status"]["userInfo"];
    let typed = TypedReview {
        kind: &review["kind"],
        api_version: &review["apiVersion"],
        metadata: &review["metadata"],
        status: TypedStatus {
            user_info: TypedUser {
                username: info.get("username"),
                uid: info.get("uid"),
                groups: info.get("groups"),
                extra: info.get("extra"),
            },
        },
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&typed, &mut serializer)?;
    Ok(format!("{}\n", String::from_utf8_lossy(&out)))
}
use crate::request;

/// Inspect authorization.
#[derive(clap::Args, Debug, Clone)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AuthCommand {
    /// Check whether an action is allowed.
    CanI(CanIArgs),
    /// Experimental: Check self subject attributes.
    Whoami(WhoamiArgs),
}

/// `auth can-i VERB [TYPE | TYPE/NAME | NONRESOURCEURL]`.
#[derive(clap::Args, Debug, Clone)]
pub struct CanIArgs {
    /// VERB [TYPE | TYPE/NAME | NONRESOURCEURL]
    pub args: Vec<String>,
    /// If true, check the specified action in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// If true, prints all allowed actions.
    #[arg(long)]
    pub list: bool,
    /// If true, prints allowed actions without headers.
    #[arg(long)]
    pub no_headers: bool,
    /// If true, suppress output and just return the exit code.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// SubResource such as pod/log or deployment/scale.
    #[arg(long)]
    pub subresource: Option<String>,
}

/// `auth whoami`.
#[derive(clap::Args, Debug, Clone)]
pub struct WhoamiArgs {
    /// Output format: json or yaml.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// The verbs upstream knows for resources and for non-resource URLs.
const RESOURCE_VERBS: [&str; 15] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "use",
    "bind",
    "impersonate",
    "*",
    "approve",
    "sign",
    "escalate",
];
const NON_RESOURCE_VERBS: [&str; 7] = ["get", "put", "post", "head", "options", "delete", "patch"];

/// Runs `kubectl auth ...`.
pub async fn run(ctx: &mut Context, args: &AuthArgs) -> Result<(), Error> {
    match &args.command {
        AuthCommand::CanI(args) => can_i(ctx, args).await,
        AuthCommand::Whoami(args) => whoami(ctx, args).await,
    }
}

async fn create(ctx: &mut Context, url: &str, body: &Value) -> Result<Value, Error> {
    let client = ctx.client().await?;
    request::send(
        &client,
        Method::POST,
        url,
        "application/json",
        Some("application/json"),
        serde_json::to_vec(body)?,
    )
    .await
}

async fn can_i(ctx: &mut Context, args: &CanIArgs) -> Result<(), Error> {
    let namespace = if args.all_namespaces {
        String::new()
    } else {
        ctx.namespace().await?
    };
    if args.list {
        let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                            "spec": {"namespace": namespace}});
        let answer = create(ctx, "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", &review).await?;
        ctx.out(&rules_table(&answer["status"], args.no_headers));
        return Ok(());
    }
    let [verb, what] = args.args.as_slice() else {
        return Err(Error::Message(
            "you must specify two arguments: verb resource or verb resource/resourceName.\nSee 'kubectl auth can-i -h' for help and examples.".into(),
        ));
    };
    let spec = if what.starts_with('/') {
        if !NON_RESOURCE_VERBS.contains(&verb.as_str()) {
            ctx.err(&format!("Warning: verb '{verb}' is not a known verb\n\n"));
        }
        json!({"nonResourceAttributes": {"verb": verb, "path": what}})
    } else {
        let (word, name) = what.split_once('/').unwrap_or((what, ""));
        let discovery = ctx.discovery().await?;
        let (group, resource) = match discovery.resolve(word) {
            Ok(found) => (found.group.clone(), found.plural.clone()),
            Err(_) => {
                let (resource, group) = word.split_once('.').unwrap_or((word, ""));
                if group.is_empty() {
                    ctx.err(&format!(
                        "Warning: the server doesn't have a resource type '{resource}'\n\n"
                    ));
                } else {
                    ctx.err(&format!(
                        "Warning: the server doesn't have a resource type '{resource}' in group '{group}'\n\n"
                    ));
                }
                (group.to_string(), resource.to_string())
            }
        };
        if !RESOURCE_VERBS.contains(&verb.as_str()) {
            ctx.err(&format!("Warning: verb '{verb}' is not a known verb\n\n"));
        }
        let mut attributes = json!({"namespace": namespace, "verb": verb, "group": group, "resource": resource});
        if let Some(subresource) = &args.subresource {
            attributes["subresource"] = subresource.clone().into();
        }
        if !name.is_empty() {
            attributes["name"] = name.into();
        }
        json!({"resourceAttributes": attributes})
    };
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec});
    let answer = create(ctx, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &review).await?;
    let status = &answer["status"];
    if status["allowed"] == true {
        if !args.quiet {
            ctx.out("yes\n");
        }
        return Ok(());
    }
    if !args.quiet {
        match status["reason"].as_str().filter(|r| !r.is_empty()) {
            Some(reason) => ctx.out(&format!("no - {reason}\n")),
            None => ctx.out("no\n"),
        }
    }
    Err(Error::Aggregate(String::new()))
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(value: &Value) -> String {
    let items: Vec<&str> = value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!("[{}]", items.join(" "))
}

/// The `--list` table: a row per resource (as `resource.group`) of each resource rule, then the
/// non-resource rules.
fn rules_table(status: &Value, no_headers: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    if !no_headers {
        rows.push(
            ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]
                .map(String::from)
                .to_vec(),
        );
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    for rule in status["resourceRules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let groups = strings(&rule["apiGroups"]);
        for resource in strings(&rule["resources"]) {
            let groups = if groups.is_empty() {
                vec![String::new()]
            } else {
                groups.clone()
            };
            for group in groups {
                let name = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                rows.push(vec![
                    name,
                    "[]".into(),
                    go_list(&rule["resourceNames"]),
                    go_list(&rule["verbs"]),
                ]);
            }
        }
    }
    for rule in status["nonResourceRules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        rows.push(vec![
            String::new(),
            go_list(&rule["nonResourceURLs"]),
            "[]".into(),
            go_list(&rule["verbs"]),
        ]);
    }
    TabWriter::default().format(&rows)
}

async fn whoami(ctx: &mut Context, args: &WhoamiArgs) -> Result<(), Error> {
    let format = args
        .output
        .as_deref()
        .map(|o| OutputFormat::parse(Some(o)))
        .transpose()?;
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}});
    let answer = create(ctx, "/apis/authentication.k8s.io/v1/selfsubjectreviews", &review)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Error::Message("the selfsubjectreviews API is not enabled in the cluster".into())
            } else {
                e
            }
        })?;
    let mut answer = answer;
    if let Some(meta) = answer["metadata"].as_object_mut() {
        meta.retain(|_, v| !v.is_null());
    }
    match format {
        Some(OutputFormat::Json) => ctx.out(&typed_json(&answer)?),
        Some(OutputFormat::Yaml) => ctx.out(&printer::yaml::to_yaml(&answer)),
        Some(_) => return Err(Error::Message("whoami prints json or yaml only".into())),
        None => {
            let info = &answer["status"]["userInfo"];
            let mut rows = vec![vec!["ATTRIBUTE".to_string(), "VALUE".to_string()]];
            for (label, key) in [("Username", "username"), ("UID", "uid")] {
                if let Some(value) = info[key].as_str().filter(|v| !v.is_empty()) {
                    rows.push(vec![label.to_string(), value.to_string()]);
                }
            }
            if info["groups"].as_array().is_some_and(|g| !g.is_empty()) {
                rows.push(vec!["Groups".into(), go_list(&info["groups"])]);
            }
            if let Some(extra) = info["extra"].as_object() {
                let mut keys: Vec<&String> = extra.keys().collect();
                keys.sort();
                for key in keys {
                    rows.push(vec![format!("Extra: {key}"), go_list(&extra[key])]);
                }
            }
            ctx.out(&TabWriter::default().format(&rows));
        }
    }
    Ok(())
}
