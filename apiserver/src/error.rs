//! API errors: every non-2xx answer is a `metav1.Status` with upstream's reason, code and
//! wording, so clients print the same messages they print against upstream.

use api::{FieldError, ResourceDef};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

/// One Status cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
}

/// An error answer: HTTP code, Status reason, message and details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `(group, kind, name)` for `details` (boxed: errors travel in every `Result`).
    pub details: Option<Box<(String, String, String)>>,
    pub causes: Vec<Cause>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            causes: Vec::new(),
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details = Some(Box::new((group.to_string(), kind.to_string(), name.to_string())));
        self
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", def.qualified_resource()),
        )
        .with_details(def.group, def.plural, name)
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", def.qualified_resource()),
        )
        .with_details(def.group, def.plural, name)
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn modified(def: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                def.qualified_resource()
            ),
        )
        .with_details(def.group, def.plural, name)
    }

    /// 422 Invalid, with one cause per field error.
    pub fn invalid(def: &ResourceDef, name: &str, errors: &[FieldError]) -> Self {
        let aggregate = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{} {name:?} is invalid: {aggregate}", def.qualified_kind()),
        )
        .with_details(def.group, def.kind, name);
        err.causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.error_type.cause_reason().to_string(),
                message: e.body(),
                field: Some(e.field.clone()),
            })
            .collect();
        err
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 410 Expired: a resourceVersion or continue token older than the compaction point.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: \
                 application/json, application/yaml, application/vnd.kubernetes.protobuf"
            ),
        )
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml",
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {message}"))
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `metav1.Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.details.is_some() || !self.causes.is_empty() {
            let mut details = serde_json::Map::new();
            if let Some(details_box) = &self.details {
                let (group, kind, name) = details_box.as_ref();
                if !name.is_empty() {
                    details.insert("name".into(), json!(name));
                }
                if !group.is_empty() {
                    details.insert("group".into(), json!(group));
                }
                details.insert("kind".into(), json!(kind));
            }
            if !self.causes.is_empty() {
                let causes: Vec<Value> = self
                    .causes
                    .iter()
                    .map(|c| {
                        let mut cause = json!({"reason": c.reason, "message": c.message});
                        if let Some(field) = &c.field {
                            cause["field"] = json!(field);
                        }
                        cause
                    })
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl From<storage::StorageError> for ApiError {
    fn from(error: storage::StorageError) -> Self {
        use storage::StorageError as E;
        match error {
            E::Compacted { requested, compacted } => {
                Self::expired(format!("too old resource version: {requested} ({compacted})"))
            }
            E::FutureRevision { requested, current } => {
                let mut err = Self::timeout(format!("Too large resource version: {requested}, current: {current}"));
                err.causes.push(Cause {
                    reason: "ResourceVersionTooLarge".into(),
                    message: "Too large resource version".into(),
                    field: None,
                });
                err
            }
            E::Unavailable(message) => Self::unavailable(format!("storage is unavailable: {message}")),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.status().to_string();
        (code, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// A Success Status (deletes of objects that are gone, bindings, evictions).
pub fn success_status(group: &str, kind: &str, name: &str, uid: Option<&str>) -> Value {
    let mut details = json!({"name": name, "kind": kind});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if let Some(uid) = uid {
        details["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_wording() {
        let deploy = api::registry::find("apps", "v1", "deployments").unwrap();
        let e = ApiError::not_found(deploy, "web");
        assert_eq!(e.message, r#"deployments.apps "web" not found"#);
        assert_eq!(
            e.status()["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let e = ApiError::invalid(
            deploy,
            "web",
            &[FieldError::invalid(
                "spec.replicas",
                -1,
                "must be greater than or equal to 0",
            )],
        );
        assert_eq!(
            e.message,
            r#"Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
        );
        assert_eq!(e.status()["details"]["causes"][0]["field"], "spec.replicas");
        assert_eq!(e.status()["details"]["kind"], "Deployment");
        let pods = api::registry::find("", "v1", "pods").unwrap();
        assert_eq!(
            ApiError::modified(pods, "p").message,
            r#"Operation cannot be fulfilled on pods "p": the object has been modified; please apply your changes to the latest version and try again"#
        );
    }
}
