//! The generators of namespaces, deployments, jobs, cronjobs and services, building the
//! objects field for field as upstream's `create_namespace.go`, `create_deployment.go`,
//! `create_job.go`, `create_cronjob.go` and `create_service.go` do.

use rand::Rng;
use serde_json::{Map, Value, json};

use super::{CommonFlags, finish, one_name, prepare};
use crate::cmd::Context;
use crate::error::Error;
use crate::request;

/// `create namespace NAME` (and `create serviceaccount NAME`: the same flags).
#[derive(clap::Args, Debug, Clone)]
pub struct NamespaceArgs {
    pub names: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create deployment NAME --image=image... [-- command]`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeploymentArgs {
    pub names: Vec<String>,
    /// Image names to run; one container per image.
    #[arg(long = "image")]
    pub images: Vec<String>,
    /// Number of replicas to create.
    #[arg(short = 'r', long, default_value_t = 1, allow_negative_numbers = true)]
    pub replicas: i32,
    /// The containerPort that this deployment exposes (-1: none).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub port: i32,
    /// The command to run in the container (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create job NAME --image=image [-- command]` or `--from=cronjob/NAME`.
#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    pub names: Vec<String>,
    /// Image name to run.
    #[arg(long)]
    pub image: Option<String>,
    /// The name of the resource to create a Job from (only cronjob is supported).
    #[arg(long)]
    pub from: Option<String>,
    /// The command to run in the container (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create cronjob NAME --image=image --schedule=CRON [--restart=OnFailure|Never] [-- command]`.
#[derive(clap::Args, Debug, Clone)]
pub struct CronJobArgs {
    pub names: Vec<String>,
    /// Image name to run.
    #[arg(long)]
    pub image: Option<String>,
    /// A schedule in the Cron format the job should be run with.
    #[arg(long)]
    pub schedule: Option<String>,
    /// job's restart policy. supported values: OnFailure, Never
    #[arg(long)]
    pub restart: Option<String>,
    /// The command to run in the container (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create service TYPE NAME`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceCommand {
    #[command(subcommand)]
    pub kind: ServiceKind,
}

/// The service types, each with its own flags.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ServiceKind {
    /// Create a ClusterIP service.
    Clusterip {
        #[command(flatten)]
        base: ServiceArgs,
        /// Assign your own ClusterIP or set to 'None' for a 'headless' service.
        #[arg(long)]
        clusterip: Option<String>,
    },
    /// Create a NodePort service.
    Nodeport {
        #[command(flatten)]
        base: ServiceArgs,
        /// Port used to expose the service on each node in a cluster.
        #[arg(long, default_value_t = 0)]
        node_port: i32,
    },
    /// Create a LoadBalancer service.
    Loadbalancer {
        #[command(flatten)]
        base: ServiceArgs,
    },
    /// Create an ExternalName service.
    Externalname {
        #[command(flatten)]
        base: ServiceArgs,
        /// External name of service.
        #[arg(long)]
        external_name: Option<String>,
    },
}

/// The flags of every service type.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    pub names: Vec<String>,
    /// Port pairs can be specified as '<port>:<targetPort>'.
    #[arg(long, value_delimiter = ',')]
    pub tcp: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// Runs `create namespace`.
pub async fn namespace(ctx: &mut Context, args: &NamespaceArgs) -> Result<(), Error> {
    let name = one_name(&args.names, "namespace")?;
    let prepared = prepare(ctx, &args.common).await?;
    let object = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": prepared.metadata(&name, false),
        "spec": {},
        "status": {},
    });
    finish(ctx, prepared, &args.common, object, None).await
}

/// Runs `create deployment`.
pub async fn deployment(ctx: &mut Context, args: &DeploymentArgs) -> Result<(), Error> {
    if args.images.is_empty() {
        return Err(Error::Usage("required flag(s) \"image\" not set".into()));
    }
    let name = one_name(&args.names, "deployment")?;
    let prepared = prepare(ctx, &args.common).await?;
    if args.images.len() > 1 && !args.command.is_empty() {
        return Err(Error::Usage(
            "cannot specify multiple --image options and command".into(),
        ));
    }
    let mut containers: Vec<Value> = args
        .images
        .iter()
        .map(|image| {
            let mut container = json!({"image": image, "name": container_name(image), "resources": {}});
            if !args.command.is_empty() {
                container["command"] = json!(args.command);
            }
            container
        })
        .collect();
    if args.port >= 0
        && let Some(first) = containers.first_mut()
    {
        first["ports"] = json!([{"containerPort": args.port}]);
    }
    let labels = json!({"app": name});
    let mut metadata = prepared.metadata(&name, true);
    metadata.insert("labels".into(), labels.clone());
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
        "status": {},
    });
    finish(
        ctx,
        prepared,
        &args.common,
        object,
        Some("failed to create deployment: "),
    )
    .await
}

