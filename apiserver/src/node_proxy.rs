//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: the apiserver finds the pod's
//! node and streams the log from that node's kubelet
//! (`https://<InternalIP>:<kubelet port>/containerLogs/...`), or proxies the upgraded exec,
//! attach or port-forward connection to it (`/exec/...`, `/attach/...`, `/portForward/...`), authenticating with the apiserver's
//! kubelet client certificate. Like upstream without
//! `--kubelet-certificate-authority`, the kubelet's self-signed serving certificate is not
//! verified (the kubelet does verify us).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use component_base::tls::AnyServerCertificate;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::store::Store;

/// The TLS client configuration for talking to kubelets.
pub fn kubelet_client_tls(cert_pem: &str, key_pem: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate::new(provider)))
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The container a log request is for: `container=` or the pod's only container, checked
/// against the spec with upstream's messages.
fn pick_container(pod: &Value, name: &str, requested: Option<&str>) -> ApiResult<String> {
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(container) => {
            if containers.iter().chain(&init).chain(&ephemeral).any(|c| c == container) {
                Ok(container.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {container} is not valid for pod {name}"
                )))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// Where a node's kubelet listens: (InternalIP, port).
fn kubelet_endpoint(node: &Value) -> Option<(String, u16)> {
    let addresses = node["status"]["addresses"].as_array()?;
    let address = ["InternalIP", "ExternalIP", "Hostname"].iter().find_map(|t| {
        addresses
            .iter()
            .find(|a| a["type"] == *t)
            .and_then(|a| a["address"].as_str())
    })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap_or(10250);
    Some((address.to_string(), u16::try_from(port).ok()?))
}

/// Where a pod's container runs: (container, node name, kubelet host, kubelet port).
struct Located {
    container: String,
    node_name: String,
    host: String,
    port: u16,
}

/// Finds the pod, picks its container (`container=` or the only one; none for a
/// port-forward, `query` is `None`) and finds the kubelet of the pod's node.
async fn locate(store: &Store, namespace: &str, name: &str, query: Option<&Query>) -> ApiResult<Located> {
    let pods = api::registry::find("", "v1", "pods").ok_or_else(|| ApiError::internal("pods are not registered"))?;
    let nodes = api::registry::find("", "v1", "nodes").ok_or_else(|| ApiError::internal("nodes are not registered"))?;
    let cached = store.get_cached(pods, Some(namespace), name, None).await?;
    let pod: Value = serde_json::from_slice(&cached.json).map_err(ApiError::internal)?;
    let container = match query {
        Some(query) => pick_container(&pod, name, query.get("container"))?,
        None => String::new(),
    };
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node_cached = store.get_cached(nodes, None, &node_name, None).await?;
    let node: Value = serde_json::from_slice(&node_cached.json).map_err(ApiError::internal)?;
    let (host, port) = kubelet_endpoint(&node)
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no address for its kubelet")))?;
    Ok(Located {
        container,
        node_name,
        host,
        port,
    })
}

fn unavailable(what: String) -> ApiError {
    ApiError::new(500, "InternalError", what)
}

/// Opens an HTTP/1.1 connection to the kubelet (TLS with the apiserver's client
/// certificate); the connection task runs with upgrades enabled.
async fn connect(
    tls: Arc<rustls::ClientConfig>,
    at: &Located,
) -> ApiResult<hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>> {
    let (node_name, host, port) = (&at.node_name, &at.host, at.port);
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        unavailable(format!(
            "dialing the kubelet of node {node_name} at {host}:{port}: timeout"
        ))
    })?
    .map_err(|e| unavailable(format!("dialing the kubelet of node {node_name} at {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let server_name = ServerName::try_from(host.clone()).map_err(ApiError::internal)?;
    let tls_stream = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| unavailable(format!("TLS with the kubelet of node {node_name}: {e}")))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls_stream))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

