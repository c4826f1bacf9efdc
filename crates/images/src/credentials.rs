//! Registry credentials from `imagePullSecrets`: the `.dockerconfigjson` of a
//! `kubernetes.io/dockerconfigjson` secret and the older `.dockercfg`, matched to an image's
//! registry the way the kubelet's credential keyring does.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::reference::canonical_host;

/// One username/password pair for the registries matching `server`.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    /// The key as written in the secret: `registry:5000`, `https://index.docker.io/v1/`,
    /// `*.example.com`, `example.com/team` (a repository prefix).
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A docker config secret that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("invalid docker config JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid auth for registry {server}: {message}")]
    Auth { server: String, message: String },
}

#[derive(Deserialize)]
struct DockerConfigJson {
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Reads the data of a `kubernetes.io/dockerconfigjson` secret (`{"auths": {HOST: {...}}}`) or
/// of a `kubernetes.io/dockercfg` secret (`{HOST: {...}}`). Each entry is either `auth`
/// (base64 of `user:password`) or `username` + `password`; entries with neither (identity
/// tokens) are skipped, as upstream does.
pub fn credentials_from_dockerconfigjson(bytes: &[u8]) -> Result<Vec<RegistryCredential>, CredentialsError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let entries: BTreeMap<String, AuthEntry> = if value.get("auths").is_some_and(|auths| auths.is_object()) {
        serde_json::from_value::<DockerConfigJson>(value)?.auths
    } else {
        serde_json::from_value(value)?
    };
    let mut credentials = Vec::new();
    for (server, entry) in entries {
        let (username, password) = if let Some(auth) = entry.auth.filter(|auth| !auth.is_empty()) {
            decode_auth(&server, &auth)?
        } else if let (Some(username), Some(password)) = (entry.username, entry.password) {
            (username, password)
        } else {
            continue;
        };
        credentials.push(RegistryCredential {
            server,
            username,
            password,
        });
    }
    Ok(credentials)
}

fn decode_auth(server: &str, auth: &str) -> Result<(String, String), CredentialsError> {
    let error = |message: &str| CredentialsError::Auth {
        server: server.to_string(),
        message: message.to_string(),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| error("auth is not valid base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| error("auth is not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| error("auth is not of the form user:password"))?;
    Ok((username.to_string(), password.to_string()))
}

/// A credential key split like the kubelet's keyring: host labels (may hold `*` globs), port,
/// repository path prefix.
struct Key {
    labels: Vec<String>,
    port: Option<String>,
    path: String,
}

fn parse_key(server: &str) -> Key {
    let trimmed = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (host_port, path) = match trimmed.split_once('/') {
        Some((host_port, path)) => (host_port, path.trim_end_matches('/')),
        None => (trimmed, ""),
    };
    let host_port = canonical_host(host_port);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), Some(port.to_string())),
        None => (host_port, None),
    };
    // Docker Hub keys carry the API version as their path (`https://index.docker.io/v1/`).
    let path = if matches!(path, "v1" | "v2") { "" } else { path };
    Key {
        labels: host.split('.').map(str::to_string).collect(),
        port,
        path: path.to_string(),
    }
}

fn glob_label_matches(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == label,
        Some((prefix, suffix)) => {
            label.len() >= prefix.len() + suffix.len() && label.starts_with(prefix) && label.ends_with(suffix)
        }
    }
}

fn key_matches(key: &Key, registry: &str, repository: &str) -> bool {
    let registry = canonical_host(registry);
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry.as_str(), None),
    };
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() != key.labels.len() || port != key.port.as_deref() {
        return false;
    }
    if !key
        .labels
        .iter()
        .zip(&labels)
        .all(|(pattern, label)| glob_label_matches(pattern, label))
    {
        return false;
    }
    key.path.is_empty() || repository == key.path || repository.starts_with(&format!("{}/", key.path))
}

