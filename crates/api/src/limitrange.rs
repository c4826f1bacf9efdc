//! LimitRange admission as upstream's `LimitRanger` plugin defines it: the defaults of a
//! namespace's `Container` items filled into pods' containers on create ([`default_pod`], with
//! the `kubernetes.io/limit-ranger` annotation), and the min / max / maxLimitRequestRatio
//! constraints of `Container`, `Pod` and `PersistentVolumeClaim` items checked
//! ([`validate`]), refused with upstream's messages joined as its error aggregate joins them.
//!
//! Objects and LimitRanges are JSON values in their served form, like `quota`.

use serde_json::Value;

use crate::quantity::Quantity;
use crate::quota::{Refused, list};

/// The annotation naming what the plugin defaulted.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Upstream's `resource.MaxMilliValue`: beyond it, comparisons use whole units.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// A resource list (`requests`, `limits`, `min`, ...) with parsed amounts.
type List = crate::quota::Usage;

/// Whether the plugin looks at a write: pods on create (their containers are immutable
/// afterwards), PersistentVolumeClaims on create and update; never subresources.
pub fn applies(group: &str, plural: &str, update: bool) -> bool {
    group.is_empty() && (plural == "persistentvolumeclaims" || (plural == "pods" && !update))
}

/// The limit items of a LimitRange of one type.
fn items<'a>(limit_range: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    limit_range["spec"]["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |item| item["type"] == kind)
}

/// Fills in one container's missing requests and limits; returns the annotation parts.
fn default_container(container: &mut Value, requests: &List, limits: &List, prefix: &str) -> Vec<String> {
    let name = container["name"].as_str().unwrap_or_default().to_string();
    let resources = &container["resources"];
    let well_formed = |v: &Value| v.is_null() || v.is_object();
    if !container.is_object()
        || !well_formed(resources)
        || !well_formed(&resources["requests"])
        || !well_formed(&resources["limits"])
    {
        // Decoding refuses such a pod; nothing to fill in.
        return Vec::new();
    }
    let mut fill = |field: &str, defaults: &List| -> Vec<String> {
        let mut set = Vec::new();
        for (k, v) in defaults {
            let present = container["resources"][field].get(k).is_some();
            if !present {
                if !container["resources"][field].is_object() {
                    container["resources"][field] = Value::Object(Default::default());
                }
                container["resources"][field][k] = Value::from(v.to_string());
                set.push(k.clone());
            }
        }
        set
    };
    let set_limits = fill("limits", limits);
    let set_requests = fill("requests", requests);
    let mut parts = Vec::new();
    if !set_requests.is_empty() {
        parts.push(format!("{} request for {prefix} {name}", set_requests.join(", ")));
    }
    if !set_limits.is_empty() {
        parts.push(format!("{} limit for {prefix} {name}", set_limits.join(", ")));
    }
    parts
}

/// Upstream's `PodMutateLimitFunc` for one LimitRange: every container and init container
/// lacking a request or limit that the range's `Container` items default gets it, and the pod
/// is annotated with what was set. Returns whether the pod changed.
pub fn default_pod(limit_range: &Value, pod: &mut Value) -> bool {
    let mut requests = List::new();
    let mut limits = List::new();
    for item in items(limit_range, "Container") {
        requests.extend(list(&item["defaultRequest"]));
        limits.extend(list(&item["default"]));
    }
    if requests.is_empty() && limits.is_empty() {
        return false;
    }
    let mut parts = Vec::new();
    for (field, prefix) in [("containers", "container"), ("initContainers", "init container")] {
        if let Some(containers) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(field))
            .and_then(Value::as_array_mut)
        {
            for c in containers {
                parts.extend(default_container(c, &requests, &limits, prefix));
            }
        }
    }
    if parts.is_empty() {
        return false;
    }
    if !pod["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = Value::Object(Default::default());
    }
    pod["metadata"]["annotations"][ANNOTATION] = Value::from(format!("LimitRanger plugin set: {}", parts.join("; ")));
    true
}

/// Upstream's `requestLimitEnforcedValues`: the three amounts in thousandths when none
/// overflows that, in whole units otherwise (absent amounts are zero).
fn common_precision(request: Option<&Quantity>, limit: Option<&Quantity>, enforced: &Quantity) -> (i64, i64, i64) {
    let zero = Quantity::default();
    let (request, limit) = (request.unwrap_or(&zero), limit.unwrap_or(&zero));
    if [request, limit, enforced].iter().all(|q| q.value() <= MAX_MILLI_VALUE) {
        (request.milli_value(), limit.milli_value(), enforced.milli_value())
    } else {
        (request.value(), limit.value(), enforced.value())
    }
}

fn min_constraint(kind: &str, name: &str, enforced: &Quantity, requests: &List, limits: &List) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (observed_req, observed_lim, enforced_value) = common_precision(req, lim, enforced);
    match (req, lim) {
        (None, _) => Some(format!(
            "minimum {name} usage per {kind} is {enforced}.  No request is specified"
        )),
        (Some(req), _) if observed_req < enforced_value => Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but request is {req}"
        )),
        (_, Some(lim)) if observed_lim < enforced_value => Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(kind: &str, name: &str, enforced: &Quantity, requests: &List, limits: &List) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (observed_req, observed_lim, enforced_value) = common_precision(req, lim, enforced);
    match (req, lim) {
        (_, None) => Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
        )),
        (_, Some(lim)) if observed_lim > enforced_value => Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        (Some(req), _) if observed_req > enforced_value => Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

