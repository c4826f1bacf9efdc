//! `kubectl scale`: sets `spec.replicas` through the `scale` subresource, with the
//! `--current-replicas` and `--resource-version` preconditions.

use http::Method;
use serde_json::json;

use crate::cmd::Context;
use crate::cmd::get::targets;
use crate::error::Error;
use crate::request;

/// Set a new size for a deployment, replica set, replication controller, or stateful set.
#[derive(clap::Args, Debug, Clone)]
pub struct ScaleArgs {
    /// TYPE NAME | TYPE/NAME ...
    pub args: Vec<String>,
    /// The new desired number of replicas.
    #[arg(long)]
    pub replicas: i64,
    /// Precondition for current size (-1: none).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
    /// Precondition for resource version.
    #[arg(long)]
    pub resource_version: Option<String>,
}

/// Runs `kubectl scale`.
pub async fn run(ctx: &mut Context, args: &ScaleArgs) -> Result<(), Error> {
    if args.replicas < 0 {
        return Err(Error::Usage(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0".into(),
        ));
    }
    let discovery = ctx.discovery().await?;
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    for target in targets(&discovery, &args.args)? {
        if target.names.is_empty() {
            return Err(Error::Usage(
                "resource(s) were provided, but no name was specified".into(),
            ));
        }
        for name in &target.names {
            let ns = target.resource.namespaced.then_some(namespace.as_str());
            let url = format!("{}/scale", target.resource.object_url(ns, name));
            if args.current_replicas >= 0 || args.resource_version.is_some() {
                let scale = request::get(&client, &url, "application/json").await?;
                let current = scale["spec"]["replicas"].as_i64().unwrap_or(0);
                if args.current_replicas >= 0 && current != args.current_replicas {
                    return Err(Error::Message(format!(
                        "Expected replicas to be {}, was {current}",
                        args.current_replicas
                    )));
                }
                if let Some(version) = &args.resource_version
                    && scale["metadata"]["resourceVersion"].as_str() != Some(version)
                {
                    return Err(Error::Message(format!(
                        "Expected resource version to be {version}, was {}",
                        scale["metadata"]["resourceVersion"].as_str().unwrap_or_default()
                    )));
                }
            }
            let patch = json!({"spec": {"replicas": args.replicas}});
            request::send(
                &client,
                Method::PATCH,
                &url,
                "application/json",
                Some("application/merge-patch+json"),
                serde_json::to_vec(&patch)?,
            )
            .await?;
            ctx.out(&format!("{}/{name} scaled\n", target.resource.kind_prefix()));
        }
    }
    Ok(())
}
