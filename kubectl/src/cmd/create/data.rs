//! The generators of ConfigMaps and Secrets (generic, docker-registry, tls): keys from
//! `--from-literal`, `--from-file=[key=]path` (a directory adds each regular file) and
//! `--from-env-file`, validated and named as upstream's `create_configmap.go` and
//! `create_secret*.go` do, with `--append-hash` giving upstream's content hash suffix.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::{CommonFlags, finish, one_name, prepare};
use crate::cmd::Context;
use crate::error::Error;

/// The key sources ConfigMaps and Secrets share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Sources {
    /// NAME
    pub names: Vec<String>,
    /// Key files: a path (the key is its file name), `key=path`, or a directory.
    #[arg(long = "from-file", value_delimiter = ',')]
    pub files: Vec<String>,
    /// A key and literal value (`key=value`).
    #[arg(long = "from-literal")]
    pub literals: Vec<String>,
    /// Files of `key=value` lines (a Docker .env file).
    #[arg(long = "from-env-file")]
    pub env_files: Vec<String>,
    /// Append a hash of the object to its name.
    #[arg(long)]
    pub append_hash: bool,
}

/// `create configmap NAME [--from-file=...] [--from-literal=...] [--from-env-file=...]`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigMapArgs {
    #[command(flatten)]
    pub sources: Sources,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create secret generic|...`.
#[derive(clap::Args, Debug, Clone)]
pub struct SecretCommand {
    #[command(subcommand)]
    pub kind: SecretKind,
}

/// The secret types.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SecretKind {
    /// Create a secret from a local file, directory, or literal value.
    Generic(SecretArgs),
    /// Create a secret for use with a Docker registry.
    DockerRegistry(DockerRegistryArgs),
    /// Create a TLS secret.
    Tls(TlsArgs),
}

/// `create secret docker-registry NAME --docker-username=user --docker-password=password ...`.
#[derive(clap::Args, Debug, Clone)]
pub struct DockerRegistryArgs {
    pub names: Vec<String>,
    /// Server location for Docker registry.
    #[arg(long, default_value = "https://index.docker.io/v1/")]
    pub docker_server: String,
    /// Username for Docker registry authentication.
    #[arg(long)]
    pub docker_username: Option<String>,
    /// Password for Docker registry authentication.
    #[arg(long)]
    pub docker_password: Option<String>,
    /// Email for Docker registry.
    #[arg(long)]
    pub docker_email: Option<String>,
    /// Key files (`.dockerconfigjson=path`) instead of the flags above.
    #[arg(long = "from-file", value_delimiter = ',')]
    pub files: Vec<String>,
    /// Append a hash of the secret to its name.
    #[arg(long)]
    pub append_hash: bool,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create secret tls NAME --cert=path/to/cert/file --key=path/to/key/file`.
#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    pub names: Vec<String>,
    /// Path to PEM encoded public key certificate.
    #[arg(long)]
    pub cert: Option<String>,
    /// Path to private key associated with given certificate.
    #[arg(long)]
    pub key: Option<String>,
    /// Append a hash of the secret to its name.
    #[arg(long)]
    pub append_hash: bool,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `create secret generic NAME [--type=string] [sources]`.
#[derive(clap::Args, Debug, Clone)]
pub struct SecretArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// The type of secret to create.
    #[arg(long = "type")]
    pub secret_type: Option<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// Which object keys go into, for its error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    ConfigMap,
    Secret,
}

/// The collected keys: text values, and (ConfigMaps only) binary ones.
#[derive(Default)]
struct Keys {
    data: BTreeMap<String, Vec<u8>>,
    binary: BTreeMap<String, Vec<u8>>,
}