/// Upstream's `maxRequestConstraint`, for claims, whose limits are not user input.
fn max_request_constraint(kind: &str, name: &str, enforced: &Quantity, requests: &List) -> Option<String> {
    let req = requests.get(name);
    let (observed_req, _, enforced_value) = common_precision(req, None, enforced);
    match req {
        None => Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No request is specified"
        )),
        Some(req) if observed_req > enforced_value => Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

fn ratio_constraint(kind: &str, name: &str, enforced: &Quantity, requests: &List, limits: &List) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (observed_req, observed_lim, _) = common_precision(req, lim, enforced);
    if req.is_none() || observed_req == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || observed_lim == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let shown = observed_lim as f64 / observed_req as f64;
    let (observed, allowed) = if enforced.value() <= MAX_MILLI_VALUE {
        (shown * 1000.0, enforced.milli_value() as f64)
    } else {
        (shown, enforced.value() as f64)
    };
    (observed > allowed).then(|| {
        format!("{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {shown:.6}")
    })
}

/// min, max and ratio of one item against one set of requests and limits.
fn check_item(item: &Value, kind: &str, requests: &List, limits: &List, errs: &mut Vec<String>) {
    for (k, v) in list(&item["min"]) {
        errs.extend(min_constraint(kind, &k, &v, requests, limits));
    }
    for (k, v) in list(&item["max"]) {
        errs.extend(max_constraint(kind, &k, &v, requests, limits));
    }
    for (k, v) in list(&item["maxLimitRequestRatio"]) {
        errs.extend(ratio_constraint(kind, &k, &v, requests, limits));
    }
}

fn add(total: &mut List, more: &List) {
    for (k, v) in more {
        total.entry(k.clone()).or_default().add(v);
    }
}

fn raise(total: &mut List, to: &List) {
    for (k, v) in to {
        let entry = total.entry(k.clone()).or_insert(*v);
        if v > entry {
            *entry = *v;
        }
    }
}

/// Upstream's `podRequests` / `podLimits` (without in-place resize): the containers' sum,
/// sidecars (restartable init containers) added, raised to what any other init container
/// needs alongside the sidecars started before it.
fn pod_total(spec: &Value, field: &str) -> List {
    let mut total = List::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        add(&mut total, &list(&c["resources"][field]));
    }
    let mut sidecars = List::new();
    let mut init = List::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let own = list(&c["resources"][field]);
        if c["restartPolicy"] == "Always" {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            raise(&mut init, &sidecars);
        } else {
            let mut with_sidecars = own;
            add(&mut with_sidecars, &sidecars);
            raise(&mut init, &with_sidecars);
        }
    }
    raise(&mut total, &init);
    total
}

/// Upstream's error aggregate: one message as is, several (duplicates dropped) in brackets.
fn aggregate(errs: Vec<String>) -> Result<(), Refused> {
    let mut distinct: Vec<String> = Vec::new();
    for e in errs {
        if !distinct.contains(&e) {
            distinct.push(e);
        }
    }
    match distinct.len() {
        0 => Ok(()),
        1 => Err(Refused(distinct.remove(0))),
        _ => Err(Refused(format!("[{}]", distinct.join(", ")))),
    }
}

fn validate_pod(limit_range: &Value, pod: &Value) -> Result<(), Refused> {
    let mut errs = Vec::new();
    let spec = &pod["spec"];
    for item in limit_range["spec"]["limits"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some(kind @ "Container") => {
                let containers = spec["containers"].as_array().into_iter().flatten();
                let init = spec["initContainers"].as_array().into_iter().flatten();
                for c in containers.chain(init) {
                    let requests = list(&c["resources"]["requests"]);
                    let limits = list(&c["resources"]["limits"]);
                    check_item(item, kind, &requests, &limits, &mut errs);
                }
            }
            Some(kind @ "Pod") => {
                let requests = pod_total(spec, "requests");
                let limits = pod_total(spec, "limits");
                check_item(item, kind, &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    aggregate(errs)
}

fn validate_claim(limit_range: &Value, claim: &Value) -> Result<(), Refused> {
    let mut errs = Vec::new();
    let requests = list(&claim["spec"]["resources"]["requests"]);
    for item in items(limit_range, "PersistentVolumeClaim") {
        for (k, v) in list(&item["min"]) {
            errs.extend(min_constraint("PersistentVolumeClaim", &k, &v, &requests, &List::new()));
        }
        for (k, v) in list(&item["max"]) {
            errs.extend(max_request_constraint("PersistentVolumeClaim", &k, &v, &requests));
        }
    }
    aggregate(errs)
}

/// Upstream's `ValidateLimit` for one LimitRange: `Err` is the text after
/// `<resource> "<name>" is forbidden: `.
pub fn validate(limit_range: &Value, group: &str, plural: &str, object: &Value) -> Result<(), Refused> {
    match (group, plural) {
        ("", "pods") => validate_pod(limit_range, object),
        ("", "persistentvolumeclaims") => validate_claim(limit_range, object),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "limitrange_tests.rs"]
mod tests;
