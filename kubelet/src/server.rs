//! The kubelet's HTTPS server (`--address`, `--port`): `/healthz`, `/pods`,
//! `/metrics/resource` (`resource_metrics.rs`), `/containerLogs/{namespace}/{pod}/{container}`, `/exec/{namespace}/{pod}/{container}`
//! (`streaming.rs`), `/attach/{namespace}/{pod}/{container}` (`attach.rs`), `/portForward/{namespace}/{pod}` (`portforward.rs`) and `POST /images/load`
//! (an OCI layout or docker archive into the node's image store, for `kaji load`, as containerd's
//! import does for `kind load`; not an upstream kubelet endpoint). Every request
//! needs a client certificate signed by the cluster CA whose subject is in `system:masters`
//! (the apiserver's kubelet client certificate); nothing is served anonymously. The serving certificate is self-signed
//! and kept under `<root-dir>/pki`, as upstream's kubelet does without `--tls-cert-file`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::logs::{LogOptions, stream};
use crate::streaming::{ExecTarget, StreamError};

/// Why a log request cannot be served: (HTTP status, message).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("pod {0} not found")]
    PodNotFound(String),
    #[error("container {container} is not valid for pod {pod}")]
    ContainerNotFound { pod: String, container: String },
    #[error("previous terminated container \"{container}\" in pod \"{pod}\" not found")]
    NoPrevious { pod: String, container: String },
    #[error("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}")]
    NotStarted {
        pod: String,
        container: String,
        reason: String,
    },
}

/// A log file to read and whether its container is still writing to it.
pub struct LogTarget {
    pub path: PathBuf,
    pub still_running: Box<dyn Fn() -> bool + Send>,
}

/// What the server needs from the pod manager.
pub trait NodeView: Send + Sync + 'static {
    fn locate_log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogTarget, LogError>;
    fn pods(&self) -> Vec<Pod>;
    /// The running container `kubectl exec` enters (its latest attempt).
    fn exec_target(&self, namespace: &str, pod: &str, container: &str) -> Result<ExecTarget, StreamError>;
    /// The node's image store.
    fn image_store(&self) -> Arc<images::ImageStore>;
    /// The resource metrics exposition (`/metrics/resource`).
    fn resource_metrics(&self) -> String;
    /// How long a streaming connection may be idle before it is closed (`None`: never).
    fn streaming_idle_timeout(&self) -> Option<std::time::Duration> {
        Some(STREAMING_IDLE_TIMEOUT)
    }
}

/// The default of `--streaming-connection-idle-timeout`, as upstream's.
pub const STREAMING_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

/// The self-signed serving certificate under `<root-dir>/pki`, created on first start.
pub fn serving_certificate(root_dir: &Path, node_name: &str, ips: &[IpAddr]) -> Result<(String, String)> {
    let dir = root_dir.join("pki");
    std::fs::create_dir_all(&dir)?;
    let (cert_path, key_path) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if let (Ok(cert), Ok(key)) = (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path)) {
        return Ok((cert, key));
    }
    let key = rcgen::KeyPair::generate()?;
    let mut names = vec![node_name.to_string()];
    names.extend(ips.iter().map(|ip| ip.to_string()));
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{node_name}@kubelet"));
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    let cert = params.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key_path)?;
        file.write_all(key_pem.as_bytes())?;
    }
    std::fs::write(&cert_path, &cert_pem)?;
    Ok((cert_pem, key_pem))
}

/// TLS that requires a client certificate signed by `client_ca_pem`.
pub fn tls_config(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots.add(cert.context("parsing the client CA")?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the client certificate verifier")?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether a verified client certificate may use the kubelet API: members of
/// `system:masters` (the apiserver's kubelet client, cluster admins).
fn authorized(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    cert.subject()
        .iter_organization()
        .any(|o| o.as_str().is_ok_and(|o| o == "system:masters"))
}

/// The routes.
pub fn router(view: Arc<dyn NodeView>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route("/metrics/resource", get(resource_metrics))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(container_logs))
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(crate::streaming::exec).post(crate::streaming::exec),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(crate::attach::attach).post(crate::attach::attach),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(crate::portforward::port_forward).post(crate::portforward::port_forward),
        )
        .route(
            "/images/load",
            post(load_images).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .with_state(view)
}

async fn pods(State(view): State<Arc<dyn NodeView>>) -> Response {
    let list = serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": view.pods(),
    });
    ([(http::header::CONTENT_TYPE, "application/json")], list.to_string()).into_response()
}

async fn resource_metrics(State(view): State<Arc<dyn NodeView>>) -> Response {
    match tokio::task::spawn_blocking(move || view.resource_metrics()).await {
        Ok(text) => (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn container_logs(
    State(view): State<Arc<dyn NodeView>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(options): Query<LogOptions>,
) -> Response {
    match view.locate_log(&namespace, &pod, &container, options.previous) {
        Ok(target) => {
            let body = Body::from_stream(stream(target.path, options, target.still_running));
            ([(http::header::CONTENT_TYPE, "text/plain")], body).into_response()
        }
        Err(error) => {
            let code = match error {
                LogError::PodNotFound(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            (code, error.to_string()).into_response()
        }
    }
}

/// `POST /images/load`: the body (a tar archive, streamed) is imported into the image store;
/// answers the images it now holds (`{"images": [{"reference", "id"}]}`), 400 for an archive
/// that isn't one.
async fn load_images(State(view): State<Arc<dyn NodeView>>, body: Body) -> Response {
    use futures::TryStreamExt;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    match view.image_store().import_archive(reader).await {
        Ok(images) => {
            let images: Vec<serde_json::Value> = images
                .iter()
                .map(|image| serde_json::json!({"reference": image.reference, "id": image.id}))
                .collect();
            tracing::info!(count = images.len(), "images loaded");
            let body = serde_json::json!({ "images": images });
            ([(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        Err(error) => {
            let code = match error {
                images::ImportError::Invalid(_) | images::ImportError::Reference(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (code, error.to_string()).into_response()
        }
    }
}

/// Serves `router` on `addr` until `cancel`.
pub async fn serve(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    router: Router,
    cancel: CancellationToken,
) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, _) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                return;
            };
            let allowed = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .is_some_and(|cert| authorized(cert));
            let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move {
                    if !allowed {
                        return Ok::<_, std::convert::Infallible>(
                            (
                                StatusCode::FORBIDDEN,
                                "Forbidden: the client is not allowed to use the kubelet API\n",
                            )
                                .into_response(),
                        );
                    }
                    router.oneshot(request.map(Body::new)).await
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::select! {
                _ = connection => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}
