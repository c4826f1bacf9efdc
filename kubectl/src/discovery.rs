//! What the server serves: the aggregated discovery documents of `/api` and `/apis` (two
//! requests), and the mapping from what a user types (`po`, `deploy`, `deployments.apps`,
//! `Deployment`, `all`) or what a manifest says (`apps/v1`, `Deployment`) to a resource.

use http::Request;
use kube::core::discovery::ApiResource;
use serde_json::Value;

use crate::error::Error;

/// The media type of the aggregated discovery document.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// One served resource in one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The URL segment, e.g. `deployments`.
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub categories: Vec<String>,
    /// Whether this is the group's preferred version (the first one listed).
    pub preferred: bool,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The `kind.group` form kubectl prints before names: `pod`, `deployment.apps`.
    pub fn kind_prefix(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// The `plural.group` form upstream uses in messages and `api-resources`: `pods`,
    /// `deployments.apps`.
    pub fn plural_group(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The `kube` description of this resource, for typed-less requests.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    /// The collection URL, in `namespace` when the resource is namespaced (all namespaces for
    /// `None`).
    pub fn collection_url(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }

    /// The URL of one object.
    pub fn object_url(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection_url(namespace))
    }

    /// Whether `verb` (`list`, `get`, `delete`, ...) is served.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    fn matches_name(&self, token: &str) -> bool {
        let token = token.to_lowercase();
        self.plural == token
            || self.singular == token
            || self.kind.to_lowercase() == token
            || self.short_names.contains(&token)
    }
}

/// Every resource the server serves, preferred versions first.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    resources: Vec<Resource>,
}

impl Discovery {
    /// Reads `/api` and `/apis` as aggregated discovery documents.
    pub async fn fetch(client: &kube::Client) -> Result<Self, Error> {
        let (core, groups) = futures::try_join!(get_aggregated(client, "/api"), get_aggregated(client, "/apis"))?;
        let mut discovery = Self::default();
        discovery.add_document(&core);
        discovery.add_document(&groups);
        Ok(discovery)
    }

    /// Builds the mapping from parsed aggregated discovery documents.
    pub fn from_documents(documents: &[Value]) -> Self {
        let mut discovery = Self::default();
        for document in documents {
            discovery.add_document(document);
        }
        discovery
    }

    fn add_document(&mut self, document: &Value) {
        let groups = document["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        for group in groups {
            let group_name = group["metadata"]["name"].as_str().unwrap_or_default();
            let versions = group["versions"].as_array().map(Vec::as_slice).unwrap_or_default();
            for (index, version) in versions.iter().enumerate() {
                let version_name = version["version"].as_str().unwrap_or_default();
                let resources = version["resources"].as_array().map(Vec::as_slice).unwrap_or_default();
                for resource in resources {
                    let strings = |field: &str| -> Vec<String> {
                        resource[field]
                            .as_array()
                            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                            .unwrap_or_default()
                    };
                    let plural = resource["resource"].as_str().unwrap_or_default().to_string();
                    let kind = resource["responseKind"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let singular = resource["singularResource"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .unwrap_or_else(|| kind.to_lowercase());
                    self.resources.push(Resource {
                        group: group_name.to_string(),
                        version: version_name.to_string(),
                        kind,
                        plural,
                        singular,
                        short_names: strings("shortNames"),
                        namespaced: resource["scope"] == "Namespaced",
                        verbs: strings("verbs"),
                        categories: strings("categories"),
                        preferred: index == 0,
                    });
                }
            }
        }
    }

    /// Every resource, preferred versions first within each group, in the server's order.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The resource a user's word names: `pods`, `pod`, `po`, `Pod`, `deployments.apps`,
    /// `deployments.v1.apps`. Preferred versions win; the core group wins over others for
    /// a bare name, as upstream's priority RESTMapper orders them.
    pub fn resolve(&self, word: &str) -> Result<&Resource, Error> {
        self.find(word)
            .ok_or_else(|| Error::Usage(format!("the server doesn't have a resource type \"{word}\"")))
    }

    fn find(&self, word: &str) -> Option<&Resource> {
        // A bare name first, then `name.group`, then `name.version.group`.
        let candidates = self.resources.iter().filter(|r| r.matches_name(word));
        if let Some(found) = best(candidates) {
            return Some(found);
        }
        let (name, rest) = word.split_once('.')?;
        let by_group = self
            .resources
            .iter()
            .filter(|r| r.matches_name(name) && r.group.eq_ignore_ascii_case(rest));
        if let Some(found) = best(by_group) {
            return Some(found);
        }
        let (version, group) = rest.split_once('.')?;
        self.resources
            .iter()
            .find(|r| r.matches_name(name) && r.version == version && r.group.eq_ignore_ascii_case(group))
    }

    /// The resources of a category (`all`), preferred versions only.
    pub fn category(&self, name: &str) -> Vec<&Resource> {
        self.resources
            .iter()
            .filter(|r| r.preferred && r.categories.iter().any(|c| c == name))
            .collect()
    }

    /// The resource of a manifest's `apiVersion` and `kind`.
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Result<&Resource, Error> {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .ok_or_else(|| {
                Error::Message(format!(
                    "resource mapping not found for name: \"\" namespace: \"\" from \"\": no matches for kind \"{kind}\" in version \"{api_version}\"\nensure CRDs are installed first"
                ))
            })
    }
}

/// Among resources matching a name: a preferred version, and the core group before others.
fn best<'a>(candidates: impl Iterator<Item = &'a Resource>) -> Option<&'a Resource> {
    let mut found: Vec<&Resource> = candidates.collect();
    found.sort_by_key(|r| (!r.preferred, !r.group.is_empty()));
    found.first().copied()
}