impl Keys {
    fn add(&mut self, target: Target, name: &str, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let problems = api::validation::names::is_config_map_key(key);
        match target {
            Target::ConfigMap => {
                if !problems.is_empty() {
                    return Err(Error::Message(format!(
                        "\"{key}\" is not a valid key name for a ConfigMap: {}",
                        problems.join(",")
                    )));
                }
                if self.data.contains_key(key) {
                    return Err(Error::Message(format!(
                        "cannot add key \"{key}\", another key by that name already exists in Data for ConfigMap \"{name}\""
                    )));
                }
                if self.binary.contains_key(key) {
                    return Err(Error::Message(format!(
                        "cannot add key \"{key}\", another key by that name already exists in BinaryData for ConfigMap \"{name}\""
                    )));
                }
                if std::str::from_utf8(&value).is_ok() {
                    self.data.insert(key.to_string(), value);
                } else {
                    self.binary.insert(key.to_string(), value);
                }
            }
            Target::Secret => {
                if !problems.is_empty() {
                    return Err(Error::Message(format!(
                        "\"{key}\" is not valid key name for a Secret {}",
                        problems.join(";")
                    )));
                }
                if self.data.contains_key(key) {
                    return Err(Error::Message(format!(
                        "cannot add key {key}, another key by that name already exists"
                    )));
                }
                self.data.insert(key.to_string(), value);
            }
        }
        Ok(())
    }
}

/// Runs `create configmap`.
pub async fn configmap(ctx: &mut Context, args: &ConfigMapArgs) -> Result<(), Error> {
    let name = one_name(&args.sources.names, "configmap")?;
    let prepared = prepare(ctx, &args.common).await?;
    let keys = collect(&args.sources, Target::ConfigMap, &name)?;
    let data: Map<String, Value> = keys
        .data
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(String::from_utf8_lossy(v).into_owned())))
        .collect();
    let binary: Map<String, Value> = keys.binary.iter().map(|(k, v)| (k.clone(), base64(v).into())).collect();
    let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap"});
    let mut full_name = name.clone();
    if args.sources.append_hash {
        let mut encoded = json!({"kind": "ConfigMap", "name": name, "data": data});
        if !binary.is_empty() {
            encoded["binaryData"] = Value::Object(binary.clone());
        }
        full_name = format!("{name}-{}", content_hash(&encoded));
    }
    object["metadata"] = Value::Object(prepared.metadata(&full_name, true));
    if !data.is_empty() {
        object["data"] = Value::Object(data);
    }
    if !binary.is_empty() {
        object["binaryData"] = Value::Object(binary);
    }
    finish(
        ctx,
        prepared,
        &args.common,
        object,
        Some("failed to create configmap: "),
    )
    .await
}

/// Runs `create secret <type>`.
pub async fn secret(ctx: &mut Context, command: &SecretCommand) -> Result<(), Error> {
    let (name, common, keys, secret_type, append_hash) = match &command.kind {
        SecretKind::Generic(args) => {
            let name = one_name(&args.sources.names, "secret generic")?;
            let keys = collect(&args.sources, Target::Secret, &name)?;
            let secret_type = args.secret_type.clone().unwrap_or_default();
            (name, &args.common, keys, secret_type, args.sources.append_hash)
        }
        SecretKind::DockerRegistry(args) => {
            let name = one_name(&args.names, "secret docker-registry")?;
            let keys = docker_registry_keys(args, &name)?;
            (
                name,
                &args.common,
                keys,
                "kubernetes.io/dockerconfigjson".into(),
                args.append_hash,
            )
        }
        SecretKind::Tls(args) => {
            let name = one_name(&args.names, "secret tls")?;
            let keys = tls_keys(args)?;
            (name, &args.common, keys, "kubernetes.io/tls".into(), args.append_hash)
        }
    };
    let prepared = prepare(ctx, common).await?;
    let data: Map<String, Value> = keys.data.iter().map(|(k, v)| (k.clone(), base64(v).into())).collect();
    let mut full_name = name.clone();
    if append_hash {
        let encoded = json!({"kind": "Secret", "type": secret_type, "name": name, "data": data});
        full_name = format!("{name}-{}", content_hash(&encoded));
    }
    let mut object = json!({"apiVersion": "v1", "kind": "Secret", "metadata": prepared.metadata(&full_name, true)});
    if !data.is_empty() {
        object["data"] = Value::Object(data);
    }
    if !secret_type.is_empty() {
        object["type"] = secret_type.into();
    }
    finish(ctx, prepared, common, object, Some("failed to create secret ")).await
}

