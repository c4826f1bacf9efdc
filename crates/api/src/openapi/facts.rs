//! The patch and list metadata of the API types' fields: the facts upstream declares with the
//! `patchStrategy` / `patchMergeKey` struct tags and the `+listType`, `+listMapKey` and
//! `+mapType` markers in k8s.io/api, published in its OpenAPI documents as
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys` and `x-kubernetes-map-type`.
//!
//! k8s-openapi's generated schemas do not carry these extensions, so they are kept here as a
//! table of facts (Kubernetes 1.37), one row per annotated field of every type reachable from
//! a served kind. A test checks that every row names a field of a generated schema.
//! [`annotate`] writes them into the generated schemas; strategic merge patch reads them back
//! from there.

use serde_json::{Map, Value, json};

/// The metadata of one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldFacts {
    /// `x-kubernetes-patch-strategy`: `merge`, `retainKeys`, `merge,retainKeys` or `replace`.
    pub patch_strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`: the key list items are merged by.
    pub patch_merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys` (lists of type `map`).
    pub list_map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type` of the field: `atomic` or `granular`.
    pub map_type: Option<&'static str>,
}

/// (type without `io.k8s.`, field, patch strategy, merge key, list type, list map keys, map type);
/// `""` is "not set".
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

fn non_empty(s: &'static str) -> Option<&'static str> {
    (!s.is_empty()).then_some(s)
}

fn short(schema: &str) -> &str {
    schema.strip_prefix("io.k8s.").unwrap_or(schema)
}

fn facts(row: &Row) -> FieldFacts {
    let (_, _, strategy, key, list_type, keys, map_type) = *row;
    FieldFacts {
        patch_strategy: non_empty(strategy),
        patch_merge_key: non_empty(key),
        list_type: non_empty(list_type),
        list_map_keys: keys,
        map_type: non_empty(map_type),
    }
}

/// The metadata of `field` in the schema named `schema` (`io.k8s.api.core.v1.PodSpec`), if any
/// is declared.
pub fn field_facts(schema: &str, field: &str) -> Option<FieldFacts> {
    let schema = short(schema);
    FIELDS.iter().find(|row| row.0 == schema && row.1 == field).map(facts)
}

/// The `x-kubernetes-map-type` declared on a type (`atomic` for `LabelSelector`, ...).
pub fn type_map_type(schema: &str) -> Option<&'static str> {
    let schema = short(schema);
    TYPE_MAP_TYPES.iter().find(|(name, _)| *name == schema).map(|(_, t)| *t)
}

/// Writes the facts of the schema named `name` into it.
pub(crate) fn annotate(name: &str, schema: &mut Value) {
    let Value::Object(schema) = schema else {
        return;
    };
    if let Some(map_type) = type_map_type(name) {
        schema.insert("x-kubernetes-map-type".into(), json!(map_type));
    }
    let name = short(name);
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for row in FIELDS.iter().filter(|row| row.0 == name) {
        if let Some(Value::Object(property)) = properties.get_mut(row.1) {
            extend(property, &facts(row));
        }
    }
}

fn extend(property: &mut Map<String, Value>, facts: &FieldFacts) {
    // OpenAPI 3.0 ignores the siblings of a `$ref`: move it into `allOf` as upstream does.
    if let Some(reference) = property.remove("$ref") {
        property.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
    let mut set = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            property.insert(key.into(), json!(value));
        }
    };
    set("x-kubernetes-patch-strategy", facts.patch_strategy);
    set("x-kubernetes-patch-merge-key", facts.patch_merge_key);
    set("x-kubernetes-list-type", facts.list_type);
    set("x-kubernetes-map-type", facts.map_type);
    if !facts.list_map_keys.is_empty() {
        property.insert("x-kubernetes-list-map-keys".into(), json!(facts.list_map_keys));
    }
}

/// The number of rows in the table.
#[cfg(test)]
pub(crate) fn row_count() -> usize {
    FIELDS.len()
}

// ---- the facts (Kubernetes 1.37) ----

