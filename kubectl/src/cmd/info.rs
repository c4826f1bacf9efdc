//! What the cluster is: `version`, `api-resources`, `api-versions`, `cluster-info`.

use serde_json::{Value, json};

use crate::cmd::Context;
use crate::error::Error;
use crate::printer::table::TabWriter;
use crate::printer::{self, OutputFormat};
use crate::request;

/// The Kubernetes release whose kubectl this one stands in for.
pub const COMPATIBLE_WITH: (u32, u32) = (1, 37);

/// Print the client and server version information.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct VersionArgs {
    /// If true, shows client version only (no server required).
    #[arg(long)]
    pub client: bool,
    /// One of 'yaml' or 'json'.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

fn client_version() -> Value {
    let (major, minor) = COMPATIBLE_WITH;
    json!({
        "major": major.to_string(),
        "minor": minor.to_string(),
        "gitVersion": format!("v{major}.{minor}.0-kaji.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// Runs `kubectl version`.
pub async fn version(ctx: &mut Context, args: &VersionArgs) -> Result<(), Error> {
    let mut document = json!({"clientVersion": client_version()});
    let mut server_error = None;
    if !args.client {
        match ctx.client().await {
            Ok(client) => match request::get(&client, "/version", "application/json").await {
                Ok(server) => document["serverVersion"] = server,
                Err(error) => server_error = Some(error),
            },
            Err(error) => server_error = Some(error),
        }
    }
    match args.output.as_deref() {
        None | Some("") => {
            let mut text = format!(
                "Client Version: {}\n",
                document["clientVersion"]["gitVersion"].as_str().unwrap_or_default()
            );
            if let Some(server) = document["serverVersion"]["gitVersion"].as_str() {
                text.push_str(&format!("Server Version: {server}\n"));
            }
            ctx.out(&text);
        }
        Some("json") => ctx.out(&printer::to_json(&document)),
        Some("yaml") => ctx.out(&printer::yaml::to_yaml(&document)),
        Some(other) => {
            return Err(Error::Usage(format!(
                "--output must be 'yaml' or 'json', not {other:?}"
            )));
        }
    }
    server_error.map_or(Ok(()), Err)
}

/// Print the supported API resources on the server.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApiResourcesArgs {
    /// `wide` or `name`.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Limit to resources in the specified API group.
    #[arg(long)]
    pub api_group: Option<String>,
    /// If false, non-namespaced resources will be returned, otherwise namespaced ones.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub namespaced: Option<bool>,
    /// Limit to resources that support the specified verbs.
    #[arg(long, value_delimiter = ',')]
    pub verbs: Vec<String>,
    /// When using the default or custom-column output format, don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Sort by `name` or `kind`.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Limit to resources that belong to the specified categories.
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
}

/// Runs `kubectl api-resources`: preferred versions, sorted by group then name, as upstream.
pub async fn api_resources(ctx: &mut Context, args: &ApiResourcesArgs) -> Result<(), Error> {
    let format = OutputFormat::parse(args.output.as_deref())?;
    let discovery = ctx.discovery().await?;
    let mut resources: Vec<_> = discovery
        .resources()
        .iter()
        .filter(|r| r.preferred)
        .filter(|r| args.api_group.as_ref().is_none_or(|g| *g == r.group))
        .filter(|r| args.namespaced.is_none_or(|n| n == r.namespaced))
        .filter(|r| args.verbs.iter().all(|v| r.supports(v)))
        .filter(|r| args.categories.iter().all(|c| r.categories.contains(c)))
        .collect();
    match args.sort_by.as_deref() {
        Some("name") => resources.sort_by(|a, b| a.plural.cmp(&b.plural)),
        Some("kind") => resources.sort_by(|a, b| a.kind.cmp(&b.kind)),
        None => resources.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural))),
        Some(other) => {
            return Err(Error::Usage(format!(
                "--sort-by accepts only name or kind, got {other:?}"
            )));
        }
    }
    if format == OutputFormat::Name {
        let text: String = resources.iter().map(|r| r.plural_group() + "\n").collect();
        ctx.out(&text);
        return Ok(());
    }
    let wide = format == OutputFormat::Wide;
    let mut lines = Vec::new();
    if !args.no_headers {
        let mut header: Vec<String> = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
            .map(String::from)
            .into();
        if wide {
            header.extend(["VERBS".to_string(), "CATEGORIES".to_string()]);
        }
        lines.push(header);
    }
    for r in resources {
        let mut line = vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ];
        if wide {
            line.push(r.verbs.join(","));
            line.push(r.categories.join(","));
        }
        lines.push(line);
    }
    let text = TabWriter::default().format(&lines);
    ctx.out(&text);
    Ok(())
}

/// Runs `kubectl api-versions`: every served group/version, sorted.
pub async fn api_versions(ctx: &mut Context) -> Result<(), Error> {
    let discovery = ctx.discovery().await?;
    let mut versions: Vec<String> = discovery.resources().iter().map(|r| r.api_version()).collect();
    versions.sort();
    versions.dedup();
    let text: String = versions.into_iter().map(|v| v + "\n").collect();
    ctx.out(&text);
    Ok(())
}

/// Runs `kubectl cluster-info`: the control plane's address and the cluster services
/// (kube-system Services labelled `kubernetes.io/cluster-service=true`) behind its proxy.
pub async fn cluster_info(ctx: &mut Context) -> Result<(), Error> {
    let server = ctx.connection().await?.server.clone();
    let client = ctx.client().await?;
    let url = request::with_query(
        "/api/v1/namespaces/kube-system/services",
        &[("labelSelector", "kubernetes.io/cluster-service=true")],
    );
    let services = request::get(&client, &url, "application/json").await?;
    let mut text = format!("Kubernetes control plane is running at {server}\n");
    for service in services["items"].as_array().cloned().unwrap_or_default() {
        let name = service["metadata"]["name"].as_str().unwrap_or_default();
        let shown = service["metadata"]["labels"]["kubernetes.io/name"]
            .as_str()
            .unwrap_or(name);
        let port = service["spec"]["ports"][0]["name"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "{shown} is running at {server}/api/v1/namespaces/kube-system/services/{name}{port}/proxy\n"
        ));
    }
    text.push_str("\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n");
    ctx.out(&text);
    Ok(())
}
