//! Pod defaulting, as upstream's `pkg/apis/core/v1/defaults.go` plus what admission adds to a
//! bare Pod (DefaultTolerationSeconds, Priority; the ServiceAccount plugin's `default` name on
//! create, [`admit_service_account`]) and what the pod strategy sets on create
//! (`status.phase`, `status.qosClass`).
//!
//! [`default_pod_spec`] is what every pod template gets; [`default_pod`] adds the Pod-only
//! parts (requests from limits, enableServiceLinks, host-network ports, status, tolerations).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, LifecycleHandler, PersistentVolumeClaimSpec, Pod, PodSecurityContext, PodSpec, PodStatus,
    PodTemplateSpec, Probe, Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::validation::quantity::{Quantity, canonicalize};

/// upstream's `DefaultTerminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE_PERIOD: i64 = 30;
/// upstream's default file mode for projected files (0644).
pub(crate) const DEFAULT_MODE: i32 = 0o644;
/// What DefaultTolerationSeconds gives the not-ready / unreachable tolerations.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The annotation that marks a kubelet's mirror of a static pod.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The service account a pod runs as when it names none.
const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The deprecated `serviceAccount` mirrors `serviceAccountName`, as upstream's v1 conversion
/// writes it; a spec naming only the deprecated field takes its value.
fn sync_service_account(spec: &mut PodSpec) {
    if spec.service_account_name.as_deref().unwrap_or("").is_empty() {
        spec.service_account_name = spec.service_account.clone().filter(|s| !s.is_empty());
    }
    spec.service_account = spec.service_account_name.clone();
}

/// The ServiceAccount admission plugin on a pod being created: a pod (not a kubelet's mirror
/// pod) that names no service account (in neither field) runs as `default`. Create-only, as
/// upstream's admission: an update never changes a pod's service account.
pub fn admit_service_account(pod: &mut serde_json::Value) {
    let mirror = pod["metadata"]["annotations"].get(MIRROR_POD_ANNOTATION).is_some();
    let named = |field: &str| pod["spec"][field].as_str().is_some_and(|s| !s.is_empty());
    if mirror || named("serviceAccountName") || named("serviceAccount") {
        return;
    }
    if let Some(spec) = pod.get_mut("spec").and_then(serde_json::Value::as_object_mut) {
        spec.insert("serviceAccountName".into(), DEFAULT_SERVICE_ACCOUNT.into());
    }
}

/// Defaults a pod template (Deployment, Job, …): the PodSpec defaults only.
pub fn default_pod_template(template: &mut PodTemplateSpec) {
    if let Some(spec) = template.spec.as_mut() {
        default_pod_spec(spec);
    }
}

/// Defaults a bare Pod.
pub fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    // Requests default to limits only for Pods, not templates: a template's limits may be
    // changed by a LimitRange at pod creation.
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        requests_from_limits(c);
    }
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
    default_pod_spec(spec);
    add_default_tolerations(spec);
    // The Priority admission plugin resolves the (absent) priority class to 0.
    spec.priority.get_or_insert(0);
    spec.preemption_policy
        .get_or_insert_with(|| "PreemptLowerPriority".to_string());
    let qos = pod_qos(spec);
    let status = pod.status.get_or_insert_with(PodStatus::default);
    status.phase.get_or_insert_with(|| "Pending".to_string());
    status.qos_class.get_or_insert_with(|| qos.to_string());
}

/// upstream's `SetDefaults_PodSpec` and the defaults of everything inside it.
pub fn default_pod_spec(spec: &mut PodSpec) {
    sync_service_account(spec);
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, "Always");
    spec.security_context.get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds
        .get_or_insert(DEFAULT_TERMINATION_GRACE_PERIOD);
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
        set_if_empty(&mut c.termination_message_policy, "File");
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or_default()).to_string());
        }
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    if let Some(overhead) = spec.overhead.as_mut() {
        canonicalize_list(overhead);
    }
}

fn set_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// Rewrites quantities in their canonical form, as upstream stores them.
pub(crate) fn canonicalize_list(list: &mut BTreeMap<String, ApiQuantity>) {
    for q in list.values_mut() {
        q.0 = canonicalize(&q.0);
    }
}

fn requests_from_limits(c: &mut Container) {
    let Some(resources) = c.resources.as_mut() else { return };
    let Some(limits) = resources.limits.clone() else { return };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (name, value) in limits {
        requests.entry(name).or_insert(value);
    }
}

/// upstream's `SetDefaults_Container` and the defaults of its ports, probes, hooks and env.
fn default_container(c: &mut Container) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or_default()).to_string());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    for p in c.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe]
        .into_iter()
        .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        for hook in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten()
        {
            default_handler(hook);
        }
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(field_ref) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_if_empty(&mut field_ref.api_version, "v1");
        }
    }
    if let Some(resources) = c.resources.as_mut() {
        for list in [&mut resources.limits, &mut resources.requests].into_iter().flatten() {
            canonicalize_list(list);
        }
    }
}

