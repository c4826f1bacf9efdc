//! Small validators the kinds share, each the counterpart of an upstream helper that turns
//! the `is_*` messages into field errors at a path.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::FieldError;
use crate::validation::meta::IS_NEGATIVE;
use crate::validation::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_valid_ip, is_valid_percent, is_valid_port_name,
    is_valid_port_num,
};
use crate::validation::quantity::Quantity;

/// Turns messages about `value` into `Invalid` errors at `path`.
pub fn invalid_each(path: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter().map(|m| FieldError::invalid(path, value, m)).collect()
}

/// upstream's `ValidateDNS1123Label`.
pub fn dns1123_label(value: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, value, is_dns1123_label(value))
}

/// upstream's `ValidateDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, value, is_dns1123_subdomain(value))
}

/// upstream's `ValidateDNS1035Label`-style check.
pub fn dns1035_label(value: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, value, is_dns1035_label(value))
}

/// A required enum: `Required` when empty, `Unsupported value` when not one of `supported`.
pub fn required_enum(value: Option<&str>, path: &str, supported: &[&str]) -> Vec<FieldError> {
    match value.unwrap_or_default() {
        "" => vec![FieldError::required(path, "")],
        v if supported.contains(&v) => Vec::new(),
        v => vec![FieldError::not_supported(path, v, supported)],
    }
}

/// An optional enum: absent or empty is fine.
pub fn optional_enum(value: Option<&str>, path: &str, supported: &[&str]) -> Vec<FieldError> {
    match value.unwrap_or_default() {
        "" => Vec::new(),
        v if supported.contains(&v) => Vec::new(),
        v => vec![FieldError::not_supported(path, v, supported)],
    }
}

/// upstream's `ValidateNonnegativeField` over optional values.
pub fn nonnegative(value: Option<i64>, path: &str) -> Vec<FieldError> {
    match value {
        Some(v) if v < 0 => vec![FieldError::invalid(path, v, IS_NEGATIVE)],
        _ => Vec::new(),
    }
}

/// A value that must be strictly positive when set (`must be greater than 0`).
pub fn positive(value: Option<i64>, path: &str) -> Vec<FieldError> {
    match value {
        Some(v) if v <= 0 => vec![FieldError::invalid(path, v, "must be greater than 0")],
        _ => Vec::new(),
    }
}

/// upstream's `ValidatePortNumOrName`.
pub fn port_num_or_name(port: &IntOrString, path: &str) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|m| FieldError::invalid(path, *n, m))
            .collect(),
        IntOrString::String(s) => invalid_each(path, s, is_valid_port_name(s)),
    }
}

/// upstream's `ValidateIPAddress`-style check.
pub fn ip_address(value: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, value, is_valid_ip(value))
}

/// A quantity that parses and is not negative (upstream's `ValidateNonnegativeQuantity`, plus
/// the format check upstream's decoder does).
pub fn nonnegative_quantity(q: &ApiQuantity, path: &str) -> (Option<Quantity>, Vec<FieldError>) {
    match Quantity::parse(&q.0) {
        None => (
            None,
            vec![FieldError::invalid(
                path,
                q.0.as_str(),
                crate::validation::quantity::FORMAT_ERROR,
            )],
        ),
        Some(parsed) if parsed.is_negative() => {
            (Some(parsed), vec![FieldError::invalid(path, q.0.as_str(), IS_NEGATIVE)])
        }
        Some(parsed) => (Some(parsed), Vec::new()),
    }
}

/// upstream's `ValidatePositiveIntOrPercent` (apps): ints ≥ 0, strings a percentage.
pub fn int_or_percent(value: &IntOrString, path: &str) -> Vec<FieldError> {
    match value {
        IntOrString::Int(n) if *n < 0 => vec![FieldError::invalid(path, *n, IS_NEGATIVE)],
        IntOrString::Int(_) => Vec::new(),
        IntOrString::String(s) => invalid_each(path, s, is_valid_percent(s)),
    }
}

/// The percentage in an IntOrString percent, if it is one.
pub fn percent_value(value: &IntOrString) -> Option<i64> {
    match value {
        IntOrString::String(s) => s.strip_suffix('%').and_then(|d| d.parse().ok()),
        IntOrString::Int(_) => None,
    }
}

/// upstream's `IsNotMoreThan100Percent`.
pub fn not_more_than_100_percent(value: &IntOrString, path: &str) -> Vec<FieldError> {
    match percent_value(value) {
        Some(p) if p > 100 => {
            vec![FieldError::invalid(
                path,
                serde_json::to_value(value).unwrap_or_default(),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

/// Renders an IntOrString as upstream prints it in errors.
pub fn int_or_string_value(value: &IntOrString) -> serde_json::Value {
    match value {
        IntOrString::Int(n) => (*n).into(),
        IntOrString::String(s) => s.as_str().into(),
    }
}

/// upstream's `ValidateLabelSelector` (strict label values).
pub fn validate_label_selector(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    path: &str,
) -> Vec<FieldError> {
    use crate::field::{child, index};
    use crate::validation::meta::{validate_label_name, validate_labels};
    use crate::validation::names::is_valid_label_value;
    let mut errs = validate_labels(sel.match_labels.as_ref(), &child(path, "matchLabels"));
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let rpath = index(&child(path, "matchExpressions"), i);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                child(&rpath, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                child(&rpath, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                child(&rpath, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(&r.key, &child(&rpath, "key")));
        for (j, v) in values.iter().enumerate() {
            errs.extend(invalid_each(
                &index(&child(&rpath, "values"), j),
                v,
                is_valid_label_value(v),
            ));
        }
    }
    errs
}
