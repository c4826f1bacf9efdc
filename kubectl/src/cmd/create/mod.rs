//! `kubectl create`: from files (`-f`, in `cmd::apply`) or through one of upstream's
//! generators (`namespace`, `deployment`, `job`, `cronjob`, `serviceaccount`, `rolebinding`,
//! `clusterrolebinding`, `configmap`, `secret generic`, `service
//! clusterip|nodeport|loadbalancer|externalname`), which build the object client-side
//! exactly as upstream does, then create it (or only print it with `--dry-run=client`).

pub mod data;
pub mod rbac;
pub mod workload;

use http::Method;
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::apply::{CreateArgs, DryRun};
use crate::cmd::select::Printer;
use crate::error::Error;
use crate::request;

/// Create a resource from a file or from stdin, or with one of the generators.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateCommand {
    #[command(subcommand)]
    pub generator: Option<Generator>,
    #[command(flatten)]
    pub files: CreateArgs,
}

/// The generators.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Generator {
    /// Create a namespace with the specified name.
    #[command(visible_alias = "ns")]
    Namespace(workload::NamespaceArgs),
    /// Create a deployment with the specified name.
    #[command(visible_alias = "deploy")]
    Deployment(workload::DeploymentArgs),
    /// Create a job with the specified name.
    Job(workload::JobArgs),
    /// Create a cronjob with the specified name.
    #[command(visible_alias = "cj")]
    Cronjob(workload::CronJobArgs),
    /// Create a service account with the specified name.
    #[command(visible_alias = "sa")]
    Serviceaccount(workload::NamespaceArgs),
    /// Create a role binding for a particular role or cluster role.
    Rolebinding(rbac::RoleBindingArgs),
    /// Create a cluster role binding for a particular cluster role.
    Clusterrolebinding(rbac::RoleBindingArgs),
    /// Create a config map from a local file, directory or literal value.
    #[command(visible_alias = "cm")]
    Configmap(data::ConfigMapArgs),
    /// Create a secret using a specified subcommand.
    Secret(data::SecretCommand),
    /// Create a service using a specified subcommand.
    #[command(visible_alias = "svc")]
    Service(workload::ServiceCommand),
}

/// The flags every generator has.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonFlags {
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The field manager name.
    #[arg(long, default_value = "kubectl-create")]
    pub field_manager: String,
    /// Record the object in the last-applied annotation, for later `apply`.
    #[arg(long)]
    pub save_config: bool,
    /// Server-side field validation (`strict`, `warn`, `ignore`).
    #[arg(long, default_value = "strict", num_args = 0..=1, default_missing_value = "strict")]
    pub validate: String,
}

/// Runs `kubectl create`.
pub async fn run(ctx: &mut Context, command: &CreateCommand) -> Result<(), Error> {
    match &command.generator {
        None => crate::cmd::apply::create(ctx, &command.files).await,
        Some(Generator::Namespace(args)) => workload::namespace(ctx, args).await,
        Some(Generator::Deployment(args)) => workload::deployment(ctx, args).await,
        Some(Generator::Job(args)) => workload::job(ctx, args).await,
        Some(Generator::Cronjob(args)) => workload::cronjob(ctx, args).await,
        Some(Generator::Serviceaccount(args)) => workload::serviceaccount(ctx, args).await,
        Some(Generator::Rolebinding(args)) => rbac::rolebinding(ctx, args).await,
        Some(Generator::Clusterrolebinding(args)) => rbac::clusterrolebinding(ctx, args).await,
        Some(Generator::Configmap(args)) => data::configmap(ctx, args).await,
        Some(Generator::Secret(args)) => data::secret(ctx, args).await,
        Some(Generator::Service(args)) => workload::service(ctx, args).await,
    }
}

/// Upstream's `NameFromCommandArgs`: exactly one NAME.
fn one_name(names: &[String], command: &str) -> Result<String, Error> {
    match names {
        [name] => Ok(name.clone()),
        other => Err(Error::Usage(format!(
            "exactly one NAME is required, got {}\nSee 'kubectl create {command} -h' for help and examples",
            other.len()
        ))),
    }
}

/// What a generator needs before building: the dry-run mode, the printer and the namespace
/// to put in the object (only an explicit `--namespace`, as upstream's `EnforceNamespace`).
struct Prepared {
    dry_run: DryRun,
    printer: Printer,
    namespace: String,
    explicit: bool,
}

async fn prepare(ctx: &mut Context, flags: &CommonFlags) -> Result<Prepared, Error> {
    let dry_run = DryRun::parse(&flags.dry_run)?;
    let mut printer = Printer::new(flags.output.as_deref(), dry_run)?;
    printer.typed_json = true;
    let conn = ctx.connection().await?;
    Ok(Prepared {
        dry_run,
        printer,
        namespace: conn.namespace.clone(),
        explicit: conn.namespace_explicit,
    })
}

impl Prepared {
    /// The `metadata` of a new object: name and, with an explicit namespace, the namespace.
    fn metadata(&self, name: &str, namespaced: bool) -> serde_json::Map<String, Value> {
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), name.into());
        if namespaced && self.explicit {
            metadata.insert("namespace".into(), self.namespace.clone().into());
        }
        metadata
    }
}

/// Creates the built object (unless `--dry-run=client`) and prints the outcome;
/// `failure` is upstream's wrapper of a failed create (`failed to create configmap: `), or
/// None to report the server's error as it is.
async fn finish(
    ctx: &mut Context,
    mut prepared: Prepared,
    flags: &CommonFlags,
    mut object: Value,
    failure: Option<&str>,
) -> Result<(), Error> {
    if flags.save_config {
        object = crate::cmd::apply::with_last_applied(&object);
    }
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let discovery = ctx.discovery().await?;
    let resource = discovery.for_kind(&api_version, &kind)?.clone();
    if prepared.dry_run != DryRun::Client {
        let validation = crate::cmd::apply::field_validation(&flags.validate)?;
        let url = request::with_query(
            &resource.collection_url(Some(&prepared.namespace)),
            &[
                ("dryRun", if prepared.dry_run == DryRun::Server { "All" } else { "" }),
                ("fieldManager", &flags.field_manager),
                ("fieldValidation", validation),
            ],
        );
        let client = ctx.client().await?;
        object = request::send(
            &client,
            Method::POST,
            &url,
            "application/json",
            Some("application/json"),
            serde_json::to_vec(&object)?,
        )
        .await
        .map_err(|error| match (failure, &error) {
            (Some(prefix), Error::Api(status)) => Error::Message(format!("{prefix}{}", status.message)),
            _ => error,
        })?;
        // Upstream decodes the answer into its Go type before printing it.
        object = crate::cmd::set::typed_view(object, &kind);
        if kind == "Service"
            && let Some(map) = object.as_object_mut()
        {
            let status = map.entry("status").or_insert_with(|| serde_json::json!({}));
            if let Some(status) = status.as_object_mut() {
                status.entry("loadBalancer").or_insert_with(|| serde_json::json!({}));
            }
        }
    }
    prepared
        .printer
        .print(ctx, Some(&discovery), &resource, &object, "created")
}