async fn get_aggregated(client: &kube::Client, path: &str) -> Result<Value, Error> {
    let request = Request::get(path)
        .header(http::header::ACCEPT, format!("{AGGREGATED},application/json"))
        .body(Vec::new())
        .map_err(|e| Error::Message(e.to_string()))?;
    Ok(client.request(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Discovery {
        let core = json!({"items": [{"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
            {"resource": "pods", "responseKind": {"group": "", "version": "v1", "kind": "Pod"}, "scope": "Namespaced",
             "singularResource": "pod", "shortNames": ["po"], "verbs": ["get", "list"], "categories": ["all"]},
            {"resource": "events", "responseKind": {"group": "", "version": "v1", "kind": "Event"}, "scope": "Namespaced",
             "singularResource": "event", "shortNames": ["ev"], "verbs": ["get", "list"]},
            {"resource": "nodes", "responseKind": {"group": "", "version": "v1", "kind": "Node"}, "scope": "Cluster",
             "singularResource": "node", "shortNames": ["no"], "verbs": ["get", "list"]}]}]}]});
        let groups = json!({"items": [
            {"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [
                {"resource": "deployments", "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                 "scope": "Namespaced", "singularResource": "deployment", "shortNames": ["deploy"], "verbs": ["get"], "categories": ["all"]}]}]},
            {"metadata": {"name": "events.k8s.io"}, "versions": [{"version": "v1", "resources": [
                {"resource": "events", "responseKind": {"group": "events.k8s.io", "version": "v1", "kind": "Event"},
                 "scope": "Namespaced", "singularResource": "event", "shortNames": ["ev"], "verbs": ["get"]}]}]}]});
        Discovery::from_documents(&[core, groups])
    }

    #[test]
    fn names_short_names_kinds_and_groups_resolve() {
        let d = sample();
        for word in ["pods", "pod", "po", "Pod", "PODS"] {
            assert_eq!(d.resolve(word).unwrap().plural, "pods", "{word}");
        }
        assert_eq!(d.resolve("deploy").unwrap().group, "apps");
        assert_eq!(d.resolve("deployments.apps").unwrap().kind, "Deployment");
        assert_eq!(d.resolve("deployments.v1.apps").unwrap().kind, "Deployment");
        // Core wins for a bare name shared by two groups; the group picks the other.
        assert_eq!(d.resolve("events").unwrap().group, "");
        assert_eq!(d.resolve("events.events.k8s.io").unwrap().group, "events.k8s.io");
        assert!(!d.resolve("nodes").unwrap().namespaced);
    }

    #[test]
    fn unknown_words_and_kinds_are_clear_errors() {
        let d = sample();
        assert_eq!(
            d.resolve("frobs").unwrap_err().to_string(),
            "the server doesn't have a resource type \"frobs\""
        );
        assert!(
            d.for_kind("apps/v2", "Deployment")
                .unwrap_err()
                .to_string()
                .contains("no matches for kind")
        );
        assert_eq!(d.for_kind("apps/v1", "Deployment").unwrap().plural, "deployments");
    }

    #[test]
    fn urls_and_categories() {
        let d = sample();
        let deploy = d.resolve("deploy").unwrap();
        assert_eq!(
            deploy.object_url(Some("ns"), "web"),
            "/apis/apps/v1/namespaces/ns/deployments/web"
        );
        assert_eq!(deploy.collection_url(None), "/apis/apps/v1/deployments");
        let nodes = d.resolve("no").unwrap();
        assert_eq!(nodes.object_url(Some("ns"), "n1"), "/api/v1/nodes/n1");
        let all: Vec<_> = d.category("all").iter().map(|r| r.plural.as_str()).collect();
        assert_eq!(all, ["pods", "deployments"]);
        assert_eq!(deploy.kind_prefix(), "deployment.apps");
    }
}
