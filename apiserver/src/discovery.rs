//! Discovery documents generated from the resource registry (plus the review resources of
//! `reviews.rs`, which store nothing): `/api`, `/apis`, the per group-version resource lists,
//! and `/version`.

use api::registry::{self, RESOURCES, Subresource};
use serde_json::{Value, json};

use crate::resource_metrics as metrics_api;
use crate::reviews::{self, REVIEWS};

/// The Kubernetes version kaji implements.
pub const KUBE_MINOR: &str = "37";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": format!("v1.{KUBE_MINOR}.0+kaji-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// Every served group with its versions (preferred first): the registry's, and the review
/// resources' groups where upstream lists them (after events.k8s.io).
fn served_group_versions() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups = registry::group_versions();
    let mut at = groups
        .iter()
        .position(|(g, _)| *g == "events.k8s.io")
        .map_or(groups.len(), |i| i + 1);
    for review in REVIEWS {
        match groups.iter_mut().find(|(g, _)| *g == review.group) {
            Some((_, versions)) => {
                if !versions.contains(&review.version) {
                    versions.push(review.version);
                }
            }
            None => {
                groups.insert(at, (review.group, vec![review.version]));
                at += 1;
            }
        }
    }
    // Served in-process, listed last as an aggregated group (metrics-server's APIService).
    groups.push((metrics_api::GROUP, vec![metrics_api::VERSION]));
    groups
}

/// The Metrics API resources of one group-version.
fn metrics_of(group: &str, version: &str) -> &'static [metrics_api::MetricsResource] {
    if group == metrics_api::GROUP && version == metrics_api::VERSION {
        metrics_api::RESOURCES
    } else {
        &[]
    }
}

/// The review resources of one group-version.
fn reviews_of<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static reviews::ReviewResource> + 'a {
    REVIEWS.iter().filter(move |r| r.group == group && r.version == version)
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions.clone(), "preferredVersion": versions[0]})
}