/// The `.dockerconfigjson` key: from `--from-file`, or built from the `--docker-*` flags
/// as upstream's `DockerConfigJSON` marshals it (fields in its struct order).
fn docker_registry_keys(args: &DockerRegistryArgs, name: &str) -> Result<Keys, Error> {
    if !args.files.is_empty() {
        let sources = Sources {
            files: args.files.clone(),
            ..Default::default()
        };
        return collect(&sources, Target::Secret, name);
    }
    let (Some(user), Some(password)) = (&args.docker_username, &args.docker_password) else {
        return Err(Error::Usage(
            "either --from-file or the combination of --docker-username, --docker-password and --docker-server is required".into(),
        ));
    };
    let text = |s: &str| crate::printer::to_compact_json(&Value::String(s.to_string()));
    let email = match args.docker_email.as_deref().filter(|e| !e.is_empty()) {
        Some(email) => format!(",\"email\":{}", text(email)),
        None => String::new(),
    };
    let json = format!(
        "{{\"auths\":{{{}:{{\"username\":{},\"password\":{}{email},\"auth\":{}}}}}}}",
        text(&args.docker_server),
        text(user),
        text(password),
        text(&base64(format!("{user}:{password}").as_bytes()))
    );
    let mut keys = Keys::default();
    keys.data.insert(".dockerconfigjson".into(), json.into_bytes());
    Ok(keys)
}

/// `tls.crt` and `tls.key` from the files, after upstream's checks of their PEM blocks.
fn tls_keys(args: &TlsArgs) -> Result<Keys, Error> {
    let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
        return Err(Error::Usage("key and cert must be specified".into()));
    };
    let read = |path: &str| {
        std::fs::read(path).map_err(|e| {
            Error::Message(format!(
                "Cannot read file {path}, open {path}: {}",
                crate::cmd::select::os_error(&e)
            ))
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let blocks = |pem: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(pem)
            .lines()
            .filter_map(|l| l.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")))
            .map(str::to_string)
            .collect()
    };
    // Go's `tls.X509KeyPair` messages for PEM inputs without the wanted block.
    let cert_blocks = blocks(&cert_pem);
    if !cert_blocks.iter().any(|b| b == "CERTIFICATE") {
        return Err(Error::Message(match cert_blocks.as_slice() {
            [] => "tls: failed to find any PEM data in certificate input".into(),
            [one] if one.ends_with("PRIVATE KEY") => "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched".into(),
            many => format!(
                "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: [{}]",
                many.join(" ")
            ),
        }));
    }
    let key_blocks = blocks(&key_pem);
    if !key_blocks.iter().any(|b| b.ends_with("PRIVATE KEY")) {
        return Err(Error::Message(match key_blocks.as_slice() {
            [] => "tls: failed to find any PEM data in key input".into(),
            [one] if one == "CERTIFICATE" => {
                "tls: found a certificate rather than a key in the PEM for the private key".into()
            }
            many => format!(
                "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input after skipping PEM blocks of the following types: [{}]",
                many.join(" ")
            ),
        }));
    }
    let mut keys = Keys::default();
    keys.data.insert("tls.crt".into(), cert_pem);
    keys.data.insert("tls.key".into(), key_pem);
    Ok(keys)
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Upstream's name hash: SHA-256 of the compact JSON, its first ten hex digits with
/// `0 1 3 a e` swapped for `g h k m t` (no vowels, no look-alikes).
fn content_hash(encoded: &Value) -> String {
    let text = crate::printer::to_compact_json(encoded);
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// Reads every source in upstream's order: files, then literals, then env files.
fn collect(sources: &Sources, target: Target, name: &str) -> Result<Keys, Error> {
    if !sources.env_files.is_empty() && (!sources.files.is_empty() || !sources.literals.is_empty()) {
        return Err(Error::Usage(
            "from-env-file cannot be combined with from-file or from-literal".into(),
        ));
    }
    let mut keys = Keys::default();
    for source in &sources.files {
        let (key, path) = parse_file_source(source)?;
        let metadata = std::fs::metadata(&path)
            .map_err(|e| Error::Message(format!("error reading {path}: {}", crate::cmd::select::os_error(&e))))?;
        if metadata.is_dir() {
            if source.contains('=') {
                return Err(Error::Usage("cannot give a key name for a directory path".into()));
            }
            let mut entries: Vec<_> = std::fs::read_dir(&path)?.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    let key = entry.file_name().to_string_lossy().into_owned();
                    keys.add(target, name, &key, std::fs::read(entry.path())?)?;
                }
            }
        } else {
            keys.add(target, name, &key, std::fs::read(&path)?)?;
        }
    }
    for literal in &sources.literals {
        let (key, value) = match literal.split_once('=') {
            Some((key, value)) if !key.is_empty() => (key, value),
            _ => {
                return Err(Error::Usage(format!(
                    "invalid literal source {literal}, expected key=value"
                )));
            }
        };
        keys.add(target, name, key, value.as_bytes().to_vec())?;
    }
    for path in &sources.env_files {
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::Message(format!("error reading {path}: {}", crate::cmd::select::os_error(&e))))?;
        if metadata.is_dir() {
            let what = if target == Target::Secret {
                "env secret file"
            } else {
                "env config file"
            };
            return Err(Error::Usage(format!("{what} cannot be a directory")));
        }
        for (key, value) in read_env_file(path)? {
            keys.add(target, name, &key, value.into_bytes())?;
        }
    }
    Ok(keys)
}

/// Upstream's `ParseFileSource`: `path` (the key is the base name) or `key=path`.
fn parse_file_source(source: &str) -> Result<(String, String), Error> {
    match source.matches('=').count() {
        0 => {
            let base = Path::new(source)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| source.to_string());
            Ok((base, source.to_string()))
        }
        1 if source.starts_with('=') => Err(Error::Usage(format!("key name for file path {} missing", &source[1..]))),
        1 if source.ends_with('=') => Err(Error::Usage(format!(
            "file path for key name {} missing",
            &source[..source.len() - 1]
        ))),
        1 => {
            let (key, path) = source.split_once('=').expect("one separator");
            Ok((key.to_string(), path.to_string()))
        }
        _ => Err(Error::Usage("key names or file paths cannot contain '='".into())),
    }
}