/// `Always` for a `:latest` or untagged image without a digest, else `IfNotPresent` (also for
/// references that do not parse, as upstream ignores the parse error).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference; `latest` when neither tag nor digest is given, `None` when the
/// reference is malformed or has a digest but no tag.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name.get(last_slash..).and_then(|last| last.rfind(':')) {
        Some(i) => (name.get(..last_slash + i)?, name.get(last_slash + i + 1..)),
        None => (name, None),
    };
    // The path after a registry host must be lower case.
    let path = match repo.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => repo,
    };
    if path.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    match (tag, digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    }
}

/// upstream's `SetDefaults_Probe` (and the HTTPGetAction defaults inside).
fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(http) = p.http_get.as_mut() {
        default_http_get(http);
    }
}

fn default_handler(h: &mut LifecycleHandler) {
    if let Some(http) = h.http_get.as_mut() {
        default_http_get(http);
    }
}

fn default_http_get(http: &mut HTTPGetAction) {
    set_if_empty(&mut http.path, "/");
    set_if_empty(&mut http.scheme, "HTTP");
}

/// upstream's volume defaults: a source-less volume is an emptyDir; projected files get mode
/// 0644; hostPath type is "".
fn default_volume(v: &mut Volume) {
    let value = serde_json::to_value(&*v).unwrap_or_default();
    let has_source = value.as_object().is_some_and(|o| o.keys().any(|k| k != "name"));
    if !has_source {
        v.empty_dir = Some(Default::default());
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
        for item in s.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                set_if_empty(&mut f.api_version, "v1");
            }
        }
    }
    if let Some(s) = v.projected.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
        for source in s.sources.iter_mut().flatten() {
            if let Some(token) = source.service_account_token.as_mut() {
                token.expiration_seconds.get_or_insert(3600);
            }
            for item in source
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(f) = item.field_ref.as_mut() {
                    set_if_empty(&mut f.api_version, "v1");
                }
            }
        }
    }
    if let Some(h) = v.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    if let Some(e) = v.empty_dir.as_mut()
        && let Some(limit) = e.size_limit.as_mut()
    {
        limit.0 = canonicalize(&limit.0);
    }
    if let Some(template) = v.ephemeral.as_mut().and_then(|e| e.volume_claim_template.as_mut()) {
        default_pvc_spec(&mut template.spec);
    }
}

/// upstream's `SetDefaults_PersistentVolumeClaimSpec`.
pub fn default_pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    set_if_empty(&mut spec.volume_mode, "Filesystem");
    if let Some(resources) = spec.resources.as_mut() {
        for list in [&mut resources.limits, &mut resources.requests].into_iter().flatten() {
            canonicalize_list(list);
        }
    }
}

/// Adds the NoExecute tolerations for not-ready and unreachable nodes unless the pod already
/// tolerates those taints (upstream's DefaultTolerationSeconds admission plugin).
fn add_default_tolerations(spec: &mut PodSpec) {
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let tolerated = tolerations.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or_default();
            let effect = t.effect.as_deref().unwrap_or_default();
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            tolerations.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                value: None,
            });
        }
    }
}

/// upstream's `GetPodQOS`, over containers and init containers, cpu and memory only.
pub fn pod_qos(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, Vec<Quantity>> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Vec<Quantity>> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let resources = c.resources.as_ref();
        for (name, q) in resources.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if let Some(q) = positive_compute(name, q) {
                requests.entry(name.as_str()).or_default().push(q);
            }
        }
        let mut found = Vec::new();
        for (name, q) in resources.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if let Some(q) = positive_compute(name, q) {
                found.push(name.as_str());
                limits.entry(name.as_str()).or_default().push(q);
            }
        }
        if !(found.contains(&"cpu") && found.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        guaranteed = requests
            .iter()
            .all(|(name, req)| limits.get(name).is_some_and(|lim| same_sum(req, lim)));
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Whether two lists of quantities add up to the same amount (exactly when they fit in milli
/// units, else approximately).
fn same_sum(a: &[Quantity], b: &[Quantity]) -> bool {
    let exact = |qs: &[Quantity]| qs.iter().try_fold(0i128, |acc, q| acc.checked_add(q.milli_value()?));
    match (exact(a), exact(b)) {
        (Some(x), Some(y)) => x == y,
        _ => {
            let approx = |qs: &[Quantity]| qs.iter().map(Quantity::as_f64).sum::<f64>();
            (approx(a) - approx(b)).abs() <= f64::EPSILON * approx(a).abs()
        }
    }
}

fn positive_compute(name: &str, q: &ApiQuantity) -> Option<Quantity> {
    if name != "cpu" && name != "memory" {
        return None;
    }
    Quantity::parse(&q.0).filter(|q| !q.is_negative() && !q.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_from_image() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry:5000/nginx", "Always"),
            ("registry:5000/nginx:1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx:latest@sha256:abc", "Always"),
            ("", "IfNotPresent"),
            ("NGINX", "IfNotPresent"),
            ("Registry.Example.com/app", "Always"),
        ] {
            assert_eq!(default_pull_policy(image), want, "{image}");
        }
    }
}
