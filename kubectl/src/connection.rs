//! Which cluster, user and namespace a command talks to: the kubeconfig files (`--kubeconfig`,
//! `$KUBECONFIG` lists, `~/.kube/config`, merged as upstream merges them), the context and the
//! overriding flags, turned into a `kube::Client`.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::Error;

/// The flags every command accepts, as upstream's `genericclioptions.ConfigFlags`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectionFlags {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// The length of time to wait before giving up on a single server request (`0` = no limit).
    #[arg(long, global = true, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Default cache directory (accepted for compatibility; discovery is not cached on disk).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Number for the log level verbosity (accepted for compatibility).
    #[arg(short = 'v', long = "v", global = true, value_name = "LEVEL")]
    pub verbosity: Option<u8>,
}

/// The merged kubeconfig the flags point at (`--kubeconfig`, else `$KUBECONFIG`, else
/// `~/.kube/config`); `None` when there is none.
pub fn load_kubeconfig(flags: &ConnectionFlags) -> Result<Option<Kubeconfig>, Error> {
    if let Some(path) = &flags.kubeconfig {
        return Kubeconfig::read_from(path)
            .map(Some)
            .map_err(|e| Error::Message(format!("{}: {e}", path.display())));
    }
    match Kubeconfig::from_env() {
        Ok(Some(config)) => return Ok(Some(config)),
        Ok(None) => {}
        Err(e) => return Err(Error::Message(e.to_string())),
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let default = home.join(".kube").join("config");
    if default.exists() {
        return Kubeconfig::read_from(&default)
            .map(Some)
            .map_err(|e| Error::Message(format!("{}: {e}", default.display())));
    }
    Ok(None)
}

/// A client and the namespace commands default to.
pub struct Connection {
    pub client: kube::Client,
    /// `--namespace`, else the context's namespace, else `default`.
    pub namespace: String,
    /// Whether the namespace came from `--namespace` (upstream's "enforce namespace").
    pub namespace_explicit: bool,
    /// The server URL, for `cluster-info` and messages.
    pub server: String,
}

impl Connection {
    /// Connects as the flags and kubeconfig say.
    pub async fn open(flags: &ConnectionFlags) -> Result<Self, Error> {
        let Some(kubeconfig) = load_kubeconfig(flags)? else {
            if let Some(server) = &flags.server {
                let uri: http::Uri = server
                    .parse()
                    .map_err(|e| Error::Usage(format!("invalid --server {server}: {e}")))?;
                return Self::from_config(kube::Config::new(uri), flags);
            }
            return Err(Error::Message(
                "The connection to the server localhost:8080 was refused - did you specify the right host or port?"
                    .into(),
            ));
        };
        let options = KubeConfigOptions {
            context: flags.context.clone(),
            cluster: flags.cluster.clone(),
            user: flags.user.clone(),
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Message(e.to_string()))?;
        Self::from_config(config, flags)
    }

    fn from_config(mut config: kube::Config, flags: &ConnectionFlags) -> Result<Self, Error> {
        if let Some(server) = &flags.server {
            config.cluster_url = server
                .parse()
                .map_err(|e| Error::Usage(format!("invalid --server {server}: {e}")))?;
        }
        if let Some(token) = &flags.token {
            config.auth_info.token = Some(token.clone().into());
            config.auth_info.client_certificate = None;
            config.auth_info.client_certificate_data = None;
            config.auth_info.client_key = None;
            config.auth_info.client_key_data = None;
        }
        if flags.insecure_skip_tls_verify {
            config.accept_invalid_certs = true;
        }
        if let Some(timeout) = &flags.request_timeout {
            let timeout = parse_timeout(timeout)?;
            config.read_timeout = timeout;
            config.write_timeout = timeout;
        }
        let namespace_explicit = flags.namespace.is_some();
        let namespace = flags
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        component_base::set_user_agent(&mut config, "kubectl");
        let client = kube::Client::try_from(config).map_err(|e| Error::Message(e.to_string()))?;
        Ok(Self {
            client,
            namespace,
            namespace_explicit,
            server,
        })
    }
}

/// `--request-timeout`: a Go duration or a bare number of seconds; `0` means none.
fn parse_timeout(text: &str) -> Result<Option<Duration>, Error> {
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => component_base::parse_duration(text).map_err(|_| {
            Error::Usage("invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)".to_string())
        })?,
    };
    Ok((!duration.is_zero()).then_some(duration))
}
