//! What `exec`, `cp` and `port-forward` share: the WebSocket upgrade through the `kube`
//! client (any subprotocol: `v5.channel.k8s.io` or `SPDY/3.1+portforward.k8s.io`), the
//! `v5.channel.k8s.io` session of a remote command (wire doc §12.3), the target pod and its
//! container defaulting, as upstream's `podcmd` does.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::{StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
use tokio_tungstenite::tungstenite::protocol::{Role, frame::coding::CloseCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::error::Error;

/// An upgraded WebSocket connection to the apiserver.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The subprotocol of remote commands (the only one kubectl 1.37 offers).
pub const CHANNEL_V5: &str = "v5.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;
/// client-go pings every 5 s so the server's and proxies' idle timers never fire.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Upgrades `GET url` to a WebSocket speaking `protocol`. A refused upgrade reads like
/// upstream's: a `Status` body as the API error, any other body as
/// `unable to upgrade connection: <body>`.
pub async fn upgrade(client: &kube::Client, url: &str, protocol: &str) -> Result<Socket, Error> {
    let key = generate_key();
    let request = http::Request::get(url)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, &key)
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(kube::client::Body::empty())
        .map_err(|e| Error::Message(e.to_string()))?;
    let response = client.send(request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let body = response.into_body().collect_bytes().await.unwrap_or_default();
        if let Ok(status) = serde_json::from_slice::<kube::core::Status>(&body)
            && !status.message.is_empty()
        {
            return Err(Error::Api(Box::new(status)));
        }
        return Err(Error::Message(format!(
            "unable to upgrade connection: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let accept = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
    let chosen = response.headers().get(header::SEC_WEBSOCKET_PROTOCOL);
    if accept.map(|a| a.as_bytes()) != Some(derive_accept_key(key.as_bytes()).as_bytes())
        || chosen.map(|p| p.as_bytes()) != Some(protocol.as_bytes())
    {
        return Err(Error::Message(format!(
            "unable to upgrade connection: the server did not agree to {protocol}"
        )));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| Error::Message(format!("unable to upgrade connection: {e}")))?;
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
}

/// A terminal size as the resize channel carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// The local ends of a remote command's streams.
pub struct Streams {
    pub stdin: Option<Box<dyn AsyncRead + Unpin + Send>>,
    pub stdout: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    pub stderr: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    /// Terminal sizes to send (the first right away), with a TTY.
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// Runs a remote command's session to its end: stdin out (closed with the v5 close signal at
/// its end), stdout and stderr in, sizes out, pings every 5 s; then the error channel's
/// `Status` decides: success, the command's exit code, or the server's message.
pub async fn run_session(socket: Socket, streams: Streams) -> Result<(), Error> {
    let Streams {
        mut stdin,
        mut stdout,
        mut stderr,
        mut resize,
    } = streams;
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut stdin_buf = vec![0u8; 32 * 1024];
    let mut status = Vec::new();
    let send_failed = |e: tokio_tungstenite::tungstenite::Error| Error::Message(format!("sending to the server: {e}"));
    loop {
        let stdin_open = stdin.is_some();
        let resizing = resize.is_some();
        tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, payload)) = data.split_first() else { continue };
                    let out = match channel {
                        STDOUT => stdout.as_mut(),
                        STDERR => stderr.as_mut(),
                        ERROR => {
                            status.extend_from_slice(payload);
                            None
                        }
                        _ => None,
                    };
                    if let Some(out) = out
                        && (out.write_all(payload).await.is_err() || out.flush().await.is_err())
                    {
                        // The local reader went away (e.g. `| head`): stop like upstream.
                        break;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| f.code).unwrap_or(CloseCode::Normal);
                    if code != CloseCode::Normal {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return Err(Error::Message(format!(
                            "next reader: websocket: close {} {reason}",
                            u16::from(code)
                        )));
                    }
                    // tungstenite answers the close; drain until the stream ends.
                    while let Some(Ok(_)) = incoming.next().await {}
                    break;
                }
                Some(Ok(Message::Text(_))) => {
                    return Err(Error::Message("unexpected message type: 1".into()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Error::Message(format!("next reader: {e}"))),
                None => break,
            },
            read = async { stdin.as_mut().expect("guarded").read(&mut stdin_buf).await }, if stdin_open => {
                match read {
                    Ok(n) if n > 0 => {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(STDIN);
                        frame.extend_from_slice(&stdin_buf[..n]);
                        sink.send(Message::Binary(frame.into())).await.map_err(send_failed)?;
                    }
                    _ => {
                        stdin = None;
                        sink.send(Message::Binary(Bytes::from_static(&[CLOSE, STDIN])))
                            .await
                            .map_err(send_failed)?;
                    }
                }
            }
            size = async { resize.as_mut().expect("guarded").recv().await }, if resizing => {
                match size {
                    Some(size) => {
                        let mut frame = vec![RESIZE];
                        frame.extend_from_slice(&serde_json::to_vec(&size)?);
                        frame.push(b'\n');
                        sink.send(Message::Binary(frame.into())).await.map_err(send_failed)?;
                    }
                    None => resize = None,
                }
            }
            _ = ping.tick() => {
                sink.send(Message::Ping(Bytes::new())).await.map_err(send_failed)?;
            }
        }
    }
    for out in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = out.flush().await;
    }
    let _ = sink.close().await;
    status_result(&status)
}

/// What the error channel's payload means (client-go `remotecommand/v4.go`): nothing or a
/// `Success` is success; `NonZeroExitCode` carries the exit code in a cause of type
/// `ExitCode`; any other failure is its message.
pub fn status_result(payload: &[u8]) -> Result<(), Error> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let status: Value = serde_json::from_slice(payload).map_err(|e| {
        Error::Message(format!(
            "error stream protocol error: {e} in {:?}",
            String::from_utf8_lossy(payload)
        ))
    })?;
    if status["status"] == "Success" {
        return Ok(());
    }
    if status["reason"] == "NonZeroExitCode" {
        let code = status["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|cause| cause["reason"] == "ExitCode")
            .and_then(|cause| cause["message"].as_str())
            .and_then(|code| code.parse::<i32>().ok());
        return match code {
            Some(code) => Err(Error::Exit {
                message: format!("command terminated with exit code {code}"),
                code,
            }),
            None => Err(Error::Message(format!(
                "error stream protocol error: invalid exit code value {:?}",
                status["details"]["causes"].to_string()
            ))),
        };
    }
    Err(Error::Message(
        status["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Every container name of a pod as upstream lists them: containers, then ephemeral ones
/// marked `(ephem)`, then init containers marked `(init)`.
pub fn all_container_names(pod: &Value) -> String {
    let names = |key: &str, suffix: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(|name| format!("{name}{suffix}")))
            .collect()
    };
    [
        names("containers", ""),
        names("ephemeralContainers", " (ephem)"),
        names("initContainers", " (init)"),
    ]
    .concat()
    .join(", ")
}

/// Upstream's `FindOrDefaultContainerByName`: the requested container (or the
/// `kubectl.kubernetes.io/default-container` annotation's) must exist; otherwise the first
/// container, with `Defaulted container ...` on stderr (`warn`) when there was a choice.
pub fn find_or_default_container(
    pod: &Value,
    requested: Option<&str>,
    quiet: bool,
    warn: &mut dyn FnMut(&str),
) -> Result<String, Error> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let Some(first) = containers.first() else {
        return Err(Error::Message(format!(
            "pod {}/{pod_name} does not have any containers",
            pod["metadata"]["namespace"].as_str().unwrap_or_default()
        )));
    };
    let annotated = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str();
    if let Some(name) = requested.or(annotated).filter(|n| !n.is_empty()) {
        let exists = ["containers", "initContainers", "ephemeralContainers"]
            .iter()
            .flat_map(|key| pod["spec"][*key].as_array().cloned().unwrap_or_default())
            .any(|c| c["name"] == name);
        if !exists {
            return Err(Error::Message(format!(
                "container {name} is not valid for pod {pod_name} out of: {}",
                all_container_names(pod)
            )));
        }
        return Ok(name.to_string());
    }
    let name = first["name"].as_str().unwrap_or_default().to_string();
    let more = |key: &str| pod["spec"][key].as_array().is_some_and(|a| !a.is_empty());
    if !quiet && (containers.len() > 1 || more("initContainers") || more("ephemeralContainers")) {
        warn(&format!(
            "Defaulted container {name:?} out of: {}\n",
            all_container_names(pod)
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_error_channel_decides_the_outcome() {
        assert!(status_result(b"").is_ok());
        assert!(status_result(br#"{"metadata":{},"status":"Success"}"#).is_ok());
        let failure = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: 2","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"2"}]}}"#;
        let error = status_result(failure).unwrap_err();
        assert_eq!(error.render(), "command terminated with exit code 2");
        assert_eq!(error.exit_code(), 2);
        let other = br#"{"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError"}"#;
        let error = status_result(other).unwrap_err();
        assert_eq!(error.render(), "error: Internal error occurred: boom");
        assert_eq!(error.exit_code(), 1);
    }

    #[test]
    fn containers_default_like_upstream() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]},
        });
        let mut said = String::new();
        assert_eq!(
            find_or_default_container(&pod, None, false, &mut |s| said.push_str(s)).unwrap(),
            "a"
        );
        assert_eq!(said, "Defaulted container \"a\" out of: a, b, i (init)\n");
        said.clear();
        assert_eq!(
            find_or_default_container(&pod, None, true, &mut |s| said.push_str(s)).unwrap(),
            "a"
        );
        assert_eq!(
            find_or_default_container(&pod, Some("i"), false, &mut |s| said.push_str(s)).unwrap(),
            "i"
        );
        assert!(said.is_empty());
        let error = find_or_default_container(&pod, Some("x"), false, &mut |_| {}).unwrap_err();
        assert_eq!(
            error.render(),
            "error: container x is not valid for pod p out of: a, b, i (init)"
        );
        let mut annotated = pod.clone();
        annotated["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/default-container": "b"});
        assert_eq!(
            find_or_default_container(&annotated, None, false, &mut |s| said.push_str(s)).unwrap(),
            "b"
        );
        assert!(said.is_empty());
    }
}
