//! Request parsing: which resource a URL names (as upstream's RequestInfo) and the list, watch,
//! write and delete options in the query string.

use std::collections::HashMap;

use api::ResourceDef;
use api::registry::{self, Subresource};

use crate::error::{ApiError, ApiResult};

/// A resource URL resolved against the registry.
#[derive(Clone)]
pub struct ResourceRequest {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<Subresource>,
    /// The legacy `/watch/` path prefix was used.
    pub legacy_watch: bool,
}

/// Parses the path segments after `/api` or `/apis`, e.g. `["v1", "namespaces", "default",
/// "pods", "web"]` or `["apps", "v1", "deployments"]`.
pub fn parse_resource_path(core: bool, segments: &[&str]) -> ApiResult<ResourceRequest> {
    let (group, version, mut rest) = if core {
        match segments {
            [version, rest @ ..] => ("", *version, rest),
            _ => return Err(ApiError::path_not_found()),
        }
    } else {
        match segments {
            [group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(ApiError::path_not_found()),
        }
    };
    let mut legacy_watch = false;
    if let ["watch", tail @ ..] = rest {
        legacy_watch = true;
        rest = tail;
    }
    // `/namespaces/{ns}/{resource}...` is namespaced, unless it names the namespace object
    // itself (`/namespaces/{name}[/{sub}]`).
    let (namespace, resource, name, sub) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !(tail.is_empty() && Subresource::from_name(resource).is_some()) => {
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(*name), None),
                [name, sub] => (Some(*name), Some(*sub)),
                _ => return Err(ApiError::path_not_found()),
            };
            (Some(*ns), *resource, name, sub)
        }
        [resource] => (None, *resource, None, None),
        [resource, name] => (None, *resource, Some(*name), None),
        [resource, name, sub] => (None, *resource, Some(*name), Some(*sub)),
        _ => return Err(ApiError::path_not_found()),
    };
    let def = registry::find(group, version, resource).ok_or_else(ApiError::path_not_found)?;
    if namespace.is_some() && !def.namespaced {
        return Err(ApiError::path_not_found());
    }
    let subresource = match sub {
        None => None,
        Some(sub) => match Subresource::from_name(sub) {
            Some(s) if def.has_subresource(s) => Some(s),
            _ => return Err(ApiError::path_not_found()),
        },
    };
    for segment in namespace.iter().chain(name.iter()) {
        if segment.is_empty() {
            return Err(ApiError::path_not_found());
        }
    }
    Ok(ResourceRequest {
        def,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource,
        legacy_watch,
    })
}

/// Decoded query parameters (percent-decoded; repeated keys keep the last value, `dryRun`
/// keeps all).
#[derive(Clone, Debug, Default)]
pub struct Query {
    params: HashMap<String, String>,
    dry_run: Vec<String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let mut query = Query::default();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k)?;
            let value = percent_decode(v)?;
            if key == "dryRun" {
                query.dry_run.push(value.clone());
            }
            query.params.insert(key, value);
        }
        Ok(query)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str) -> ApiResult<bool> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!("invalid value for {key}: {other:?}"))),
        }
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}: must be an integer"))),
        }
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub fn dry_run(&self) -> ApiResult<bool> {
        dry_run_values(&self.dry_run)
    }
}

pub fn dry_run_values(values: &[String]) -> ApiResult<bool> {
    for v in values {
        if v != "All" {
            return Err(ApiError::bad_request(format!(
                "unsupported dryRun value {v:?}: supported values: \"All\""
            )));
        }
    }
    Ok(!values.is_empty())
}

fn percent_decode(s: &str) -> ApiResult<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::bad_request(format!("invalid URL escape in query string: {s:?}")))?;
                out.push(byte);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("query string is not valid UTF-8"))
}

/// `resourceVersionMatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RvMatch {
    Unset,
    NotOlderThan,
    Exact,
}

/// List and watch options (metav1.ListOptions).
#[derive(Clone)]
pub struct ListOptions {
    pub label_selector: Option<api::selector::LabelSelector>,
    pub field_selector: Option<api::selector::FieldSelector>,
    pub resource_version: Option<String>,
    pub rv_match: RvMatch,
    pub limit: i64,
    pub continue_token: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<i64>,
}