#[rustfmt::skip]
static FIELDS: &[Row] = &[
    ("api.apps.v1.DaemonSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.apps.v1.DeploymentSpec", "strategy", "retainKeys", "", "", &[], ""),
    ("api.apps.v1.DeploymentStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.apps.v1.ReplicaSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.apps.v1.StatefulSetSpec", "volumeClaimTemplates", "", "", "atomic", &[], ""),
    ("api.apps.v1.StatefulSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.autoscaling.v2.HPAScalingRules", "policies", "", "", "atomic", &[], ""),
    ("api.autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics", "", "", "atomic", &[], ""),
    ("api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.autoscaling.v2.HorizontalPodAutoscalerStatus", "currentMetrics", "", "", "atomic", &[], ""),
    ("api.batch.v1.CronJobStatus", "active", "", "", "atomic", &[], ""),
    ("api.batch.v1.JobSchedulingConfiguration", "resourceClaims", "merge", "name", "map", &["name"], ""),
    ("api.batch.v1.JobStatus", "conditions", "merge", "type", "atomic", &[], ""),
    ("api.batch.v1.PodFailurePolicy", "rules", "", "", "atomic", &[], ""),
    ("api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "values", "", "", "set", &[], ""),
    ("api.batch.v1.PodFailurePolicyRule", "onPodConditions", "", "", "atomic", &[], ""),
    ("api.batch.v1.SuccessPolicy", "rules", "", "", "atomic", &[], ""),
    ("api.batch.v1.UncountedTerminatedPods", "failed", "", "", "set", &[], ""),
    ("api.batch.v1.UncountedTerminatedPods", "succeeded", "", "", "set", &[], ""),
    ("api.core.v1.Capabilities", "add", "", "", "atomic", &[], ""),
    ("api.core.v1.Capabilities", "drop", "", "", "atomic", &[], ""),
    ("api.core.v1.CephFSPersistentVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("api.core.v1.CephFSVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("api.core.v1.ConfigMapProjection", "items", "", "", "atomic", &[], ""),
    ("api.core.v1.ConfigMapVolumeSource", "items", "", "", "atomic", &[], ""),
    ("api.core.v1.Container", "args", "", "", "atomic", &[], ""),
    ("api.core.v1.Container", "command", "", "", "atomic", &[], ""),
    ("api.core.v1.Container", "env", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.Container", "envFrom", "", "", "atomic", &[], ""),
    ("api.core.v1.Container", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"], ""),
    ("api.core.v1.Container", "resizePolicy", "", "", "atomic", &[], ""),
    ("api.core.v1.Container", "restartPolicyRules", "", "", "atomic", &[], ""),
    ("api.core.v1.Container", "volumeDevices", "merge", "devicePath", "map", &["devicePath"], ""),
    ("api.core.v1.Container", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    ("api.core.v1.ContainerImage", "names", "", "", "atomic", &[], ""),
    ("api.core.v1.ContainerRestartRuleOnExitCodes", "values", "", "", "set", &[], ""),
    ("api.core.v1.ContainerStatus", "allocatedResourcesStatus", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.ContainerStatus", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    ("api.core.v1.DownwardAPIProjection", "items", "", "", "atomic", &[], ""),
    ("api.core.v1.DownwardAPIVolumeSource", "items", "", "", "atomic", &[], ""),
    ("api.core.v1.EndpointSubset", "addresses", "", "", "atomic", &[], ""),
    ("api.core.v1.EndpointSubset", "notReadyAddresses", "", "", "atomic", &[], ""),
    ("api.core.v1.EndpointSubset", "ports", "", "", "atomic", &[], ""),
    ("api.core.v1.Endpoints", "subsets", "", "", "atomic", &[], ""),
    ("api.core.v1.EphemeralContainer", "args", "", "", "atomic", &[], ""),
    ("api.core.v1.EphemeralContainer", "command", "", "", "atomic", &[], ""),
    ("api.core.v1.EphemeralContainer", "env", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.EphemeralContainer", "envFrom", "", "", "atomic", &[], ""),
    ("api.core.v1.EphemeralContainer", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"], ""),
    ("api.core.v1.EphemeralContainer", "resizePolicy", "", "", "atomic", &[], ""),
    ("api.core.v1.EphemeralContainer", "restartPolicyRules", "", "", "atomic", &[], ""),
    ("api.core.v1.EphemeralContainer", "volumeDevices", "merge", "devicePath", "map", &["devicePath"], ""),
    ("api.core.v1.EphemeralContainer", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    ("api.core.v1.ExecAction", "command", "", "", "atomic", &[], ""),
    ("api.core.v1.FCVolumeSource", "targetWWNs", "", "", "atomic", &[], ""),
    ("api.core.v1.FCVolumeSource", "wwids", "", "", "atomic", &[], ""),
    ("api.core.v1.HTTPGetAction", "httpHeaders", "", "", "atomic", &[], ""),
    ("api.core.v1.HostAlias", "hostnames", "", "", "atomic", &[], ""),
    ("api.core.v1.ISCSIPersistentVolumeSource", "portals", "", "", "atomic", &[], ""),
    ("api.core.v1.ISCSIVolumeSource", "portals", "", "", "atomic", &[], ""),
    ("api.core.v1.LimitRangeSpec", "limits", "", "", "atomic", &[], ""),
    ("api.core.v1.LinuxContainerUser", "supplementalGroups", "", "", "atomic", &[], ""),
    ("api.core.v1.LoadBalancerIngress", "ports", "", "", "atomic", &[], ""),
    ("api.core.v1.LoadBalancerStatus", "ingress", "", "", "atomic", &[], ""),
    ("api.core.v1.NamespaceSpec", "finalizers", "", "", "atomic", &[], ""),
    ("api.core.v1.NamespaceStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.core.v1.NodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeAllocatableResourceClaimStatus", "containers", "", "", "set", &[], ""),
    ("api.core.v1.NodeAllocatableResourceClaimStatus", "mapping", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.NodeAllocatableResourceClaimStatus", "overhead", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.NodePodPreemptionPolicy", "disableResizePreemption", "", "", "set", &[], ""),
    ("api.core.v1.NodeSelector", "nodeSelectorTerms", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeSelectorTerm", "matchExpressions", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeSelectorTerm", "matchFields", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeSpec", "podCIDRs", "merge", "", "set", &[], ""),
    ("api.core.v1.NodeSpec", "taints", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeStatus", "addresses", "merge", "type", "map", &["type"], ""),
    ("api.core.v1.NodeStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.core.v1.NodeStatus", "declaredFeatures", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeStatus", "images", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeStatus", "runtimeHandlers", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeStatus", "volumesAttached", "", "", "atomic", &[], ""),
    ("api.core.v1.NodeStatus", "volumesInUse", "", "", "atomic", &[], ""),
    ("api.core.v1.PersistentVolumeClaimSpec", "accessModes", "", "", "atomic", &[], ""),
    ("api.core.v1.PersistentVolumeClaimStatus", "accessModes", "", "", "atomic", &[], ""),
    ("api.core.v1.PersistentVolumeClaimStatus", "allocatedResourceStatuses", "", "", "", &[], "granular"),
    ("api.core.v1.PersistentVolumeClaimStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.core.v1.PersistentVolumeSpec", "accessModes", "", "", "atomic", &[], ""),
    ("api.core.v1.PersistentVolumeSpec", "claimRef", "", "", "", &[], "granular"),
    ("api.core.v1.PersistentVolumeSpec", "mountOptions", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAffinityTerm", "matchLabelKeys", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAffinityTerm", "mismatchLabelKeys", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAffinityTerm", "namespaces", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("api.core.v1.PodAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("api.core.v1.PodDNSConfig", "nameservers", "", "", "atomic", &[], ""),
    ("api.core.v1.PodDNSConfig", "options", "", "", "atomic", &[], ""),
    ("api.core.v1.PodDNSConfig", "searches", "", "", "atomic", &[], ""),
    ("api.core.v1.PodExtendedResourceClaimStatus", "requestMappings", "", "", "atomic", &[], ""),
    ("api.core.v1.PodSecurityContext", "supplementalGroups", "", "", "atomic", &[], ""),
    ("api.core.v1.PodSecurityContext", "sysctls", "", "", "atomic", &[], ""),
    ("api.core.v1.PodSpec", "containers", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "ephemeralContainers", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "evictionResponders", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "hostAliases", "merge", "ip", "map", &["ip"], ""),
    ("api.core.v1.PodSpec", "imagePullSecrets", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "initContainers", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "nodeSelector", "", "", "", &[], "atomic"),
    ("api.core.v1.PodSpec", "readinessGates", "", "", "atomic", &[], ""),
    ("api.core.v1.PodSpec", "resourceClaims", "merge,retainKeys", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "schedulingGates", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.PodSpec", "tolerations", "", "", "atomic", &[], ""),
    ("api.core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey", "map", &["topologyKey", "whenUnsatisfiable"], ""),
    ("api.core.v1.PodSpec", "volumes", "merge,retainKeys", "name", "map", &["name"], ""),
    ("api.core.v1.PodStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.core.v1.PodStatus", "containerStatuses", "", "", "atomic", &[], ""),
    ("api.core.v1.PodStatus", "ephemeralContainerStatuses", "", "", "atomic", &[], ""),
    ("api.core.v1.PodStatus", "hostIPs", "merge", "ip", "atomic", &[], ""),
    ("api.core.v1.PodStatus", "initContainerStatuses", "", "", "atomic", &[], ""),
    ("api.core.v1.PodStatus", "nodeAllocatableResourceClaimStatuses", "merge", "resourceClaimName", "map", &["resourceClaimName"], ""),
    ("api.core.v1.PodStatus", "podIPs", "merge", "ip", "map", &["ip"], ""),
    ("api.core.v1.PodStatus", "resourceClaimStatuses", "merge,retainKeys", "name", "map", &["name"], ""),
    ("api.core.v1.PodStatus", "volumeHealth", "", "", "map", &["name"], ""),
    ("api.core.v1.PodVolumeHealth", "healthConditions", "merge", "status", "map", &["status", "reason"], ""),
    ("api.core.v1.ProjectedVolumeSource", "sources", "", "", "atomic", &[], ""),
    ("api.core.v1.RBDPersistentVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("api.core.v1.RBDVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("api.core.v1.ResourceQuotaSpec", "scopes", "", "", "atomic", &[], ""),
    ("api.core.v1.ResourceRequirements", "claims", "", "", "map", &["name"], ""),
    ("api.core.v1.ResourceStatus", "resources", "", "", "map", &["resourceID"], ""),
    ("api.core.v1.ScopeSelector", "matchExpressions", "", "", "atomic", &[], ""),
    ("api.core.v1.ScopedResourceSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("api.core.v1.SecretProjection", "items", "", "", "atomic", &[], ""),
    ("api.core.v1.SecretVolumeSource", "items", "", "", "atomic", &[], ""),
    ("api.core.v1.ServiceAccount", "imagePullSecrets", "", "", "atomic", &[], ""),
    ("api.core.v1.ServiceAccount", "secrets", "merge", "name", "map", &["name"], ""),
    ("api.core.v1.ServiceSpec", "clusterIPs", "", "", "atomic", &[], ""),
    ("api.core.v1.ServiceSpec", "externalIPs", "", "", "atomic", &[], ""),
    ("api.core.v1.ServiceSpec", "ipFamilies", "", "", "atomic", &[], ""),
    ("api.core.v1.ServiceSpec", "loadBalancerSourceRanges", "", "", "atomic", &[], ""),
    ("api.core.v1.ServiceSpec", "ports", "merge", "port", "map", &["port", "protocol"], ""),
    ("api.core.v1.ServiceSpec", "selector", "", "", "", &[], "atomic"),
    ("api.core.v1.ServiceStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("api.core.v1.TopologySpreadConstraint", "matchLabelKeys", "", "", "atomic", &[], ""),
    ("api.core.v1.VolumeHealthStatus", "healthConditions", "merge", "status", "map", &["status", "reason"], ""),
    ("api.core.v1.VolumeMount", "bindMountOptions", "", "", "set", &[], ""),
    ("api.discovery.v1.Endpoint", "addresses", "", "", "set", &[], ""),
    ("api.discovery.v1.EndpointHints", "forNodes", "", "", "atomic", &[], ""),
    ("api.discovery.v1.EndpointHints", "forZones", "", "", "atomic", &[], ""),
    ("api.discovery.v1.EndpointSlice", "endpoints", "", "", "atomic", &[], ""),
    ("api.discovery.v1.EndpointSlice", "ports", "", "", "atomic", &[], ""),
    ("api.networking.v1.HTTPIngressRuleValue", "paths", "", "", "atomic", &[], ""),
    ("api.networking.v1.IPBlock", "except", "", "", "atomic", &[], ""),
    ("api.networking.v1.IngressLoadBalancerIngress", "ports", "", "", "atomic", &[], ""),
    ("api.networking.v1.IngressLoadBalancerStatus", "ingress", "", "", "atomic", &[], ""),
    ("api.networking.v1.IngressSpec", "rules", "", "", "atomic", &[], ""),
    ("api.networking.v1.IngressSpec", "tls", "", "", "atomic", &[], ""),
    ("api.networking.v1.IngressTLS", "hosts", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicyEgressRule", "ports", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicyEgressRule", "to", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicyIngressRule", "from", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicyIngressRule", "ports", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicySpec", "egress", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicySpec", "ingress", "", "", "atomic", &[], ""),
    ("api.networking.v1.NetworkPolicySpec", "policyTypes", "", "", "atomic", &[], ""),
    ("api.rbac.v1.AggregationRule", "clusterRoleSelectors", "", "", "atomic", &[], ""),
    ("api.rbac.v1.ClusterRole", "rules", "", "", "atomic", &[], ""),
    ("api.rbac.v1.ClusterRoleBinding", "subjects", "", "", "atomic", &[], ""),
    ("api.rbac.v1.PolicyRule", "apiGroups", "", "", "atomic", &[], ""),
    ("api.rbac.v1.PolicyRule", "nonResourceURLs", "", "", "atomic", &[], ""),
    ("api.rbac.v1.PolicyRule", "resourceNames", "", "", "atomic", &[], ""),
    ("api.rbac.v1.PolicyRule", "resources", "", "", "atomic", &[], ""),
    ("api.rbac.v1.PolicyRule", "verbs", "", "", "atomic", &[], ""),
    ("api.rbac.v1.Role", "rules", "", "", "atomic", &[], ""),
    ("api.rbac.v1.RoleBinding", "subjects", "", "", "atomic", &[], ""),
    ("api.scheduling.v1alpha3.WorkloadPodGroupSchedulingConstraints", "topology", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames", "categories", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames", "shortNames", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec", "versions", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus", "conditions", "", "", "map", &["type"], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus", "storedVersions", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion", "additionalPrinterColumns", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion", "selectableFields", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "allOf", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "anyOf", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "enum", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "oneOf", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "required", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "x-kubernetes-list-map-keys", "", "", "atomic", &[], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps", "x-kubernetes-validations", "merge", "rule", "map", &["rule"], ""),
    ("apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion", "conversionReviewVersions", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.APIResource", "categories", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.APIResource", "shortNames", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.APIResourceList", "resources", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.DeleteOptions", "dryRun", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.LabelSelector", "matchExpressions", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", "", "set", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "managedFields", "", "", "atomic", &[], ""),
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "merge", "uid", "map", &["uid"], ""),
    ("apimachinery.pkg.apis.meta.v1.StatusDetails", "causes", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
static TYPE_MAP_TYPES: &[(&str, &str)] = &[
    ("api.autoscaling.v1.CrossVersionObjectReference", "atomic"),
    ("api.core.v1.ConfigMapKeySelector", "atomic"),
    ("api.core.v1.EndpointAddress", "atomic"),
    ("api.core.v1.EndpointPort", "atomic"),
    ("api.core.v1.EvictionResponder", "atomic"),
    ("api.core.v1.FileKeySelector", "atomic"),
    ("api.core.v1.LocalObjectReference", "atomic"),
    ("api.core.v1.NodeSelector", "atomic"),
    ("api.core.v1.NodeSelectorTerm", "atomic"),
    ("api.core.v1.ObjectFieldSelector", "atomic"),
    ("api.core.v1.ObjectReference", "atomic"),
    ("api.core.v1.ResourceFieldSelector", "atomic"),
    ("api.core.v1.ScopeSelector", "atomic"),
    ("api.core.v1.SecretKeySelector", "atomic"),
    ("api.core.v1.SecretReference", "atomic"),
    ("api.core.v1.TypedLocalObjectReference", "atomic"),
    ("api.discovery.v1.EndpointPort", "atomic"),
    ("api.networking.v1.ServiceBackendPort", "atomic"),
    ("api.rbac.v1.RoleRef", "atomic"),
    ("api.rbac.v1.Subject", "atomic"),
    ("apimachinery.pkg.apis.meta.v1.LabelSelector", "atomic"),
    ("apimachinery.pkg.apis.meta.v1.OwnerReference", "atomic"),
];
