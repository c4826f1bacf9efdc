//! `kubectl expose (-f FILE | TYPE NAME)`: a Service for a pod, service, replication
//! controller, deployment or replica set, its selector, ports, protocols and labels taken from
//! the object unless given, built as upstream's `expose.go` builds it (`service`, also
//! `kubectl run --expose`'s generator), then created or printed (`--dry-run`).

use http::Method;
use serde_json::{Map, Value, json};

use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::run::generate::parse_labels;
use crate::cmd::select::{self, Fetch, Printer, SelectFlags, TypeAlone};
use crate::error::Error;
use crate::request;

/// Take a replication controller, service, deployment or pod and expose it as a new
/// Kubernetes service.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExposeArgs {
    /// TYPE NAME or TYPE/NAME.
    pub args: Vec<String>,
    /// Files identifying the resource to expose a service.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// The network protocol for the service to be created. Default is 'TCP'.
    #[arg(long, default_value = "")]
    pub protocol: String,
    /// The port that the service should serve on (default: the resource's).
    #[arg(long, default_value = "")]
    pub port: String,
    /// Type for this service: ClusterIP, NodePort, LoadBalancer, or ExternalName.
    #[arg(long = "type", default_value = "")]
    pub service_type: String,
    /// IP to assign to the LoadBalancer.
    #[arg(long, default_value = "")]
    pub load_balancer_ip: String,
    /// A label selector to use for this service (default: the resource's).
    #[arg(long, default_value = "")]
    pub selector: String,
    /// Labels to apply to the service created by this call.
    #[arg(short = 'l', long, default_value = "")]
    pub labels: String,
    /// Name or number for the port on the container that the service should direct traffic to.
    #[arg(long, default_value = "")]
    pub target_port: String,
    /// Additional external IP address (not managed by Kubernetes) to accept for the service.
    #[arg(long, default_value = "")]
    pub external_ip: String,
    /// The name for the newly created object.
    #[arg(long, default_value = "")]
    pub name: String,
    /// If non-empty, set the session affinity for the service to this: None or ClientIP.
    #[arg(long, default_value = "")]
    pub session_affinity: String,
    /// ClusterIP to be assigned to the service ('None': headless).
    #[arg(long, default_value = "")]
    pub cluster_ip: String,
    /// Name of the manager used to track field ownership.
    #[arg(long, default_value = "kubectl-expose")]
    pub field_manager: String,
    /// An inline JSON override for the generated object.
    #[arg(long, default_value = "")]
    pub overrides: String,
    /// The method used to override the generated object: json, merge, or strategic.
    #[arg(long, default_value = "merge")]
    pub override_type: String,
    /// Save the configuration in the last-applied annotation.
    #[arg(long)]
    pub save_config: bool,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "unchanged")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// What the Service is built from (upstream's `ExposeServiceOptions` after introspection).
#[derive(Debug, Clone, Default)]
pub struct ServiceParams {
    pub name: String,
    pub selector: String,
    pub labels: String,
    /// `--port`, or the object's only port.
    pub port: String,
    /// The object's ports when it has several (and no `--port`).
    pub ports: String,
    /// `port/PROTOCOL` pairs taken from the object.
    pub protocols: Vec<(String, String)>,
    pub protocol: String,
    pub target_port: String,
    pub external_ip: String,
    pub service_type: String,
    pub load_balancer_ip: String,
    pub session_affinity: String,
    pub cluster_ip: String,
}

