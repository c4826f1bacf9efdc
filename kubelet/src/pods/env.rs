//! A container's environment, as upstream's kubelet builds it (`makeEnvironmentVariables`):
//! the image's variables, service links, `envFrom`, then `env` with `$(VAR)` expansion,
//! `configMapKeyRef`, `secretKeyRef`, `fieldRef` and `resourceFieldRef`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret, Service};

use api::validation::quantity::Quantity;

/// The objects environment variables may refer to, fetched by the worker.
#[derive(Debug, Default, Clone)]
pub struct EnvSources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    /// Services of the pod's namespace (for service links), plus `default/kubernetes`.
    pub services: Vec<Service>,
    /// The node's allocatable cpu (milli) and memory (bytes): the default for limits.
    pub node_allocatable_milli_cpu: i128,
    pub node_allocatable_memory: i128,
}

/// Why a container's environment cannot be built (reported as CreateContainerConfigError).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource: {0}")]
    Resource(String),
}

/// The environment of `container` in `pod`, as `NAME=value` strings, starting from the image's.
pub fn environment(
    pod: &Pod,
    container: &Container,
    image_env: &[String],
    sources: &EnvSources,
) -> Result<Vec<String>, EnvError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    // Ordered map preserving insertion order of first definition.
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let set = |name: String, value: String, order: &mut Vec<String>, values: &mut BTreeMap<String, String>| {
        if !values.contains_key(&name) {
            order.push(name.clone());
        }
        values.insert(name, value);
    };
    for entry in image_env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        set(name.to_string(), value.to_string(), &mut order, &mut values);
    }
    let service_links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    for (name, value) in service_env(&sources.services, &namespace, service_links) {
        set(name, value, &mut order, &mut values);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(cm_ref) = &from.config_map_ref {
            match sources.config_maps.get(&cm_ref.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(format!("{prefix}{k}"), v.clone(), &mut order, &mut values);
                    }
                }
                None if cm_ref.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(cm_ref.name.clone())),
            }
        }
        if let Some(secret_ref) = &from.secret_ref {
            match sources.secrets.get(&secret_ref.name) {
                Some(secret) => {
                    for (k, v) in secret.data.iter().flatten() {
                        set(
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                            &mut order,
                            &mut values,
                        );
                    }
                }
                None if secret_ref.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(secret_ref.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_value(pod, container, var, &namespace, sources, &values)? {
            set(var.name.clone(), value, &mut order, &mut values);
        }
    }
    Ok(order
        .into_iter()
        .map(|name| {
            let value = values.get(&name).cloned().unwrap_or_default();
            format!("{name}={value}")
        })
        .collect())
}

fn env_value(
    pod: &Pod,
    container: &Container,
    var: &EnvVar,
    namespace: &str,
    sources: &EnvSources,
    defined: &BTreeMap<String, String>,
) -> Result<Option<String>, EnvError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(var.value.as_deref().unwrap_or(""), defined)));
    };
    if let Some(key_ref) = &from.config_map_key_ref {
        let optional = key_ref.optional == Some(true);
        return match sources.config_maps.get(&key_ref.name) {
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapNotFound(key_ref.name.clone())),
            Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::ConfigMapKey {
                    namespace: namespace.to_string(),
                    name: key_ref.name.clone(),
                    key: key_ref.key.clone(),
                }),
            },
        };
    }
    if let Some(key_ref) = &from.secret_key_ref {
        let optional = key_ref.optional == Some(true);
        return match sources.secrets.get(&key_ref.name) {
            None if optional => Ok(None),
            None => Err(EnvError::SecretNotFound(key_ref.name.clone())),
            Some(secret) => match secret.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
                None if optional => Ok(None),
                None => Err(EnvError::SecretKey {
                    namespace: namespace.to_string(),
                    name: key_ref.name.clone(),
                    key: key_ref.key.clone(),
                }),
            },
        };
    }
    if let Some(field) = &from.field_ref {
        return field_value(pod, &field.field_path).map(Some);
    }
    if let Some(resource) = &from.resource_field_ref {
        let target = match resource.container_name.as_deref() {
            Some(name) if !name.is_empty() => pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
                .find(|c| c.name == name)
                .unwrap_or(container),
            _ => container,
        };
        let divisor = resource.divisor.as_ref().map(|q| q.0.as_str()).unwrap_or("1");
        return resource_value(target, &resource.resource, divisor, sources).map(Some);
    }
    Ok(Some(String::new()))
}

