//! ConfigMaps and Secrets: key syntax, the 1 MiB size limit, immutability, and the per-type
//! rules of Secrets (upstream's `ValidateConfigMap*`, `ValidateSecret*`).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::field::{FieldError, key};
use crate::strategy::Operation;
use crate::validation::common::invalid_each;
use crate::validation::meta::validate_immutable;
use crate::validation::names::is_config_map_key;

/// upstream's `MaxSecretSize` (also the ConfigMap limit).
const MAX_SIZE: usize = 1024 * 1024;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

pub(crate) fn validate_config_map(cm: &ConfigMap, old: Option<&ConfigMap>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old
        && old.immutable == Some(true)
    {
        if cm.immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
        }
        if cm.data != old.data {
            errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
        }
        if cm.binary_data != old.binary_data {
            errs.push(FieldError::forbidden("binaryData", IMMUTABLE_SET));
        }
    }
    let mut total = 0usize;
    for (k, v) in cm.data.iter().flatten() {
        errs.extend(invalid_each(&key("data", k), k, is_config_map_key(k)));
        if cm.binary_data.as_ref().is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total = total.saturating_add(v.len());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        errs.extend(invalid_each(&key("binaryData", k), k, is_config_map_key(k)));
        total = total.saturating_add(v.0.len());
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("", MAX_SIZE));
    }
    errs
}

/// Folds `stringData` into `data` (upstream does it in conversion, so it is never stored) and
/// defaults the type to Opaque.
pub(crate) fn default_secret(secret: &mut Secret) {
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (k, v) in string_data {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    if secret.type_.as_deref().is_none_or(str::is_empty) {
        secret.type_ = Some("Opaque".into());
    }
}

pub(crate) fn validate_secret(secret: &Secret, old: Option<&Secret>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(validate_immutable(&secret.type_, &old.type_, "type"));
        if old.immutable == Some(true) {
            if secret.immutable != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
            }
            if secret.data != old.data {
                errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
            }
        }
    }
    let empty = Default::default();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let mut total = 0usize;
    for (k, v) in data {
        errs.extend(invalid_each(&key("data", k), k, is_config_map_key(k)));
        total = total.saturating_add(v.0.len());
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("data", MAX_SIZE));
    }
    let required = |k: &str| FieldError::required(key("data", k), "");
    let json_object = |k: &str| -> Option<FieldError> {
        let bytes = &data.get(k)?.0;
        match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes) {
            Ok(_) => None,
            Err(e) => Some(FieldError::invalid(
                key("data", k),
                "<secret contents redacted>",
                e.to_string(),
            )),
        }
    };
    match secret.type_.as_deref().unwrap_or_default() {
        "kubernetes.io/service-account-token" => {
            let annotation = "kubernetes.io/service-account.name";
            let name = secret.metadata.annotations.as_ref().and_then(|a| a.get(annotation));
            if name.is_none_or(String::is_empty) {
                errs.push(FieldError::required(key("metadata.annotations", annotation), ""));
            }
        }
        "kubernetes.io/dockercfg" => match data.contains_key(".dockercfg") {
            false => errs.push(required(".dockercfg")),
            true => errs.extend(json_object(".dockercfg")),
        },
        "kubernetes.io/dockerconfigjson" => match data.contains_key(".dockerconfigjson") {
            false => errs.push(required(".dockerconfigjson")),
            true => errs.extend(json_object(".dockerconfigjson")),
        },
        // Username or password may be empty, but one of the keys must be there.
        "kubernetes.io/basic-auth" if !data.contains_key("username") && !data.contains_key("password") => {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !data.contains_key(k) {
                    errs.push(required(k));
                }
            }
        }
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
    use crate::strategy::Operation;

    #[test]
    fn config_maps() {
        let d = def("", "v1", "configmaps");
        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"app.properties": "x=1", "KEY_NAME": "v"}});
        create_ok(d, base.clone());
        check_invalid(
            d,
            &base,
            &[
                (
                    json!({"data": {"a/b": "x"}}),
                    &[
                        "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    ],
                ),
                (
                    json!({"data": {"..": "x"}}),
                    &["data[..]: Invalid value: \"..\": must not be '..'"],
                ),
                (
                    json!({"binaryData": {"KEY_NAME": "eA=="}}),
                    &["data[KEY_NAME]: Invalid value: \"KEY_NAME\": duplicate of key present in binaryData"],
                ),
                (
                    json!({"data": {"big": "x".repeat(1024 * 1024 + 1)}}),
                    &[": Too long: may not be more than 1048576 bytes"],
                ),
            ],
        );
        let immutable = create_ok(d, merge(&base, &json!({"immutable": true})));
        let err = admit(
            d,
            merge(&immutable, &json!({"data": {"KEY_NAME": "changed"}})),
            Some(&immutable),
            Operation::Update,
        )
        .err()
        .unwrap_or_default();
        assert_matches(
            &err,
            &["data: Forbidden: field is immutable when `immutable` is set"],
            &json!("immutable"),
        );
        let err = admit(
            d,
            merge(&immutable, &json!({"immutable": false})),
            Some(&immutable),
            Operation::Update,
        )
        .err()
        .unwrap_or_default();
        assert_matches(
            &err,
            &["immutable: Forbidden: field is immutable when `immutable` is set"],
            &json!("flag"),
        );
        assert!(
            admit(
                d,
                merge(&base, &json!({"data": {"n": "1"}})),
                Some(&base),
                Operation::Update
            )
            .is_ok()
        );
    }

    #[test]
    fn secrets() {
        let d = def("", "v1", "secrets");
        let base = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
            "stringData": {"password": "hunter2"}});
        let created = create_ok(d, base.clone());
        assert_eq!(created["type"], "Opaque");
        assert_eq!(created["data"], json!({"password": "aHVudGVyMg=="}));
        assert!(created.get("stringData").is_none());
        check_invalid(
            d,
            &base,
            &[
                (
                    json!({"type": "kubernetes.io/tls"}),
                    &["data[tls.crt]: Required value", "data[tls.key]: Required value"],
                ),
                (
                    json!({"type": "kubernetes.io/dockerconfigjson"}),
                    &["data[.dockerconfigjson]: Required value"],
                ),
                (
                    json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "nope"}}),
                    &["data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": expected ident"],
                ),
                (
                    json!({"type": "kubernetes.io/service-account-token"}),
                    &["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
                ),
                (
                    json!({"type": "kubernetes.io/basic-auth", "stringData": null}),
                    &["data[username]: Required value", "data[password]: Required value"],
                ),
                (
                    json!({"stringData": {"bad key": "x"}}),
                    &["data[bad key]: Invalid value: \"bad key\": a valid config key"],
                ),
            ],
        );
        let err = admit(
            d,
            merge(
                &created,
                &json!({"type": "kubernetes.io/tls", "stringData": {"tls.crt": "a", "tls.key": "b"}}),
            ),
            Some(&created),
            Operation::Update,
        )
        .err()
        .unwrap_or_default();
        assert_matches(
            &err,
            &["type: Invalid value: \"kubernetes.io/tls\": field is immutable"],
            &json!("type"),
        );
    }
}