/// `GET path` on a node's kubelet (the node object as stored); the whole body, or an error
/// for an unreachable kubelet or a non-2xx answer. Used by the Metrics API's scraper.
pub async fn kubelet_get(tls: Arc<rustls::ClientConfig>, node: &Value, path: &str) -> ApiResult<bytes::Bytes> {
    use http_body_util::BodyExt;
    let node_name = node["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let (host, port) = kubelet_endpoint(node)
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no address for its kubelet")))?;
    let at = Located {
        container: String::new(),
        node_name,
        host,
        port,
    };
    let mut sender = connect(tls, &at).await?;
    let request = http::Request::get(path)
        .header(http::header::HOST, format!("{}:{}", at.host, at.port))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(ApiError::internal)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(format!("GET {path} from the kubelet of node {}: {e}", at.node_name)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unavailable(format!("reading {path} from the kubelet of node {}: {e}", at.node_name)))?
        .to_bytes();
    if !status.is_success() {
        return Err(unavailable(format!(
            "GET {path} from the kubelet of node {}: {status}",
            at.node_name
        )));
    }
    Ok(body)
}

/// Serves `GET .../pods/{name}/log`.
pub async fn pod_log(
    store: &Store,
    tls: Arc<rustls::ClientConfig>,
    namespace: &str,
    name: &str,
    query: &Query,
) -> ApiResult<Response> {
    let at = locate(store, namespace, name, Some(query)).await?;
    let mut forwarded = Vec::new();
    for key in [
        "follow",
        "previous",
        "timestamps",
        "tailLines",
        "sinceSeconds",
        "sinceTime",
        "limitBytes",
        "stream",
    ] {
        if let Some(value) = query.get(key) {
            forwarded.push(format!("{key}={}", percent_encode(value)));
        }
    }
    let path = format!(
        "/containerLogs/{namespace}/{name}/{}{}{}",
        at.container,
        if forwarded.is_empty() { "" } else { "?" },
        forwarded.join("&")
    );
    let mut sender = connect(tls, &at).await?;
    let request = http::Request::get(&path)
        .header(http::header::HOST, format!("{}:{}", at.host, at.port))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(ApiError::internal)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(format!("reading logs from the kubelet of node {}: {e}", at.node_name)))?;
    let status = response.status();
    if !status.is_success() {
        use http_body_util::BodyExt;
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&body).trim().to_string();
        return Err(match status.as_u16() {
            404 => ApiError::new(404, "NotFound", message),
            400 => ApiError::bad_request(message),
            403 => ApiError::forbidden(message),
            _ => ApiError::new(500, "InternalError", message),
        });
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Body::new(response.into_body()))
        .unwrap_or_else(|_| axum::response::IntoResponse::into_response(ApiError::internal("building the response"))))
}

/// Whether a request asks to upgrade its connection (`Connection: Upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &http::HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(http::header::UPGRADE)
}

/// Request headers that stay with the apiserver: the client's credentials and the hop to
/// us.
fn forwardable(name: &http::HeaderName) -> bool {
    let name = name.as_str();
    !(name == "host" || name == "authorization" || name == "proxy-authorization" || name.starts_with("impersonate-"))
}

/// Serves `pods/{name}/exec` and `pods/{name}/attach` (`endpoint` is `exec` or `attach`): an
/// upgrade request (WebSocket `v5.channel.k8s.io`, or the SPDY/3.1 fallback) is forwarded to the kubelet's `/exec/...` or `/attach/...` with the same method,
/// query (`command`, `stdin`, `stdout`, `stderr`, `tty`, `container`) and upgrade headers (see
/// [`proxy_upgrade`]).
#[allow(clippy::too_many_arguments)]
pub async fn pod_stream(
    store: &Store,
    tls: Arc<rustls::ClientConfig>,
    endpoint: &str,
    namespace: &str,
    name: &str,
    method: &http::Method,
    raw_query: Option<&str>,
    query: &Query,
    headers: &http::HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let request = ContainerStream {
        namespace,
        name,
        method,
        raw_query,
        query,
        headers,
    };
    container_stream(store, tls, endpoint, request, upgrade).await
}

/// An exec or attach request for a pod's container.
struct ContainerStream<'a> {
    namespace: &'a str,
    name: &'a str,
    method: &'a http::Method,
    raw_query: Option<&'a str>,
    query: &'a Query,
    headers: &'a http::HeaderMap,
}

/// Forwards an exec or attach upgrade to the kubelet's `/{endpoint}/{namespace}/{name}/{container}`
/// with the request's query.
async fn container_stream(
    store: &Store,
    tls: Arc<rustls::ClientConfig>,
    endpoint: &str,
    request: ContainerStream<'_>,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let (true, Some(client_upgrade)) = (is_upgrade(request.headers), upgrade) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let (namespace, name) = (request.namespace, request.name);
    let at = locate(store, namespace, name, Some(request.query)).await?;
    let path = format!(
        "/{endpoint}/{namespace}/{name}/{}?{}",
        at.container,
        request.raw_query.unwrap_or_default()
    );
    proxy_upgrade(tls, &at, &path, request.method, request.headers, client_upgrade).await
}