/// The value of a downward-API `fieldPath` (shared with downwardAPI volumes).
pub fn field_value(pod: &Pod, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let status = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(key) = subscript("metadata.labels['") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = subscript("metadata.annotations['") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    let map_text = |m: Option<&BTreeMap<String, String>>| {
        m.into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_text(meta.labels.as_ref()),
        "metadata.annotations" => map_text(meta.annotations.as_ref()),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" => status.host_ip.unwrap_or_default(),
        "status.hostIPs" => status
            .host_ips
            .iter()
            .flatten()
            .map(|i| i.ip.clone())
            .collect::<Vec<_>>()
            .join(","),
        "status.podIP" => status.pod_ip.unwrap_or_default(),
        "status.podIPs" => status
            .pod_ips
            .iter()
            .flatten()
            .map(|i| i.ip.clone())
            .collect::<Vec<_>>()
            .join(","),
        other => return Err(EnvError::FieldPath(other.to_string())),
    })
}

/// The value of a `resourceFieldRef` (limits default to the node's allocatable), divided by
/// `divisor` and rounded up, as upstream's `ExtractContainerResourceValue`.
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: &str,
    sources: &EnvSources,
) -> Result<String, EnvError> {
    let resources = container.resources.clone().unwrap_or_default();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| EnvError::Resource(resource.to_string()))?;
    let map = match kind {
        "limits" => resources.limits,
        "requests" => resources.requests,
        _ => return Err(EnvError::Resource(resource.to_string())),
    };
    let milli = |q: &str| Quantity::parse(q).and_then(|q| q.milli_value());
    let value_milli = match map.as_ref().and_then(|m| m.get(name)).and_then(|q| milli(&q.0)) {
        Some(v) => v,
        None => match (kind, name) {
            ("limits", "cpu") => sources.node_allocatable_milli_cpu,
            ("limits", "memory") => sources.node_allocatable_memory * 1000,
            ("requests", "cpu" | "memory" | "ephemeral-storage") => 0,
            ("limits", "ephemeral-storage") => 0,
            _ => return Err(EnvError::Resource(resource.to_string())),
        },
    };
    let divisor_milli = milli(divisor).filter(|d| *d > 0).unwrap_or(1000);
    let value = (value_milli + divisor_milli - 1).div_euclid(divisor_milli);
    // upstream reports at least 1 for cpu (ceil of a positive value)
    Ok(value
        .max(if name == "cpu" && value_milli > 0 { 1 } else { 0 })
        .to_string())
}

/// Expands `$(VAR)` references to already-defined variables; `$$` escapes; unknown references
/// are left as written (upstream's `expansion.Expand`).
pub fn expand(input: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match defined.get(name) {
                            Some(value) => out.push_str(value),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// Docker-link style variables for services (`FOO_SERVICE_HOST`, `FOO_PORT_80_TCP`, ...), for
/// the pod's namespace, plus the `kubernetes` service's always.
pub fn service_env(services: &[Service], namespace: &str, service_links: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for service in services {
        let svc_namespace = service.metadata.namespace.as_deref().unwrap_or("default");
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let is_master = svc_namespace == "default" && name == "kubernetes";
        if !(is_master || service_links && svc_namespace == namespace) {
            continue;
        }
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "None") else {
            continue;
        };
        let prefix = name.to_uppercase().replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for port in &ports {
            if let Some(port_name) = &port.name {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", port_name.to_uppercase().replace('-', "_")),
                    port.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
        out.push((
            format!("{prefix}_PORT"),
            format!("{}://{ip}:{}", proto(first).to_lowercase(), first.port),
        ));
        for port in &ports {
            let protocol = proto(port);
            let base = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            out.push((
                base.clone(),
                format!("{}://{ip}:{}", protocol.to_lowercase(), port.port),
            ));
            out.push((format!("{base}_PROTO"), protocol.to_lowercase()));
            out.push((format!("{base}_PORT"), port.port.to_string()));
            out.push((format!("{base}_ADDR"), ip.to_string()));
        }
    }
    out
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
