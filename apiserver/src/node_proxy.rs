//! `pods/log`: the apiserver finds the pod's node and streams the log from that node's
//! kubelet (`https://<InternalIP>:<kubelet port>/containerLogs/...`), authenticating with the
//! apiserver's kubelet client certificate. Like upstream without
//! `--kubelet-certificate-authority`, the kubelet's self-signed serving certificate is not
//! verified (the kubelet does verify us).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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

/// Serves `GET .../pods/{name}/log`.
pub async fn pod_log(
    store: &Store,
    tls: Arc<rustls::ClientConfig>,
    namespace: &str,
    name: &str,
    query: &Query,
) -> ApiResult<Response> {
    let pods = api::registry::find("", "v1", "pods").ok_or_else(|| ApiError::internal("pods are not registered"))?;
    let nodes = api::registry::find("", "v1", "nodes").ok_or_else(|| ApiError::internal("nodes are not registered"))?;
    let cached = store.get_cached(pods, Some(namespace), name, None).await?;
    let pod: Value = serde_json::from_slice(&cached.json).map_err(ApiError::internal)?;
    let container = pick_container(&pod, name, query.get("container"))?;
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node_cached = store.get_cached(nodes, None, node_name, None).await?;
    let node: Value = serde_json::from_slice(&node_cached.json).map_err(ApiError::internal)?;
    let (host, port) = kubelet_endpoint(&node)
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no address for its kubelet")))?;

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
        "/containerLogs/{namespace}/{name}/{container}{}{}",
        if forwarded.is_empty() { "" } else { "?" },
        forwarded.join("&")
    );
    let unavailable = |what: String| ApiError::new(500, "InternalError", what);
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
    let server_name = ServerName::try_from(host.clone()).map_err(ApiError::internal)?;
    let tls_stream = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| unavailable(format!("TLS with the kubelet of node {node_name}: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls_stream))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(&path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(ApiError::internal)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(format!("reading logs from the kubelet of node {node_name}: {e}")))?;
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
    fn kubelet_endpoints() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.2"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}});
        assert_eq!(kubelet_endpoint(&node), Some(("10.0.0.2".to_string(), 10251)));
        assert_eq!(percent_encode("2026-11-22T10:00:00Z"), "2026-11-22T10%3A00%3A00Z");
    }
}
