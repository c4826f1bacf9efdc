//! kube-apiserver: the Kubernetes REST API over etcd.
//!
//! A request goes `server` (TLS, authentication, metrics) → `handlers` (URL → resource,
//! decoding, Status errors) → `store` (reads from the watch caches in `cache`) or `write`
//! (read-modify-write with compare-and-swap on `storage`). What differs between kinds comes
//! from the `api` crate's registry and strategies.

pub mod auth;
pub mod body;
pub mod cache;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod limits;
pub mod managed;
pub mod metrics;
pub mod node_proxy;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod quota;
pub mod request;
pub mod resource_metrics;
pub mod reviews;
pub mod server;
pub mod services;
pub mod store;
pub mod watch;
pub mod write;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use storage::Storage;
use tokio_util::sync::CancellationToken;

use crate::services::{Allocators, Cidr, parse_port_range};
use crate::store::Store;

/// Command-line flags (upstream's names).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "kube-apiserver", about = "kaji's Kubernetes API server", version)]
pub struct Options {
    /// etcd endpoints, comma-separated (e.g. http://127.0.0.1:2379). Selects the etcd storage
    /// backend unless --storage says otherwise.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// Storage backend: `embedded` (a SQLite database in DATA_DIR/store, nothing else to run)
    /// or `etcd` (needs --etcd-servers). Default: etcd if --etcd-servers is given, else embedded.
    #[arg(long, value_parser = ["embedded", "etcd"])]
    pub storage: Option<String>,
    /// Directory for the cluster PKI, the admin kubeconfig and the embedded store.
    #[arg(long, default_value = "/var/lib/kaji/apiserver")]
    pub data_dir: PathBuf,
    /// Embedded store: revisions of history kept at least (watches and paginated lists can
    /// resume from any of them).
    #[arg(long, default_value_t = 1000)]
    pub embedded_retain_revisions: i64,
    /// Embedded store: time of history kept at least (Go duration), besides the revisions.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub embedded_retain_for: Duration,
    /// Embedded store: how often it compacts its history (Go duration; 0 disables).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub embedded_compaction_interval: Duration,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Address advertised to clients (added to the serving certificate).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// CSV file of static bearer tokens: token,user,uid[,"group1,group2"].
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// CIDR from which Service cluster IPs are allocated.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    /// Port range from which Service node ports are allocated.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// How often etcd history is compacted (Go duration: 5m, 300s; 0 disables). Each pass
    /// compacts to the revision seen one interval earlier, so watches can resume from any
    /// revision younger than the interval. The embedded store compacts itself.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// How long Events are kept after their last write (Go duration; 0 keeps them forever).
    /// The store deletes them itself (an etcd lease, or the embedded store's expiry).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: Duration,
    /// How often the Metrics API scrapes the kubelets' resource metrics (Go duration), as
    /// metrics-server's flag.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub metric_resolution: Duration,
}

/// Go-syntax durations (`30s`, `1m30s`), shared by every component.
pub use component_base::parse_duration;

/// Compacts storage history every `interval`, to the revision observed one interval before,
/// as upstream's compactor does.
async fn compact_periodically(storage: Arc<dyn Storage>, interval: Duration, cancel: CancellationToken) {
    if interval.is_zero() {
        return;
    }
    let mut previous: Option<storage::Revision> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let current = match storage.current_revision().await {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, "compaction: cannot read the current revision");
                continue;
            }
        };
        if let Some(revision) = previous {
            match storage.compact(revision).await {
                Ok(()) => tracing::info!(revision, "compacted storage history"),
                // Another apiserver may have compacted past it already.
                Err(storage::StorageError::Compacted { .. }) => {}
                Err(error) => tracing::warn!(%error, revision, "compaction failed"),
            }
        }
        previous = Some(current);
    }
}

/// What every request handler shares.
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: metrics::Metrics,
    pub tokens: auth::TokenAuth,
    pub max_request_bytes: usize,
    pub server_address: String,
    pub ready: AtomicBool,
    /// Size and compaction lag of the embedded store, for /metrics (none on etcd).
    pub storage_stats: Option<Arc<dyn storage::embedded::StorageStats>>,
    /// TLS client settings for the kubelets (`pods/log`).
    pub kubelet_tls: Arc<rustls::ClientConfig>,
    /// The Metrics API's samples (`metrics.k8s.io`).
    pub resource_metrics: Arc<resource_metrics::MetricsApi>,
}

/// The namespaces that exist from the first start on.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates `object` unless it exists.
async fn ensure(store: &Store, plural: &str, namespace: Option<&str>, object: serde_json::Value) -> Result<()> {
    let group = if plural == "endpointslices" {
        "discovery.k8s.io"
    } else {
        ""
    };
    let def = api::registry::find(group, "v1", plural).with_context(|| format!("{plural} are registered"))?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    match store.create(def, namespace, object, false).await {
        Ok(_) => tracing::info!(resource = plural, name, "created"),
        Err(e) if e.code == 409 => {}
        Err(e) => bail!("creating {plural} {name}: {}", e.message),
    }
    Ok(())
}

