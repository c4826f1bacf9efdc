//! The self-review virtual resources: `selfsubjectaccessreviews` and `selfsubjectrulesreviews`
//! (authorization.k8s.io/v1) and `selfsubjectreviews` (authentication.k8s.io/v1). They are
//! create-only and store nothing. kaji enforces no authorization yet, so the answers are those
//! of upstream's AlwaysAllow authorizer: every request allowed, and the `*` rules it implies.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::handlers::json_response;

/// One review resource: cluster-scoped, `create` only.
pub struct ReviewResource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
}

/// The review resources served, for routing and discovery.
pub const REVIEWS: &[ReviewResource] = &[
    ReviewResource {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        kind: "SelfSubjectReview",
    },
    ReviewResource {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
    },
    ReviewResource {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        kind: "SelfSubjectRulesReview",
    },
];

/// The verbs a review resource serves.
pub const VERBS: &[&str] = &["create"];

/// Answers a request for one of the review resources; `None` for any other path.
pub fn handle(
    method: &Method,
    segments: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    user: Option<&UserInfo>,
) -> Option<Response> {
    let ["apis", group, version, plural] = segments else {
        return None;
    };
    let kind = REVIEWS
        .iter()
        .find(|r| r.group == *group && r.version == *version && r.plural == *plural)?
        .kind;
    if method != Method::POST {
        return Some(ApiError::method_not_allowed().into_response());
    }
    Some(match review(kind, headers, body, user) {
        Ok(answer) => json_response(StatusCode::CREATED, &answer),
        Err(error) => error.into_response(),
    })
}

fn review(kind: &str, headers: &HeaderMap, body: &[u8], user: Option<&UserInfo>) -> Result<Value, ApiError> {
    let meta = json!({"creationTimestamp": null});
    if kind == "SelfSubjectReview" {
        // Nothing in the request matters: the answer is who sent it.
        let (username, uid, mut groups) = match user {
            Some(user) => (user.name.clone(), user.uid.clone(), user.groups.clone()),
            None => (
                "system:anonymous".to_string(),
                String::new(),
                vec!["system:unauthenticated".to_string()],
            ),
        };
        if user.is_some() && !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        let mut info = json!({"username": username, "groups": groups});
        if !uid.is_empty() {
            info["uid"] = uid.into();
        }
        return Ok(
            json!({"kind": kind, "apiVersion": "authentication.k8s.io/v1", "metadata": meta,
                         "status": {"userInfo": info}}),
        );
    }
    let request = crate::body::decode(headers, body)?.value;
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = if kind == "SelfSubjectAccessReview" {
        let resource = spec.get("resourceAttributes").is_some_and(Value::is_object);
        let non_resource = spec.get("nonResourceAttributes").is_some_and(Value::is_object);
        if resource == non_resource {
            return Err(ApiError::new(
                422,
                "Invalid",
                "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
        json!({"allowed": true})
    } else {
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })
    };
    Ok(json!({"kind": kind, "apiVersion": "authorization.k8s.io/v1", "metadata": meta, "spec": spec, "status": status}))
}