impl ListOptions {
    pub fn from_query(def: &ResourceDef, query: &Query) -> ApiResult<Self> {
        let label_selector = match query.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(
                api::selector::LabelSelector::parse(s)
                    .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            ),
            None => None,
        };
        let field_selector = match query.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let selector = api::selector::FieldSelector::parse(s)
                    .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
                for requirement in selector.requirements() {
                    let field = requirement.field.as_str();
                    let known = field == "metadata.name"
                        || (field == "metadata.namespace" && def.namespaced)
                        || def.selectable_fields.iter().any(|f| f.name == field);
                    if !known {
                        return Err(ApiError::bad_request(format!("field label not supported: {field}")));
                    }
                }
                Some(selector)
            }
            None => None,
        };
        let rv_match = match query.get("resourceVersionMatch") {
            None | Some("") => RvMatch::Unset,
            Some("NotOlderThan") => RvMatch::NotOlderThan,
            Some("Exact") => RvMatch::Exact,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        };
        let resource_version = query
            .get("resourceVersion")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let send_initial_events = match query.get("sendInitialEvents") {
            None | Some("") => None,
            Some(_) => Some(query.flag("sendInitialEvents")?),
        };
        let options = Self {
            label_selector,
            field_selector,
            resource_version,
            rv_match,
            limit: query.int("limit")?.unwrap_or(0).max(0),
            continue_token: query.get("continue").filter(|s| !s.is_empty()).map(str::to_string),
            watch: query.flag("watch")?,
            allow_bookmarks: query.flag("allowWatchBookmarks")?,
            send_initial_events,
            timeout_seconds: query.int("timeoutSeconds")?,
        };
        options.validate()?;
        Ok(options)
    }

    /// The cross-field rules of upstream's ValidateListOptions.
    fn validate(&self) -> ApiResult<()> {
        if self.watch && self.send_initial_events.is_some() && self.rv_match != RvMatch::NotOlderThan {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if self.rv_match != RvMatch::Unset && self.watch {
            if self.send_initial_events.is_none() {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
        } else if self.rv_match != RvMatch::Unset {
            if self.resource_version.is_none() {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if self.continue_token.is_some() {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if self.rv_match == RvMatch::Exact && self.resource_version.as_deref() == Some("0") {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if self.continue_token.is_some() && self.resource_version.as_deref().is_some_and(|rv| rv != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        if let Some(send) = self.send_initial_events {
            if !self.watch {
                return Err(ApiError::bad_request("sendInitialEvents is forbidden for list"));
            }
            if send && !self.allow_bookmarks {
                return Err(ApiError::bad_request(
                    "sendInitialEvents requires setting allowWatchBookmarks=true",
                ));
            }
        }
        Ok(())
    }
}

/// Parses a resourceVersion string into a revision.
pub fn parse_rv(rv: &str) -> ApiResult<i64> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(core: bool, path: &str) -> ApiResult<ResourceRequest> {
        let segments: Vec<&str> = path.split('/').collect();
        parse_resource_path(core, &segments)
    }

    #[test]
    fn resolves_paths() {
        let r = parse(true, "v1/namespaces/default/pods/web/status").unwrap();
        assert_eq!(
            (r.def.plural, r.namespace.as_deref(), r.name.as_deref()),
            ("pods", Some("default"), Some("web"))
        );
        assert_eq!(r.subresource, Some(Subresource::Status));
        let r = parse(true, "v1/namespaces/kube-system").unwrap();
        assert_eq!(
            (r.def.plural, r.namespace, r.name.as_deref()),
            ("namespaces", None, Some("kube-system"))
        );
        let r = parse(true, "v1/namespaces/gone/finalize").unwrap();
        assert_eq!(
            (r.def.plural, r.name.as_deref(), r.subresource),
            ("namespaces", Some("gone"), Some(Subresource::Finalize))
        );
        let r = parse(true, "v1/namespaces/ns1/status").unwrap();
        assert_eq!(
            (r.def.plural, r.name.as_deref(), r.subresource),
            ("namespaces", Some("ns1"), Some(Subresource::Status))
        );
        let r = parse(false, "apps/v1/deployments").unwrap();
        assert_eq!((r.def.kind, r.namespace), ("Deployment", None));
        let r = parse(true, "v1/watch/namespaces/default/pods").unwrap();
        assert!(r.legacy_watch);
        assert!(
            parse(true, "v1/namespaces/default/nodes").is_err(),
            "nodes are cluster-scoped"
        );
        assert!(
            parse(true, "v1/namespaces/default/pods/web/scale").is_err(),
            "pods have no scale"
        );
        assert!(parse(false, "apps/v2/deployments").is_err());
        assert!(parse(true, "v1/pods/a/b/c").is_err());
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&dryRun=All")).unwrap();
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.int("limit").unwrap(), Some(5));
        assert!(q.dry_run().unwrap());
        assert!(Query::parse(Some("a=%zz")).is_err());
        assert!(Query::parse(Some("dryRun=Some")).unwrap().dry_run().is_err());
    }
}
