//! `kubectl port-forward` on the node: `/portForward/{namespace}/{pod}`, reached through the
//! apiserver's `pods/portforward` proxy. The connection speaks SPDY/3.1 (crate `spdy`), either
//! tunnelled in binary WebSocket messages (subprotocol `SPDY/3.1+portforward.k8s.io`, what
//! kubectl 1.37 offers first; the messages' concatenated payloads are the SPDY byte stream)
//! or directly after `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`
//! (kubectl's fallback).
//!
//! For every local connection kubectl opens two streams with the headers `streamType`
//! (`error`, then `data`), `port` and `requestID`. The kubelet answers both, dials
//! `127.0.0.1:<port>` inside the pod's network namespace (from a fresh thread that joins it;
//! the socket stays in that namespace, tokio's threads never change namespace), and pumps
//! bytes both ways. A failed dial is reported as text on the error stream; either way the
//! error stream is closed when the forwarded connection ends, and other connections of the
//! session carry on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use spdy::{Session, StreamReader, StreamWriter, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::NodeView;
use crate::streaming::{StreamError, header_has};

/// The WebSocket subprotocol of the SPDY tunnel.
pub const PROTOCOL_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The `X-Stream-Protocol-Version` of a plain SPDY upgrade.
pub const PROTOCOL_SPDY: &str = "portforward.k8s.io";

/// How long dialing the pod may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the tunnel waits for the session to flush after the client went away.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// The network a port-forward enters: the pod's namespace, or the node's for host-network
/// pods.
#[derive(Clone, Debug)]
pub struct PodNetwork {
    pub pod: String,
    pub netns: Option<PathBuf>,
}

/// Finds the pod's network namespace: the holder process of its sandbox (the sandbox id is the
/// pod's uid), found through any of its running containers.
fn pod_network(view: &dyn NodeView, namespace: &str, name: &str) -> Result<PodNetwork, StreamError> {
    let pod = view
        .pods()
        .into_iter()
        .find(|p| {
            p.metadata.namespace.as_deref().unwrap_or("default") == namespace
                && p.metadata.name.as_deref() == Some(name)
        })
        .ok_or(StreamError::PodNotFound)?;
    let label = format!("{namespace}/{name}");
    let spec = pod.spec.unwrap_or_default();
    if spec.host_network.unwrap_or(false) {
        return Ok(PodNetwork {
            pod: label,
            netns: None,
        });
    }
    let uid = pod.metadata.uid.unwrap_or_default();
    let runtime = spec
        .containers
        .iter()
        .find_map(|c| view.exec_target(namespace, name, &c.name).ok())
        .map(|target| target.runtime)
        .ok_or_else(|| StreamError::ContainerNotFound("no running container".to_string()))?;
    let sandbox = runtime
        .sandbox(&uid)
        .map_err(|_| StreamError::ContainerNotFound("pod sandbox".to_string()))?;
    Ok(PodNetwork {
        pod: label,
        netns: Some(PathBuf::from(format!("/proc/{}/ns/net", sandbox.pid))),
    })
}