/// Upstream's container name for an image: its last path segment without tag or digest;
/// `_` and `.` become `-`, and then five random characters make it unique.
fn container_name(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let name = last.split(':').next().unwrap_or(last);
    let name = name.split('@').next().unwrap_or(name);
    if !name.contains(['_', '.']) {
        return name.to_string();
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{suffix}", name.replace(['_', '.'], "-"))
}

/// Runs `create job`.
pub async fn job(ctx: &mut Context, args: &JobArgs) -> Result<(), Error> {
    let name = one_name(&args.names, "job")?;
    let prepared = prepare(ctx, &args.common).await?;
    if args.image.is_some() == args.from.is_some() {
        return Err(Error::Usage("either --image or --from must be specified".into()));
    }
    if !args.command.is_empty() && args.from.is_some() {
        return Err(Error::Usage("cannot specify --from and command".into()));
    }
    let mut metadata = prepared.metadata(&name, true);
    let spec = match (&args.image, &args.from) {
        (Some(image), _) => {
            let mut container = json!({"image": image, "name": name, "resources": {}});
            if !args.command.is_empty() {
                container["command"] = json!(args.command);
            }
            json!({"template": {"metadata": {}, "spec": {"containers": [container], "restartPolicy": "Never"}}})
        }
        (None, Some(from)) => {
            let cronjob = fetch_cronjob(ctx, from, &prepared.namespace).await?;
            let template = &cronjob["spec"]["jobTemplate"];
            let mut annotations = Map::new();
            annotations.insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
            if let Some(extra) = template["metadata"]["annotations"].as_object() {
                annotations.extend(extra.clone());
            }
            metadata.insert("annotations".into(), Value::Object(annotations));
            if let Some(labels) = template["metadata"]["labels"].as_object() {
                metadata.insert("labels".into(), Value::Object(labels.clone()));
            }
            metadata.insert(
                "ownerReferences".into(),
                json!([{
                    "apiVersion": "batch/v1",
                    "controller": true,
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                }]),
            );
            let mut spec = template["spec"].clone();
            if let Some(meta) = spec.pointer_mut("/template/metadata").and_then(Value::as_object_mut) {
                meta.remove("creationTimestamp");
            }
            spec
        }
        (None, None) => unreachable!("checked above"),
    };
    let object = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec, "status": {}});
    finish(ctx, prepared, &args.common, object, Some("failed to create job: ")).await
}

/// Runs `create cronjob`.
pub async fn cronjob(ctx: &mut Context, args: &CronJobArgs) -> Result<(), Error> {
    let missing: Vec<&str> = [("image", args.image.is_none()), ("schedule", args.schedule.is_none())]
        .into_iter()
        .filter_map(|(flag, missing)| missing.then_some(flag))
        .collect();
    if !missing.is_empty() {
        let quoted: Vec<String> = missing.iter().map(|flag| format!("{flag:?}")).collect();
        return Err(Error::Usage(format!("required flag(s) {} not set", quoted.join(", "))));
    }
    let name = one_name(&args.names, "cronjob")?;
    let prepared = prepare(ctx, &args.common).await?;
    let mut container = json!({"image": args.image, "name": name, "resources": {}});
    if !args.command.is_empty() {
        container["command"] = json!(args.command);
    }
    let restart = args
        .restart
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "OnFailure".into());
    let object = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": prepared.metadata(&name, true),
        "spec": {
            "jobTemplate": {
                "metadata": {"name": name},
                "spec": {"template": {"metadata": {}, "spec": {"containers": [container], "restartPolicy": restart}}},
            },
            "schedule": args.schedule,
        },
        "status": {},
    });
    finish(ctx, prepared, &args.common, object, Some("failed to create cronjob: ")).await
}

/// Runs `create serviceaccount`.
pub async fn serviceaccount(ctx: &mut Context, args: &NamespaceArgs) -> Result<(), Error> {
    let name = one_name(&args.names, "serviceaccount")?;
    let prepared = prepare(ctx, &args.common).await?;
    let object = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": prepared.metadata(&name, true)});
    finish(
        ctx,
        prepared,
        &args.common,
        object,
        Some("failed to create serviceaccount: "),
    )
    .await
}

/// The CronJob `--from` names (`cronjob/NAME`); anything else is upstream's error.
async fn fetch_cronjob(ctx: &mut Context, from: &str, namespace: &str) -> Result<Value, Error> {
    let discovery = ctx.discovery().await?;
    let targets = crate::cmd::get::targets(&discovery, &[from.to_string()])?;
    let [target] = targets.as_slice() else {
        return Err(Error::Usage("from must be an existing cronjob".into()));
    };
    let [name] = target.names.as_slice() else {
        return Err(Error::Usage("from must be an existing cronjob".into()));
    };
    let client = ctx.client().await?;
    let url = target.resource.object_url(Some(namespace), name);
    let object = request::get(&client, &url, "application/json").await?;
    if target.resource.kind != "CronJob" {
        return Err(Error::Usage(format!(
            "unknown object type *{}.{}",
            target.resource.version, target.resource.kind
        )));
    }
    Ok(object)
}