/// Upstream's env file: `KEY=VALUE` lines (a `KEY` alone takes the value from the
/// environment), blank lines and `#` comments skipped, leading space trimmed, a BOM
/// ignored on the first line.
fn read_env_file(path: &str) -> Result<Vec<(String, String)>, Error> {
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(Error::Message(format!(
                "env file {path} contains invalid utf8 bytes at line {}: {raw:?}",
                index + 1
            )));
        };
        let line = if index == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => (line.to_string(), std::env::var(line).unwrap_or_default()),
        };
        let problems = api::validation::names::is_env_var_name(&key);
        if !problems.is_empty() {
            return Err(Error::Message(format!(
                "\"{key}\" is not a valid key name: {}",
                problems.join(";")
            )));
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_upstream() {
        // `kubectl create configmap cm4 --append-hash --from-literal=a=1` names it cm4-cbbc9b5c47;
        // `kubectl create secret generic sx --from-literal=a=1 --append-hash`, sx-656t6998gk.
        assert_eq!(
            content_hash(&json!({"kind": "ConfigMap", "name": "cm4", "data": {"a": "1"}})),
            "cbbc9b5c47"
        );
        assert_eq!(
            content_hash(&json!({"kind": "Secret", "type": "", "name": "sx", "data": {"a": "MQ=="}})),
            "656t6998gk"
        );
    }

    #[test]
    fn file_sources_parse_like_upstream() {
        assert_eq!(
            parse_file_source("dir/a.txt").unwrap(),
            ("a.txt".into(), "dir/a.txt".into())
        );
        assert_eq!(
            parse_file_source("k=dir/a.txt").unwrap(),
            ("k".into(), "dir/a.txt".into())
        );
        assert_eq!(
            parse_file_source("=x").unwrap_err().to_string(),
            "key name for file path x missing"
        );
        assert_eq!(
            parse_file_source("k=").unwrap_err().to_string(),
            "file path for key name k missing"
        );
        assert!(parse_file_source("a=b=c").is_err());
    }
}
