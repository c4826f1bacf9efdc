//! The HTTPS server: TLS (rustls, optional client certificates), HTTP/1.1 and HTTP/2 through
//! hyper-util, authentication, request metrics, and the router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::AppState;
use crate::auth::{ConnectionIdentity, UserInfo, user_from_certificate};
use crate::discovery;
use crate::error::ApiError;
use crate::handlers::{json_response, serve_resource};
use crate::metrics::RequestLabels;
use crate::pki::Pki;

/// Builds the TLS configuration: our serving certificate, client certificates optional but
/// verified against the cluster CA when presented.
pub fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
        roots.add(cert.context("parsing the CA certificate")?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("building the client certificate verifier")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pki.serving_cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("parsing the serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes()).context("parsing the serving key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts connections until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    router: Router,
    cancel: CancellationToken,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, _peer) = tokio::select! {
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
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let identity = ConnectionIdentity(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|c| user_from_certificate(c)),
            );
            let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(identity.clone());
                router.clone().oneshot(request.map(Body::new))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}

fn is_public(path: &str) -> bool {
    let base = path.trim_end_matches('/');
    ["/healthz", "/livez", "/readyz", "/version"]
        .iter()
        .any(|p| base == *p || base.starts_with(&format!("{p}/")))
}

/// Authenticates every request but the public health and version endpoints.
async fn authenticate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let from_cert = request
        .extensions()
        .get::<ConnectionIdentity>()
        .and_then(|i| i.0.clone());
    let from_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| state.tokens.authenticate(v));
    let presented_token = request.headers().contains_key(header::AUTHORIZATION);
    // A bad token is a failure even when a certificate is present, as upstream's union
    // authenticator does not fall through on an invalid bearer token.
    let user: Option<UserInfo> = if presented_token { from_token } else { from_cert };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        // Anonymous requests may read the public endpoints; a rejected credential may not.
        None if !presented_token && is_public(request.uri().path()) => next.run(request).await,
        None => ApiError::unauthorized().into_response(),
    }
}

/// Counts requests and their latency.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let watch = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *request.method() {
        Method::GET if watch => "WATCH",
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    };
    let response = next.run(request).await;
    let labels = RequestLabels {
        verb: verb.to_string(),
        code: response.status().as_u16().to_string(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    response
}

fn text(code: StatusCode, body: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn livez() -> Response {
    text(StatusCode::OK, "ok")
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.ready.load(std::sync::atomic::Ordering::Acquire) || !state.store.all_ready() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]informer-sync failed: the watch caches are not ready\nreadyz check failed",
        );
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.revisions.current()).await {
        Ok(Ok(_)) => text(StatusCode::OK, "ok"),
        _ => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]etcd failed: storage is unreachable\nreadyz check failed",
        ),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    for (segment, cache) in state.store.caches() {
        let labels = crate::metrics::ResourceLabels {
            resource: segment.to_string(),
        };
        state
            .metrics
            .cached_objects
            .get_or_create(&labels)
            .set(cache.len() as i64);
        state
            .metrics
            .cache_revision
            .get_or_create(&labels)
            .set(cache.revision());
    }
    if let Some(stats) = &state.storage_stats {
        state
            .metrics
            .storage_size
            .set(i64::try_from(stats.size_bytes()).unwrap_or(i64::MAX));
        state.metrics.storage_compaction_lag.set(stats.compaction_lag());
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// `/api...` and `/apis...`: discovery documents or resources.
async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if parts.method == Method::GET && segments.first() == Some(&"openapi") {
        return match segments.as_slice() {
            ["openapi", "v2"] => crate::openapi::v2(&parts.headers),
            ["openapi", "v3"] => crate::openapi::index(),
            ["openapi", "v3", rest @ ..] => {
                crate::openapi::group_version(&rest.join("/"), parts.uri.query(), &parts.headers)
            }
            _ => ApiError::path_not_found().into_response(),
        };
    }
    let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if parts.method == Method::GET
        && matches!(segments.as_slice(), ["api"] | ["apis"])
        && discovery::wants_aggregated(accept)
    {
        let doc = discovery::aggregated(segments[0] == "api");
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)],
            serde_json::to_vec(&doc).unwrap_or_default(),
        )
            .into_response();
    }
    let discovery_doc = match (parts.method.clone(), segments.as_slice()) {
        (Method::GET, ["api"]) => Some(Some(discovery::core_versions(&state.server_address))),
        (Method::GET, ["apis"]) => Some(Some(discovery::groups())),
        (Method::GET, ["api", version]) => Some(discovery::resources("", version)),
        (Method::GET, ["apis", group]) => Some(discovery::group(group)),
        (Method::GET, ["apis", group, version]) => Some(discovery::resources(group, version)),
        _ => None,
    };
    if let Some(doc) = discovery_doc {
        return match doc {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => ApiError::path_not_found().into_response(),
        };
    }
    let core = match segments.first() {
        Some(&"api") => true,
        Some(&"apis") => false,
        _ => return ApiError::path_not_found().into_response(),
    };
    let limit = state.max_request_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return ApiError::too_large(limit).into_response();
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || error.to_string().contains("length limit");
            return if too_large {
                ApiError::too_large(limit).into_response()
            } else {
                ApiError::bad_request(format!("reading the request body: {error}")).into_response()
            };
        }
    };
    if let Some(response) = state
        .resource_metrics
        .handle(&state.store, &parts.method, &segments, parts.uri.query())
        .await
    {
        return response;
    }
    let user = parts.extensions.get::<UserInfo>();
    if let Some(response) = crate::reviews::handle(&parts.method, &segments, &parts.headers, &body, user) {
        return response;
    }
    let rest = segments[1..].join("/");
    serve_resource(
        state,
        core,
        parts.method,
        &rest,
        parts.uri.query(),
        &parts.headers,
        body,
        parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
    )
    .await
}

/// The router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(livez))
        .route("/livez", axum::routing::get(livez))
        .route("/readyz", axum::routing::get(readyz))
        .route(
            "/version",
            axum::routing::get(|| async { json_response(StatusCode::OK, &discovery::version()) }),
        )
        .route("/metrics", axum::routing::get(metrics))
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