fn text(code: StatusCode, message: String) -> Response {
    (
        code,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// `GET` (or `POST`) `/portForward/{namespace}/{pod}` with a WebSocket or SPDY upgrade.
pub async fn port_forward(
    State(view): State<Arc<dyn NodeView>>,
    UrlPath((namespace, pod)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let network = match pod_network(view.as_ref(), &namespace, &pod) {
        Ok(network) => network,
        Err(error @ StreamError::PodNotFound) => return text(StatusCode::NOT_FOUND, error.to_string()),
        Err(error) => return text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let idle_timeout = view.streaming_idle_timeout();
    let (mut parts, _body) = request.into_parts();
    if header_has(&parts.headers, http::header::UPGRADE, "websocket") {
        parts.method = http::Method::GET;
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => upgrade.protocols([PROTOCOL_TUNNEL]),
            Err(rejection) => return rejection.into_response(),
        };
        if upgrade.selected_protocol().is_none() {
            return text(
                StatusCode::BAD_REQUEST,
                format!("requested protocol(s) are not supported; supported: {PROTOCOL_TUNNEL}"),
            );
        }
        tracing::info!(pod = %network.pod, protocol = PROTOCOL_TUNNEL, "port-forward session");
        return upgrade.on_upgrade(move |socket| tunnel(socket, network, idle_timeout));
    }
    if header_has(&parts.headers, http::header::UPGRADE, "SPDY/3.1") {
        if !header_has(&parts.headers, "x-stream-protocol-version", PROTOCOL_SPDY) {
            return text(
                StatusCode::FORBIDDEN,
                format!("unable to negotiate protocol: client supports none of [{PROTOCOL_SPDY}]"),
            );
        }
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return text(StatusCode::BAD_REQUEST, "the connection cannot be upgraded".to_string());
        };
        tracing::info!(pod = %network.pod, protocol = "SPDY/3.1", "port-forward session");
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(TokioIo::new(upgraded), network, idle_timeout).await,
                Err(error) => tracing::debug!(%error, "port-forward upgrade failed"),
            }
        });
        return crate::stream_spdy::switching_protocols(PROTOCOL_SPDY);
    }
    text(
        StatusCode::BAD_REQUEST,
        format!("port-forward needs an upgrade to WebSocket ({PROTOCOL_TUNNEL}) or SPDY/3.1"),
    )
}

/// Carries the SPDY byte stream in binary WebSocket messages (pings are answered by the
/// WebSocket layer while messages are read) and serves the session on it.
async fn tunnel(socket: WebSocket, network: PodNetwork, idle_timeout: Option<Duration>) {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let session = tokio::spawn(serve(theirs, network, idle_timeout));
    let (mut sink, mut messages) = socket.split();
    let (mut from_session, mut to_session) = tokio::io::split(ours);
    let outbound = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_session.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let close = Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        }));
        let _ = sink.send(close).await;
    };
    tokio::pin!(outbound);
    let inbound = async {
        while let Some(Ok(message)) = messages.next().await {
            match message {
                // Empty messages happen (kubectl writes a frame field by field): not an EOF.
                Message::Binary(data) if to_session.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_session.shutdown().await;
    };
    tokio::select! {
        _ = &mut outbound => {}
        _ = inbound => {
            // The client is gone: let the session tear down and flush what it still has.
            let _ = tokio::time::timeout(FLUSH_WAIT, &mut outbound).await;
        }
    }
    let _ = tokio::time::timeout(FLUSH_WAIT, session).await;
}

/// One forwarded connection being assembled from its two streams.
#[derive(Default)]
struct Pending {
    error: Option<StreamWriter>,
}

/// Serves one SPDY session: pairs the streams by `requestID` and forwards each pair. The
/// session is closed after `idle_timeout` without a new connection or data either way.
async fn serve<IO>(io: IO, network: PodNetwork, idle_timeout: Option<Duration>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut session = match Session::new(io, spdy::Role::Server) {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(%error, "starting a port-forward session");
            return;
        }
    };
    if let Some(timeout) = idle_timeout {
        session.close_when_idle(timeout);
    }
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    while let Some(stream) = session.accept().await {
        let kind = header(&stream.headers, "streamtype").unwrap_or("").to_ascii_lowercase();
        let port = header(&stream.headers, "port").unwrap_or("").to_string();
        let request_id = header(&stream.headers, "requestid").unwrap_or("").to_string();
        let (reader, writer) = stream.split();
        if writer.reply(Vec::new()).await.is_err() {
            break;
        }
        match kind.as_str() {
            "error" => {
                pending.entry(request_id).or_default().error = Some(writer);
            }
            "data" => {
                let error = pending.remove(&request_id).and_then(|p| p.error);
                forwards.spawn(forward(network.clone(), port, reader, writer, error));
            }
            other => {
                tracing::debug!(stream_type = other, "port-forward: unknown stream type");
                let _ = writer.reset(spdy::frame::rst::PROTOCOL_ERROR).await;
            }
        }
        // Reap finished forwards so a long session does not accumulate them.
        while forwards.try_join_next().is_some() {}
    }
    drop(pending);
    // The client ended the session; its streams were reset, so the forwards end too.
    while forwards.join_next().await.is_some() {}
}