/// The Service, in upstream's field order; errors worded as upstream's `createService`.
pub fn service(p: &ServiceParams) -> Result<Value, String> {
    if p.selector.is_empty() {
        return Err("selector must be specified".into());
    }
    let selector = parse_labels(&p.selector)?;
    let labels = if p.labels.is_empty() {
        None
    } else {
        Some(parse_labels(&p.labels)?)
    };
    if p.name.is_empty() {
        return Err("name must be specified".into());
    }
    let port_text = if p.ports.is_empty() { &p.port } else { &p.ports };
    let mut ports = Vec::new();
    if !port_text.is_empty() {
        let items: Vec<&str> = port_text.split(',').collect();
        for (index, item) in items.iter().enumerate() {
            let port: i64 = item
                .parse()
                .map_err(|_| format!("strconv.Atoi: parsing {item:?}: invalid syntax"))?;
            let port = port as i32;
            let name = if items.len() > 1 {
                format!("port-{}", index + 1)
            } else {
                String::new()
            };
            let known: Vec<&str> = p
                .protocols
                .iter()
                .filter(|(number, _)| number == item)
                .map(|(_, protocol)| protocol.as_str())
                .collect();
            let protocol = match (p.protocol.is_empty(), p.protocols.is_empty()) {
                (true, true) => "TCP".to_string(),
                (false, _) => p.protocol.clone(),
                (true, false) => match known.as_slice() {
                    [] => "TCP".to_string(),
                    [one] => one.to_string(),
                    many => {
                        for protocol in many {
                            let name = format!("port-{}-{}", index + 1, protocol.to_lowercase());
                            ports.push(service_port(&name, protocol, port));
                        }
                        continue;
                    }
                },
            };
            ports.push(service_port(&name, &protocol, port));
        }
    }
    let target = if p.target_port.is_empty() {
        None
    } else {
        Some(match p.target_port.parse::<i64>() {
            Ok(number) => json!(number as i32),
            Err(_) => json!(p.target_port),
        })
    };
    for port in &mut ports {
        port["targetPort"] = target.clone().unwrap_or_else(|| port["port"].clone());
    }
    let mut spec = Map::new();
    if !ports.is_empty() {
        spec.insert("ports".into(), Value::Array(ports));
    }
    spec.insert("selector".into(), Value::Object(selector));
    if !p.cluster_ip.is_empty() {
        spec.insert("clusterIP".into(), p.cluster_ip.clone().into());
    }
    if !p.service_type.is_empty() {
        spec.insert("type".into(), p.service_type.clone().into());
    }
    if !p.external_ip.is_empty() {
        spec.insert("externalIPs".into(), json!([p.external_ip]));
    }
    match p.session_affinity.as_str() {
        "" => {}
        "None" | "ClientIP" => {
            spec.insert("sessionAffinity".into(), p.session_affinity.clone().into());
        }
        other => return Err(format!("unknown session affinity: {other}")),
    }
    if p.service_type == "LoadBalancer" && !p.load_balancer_ip.is_empty() {
        spec.insert("loadBalancerIP".into(), p.load_balancer_ip.clone().into());
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), p.name.clone().into());
    if let Some(labels) = labels.filter(|l| !l.is_empty()) {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    Ok(json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": spec,
        "status": {"loadBalancer": {}},
    }))
}

fn service_port(name: &str, protocol: &str, port: i32) -> Value {
    let mut item = Map::new();
    if !name.is_empty() {
        item.insert("name".into(), name.into());
    }
    item.insert("protocol".into(), protocol.into());
    item.insert("port".into(), port.into());
    Value::Object(item)
}

