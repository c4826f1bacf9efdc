//! The resource registry: every resource the apiserver serves, with its REST shape (group,
//! version, plural, scope, short names, categories, subresources) and the server-side behaviour
//! that differs between kinds. Discovery, OpenAPI and routing are generated from this table.

use crate::kinds;
use crate::strategy::KindStrategy;

/// Subresources a resource may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    /// `pods/binding`: assign a pod to a node.
    Binding,
    /// `pods/eviction`: delete a pod through the eviction API.
    Eviction,
    /// `namespaces/finalize`: write `spec.finalizers` of a terminating namespace.
    Finalize,
    /// `pods/log`: the container's log, streamed from the node's kubelet.
    Log,
    /// `pods/exec`: a process in a container, its stdio carried over an upgraded
    /// connection (WebSocket) proxied to the node's kubelet.
    Exec,
    /// `pods/attach`: the stdio of a container's main process, carried over an upgraded
    /// connection (WebSocket) proxied to the node's kubelet.
    Attach,
    /// `pods/portforward`: TCP connections to the pod's ports, carried as SPDY streams
    /// over an upgraded connection proxied to the node's kubelet.
    PortForward,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Finalize => "finalize",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::PortForward => "portforward",
            Subresource::Attach => "attach",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Status,
            Self::Scale,
            Self::Binding,
            Self::Eviction,
            Self::Finalize,
            Self::Log,
            Self::Exec,
            Self::PortForward,
            Self::Attach,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// Which name syntax a kind's objects must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
    Subdomain,
    /// RFC 1123 label: lower-case alphanumerics and `-`, at most 63 characters.
    Label,
    /// RFC 1035 label (starts with a letter), at most 63 characters (services).
    Rfc1035Label,
    /// Any string usable as a path segment (not `.`/`..`, no `/` or `%`): RBAC objects.
    PathSegment,
}

/// A field a field selector may name, where to read it in the stored JSON and the value an
/// absent field has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectableField {
    pub name: &'static str,
    pub path: &'static str,
    pub absent: &'static str,
}

const fn field(name: &'static str, path: &'static str, absent: &'static str) -> SelectableField {
    SelectableField { name, path, absent }
}

/// How objects of a non-storage version are converted to and from the stored version (e.g.
/// `events.k8s.io/v1` Events are stored as core/v1 Events, as upstream shares their storage).
pub struct Conversion {
    pub to_storage: fn(serde_json::Value) -> serde_json::Value,
    pub from_storage: fn(serde_json::Value) -> serde_json::Value,
}

/// Everything the server knows about one resource in one group-version.
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub name_rule: NameRule,
    /// The storage segment: keys are `/registry/<storage>/<namespace>/<name>`. Resources served
    /// in several versions share it.
    pub storage: &'static str,
    /// Whether `deletecollection` is served.
    pub delete_collection: bool,
    /// `metadata.generation` is set on create and bumped when anything but metadata and status
    /// changes.
    pub tracks_generation: bool,
    /// Create keeps the client's `status` (nodes); otherwise status is reset on create when the
    /// resource has a status subresource.
    pub keep_status_on_create: bool,
    /// Deletion is graceful (pods): a delete sets `deletionTimestamp` and the object goes when
    /// the kubelet confirms or the grace period is 0.
    pub graceful_delete: bool,
    /// Fields a field selector may name besides `metadata.name` and `metadata.namespace`.
    pub selectable_fields: &'static [SelectableField],
    pub strategy: &'static dyn KindStrategy,
    /// `Some` when this version is not the stored one.
    pub conversion: Option<&'static Conversion>,
}