/// What exists from the first start on: the system namespaces, and the `default/kubernetes`
/// Service with its Endpoints and EndpointSlice pointing at this apiserver (how pods find it).
async fn bootstrap(store: &Store, service_ip: IpAddr, endpoint: SocketAddr) -> Result<()> {
    for name in SYSTEM_NAMESPACES {
        ensure(
            store,
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await?;
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    ensure(
        store,
        "services",
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "labels": labels},
            "spec": {"type": "ClusterIP", "clusterIP": service_ip.to_string(), "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": endpoint.port()}]}}),
    )
    .await?;
    ensure(
        store,
        "endpoints",
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": endpoint.ip().to_string()}],
                "ports": [{"name": "https", "port": endpoint.port(), "protocol": "TCP"}]}]}),
    )
    .await?;
    ensure(
        store,
        "endpointslices",
        Some("default"),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": if endpoint.ip().is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{"addresses": [endpoint.ip().to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": endpoint.port(), "protocol": "TCP"}]}),
    )
    .await?;
    Ok(())
}

/// Runs the apiserver until `cancel` fires.
pub async fn run(options: Options, cancel: CancellationToken) -> Result<()> {
    let cluster_ip_range = Cidr::parse(&options.service_cluster_ip_range)
        .map_err(|e| anyhow::anyhow!("--service-cluster-ip-range: {e}"))?;
    let node_port_range = parse_port_range(&options.service_node_port_range)
        .map_err(|e| anyhow::anyhow!("--service-node-port-range: {e}"))?;
    let tokens = match &options.token_auth_file {
        Some(path) => auth::TokenAuth::load(path).context("--token-auth-file")?,
        None => auth::TokenAuth::default(),
    };
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating --data-dir {}", options.data_dir.display()))?;

    let use_etcd = match options.storage.as_deref() {
        Some("etcd") if options.etcd_servers.is_empty() => {
            bail!("--storage etcd needs --etcd-servers (for example --etcd-servers http://127.0.0.1:2379)")
        }
        Some("etcd") => true,
        Some(_) => false,
        None => !options.etcd_servers.is_empty(),
    };
    let mut storage_stats: Option<Arc<dyn storage::embedded::StorageStats>> = None;
    let storage: Arc<dyn Storage> = if use_etcd {
        Arc::new(
            storage::etcd::EtcdStorage::connect(&options.etcd_servers)
                .await
                .with_context(|| format!("connecting to etcd at {}", options.etcd_servers.join(",")))?,
        )
    } else {
        if !options.etcd_servers.is_empty() {
            tracing::warn!("--storage embedded: ignoring --etcd-servers");
        }
        // It compacts itself, keeping what the --embedded-retain-* flags say.
        let dir = options.data_dir.join("store");
        let embedded = storage::embedded::EmbeddedOptions {
            retain_revisions: options.embedded_retain_revisions,
            retain_for: options.embedded_retain_for,
            compaction_interval: options.embedded_compaction_interval,
            ..Default::default()
        };
        let store = Arc::new(
            storage::embedded::EmbeddedStorage::open_with(&dir, embedded)
                .with_context(|| format!("opening the embedded store in {}", dir.display()))?,
        );
        storage_stats = Some(store.clone());
        store
    };

    let first_service_ip = IpAddr::V4(cluster_ip_range.host(1));
    let sans = pki::serving_sans(options.bind_address, options.advertise_address, Some(first_service_ip));
    let pki = pki::load_or_create(&options.data_dir, &sans)?;
    let kubelet_tls = node_proxy::kubelet_client_tls(&pki.admin_cert_pem, &pki.admin_key_pem)?;
    let tls = server::tls_config(&pki)?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(options.bind_address, options.secure_port))
        .await
        .with_context(|| format!("listening on {}:{}", options.bind_address, options.secure_port))?;
    let port = listener.local_addr()?.port();
    let host = match (options.advertise_address, options.bind_address) {
        (Some(ip), _) => ip,
        (None, ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        (None, ip) => ip,
    };
    let server_address = SocketAddr::new(host, port).to_string();

    if use_etcd {
        tokio::spawn(compact_periodically(
            storage.clone(),
            options.etcd_compaction_interval,
            cancel.clone(),
        ));
    }
    // Generating the OpenAPI documents takes a moment: do it before the first client asks.
    tokio::task::spawn_blocking(api::openapi::index);
    let allocators = Allocators::new(storage.clone(), cluster_ip_range, node_port_range);
    let store = Arc::new(Store::new(storage, allocators, options.event_ttl, &cancel));
    let state = Arc::new(AppState {
        store: store.clone(),
        metrics: metrics::Metrics::new(),
        tokens,
        max_request_bytes: options.max_request_bytes,
        server_address: server_address.clone(),
        ready: AtomicBool::new(false),
        storage_stats,
        resource_metrics: resource_metrics::MetricsApi::start(
            store.clone(),
            kubelet_tls.clone(),
            options.metric_resolution,
            cancel.clone(),
        ),
        kubelet_tls,
    });
    let serving = tokio::spawn(server::serve(
        listener,
        tls,
        server::router(state.clone()),
        cancel.clone(),
    ));
    tracing::info!(address = %server_address, "serving");

    // Ready once the caches are filled, the system namespaces exist and the kubeconfig is
    // written, in that order (the kubeconfig's existence is part of the readiness contract).
    loop {
        if store.all_ready() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    loop {
        match bootstrap(&store, first_service_ip, SocketAddr::new(host, port)).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "bootstrap failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let kubeconfig = pki::admin_kubeconfig(&pki, &format!("https://{server_address}"));
    pki::write_atomic(&options.data_dir.join("admin.kubeconfig"), kubeconfig.as_bytes())?;
    state.ready.store(true, Ordering::Release);
    tracing::info!(kubeconfig = %options.data_dir.join("admin.kubeconfig").display(), "ready");

    serving.await.context("server task")??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