/// `k=v,k2=v2` of a label map (upstream's `MakeLabels`).
fn make_labels(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Go's `%+v` of label selector requirements.
fn expressions(requirements: &Value) -> String {
    let items: Vec<String> = requirements
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let values: Vec<&str> = r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{{Key:{} Operator:{} Values:[{}]}}",
                r["key"].as_str().unwrap_or_default(),
                r["operator"].as_str().unwrap_or_default(),
                values.join(" ")
            )
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// Upstream's `MapBasedSelectorForObject`.
pub fn selector_for(kind: &str, object: &Value) -> Result<String, String> {
    let spec = &object["spec"];
    match kind {
        "ReplicationController" => Ok(make_labels(&spec["selector"])),
        "Pod" => {
            let labels = &object["metadata"]["labels"];
            if labels.as_object().is_none_or(Map::is_empty) {
                return Err("the pod has no labels and cannot be exposed".into());
            }
            Ok(make_labels(labels))
        }
        "Service" => {
            if spec["selector"].is_null() {
                return Err("the service has no pod selector set".into());
            }
            Ok(make_labels(&spec["selector"]))
        }
        "Deployment" | "ReplicaSet" => {
            let selector = &spec["selector"];
            if selector["matchLabels"].as_object().is_none_or(Map::is_empty) {
                let what = if kind == "Deployment" {
                    "deployment"
                } else {
                    "replicaset"
                };
                return Err(format!("invalid {what}: no selectors, therefore cannot be exposed"));
            }
            if selector["matchExpressions"].as_array().is_some_and(|e| !e.is_empty()) {
                return Err(format!(
                    "couldn't convert expressions - \"{}\" to map-based selector format",
                    expressions(&selector["matchExpressions"])
                ));
            }
            Ok(make_labels(&selector["matchLabels"]))
        }
        other => Err(format!("cannot extract pod selector from {other}")),
    }
}

/// The ports of the object (container ports, or a service's ports), without repeats, and
/// each port's protocols (TCP when unset), as upstream's `PortsForObject` and
/// `MultiProtocolsForObject`.
pub fn ports_for(kind: &str, object: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let found: Vec<(i64, String)> = if kind == "Service" {
        object["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["port"].as_i64().unwrap_or(0), protocol_of(p)))
            .collect()
    } else {
        let spec = if kind == "Pod" {
            &object["spec"]
        } else {
            &object["spec"]["template"]["spec"]
        };
        spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .map(|p| (p["containerPort"].as_i64().unwrap_or(0), protocol_of(&p)))
            .collect()
    };
    let mut ports: Vec<String> = Vec::new();
    for (port, _) in &found {
        if !ports.contains(&port.to_string()) {
            ports.push(port.to_string());
        }
    }
    let protocols = found
        .into_iter()
        .map(|(port, protocol)| (port.to_string(), protocol))
        .collect();
    (ports, protocols)
}

fn protocol_of(port: &Value) -> String {
    match port["protocol"].as_str() {
        Some(protocol) if !protocol.is_empty() => protocol.to_string(),
        _ => "TCP".into(),
    }
}

/// Runs `kubectl expose`.
pub async fn run(ctx: &mut Context, args: &ExposeArgs) -> Result<(), Error> {
    let dry_run = crate::cmd::run::dry_run_strategy(ctx, &args.dry_run)?;
    let mut printer = Printer::new(args.output.as_deref(), dry_run)?;
    printer.typed_json = true;
    if args.args.is_empty() && args.filenames.is_empty() {
        return Err(Error::Message(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'".into(),
        ));
    }
    let flags = SelectFlags {
        filenames: args.filenames.clone(),
        recursive: args.recursive,
        ..Default::default()
    };
    let selection = select::select_with(ctx, &args.args, &flags, Fetch::Named, TypeAlone::NeedsSelector).await?;
    let discovery = ctx.discovery().await?;
    let service_resource = discovery.for_kind("v1", "Service")?.clone();
    let (namespace, explicit) = {
        let conn = ctx.connection().await?;
        (conn.namespace.clone(), conn.namespace_explicit)
    };
    // Upstream keeps what it took from one object (selector, ports, labels, protocols) in
    // its options, so later objects of the same command reuse it.
    let mut params = ServiceParams {
        selector: args.selector.clone(),
        labels: args.labels.clone(),
        port: args.port.clone(),
        protocol: args.protocol.clone(),
        target_port: args.target_port.clone(),
        external_ip: args.external_ip.clone(),
        service_type: args.service_type.clone(),
        load_balancer_ip: args.load_balancer_ip.clone(),
        session_affinity: args.session_affinity.clone(),
        cluster_ip: args.cluster_ip.clone(),
        ..Default::default()
    };
    printer.separate_documents = true;
    let target = Target {
        service: &service_resource,
        namespace: &namespace,
        explicit,
        dry_run,
    };
    let mut failures = Vec::new();
    for item in selection.items {
        let outcome = match item {
            Ok(info) => expose_one(ctx, args, &mut params, &info, &target, &mut printer).await,
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            failures.push(error);
        }
    }
    crate::cmd::objects::finish(failures)
}

/// Where the Services go.
struct Target<'a> {
    service: &'a crate::discovery::Resource,
    namespace: &'a str,
    explicit: bool,
    dry_run: DryRun,
}

/// Exposes one object (upstream's visitor).
async fn expose_one(
    ctx: &mut Context,
    args: &ExposeArgs,
    params: &mut ServiceParams,
    info: &select::Info,
    target: &Target<'_>,
    printer: &mut Printer,
) -> Result<(), Error> {
    let kind = info.resource.kind.as_str();
    let exposable = match info.resource.group.as_str() {
        "" => matches!(kind, "ReplicationController" | "Service" | "Pod"),
        "apps" | "extensions" => matches!(kind, "Deployment" | "ReplicaSet"),
        _ => false,
    };
    if !exposable {
        return Err(Error::Message(format!(
            "cannot expose a {}",
            crate::cmd::objects::group_kind(&info.resource)
        )));
    }
    let object = &info.object;
    params.name = if args.name.is_empty() {
        info.name.chars().take(63).collect()
    } else {
        args.name.clone()
    };
    if params.selector.is_empty() {
        params.selector = selector_for(kind, object).map_err(|e| {
            Error::Message(format!(
                "couldn't retrieve selectors via --selector flag or introspection: {e}"
            ))
        })?;
    }
    let (ports, protocols) = ports_for(kind, object);
    if params.port.is_empty() {
        match ports.as_slice() {
            [] if params.cluster_ip != "None" => {
                return Err(Error::Message(
                    "couldn't find port via --port flag or introspection".into(),
                ));
            }
            [] => {}
            [one] => params.port = one.clone(),
            many => params.ports = many.join(","),
        }
    }
    if !protocols.is_empty() {
        params.protocols = protocols;
    }
    if params.labels.is_empty() {
        params.labels = make_labels(&object["metadata"]["labels"]);
    }
    let built = service(params).map_err(Error::Message)?;
    let mut built = crate::cmd::run::apply_overrides(built, &args.overrides, &args.override_type)?;
    let discovery = ctx.discovery().await?;
    if target.dry_run == DryRun::Client {
        if target.explicit
            && let Some(metadata) = built["metadata"].as_object_mut()
        {
            metadata.insert("namespace".into(), target.namespace.into());
        }
        return printer.print(ctx, Some(&discovery), target.service, &built, "exposed");
    }
    if args.save_config {
        built = crate::cmd::run::with_last_applied(built);
    }
    let url = request::with_query(
        &target.service.collection_url(Some(target.namespace)),
        &[
            ("dryRun", if target.dry_run == DryRun::Server { "All" } else { "" }),
            ("fieldManager", &args.field_manager),
        ],
    );
    let client = ctx.client().await?;
    let body = serde_json::to_vec(&without_empty_status(built))?;
    let created = request::send(
        &client,
        Method::POST,
        &url,
        "application/json",
        Some("application/json"),
        body,
    )
    .await?;
    // Upstream prints the answer decoded into its Go type.
    let created = crate::cmd::run::typed(created);
    printer.print(ctx, Some(&discovery), target.service, &created, "exposed")
}

/// The typed Service converted to an unstructured object, as upstream sends it.
fn without_empty_status(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_take_ports_protocols_and_target_ports() {
        let mut p = ServiceParams {
            name: "web".into(),
            selector: "app=web".into(),
            port: "80".into(),
            ..Default::default()
        };
        assert_eq!(
            service(&p).unwrap()["spec"],
            json!({"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "selector": {"app": "web"}})
        );
        p.port = String::new();
        p.ports = "53,80".into();
        p.protocols = vec![
            ("53".into(), "UDP".into()),
            ("53".into(), "TCP".into()),
            ("80".into(), "TCP".into()),
        ];
        p.target_port = "http".into();
        p.service_type = "NodePort".into();
        let built = service(&p).unwrap();
        assert_eq!(
            built["spec"]["ports"],
            json!([
                {"name": "port-1-udp", "protocol": "UDP", "port": 53, "targetPort": "http"},
                {"name": "port-1-tcp", "protocol": "TCP", "port": 53, "targetPort": "http"},
                {"name": "port-2", "protocol": "TCP", "port": 80, "targetPort": "http"},
            ])
        );
        assert_eq!(built["spec"]["type"], "NodePort");
        p.session_affinity = "Sticky".into();
        assert_eq!(service(&p).unwrap_err(), "unknown session affinity: Sticky");
        p.selector = String::new();
        assert_eq!(service(&p).unwrap_err(), "selector must be specified");
    }

    #[test]
    fn selectors_and_ports_come_from_the_object() {
        let deploy = json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [
                {"ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]},
                {"ports": [{"containerPort": 80}]}]}}}});
        assert_eq!(selector_for("Deployment", &deploy).unwrap(), "app=web");
        let (ports, protocols) = ports_for("Deployment", &deploy);
        assert_eq!(ports, ["80", "53"]);
        assert_eq!(protocols.len(), 3);
        let pod = json!({"metadata": {}, "spec": {"containers": [{}]}});
        assert_eq!(
            selector_for("Pod", &pod).unwrap_err(),
            "the pod has no labels and cannot be exposed"
        );
        assert!(ports_for("Pod", &pod).0.is_empty());
        let expressions = json!({"spec": {"selector": {"matchLabels": {"a": "b"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]}}});
        assert_eq!(
            selector_for("ReplicaSet", &expressions).unwrap_err(),
            "couldn't convert expressions - \"[{Key:k Operator:In Values:[x y]}]\" to map-based selector format"
        );
        assert_eq!(
            selector_for("Service", &json!({"spec": {}})).unwrap_err(),
            "the service has no pod selector set"
        );
    }
}