/// Serves `pods/{name}/portforward`: an upgrade request (WebSocket
/// `SPDY/3.1+portforward.k8s.io`, or plain `SPDY/3.1` with `X-Stream-Protocol-Version:
/// portforward.k8s.io`) is forwarded to the kubelet's `/portForward/{namespace}/{name}`,
/// which speaks SPDY itself (see [`proxy_upgrade`]).
#[allow(clippy::too_many_arguments)]
pub async fn pod_port_forward(
    store: &Store,
    tls: Arc<rustls::ClientConfig>,
    namespace: &str,
    name: &str,
    method: &http::Method,
    raw_query: Option<&str>,
    headers: &http::HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let (true, Some(client_upgrade)) = (is_upgrade(headers), upgrade) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let at = locate(store, namespace, name, None).await?;
    let mut path = format!("/portForward/{namespace}/{name}");
    if let Some(query) = raw_query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(query);
    }
    proxy_upgrade(tls, &at, &path, method, headers, client_upgrade).await
}

/// Forwards an upgrade request to the kubelet at `path` with the same method and upgrade
/// headers. On `101 Switching Protocols` the client gets the kubelet's 101 (with its
/// `Sec-WebSocket-Accept` and protocol) and the two upgraded connections are spliced; any
/// other answer is passed on as is, like upstream's proxy (so kubectl prints `unable to
/// upgrade connection: <the kubelet's message>`).
async fn proxy_upgrade(
    tls: Arc<rustls::ClientConfig>,
    at: &Located,
    path: &str,
    method: &http::Method,
    headers: &http::HeaderMap,
    client_upgrade: hyper::upgrade::OnUpgrade,
) -> ApiResult<Response> {
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header(http::header::HOST, format!("{}:{}", at.host, at.port));
    for (key, value) in headers.iter().filter(|(key, _)| forwardable(key)) {
        request = request.header(key, value);
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(ApiError::internal)?;
    let mut sender = connect(tls, at).await?;
    let mut response = sender.send_request(request).await.map_err(|e| {
        unavailable(format!(
            "error dialing backend: the kubelet of node {}: {e}",
            at.node_name
        ))
    })?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        use http_body_util::BodyExt;
        let status = response.status();
        let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
        let body = http_body_util::Limited::new(response.into_body(), 1 << 20)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut answer = Response::builder().status(status);
        if let Some(content_type) = content_type {
            answer = answer.header(http::header::CONTENT_TYPE, content_type);
        }
        return answer.body(Body::from(body)).map_err(ApiError::internal);
    }
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (key, value) in response.headers() {
        answer = answer.header(key, value);
    }
    let answer = answer.body(Body::empty()).map_err(ApiError::internal)?;
    let kubelet_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (client, kubelet) = match tokio::join!(client_upgrade, kubelet_upgrade) {
            (Ok(client), Ok(kubelet)) => (client, kubelet),
            (client, kubelet) => {
                tracing::debug!(client = ?client.err(), kubelet = ?kubelet.err(), "upgrade failed");
                return;
            }
        };
        let (mut client, mut kubelet) = (TokioIo::new(client), TokioIo::new(kubelet));
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
            tracing::debug!(%error, "upgraded stream ended");
        }
    });
    Ok(answer)
}

fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_follows_upstream() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "a");
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        let err = pick_container(&two, "p", None).unwrap_err();
        assert_eq!(
            err.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(pick_container(&two, "p", Some("i")).unwrap(), "i");
        let err = pick_container(&two, "p", Some("x")).unwrap_err();
        assert_eq!(err.message, "container x is not valid for pod p");
    }

    #[test]
    fn upgrades_and_forwarded_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::UPGRADE, "websocket".parse().unwrap());
        assert!(!is_upgrade(&headers));
        headers.insert(http::header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(is_upgrade(&headers));
        headers.remove(http::header::UPGRADE);
        assert!(!is_upgrade(&headers));
        assert!(forwardable(&http::header::SEC_WEBSOCKET_PROTOCOL));
        assert!(!forwardable(&http::header::AUTHORIZATION));
        assert!(!forwardable(&http::header::HOST));
        assert!(!forwardable(&http::HeaderName::from_static("impersonate-user")));
    }

    #[test]
    fn kubelet_endpoints() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.2"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}});
        assert_eq!(kubelet_endpoint(&node), Some(("10.0.0.2".to_string(), 10251)));
        assert_eq!(percent_encode("2026-11-22T10:00:00Z"), "2026-11-22T10%3A00%3A00Z");
    }
}