/// `/apis`.
pub fn groups() -> Value {
    let groups: Vec<Value> = served_group_versions()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| group_entry(g, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(name: &str) -> Option<Value> {
    served_group_versions()
        .into_iter()
        .find(|(g, _)| !g.is_empty() && *g == name)
        .map(|(g, versions)| {
            let mut entry = group_entry(g, &versions);
            entry["kind"] = json!("APIGroup");
            entry["apiVersion"] = json!("v1");
            entry
        })
}

/// `/api/v1` and `/apis/<group>/<version>`: an APIResourceList, or `None` if not served.
pub fn resources(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> = RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() && reviews_of(group, version).next().is_none() && metrics_of(group, version).is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for def in defs {
        let mut entry = json!({
            "name": def.plural,
            "singularName": def.singular,
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": def.verbs(),
        });
        if !def.short_names.is_empty() {
            entry["shortNames"] = json!(def.short_names);
        }
        if !def.categories.is_empty() {
            entry["categories"] = json!(def.categories);
        }
        resources.push(entry);
        for sub in def.subresources {
            let (sub_group, sub_version, kind, verbs): (Option<&str>, Option<&str>, &str, &[&str]) = match sub {
                Subresource::Status => (None, None, def.kind, &["get", "patch", "update"]),
                Subresource::Scale => (Some("autoscaling"), Some("v1"), "Scale", &["get", "patch", "update"]),
                Subresource::Binding => (None, None, "Binding", &["create"]),
                Subresource::Eviction => (Some("policy"), Some("v1"), "Eviction", &["create"]),
                Subresource::Finalize => (None, None, def.kind, &["update"]),
                Subresource::Log => (None, None, def.kind, &["get"]),
                Subresource::Exec => (None, None, "PodExecOptions", &["create", "get"]),
                Subresource::PortForward => (None, None, "PodPortForwardOptions", &["create", "get"]),
                Subresource::Attach => (None, None, "PodAttachOptions", &["create", "get"]),
            };
            let mut entry = json!({
                "name": format!("{}/{}", def.plural, sub.name()),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if let (Some(g), Some(v)) = (sub_group, sub_version) {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    for review in reviews_of(group, version) {
        resources.push(json!({
            "name": review.plural,
            "singularName": review.singular,
            "namespaced": false,
            "kind": review.kind,
            "verbs": reviews::VERBS,
        }));
    }
    for resource in metrics_of(group, version) {
        resources.push(json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": metrics_api::VERBS,
        }));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

/// The media type of aggregated discovery documents.
pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header prefers aggregated discovery (v2) over plain JSON: the first
/// alternative that names it wins over later ones, as clients list their preference first.
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    for alternative in accept.split(',') {
        let mut parts = alternative.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
            .collect();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if media == "application/json"
            && param("g") == Some("apidiscovery.k8s.io")
            && param("v") == Some("v2")
            && param("as") == Some("APIGroupDiscoveryList")
        {
            return true;
        }
        if matches!(media, "application/json" | "*/*" | "application/*") && params.is_empty() {
            return false;
        }
    }
    false
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One group's entry in an aggregated discovery document, versions in preference order.
fn aggregated_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let reviews = reviews_of(group, version).map(|review| {
                json!({
                    "resource": review.plural,
                    "responseKind": response_kind(review.group, review.version, review.kind),
                    "scope": "Cluster",
                    "singularResource": review.singular,
                    "verbs": reviews::VERBS,
                })
            });
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|d| d.group == group && d.version == *version)
                .map(|def| {
                    let subresources: Vec<Value> = def
                        .subresources
                        .iter()
                        .map(|sub| {
                            let (kind, verbs): (Value, &[&str]) = match sub {
                                Subresource::Status => (
                                    response_kind(def.group, def.version, def.kind),
                                    &["get", "patch", "update"],
                                ),
                                Subresource::Scale => {
                                    (response_kind("autoscaling", "v1", "Scale"), &["get", "patch", "update"])
                                }
                                Subresource::Binding => (response_kind("", "v1", "Binding"), &["create"]),
                                Subresource::Eviction => (response_kind("policy", "v1", "Eviction"), &["create"]),
                                Subresource::Finalize => (response_kind(def.group, def.version, def.kind), &["update"]),
                                Subresource::Log => (response_kind(def.group, def.version, def.kind), &["get"]),
                                Subresource::Exec => (response_kind("", "v1", "PodExecOptions"), &["create", "get"]),
                                Subresource::PortForward => {
                                    (response_kind("", "v1", "PodPortForwardOptions"), &["create", "get"])
                                }
                                Subresource::Attach => {
                                    (response_kind("", "v1", "PodAttachOptions"), &["create", "get"])
                                }
                            };
                            json!({"subresource": sub.name(), "responseKind": kind, "verbs": verbs})
                        })
                        .collect();
                    let mut entry = json!({
                        "resource": def.plural,
                        "responseKind": response_kind(def.group, def.version, def.kind),
                        "scope": if def.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": def.singular,
                        "verbs": def.verbs(),
                    });
                    if !def.short_names.is_empty() {
                        entry["shortNames"] = json!(def.short_names);
                    }
                    if !def.categories.is_empty() {
                        entry["categories"] = json!(def.categories);
                    }
                    if !subresources.is_empty() {
                        entry["subresources"] = Value::Array(subresources);
                    }
                    entry
                })
                .chain(reviews)
                .chain(metrics_of(group, version).iter().map(|resource| {
                    json!({
                        "resource": resource.plural,
                        "responseKind": response_kind(metrics_api::GROUP, metrics_api::VERSION, resource.kind),
                        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": resource.singular,
                        "verbs": metrics_api::VERBS,
                    })
                }))
                .collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group}, "versions": versions})
}

/// The aggregated discovery document (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList) of
/// `/api` (`core`) or `/apis`.
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = served_group_versions()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| aggregated_group(g, &versions))
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    #[test]
    fn aggregated_documents() {
        assert!(wants_aggregated(Some(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(!wants_aggregated(Some("application/json, */*")));
        assert!(!wants_aggregated(Some(
            "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        )));
        assert!(!wants_aggregated(None));
        let core = aggregated(true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["responseKind"]["kind"], "Pod");
        assert_eq!(pods["scope"], "Namespaced");
        assert!(
            pods["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["subresource"] == "binding")
        );
        let apis = aggregated(false);
        let autoscaling = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling["versions"][0]["version"], "v2", "preferred version first");
        assert!(
            apis["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["metadata"]["name"] != "")
        );
        let names: Vec<&str> = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        let authn = names.iter().position(|n| *n == "authentication.k8s.io").unwrap();
        assert_eq!(names[authn + 1], "authorization.k8s.io");
        let authorization = &apis["items"][authn + 1]["versions"][0];
        assert_eq!(
            authorization["resources"],
            json!([
                {"resource": "selfsubjectaccessreviews", "responseKind": {"group": "authorization.k8s.io", "version": "v1", "kind": "SelfSubjectAccessReview"}, "scope": "Cluster", "singularResource": "selfsubjectaccessreview", "verbs": ["create"]},
                {"resource": "selfsubjectrulesreviews", "responseKind": {"group": "authorization.k8s.io", "version": "v1", "kind": "SelfSubjectRulesReview"}, "scope": "Cluster", "singularResource": "selfsubjectrulesreview", "verbs": ["create"]},
            ])
        );
        assert_eq!(
            apis["items"][authn]["versions"][0]["resources"][0]["resource"],
            "selfsubjectreviews"
        );
    }

    use super::*;

    #[test]
    fn documents() {
        let core = resources("", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(
            core["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "pods/binding")
        );
        let groups = groups();
        let autoscaling = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        assert!(resources("apps", "v2").is_none());
        let deploy = resources("apps", "v1").unwrap();
        let scale = deploy["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
        let authentication = resources("authentication.k8s.io", "v1").unwrap();
        assert_eq!(
            authentication["resources"],
            json!([{"name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": false, "kind": "SelfSubjectReview", "verbs": ["create"]}])
        );
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "authorization.k8s.io")
        );
        assert_eq!(
            group("authentication.k8s.io").unwrap()["preferredVersion"]["version"],
            "v1"
        );
    }
}