/// Forwards one connection. A failure is reported on the error stream; either way both of our
/// halves are closed (FIN) once the pod's side is done, which is what kubectl waits for.
async fn forward(
    network: PodNetwork,
    port: String,
    reader: StreamReader,
    writer: StreamWriter,
    error: Option<StreamWriter>,
) {
    let dialed = match port.parse::<u16>() {
        Ok(port) if port > 0 => dial(network.netns.clone(), port)
            .await
            .map_err(|message| format!("error forwarding port {port} to pod {}: {message}", network.pod)),
        _ => Err(format!("invalid port {port:?}")),
    };
    let done = |message: Option<String>| {
        let (writer, error) = (&writer, &error);
        async move {
            if let (Some(message), Some(error)) = (message, error) {
                let _ = error.send(Bytes::from(message)).await;
            }
            let _ = writer.finish().await;
            if let Some(error) = error {
                let _ = error.finish().await;
            }
        }
    };
    match dialed {
        Ok(connection) => pump(connection, reader, &writer, done(None)).await,
        Err(message) => {
            tracing::info!(pod = %network.pod, error = %message, "port-forward failed");
            done(Some(message)).await;
        }
    }
}

/// Connects to `127.0.0.1:port` inside `netns` (or the kubelet's own network).
async fn dial(netns: Option<PathBuf>, port: u16) -> Result<TcpStream, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| -> Result<std::net::TcpStream, String> {
            if let Some(path) = &netns {
                let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("joining the pod network: {e}"))?;
            }
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let stream = std::net::TcpStream::connect_timeout(&address, DIAL_TIMEOUT).map_err(|e| {
                format!(
                    "failed to connect to localhost:{port} inside the pod network: dial tcp4 127.0.0.1:{port}: connect: {}",
                    go_error(&e)
                )
            })?;
            stream
                .set_nonblocking(true)
                .map_err(|e| format!("setting up the connection: {e}"))?;
            Ok(stream)
        })();
        let _ = tx.send(result);
    });
    let stream = rx.await.map_err(|_| "the dialing thread died".to_string())??;
    TcpStream::from_std(stream).map_err(|e| format!("setting up the connection: {e}"))
}

/// An OS error worded like Go's (`connection refused`), other errors as they are.
fn go_error(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_ascii_lowercase(),
        None => error.to_string(),
    }
}

/// Copies bytes both ways; `finished` runs once the pod's side has closed. Ends when both
/// directions are done or the client resets the stream (or the session ends).
async fn pump(
    connection: TcpStream,
    mut reader: StreamReader,
    writer: &StreamWriter,
    finished: impl std::future::Future<Output = ()>,
) {
    let _ = connection.set_nodelay(true);
    let (mut from_pod, mut to_pod) = connection.into_split();
    let upstream = async move {
        while let Some(data) = reader.recv().await {
            if to_pod.write_all(&data).await.is_err() {
                return;
            }
        }
        // kubectl half-closed: so does the pod's side.
        let _ = to_pod.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if writer.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
        finished.await;
    };
    tokio::select! {
        _ = async { tokio::join!(upstream, downstream) } => {}
        _ = writer.reset_by_peer() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_tokens_are_matched_case_insensitively() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::UPGRADE, "SPDY/3.1".parse().unwrap());
        headers.append("x-stream-protocol-version", "v4.channel.k8s.io".parse().unwrap());
        headers.append("x-stream-protocol-version", "portforward.k8s.io".parse().unwrap());
        assert!(header_has(&headers, http::header::UPGRADE, "spdy/3.1"));
        assert!(header_has(&headers, "x-stream-protocol-version", PROTOCOL_SPDY));
        assert!(!header_has(&headers, http::header::UPGRADE, "websocket"));
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_message() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let message = dial(None, port).await.unwrap_err();
        assert!(
            message.ends_with(&format!("dial tcp4 127.0.0.1:{port}: connect: connection refused")),
            "{message}"
        );
    }
}