/// Runs `create service <type>`.
pub async fn service(ctx: &mut Context, command: &ServiceCommand) -> Result<(), Error> {
    let (args, kind, subcommand, cluster_ip, node_port, external_name) = match &command.kind {
        ServiceKind::Clusterip { base, clusterip } => (base, "ClusterIP", "clusterip", clusterip.clone(), 0, None),
        ServiceKind::Nodeport { base, node_port } => (base, "NodePort", "nodeport", None, *node_port, None),
        ServiceKind::Loadbalancer { base } => (base, "LoadBalancer", "loadbalancer", None, 0, None),
        ServiceKind::Externalname { base, external_name } => {
            (base, "ExternalName", "externalname", None, 0, external_name.clone())
        }
    };
    if kind == "ExternalName" && external_name.is_none() {
        return Err(Error::Usage("required flag(s) \"external-name\" not set".into()));
    }
    let name = one_name(&args.names, &format!("service {subcommand}"))?;
    let prepared = prepare(ctx, &args.common).await?;
    let cluster_ip = cluster_ip.unwrap_or_default();
    if cluster_ip == "None" && kind != "ClusterIP" {
        return Err(Error::Usage(
            "ClusterIP=None can only be used with ClusterIP service type".into(),
        ));
    }
    if cluster_ip != "None" && args.tcp.is_empty() && kind != "ExternalName" {
        return Err(Error::Usage("at least one tcp port specifier must be provided".into()));
    }
    let external_name = external_name.unwrap_or_default();
    if kind == "ExternalName" && !api::validation::names::is_dns1123_subdomain(&external_name).is_empty() {
        return Err(Error::Usage(format!("invalid service external name {external_name}")));
    }
    let mut ports = Vec::new();
    for spec in &args.tcp {
        let (port, target) = parse_ports(spec).map_err(Error::Usage)?;
        let mut entry = json!({"name": spec.replace(':', "-"), "port": port, "protocol": "TCP", "targetPort": target});
        if node_port != 0 {
            entry["nodePort"] = json!(node_port);
        }
        ports.push(entry);
    }
    let mut metadata = prepared.metadata(&name, true);
    metadata.insert("labels".into(), json!({"app": name}));
    let mut spec = json!({"selector": {"app": name}, "type": kind});
    if !ports.is_empty() {
        spec["ports"] = Value::Array(ports);
    }
    if !external_name.is_empty() {
        spec["externalName"] = json!(external_name);
    }
    if !cluster_ip.is_empty() {
        spec["clusterIP"] = json!(cluster_ip);
    }
    let object = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": spec,
        "status": {"loadBalancer": {}},
    });
    let failure = format!("failed to create {kind} service: ");
    finish(ctx, prepared, &args.common, object, Some(&failure)).await
}

/// Upstream's `parsePorts`: `port[:target]`, the target a number or a port name.
fn parse_ports(spec: &str) -> Result<(u16, Value), String> {
    let mut parts = spec.split(':');
    let first = parts.next().unwrap_or_default();
    let port = parse_uint16(first)?;
    let Some(target) = parts.next() else {
        return Ok((port, json!(port)));
    };
    match target.parse::<i64>() {
        Ok(number) => {
            if !(1..=65535).contains(&number) {
                return Err("must be between 1 and 65535, inclusive".to_string());
            }
            Ok((port, json!(number)))
        }
        Err(_) => {
            let problems = api::validation::names::is_valid_port_name(target);
            if !problems.is_empty() {
                return Err(problems.join(","));
            }
            Ok((port, json!(target)))
        }
    }
}

/// Go's `strconv.ParseUint(text, 10, 16)`, with its error text.
fn parse_uint16(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing \"{text}\": invalid syntax"));
    }
    text.parse::<u16>()
        .map_err(|_| format!("strconv.ParseUint: parsing \"{text}\": value out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_come_from_the_image() {
        assert_eq!(container_name("nginx"), "nginx");
        assert_eq!(container_name("registry.io:5000/team/app:v1"), "app");
        assert_eq!(container_name("busybox@sha256:abc"), "busybox");
        let unique = container_name("team/my_app.v2:1");
        assert!(
            unique.starts_with("my-app-v2-") && unique.len() == "my-app-v2-".len() + 5,
            "{unique}"
        );
    }

    #[test]
    fn ports_parse_like_upstream() {
        assert_eq!(parse_ports("80").unwrap(), (80, json!(80)));
        assert_eq!(parse_ports("80:8080").unwrap(), (80, json!(8080)));
        assert_eq!(parse_ports("80:http").unwrap(), (80, json!("http")));
        assert_eq!(
            parse_ports("x").unwrap_err(),
            "strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse_ports("70000").unwrap_err(),
            "strconv.ParseUint: parsing \"70000\": value out of range"
        );
    }
}
