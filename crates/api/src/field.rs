//! Field errors: what validation reports, worded as upstream's `field.Error` so clients print
//! the same text (`spec.replicas: Invalid value: -1: must be greater than or equal to 0`).

use std::fmt;

/// The kind of a field error; maps to the `reason` of a Status cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
    TooMany,
    /// A reference to something that does not exist (a volume mount naming no volume).
    NotFound,
}

impl ErrorType {
    /// The Status cause `reason` upstream uses for this error type.
    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }
}

/// One validation failure at a field path such as `spec.template.spec.containers[0].image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub error_type: ErrorType,
    pub field: String,
    /// The offending value, already rendered the way upstream prints it (`"abc"`, `-1`).
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// `value` is rendered with [`render_value`].
    pub fn invalid(field: impl Into<String>, value: impl Into<serde_json::Value>, detail: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::Invalid,
            field: field.into(),
            value: Some(render_value(&value.into())),
            detail: detail.into(),
        }
    }

    /// An `Invalid` error whose value is already rendered, for values upstream prints with Go's
    /// `%#v` (maps, slices) that a JSON rendering would not reproduce.
    pub fn invalid_rendered(field: impl Into<String>, rendered: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::Invalid,
            field: field.into(),
            value: Some(rendered.into()),
            detail: detail.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: impl Into<serde_json::Value>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            error_type: ErrorType::NotSupported,
            field: field.into(),
            value: Some(render_value(&value.into())),
            detail,
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        Self {
            error_type: ErrorType::Duplicate,
            field: field.into(),
            value: Some(render_value(&value.into())),
            detail: String::new(),
        }
    }

    pub fn not_found(field: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        Self {
            error_type: ErrorType::NotFound,
            field: field.into(),
            value: Some(render_value(&value.into())),
            detail: String::new(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            error_type: ErrorType::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            error_type: ErrorType::TooLong,
            field: field.into(),
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self {
            error_type: ErrorType::TooMany,
            field: field.into(),
            value: Some(actual.to_string()),
            detail: format!("must have at most {max} items"),
        }
    }

    /// The message without the field path (a Status cause's `message`).
    pub fn body(&self) -> String {
        let mut out = match self.error_type {
            ErrorType::Required => "Required value".to_string(),
            ErrorType::Invalid => "Invalid value".to_string(),
            ErrorType::NotSupported => "Unsupported value".to_string(),
            ErrorType::Duplicate => "Duplicate value".to_string(),
            ErrorType::Forbidden => "Forbidden".to_string(),
            ErrorType::TooLong => "Too long".to_string(),
            ErrorType::TooMany => "Too many".to_string(),
            ErrorType::NotFound => "Not found".to_string(),
        };
        if let Some(value) = &self.value {
            out.push_str(": ");
            out.push_str(value);
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Renders a value as upstream's field errors print it: strings quoted, numbers and booleans
/// bare, `null` for nothing, compact JSON for anything else.
pub fn render_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Joins a path and a child: `path("spec", "replicas")` → `spec.replicas`.
pub fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// Joins a path and an index: `index("spec.containers", 0)` → `spec.containers[0]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Joins a path and a map key: `key("metadata.labels", "app")` → `metadata.labels[app]`.
pub fn key(parent: &str, k: &str) -> String {
    format!("{parent}[{k}]")
}

/// Renders a string map as Go's `%#v` does (`map[string]string{"app":"web"}`), the way upstream
/// prints label maps in field errors. `None` is Go's nil map.
pub fn go_string_map(map: Option<&std::collections::BTreeMap<String, String>>) -> String {
    match map {
        None => "map[string]string(nil)".to_string(),
        Some(map) => {
            let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    }
}

/// Renders a string slice as Go's `%#v` does (`[]string{"a", "b"}`).
pub fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Renders a label selector as Go's `%#v` does, the way upstream prints an immutable selector:
/// `v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
pub fn go_label_selector(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> String {
    let expressions = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    let values = match &r.values {
                        None => "[]string(nil)".to_string(),
                        Some(v) => go_string_slice(v),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{values}}}",
                        r.key, r.operator
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        go_string_map(sel.match_labels.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_upstream() {
        let e = FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0");
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let e = FieldError::required("spec.containers", "");
        assert_eq!(e.to_string(), "spec.containers: Required value");
        let e = FieldError::not_supported("spec.restartPolicy", "Sometimes", &["Always", "Never", "OnFailure"]);
        assert_eq!(
            e.to_string(),
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure""#
        );
        assert_eq!(
            FieldError::duplicate("spec.containers[1].name", "a").to_string(),
            r#"spec.containers[1].name: Duplicate value: "a""#
        );
    }
}