impl ResourceDef {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The qualified resource name used in messages: `pods`, `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The qualified kind used in messages: `Pod`, `Deployment.apps`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The key prefix under which this resource's objects live, ending in `/`.
    pub fn storage_prefix(&self) -> String {
        format!("/registry/{}/", self.storage)
    }

    /// The storage key of one object.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{}", self.storage, ns, name),
            _ => format!("/registry/{}/{}", self.storage, name),
        }
    }

    /// The verbs served for the resource itself.
    pub fn verbs(&self) -> Vec<&'static str> {
        let mut verbs = vec!["create", "delete"];
        if self.delete_collection {
            verbs.push("deletecollection");
        }
        verbs.extend(["get", "list", "patch", "update", "watch"]);
        verbs
    }
}

use Subresource::{Attach, Binding, Eviction, Exec, Finalize, Log, PortForward, Scale, Status};

const META_ONLY: &[SelectableField] = &[];
const NO_NAMES: &[&str] = &[];
const ALL: &[&str] = &["all"];

/// Builds a def with the common defaults; the table below overrides what differs.
const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    strategy: &'static dyn KindStrategy,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: NO_NAMES,
        categories: NO_NAMES,
        subresources: &[],
        name_rule: NameRule::Subdomain,
        storage: plural,
        delete_collection: true,
        tracks_generation: false,
        keep_status_on_create: false,
        graceful_delete: false,
        selectable_fields: META_ONLY,
        strategy,
        conversion: None,
    }
}

/// Every served resource. The first entry of a (group, plural) pair sharing a storage segment
/// is the stored version.
pub static RESOURCES: &[ResourceDef] = &[
    // ---- core/v1 ----
    ResourceDef {
        short_names: &["ns"],
        subresources: &[Status, Finalize],
        name_rule: NameRule::Label,
        delete_collection: false,
        selectable_fields: &[field("status.phase", "status.phase", "")],
        ..def(
            "",
            "v1",
            "Namespace",
            "namespaces",
            "namespace",
            false,
            &kinds::core::NAMESPACE,
        )
    },
    ResourceDef {
        short_names: &["po"],
        categories: ALL,
        subresources: &[Status, Binding, Eviction, Log, Exec, PortForward, Attach],
        tracks_generation: true,
        graceful_delete: true,
        selectable_fields: &[
            field("spec.nodeName", "spec.nodeName", ""),
            field("spec.restartPolicy", "spec.restartPolicy", ""),
            field("spec.schedulerName", "spec.schedulerName", ""),
            field("spec.serviceAccountName", "spec.serviceAccountName", ""),
            field("spec.hostNetwork", "spec.hostNetwork", "false"),
            field("status.phase", "status.phase", ""),
            field("status.podIP", "status.podIP", ""),
            field("status.nominatedNodeName", "status.nominatedNodeName", ""),
        ],
        ..def("", "v1", "Pod", "pods", "pod", true, &kinds::core::POD)
    },
    ResourceDef {
        short_names: &["svc"],
        categories: ALL,
        subresources: &[Status],
        name_rule: NameRule::Rfc1035Label,
        selectable_fields: &[
            field("spec.clusterIP", "spec.clusterIP", ""),
            field("spec.type", "spec.type", ""),
        ],
        ..def("", "v1", "Service", "services", "service", true, &kinds::core::SERVICE)
    },
    ResourceDef {
        short_names: &["ep"],
        ..def(
            "",
            "v1",
            "Endpoints",
            "endpoints",
            "endpoints",
            true,
            &kinds::core::ENDPOINTS,
        )
    },
    ResourceDef {
        short_names: &["cm"],
        ..def(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            "configmap",
            true,
            &kinds::core::CONFIG_MAP,
        )
    },
    ResourceDef {
        selectable_fields: &[field("type", "type", "Opaque")],
        ..def("", "v1", "Secret", "secrets", "secret", true, &kinds::core::SECRET)
    },
    ResourceDef {
        short_names: &["no"],
        subresources: &[Status],
        keep_status_on_create: true,
        selectable_fields: &[field("spec.unschedulable", "spec.unschedulable", "false")],
        ..def("", "v1", "Node", "nodes", "node", false, &kinds::core::NODE)
    },
    ResourceDef {
        short_names: &["ev"],
        selectable_fields: &[
            field("involvedObject.kind", "involvedObject.kind", ""),
            field("involvedObject.namespace", "involvedObject.namespace", ""),
            field("involvedObject.name", "involvedObject.name", ""),
            field("involvedObject.uid", "involvedObject.uid", ""),
            field("involvedObject.apiVersion", "involvedObject.apiVersion", ""),
            field("involvedObject.resourceVersion", "involvedObject.resourceVersion", ""),
            field("involvedObject.fieldPath", "involvedObject.fieldPath", ""),
            field("reason", "reason", ""),
            field("reportingComponent", "reportingComponent", ""),
            field("source", "source.component", ""),
            field("type", "type", ""),
        ],
        ..def("", "v1", "Event", "events", "event", true, &kinds::core::EVENT)
    },
    ResourceDef {
        short_names: &["sa"],
        ..def(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            true,
            &kinds::core::SERVICE_ACCOUNT,
        )
    },
    ResourceDef {
        short_names: &["pv"],
        subresources: &[Status],
        ..def(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            "persistentvolume",
            false,
            &kinds::core::PERSISTENT_VOLUME,
        )
    },
    ResourceDef {
        short_names: &["pvc"],
        subresources: &[Status],
        ..def(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            true,
            &kinds::core::PERSISTENT_VOLUME_CLAIM,
        )
    },
    ResourceDef {
        short_names: &["quota"],
        subresources: &[Status],
        ..def(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            true,
            &kinds::core::RESOURCE_QUOTA,
        )
    },
    ResourceDef {
        short_names: &["limits"],
        ..def(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            "limitrange",
            true,
            &kinds::core::LIMIT_RANGE,
        )
    },
    // ---- apps/v1 ----
    ResourceDef {
        short_names: &["deploy"],
        categories: ALL,
        subresources: &[Status, Scale],
        tracks_generation: true,
        ..def(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            true,
            &kinds::apps::DEPLOYMENT,
        )
    },
    ResourceDef {
        short_names: &["rs"],
        categories: ALL,
        subresources: &[Status, Scale],
        tracks_generation: true,
        selectable_fields: &[field("status.replicas", "status.replicas", "0")],
        ..def(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            true,
            &kinds::apps::REPLICA_SET,
        )
    },
    ResourceDef {
        short_names: &["sts"],
        categories: ALL,
        subresources: &[Status, Scale],
        tracks_generation: true,
        ..def(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            "statefulset",
            true,
            &kinds::apps::STATEFUL_SET,
        )
    },
    ResourceDef {
        short_names: &["ds"],
        categories: ALL,
        subresources: &[Status],
        tracks_generation: true,
        ..def(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            "daemonset",
            true,
            &kinds::apps::DAEMON_SET,
        )
    },
    def(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        &kinds::apps::CONTROLLER_REVISION,
    ),
    // ---- batch/v1 ----
    ResourceDef {
        categories: ALL,
        subresources: &[Status],
        tracks_generation: true,
        selectable_fields: &[field("status.successful", "status.successful", "0")],
        ..def("batch", "v1", "Job", "jobs", "job", true, &kinds::batch::JOB)
    },
    ResourceDef {
        short_names: &["cj"],
        categories: ALL,
        subresources: &[Status],
        tracks_generation: true,
        ..def(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            "cronjob",
            true,
            &kinds::batch::CRON_JOB,
        )
    },
    // ---- coordination.k8s.io/v1 ----
    def(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        &kinds::other::LEASE,
    ),
    // ---- discovery.k8s.io/v1 ----
    def(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        &kinds::other::ENDPOINT_SLICE,
    ),
    // ---- events.k8s.io/v1 (stored as core/v1 Events) ----
    ResourceDef {
        short_names: &["ev"],
        conversion: Some(&kinds::other::EVENTS_V1_CONVERSION),
        ..def(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            true,
            &kinds::other::EVENTS_V1_EVENT,
        )
    },
    // ---- autoscaling (stored as v2) ----
    ResourceDef {
        short_names: &["hpa"],
        categories: ALL,
        subresources: &[Status],
        tracks_generation: true,
        ..def(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            true,
            &kinds::other::HPA_V2,
        )
    },
    ResourceDef {
        short_names: &["hpa"],
        categories: ALL,
        subresources: &[Status],
        tracks_generation: true,
        conversion: Some(&kinds::other::HPA_V1_CONVERSION),
        ..def(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            true,
            &kinds::other::HPA_V1,
        )
    },
    // ---- networking.k8s.io/v1 ----
    ResourceDef {
        short_names: &["ing"],
        subresources: &[Status],
        tracks_generation: true,
        ..def(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            "ingress",
            true,
            &kinds::other::INGRESS,
        )
    },
    ResourceDef {
        short_names: &["netpol"],
        tracks_generation: true,
        ..def(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            "networkpolicy",
            true,
            &kinds::other::NETWORK_POLICY,
        )
    },
    // ---- rbac.authorization.k8s.io/v1 ----
    ResourceDef {
        name_rule: NameRule::PathSegment,
        ..def(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            "role",
            true,
            &kinds::rbac::ROLE,
        )
    },
    ResourceDef {
        name_rule: NameRule::PathSegment,
        ..def(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            "rolebinding",
            true,
            &kinds::rbac::ROLE_BINDING,
        )
    },
    ResourceDef {
        name_rule: NameRule::PathSegment,
        ..def(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            "clusterrole",
            false,
            &kinds::rbac::CLUSTER_ROLE,
        )
    },
    ResourceDef {
        name_rule: NameRule::PathSegment,
        ..def(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            "clusterrolebinding",
            false,
            &kinds::rbac::CLUSTER_ROLE_BINDING,
        )
    },
    // ---- apiextensions.k8s.io/v1 ----
    ResourceDef {
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        subresources: &[Status],
        tracks_generation: true,
        ..def(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            false,
            &kinds::other::CUSTOM_RESOURCE_DEFINITION,
        )
    },
];

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

/// The group-versions served, in preference order per group (core first).
pub fn group_versions() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for d in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, versions)) => {
                if !versions.contains(&d.version) {
                    versions.push(d.version);
                }
            }
            None => out.push((d.group, vec![d.version])),
        }
    }
    out
}

/// The resource served in the stored version for a storage segment.
pub fn storage_def(storage: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.storage == storage && d.conversion.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_storage_segment_has_exactly_one_stored_version() {
        for d in RESOURCES {
            let stored: Vec<_> = RESOURCES
                .iter()
                .filter(|o| o.storage == d.storage && o.conversion.is_none())
                .collect();
            assert_eq!(stored.len(), 1, "{} has {} stored versions", d.storage, stored.len());
        }
    }

    #[test]
    fn plural_is_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{}/{} {} listed twice",
                    a.group,
                    a.version,
                    a.plural
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(find("apps", "v1", "deployments").map(|d| d.kind), Some("Deployment"));
        assert_eq!(
            find("", "v1", "pods").map(|d| d.qualified_resource()),
            Some("pods".to_string())
        );
        assert_eq!(storage_def("events").map(|d| d.group), Some(""));
        assert_eq!(storage_def("horizontalpodautoscalers").map(|d| d.version), Some("v2"));
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.storage_key(Some("default"), "web"), "/registry/pods/default/web");
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.storage_key(None, "n1"), "/registry/nodes/n1");
    }
}