/// The credentials that apply to `registry/repository`, most specific key first (the kubelet
/// tries them in that order and stops at the first that works).
pub fn matching_credentials<'a>(
    credentials: &'a [RegistryCredential],
    registry: &str,
    repository: &str,
) -> Vec<&'a RegistryCredential> {
    let mut matching: Vec<&RegistryCredential> = credentials
        .iter()
        .filter(|credential| key_matches(&parse_key(&credential.server), registry, repository))
        .collect();
    matching.sort_by_key(|credential| std::cmp::Reverse(credential.server.trim_end_matches('/').len()));
    matching
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn parses_dockerconfigjson_auth_and_fields() {
        let json = format!(
            r#"{{"auths": {{
                "registry:5000": {{"auth": "{}"}},
                "https://index.docker.io/v1/": {{"username": "hub", "password": "p:w"}},
                "token-only.example.com": {{"identitytoken": "abc"}}
            }}}}"#,
            b64("alice:s3cr:et")
        );
        let credentials = credentials_from_dockerconfigjson(json.as_bytes()).unwrap();
        assert_eq!(credentials.len(), 2);
        let hub = credentials.iter().find(|c| c.server.contains("docker.io")).unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("hub", "p:w"));
        let local = credentials.iter().find(|c| c.server == "registry:5000").unwrap();
        // Only the first ':' separates user from password.
        assert_eq!((local.username.as_str(), local.password.as_str()), ("alice", "s3cr:et"));
        assert!(!format!("{local:?}").contains("s3cr"));
    }

    #[test]
    fn parses_legacy_dockercfg() {
        let json = format!(
            r#"{{"registry:5000": {{"auth": "{}", "email": "a@b"}}}}"#,
            b64("bob:pw")
        );
        let credentials = credentials_from_dockerconfigjson(json.as_bytes()).unwrap();
        assert_eq!(
            credentials,
            vec![RegistryCredential {
                server: "registry:5000".into(),
                username: "bob".into(),
                password: "pw".into()
            }]
        );
    }

    #[test]
    fn rejects_malformed_configs() {
        assert!(matches!(
            credentials_from_dockerconfigjson(b"not json"),
            Err(CredentialsError::Json(_))
        ));
        let bad_b64 = br#"{"auths": {"r:5000": {"auth": "%%%"}}}"#;
        assert!(matches!(
            credentials_from_dockerconfigjson(bad_b64),
            Err(CredentialsError::Auth { .. })
        ));
        let no_colon = format!(r#"{{"auths": {{"r:5000": {{"auth": "{}"}}}}}}"#, b64("nocolon"));
        assert!(matches!(
            credentials_from_dockerconfigjson(no_colon.as_bytes()),
            Err(CredentialsError::Auth { .. })
        ));
    }

    fn credential(server: &str) -> RegistryCredential {
        RegistryCredential {
            server: server.into(),
            username: server.into(),
            password: String::new(),
        }
    }

    #[test]
    fn matches_hosts_ports_globs_and_paths_like_the_keyring() {
        let credentials = vec![
            credential("registry:5000"),
            credential("https://index.docker.io/v1/"),
            credential("*.example.com"),
            credential("quay.io/team"),
            credential("quay.io"),
        ];
        let servers = |registry: &str, repository: &str| -> Vec<String> {
            matching_credentials(&credentials, registry, repository)
                .into_iter()
                .map(|c| c.server.clone())
                .collect()
        };
        assert_eq!(servers("registry:5000", "app"), ["registry:5000"]);
        assert!(servers("registry:5001", "app").is_empty());
        assert!(servers("registry", "app").is_empty());
        assert_eq!(servers("docker.io", "library/busybox"), ["https://index.docker.io/v1/"]);
        assert_eq!(servers("a.example.com", "x"), ["*.example.com"]);
        assert!(servers("a.b.example.com", "x").is_empty());
        assert_eq!(servers("quay.io", "team/app"), ["quay.io/team", "quay.io"]);
        assert_eq!(servers("quay.io", "teamx/app"), ["quay.io"]);
    }
}
