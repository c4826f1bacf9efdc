//! `kubectl attach` on the node: `/attach/{namespace}/{pod}/{container}?input=…&output=…
//! &error=…&tty=…` upgraded to a WebSocket (or SPDY) exactly like `/exec` (`streaming.rs`: the
//! same channels, status message and session), connected to the container's main process
//! through its shim's attach socket (`runtime::attach`).
//!
//! As upstream: the output is what the process writes from now on; input reaches the
//! process only when its container has `stdin: true`; a `tty: true` container's terminal is
//! sized by the client's resize messages; the session ends with a `Success` status when the
//! process exits (or, without `stdinOnce`, when the client's stdin ends), and detaching
//! (closing the connection) leaves the process running.

use std::sync::Arc;

use axum::extract::ws::Message;
use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use runtime::attach::{
    FRAME_ATTACH_STDIN, FRAME_HEADER, FRAME_RESIZE, FRAME_STDERR, FRAME_STDIN, FRAME_STDIN_CLOSE, FRAME_STDOUT,
    MAX_FRAME, decode_header, encode_frame,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::mpsc;

use crate::server::NodeView;
use crate::streaming::{
    CLOSE, ExecOptions, ExecTarget, Incoming, RESIZE, STDERR, STDIN, STDOUT, StreamError, TerminalSize, internal_error,
    success, text,
};

/// `GET` (or `POST`) `/attach/{namespace}/{pod}/{container}` with a WebSocket upgrade.
pub async fn attach(
    State(view): State<Arc<dyn NodeView>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let options = match ExecOptions::parse_attach(query.as_deref().unwrap_or("")) {
        Ok(options) => options,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let target = match view.exec_target(&namespace, &pod, &container) {
        Ok(target) => target,
        Err(error @ StreamError::PodNotFound) => return text(StatusCode::NOT_FOUND, error.to_string()),
        // Upstream's GetAttach names the pod by its full name, `<name>_<namespace>`.
        Err(StreamError::ContainerNotFound(_)) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("container {container} not found in pod {pod}_{namespace}"),
            );
        }
    };
    let upgrade = match crate::streaming::upgrade(request, "attach").await {
        Ok(upgrade) => upgrade,
        Err(response) => return response,
    };
    let session_options = options.clone();
    upgrade.serve(
        &options,
        view.streaming_idle_timeout(),
        Box::new(move |incoming, out, v5| Box::pin(run(incoming, out, v5, target, session_options))),
    )
}

/// Connects to the process and carries the streams until its output ends (`Some(status)`)
/// or the client goes away (`None`; the process carries on).
async fn run(
    incoming: &mut Incoming,
    out: &mpsc::Sender<Message>,
    v5: bool,
    target: ExecTarget,
    options: ExecOptions,
) -> Option<Value> {
    let (runtime, id) = (target.runtime.clone(), target.container_id.clone());
    let attachment = match tokio::task::spawn_blocking(move || runtime.attach(&id)).await {
        Ok(Ok(attachment)) => attachment,
        Ok(Err(error)) => return Some(internal_error(&format!("error attaching to container: {error}"))),
        Err(error) => return Some(internal_error(&format!("attach task failed: {error}"))),
    };
    let tty = attachment.tty;
    let with_stdin = options.stdin && attachment.stdin;
    let socket = match attachment
        .socket
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(attachment.socket))
    {
        Ok(socket) => socket,
        Err(error) => return Some(internal_error(&format!("error attaching to container: {error}"))),
    };
    let (reader, mut writer) = socket.into_split();
    if with_stdin && writer.write_all(&encode_frame(FRAME_ATTACH_STDIN, b"")).await.is_err() {
        return Some(success());
    }
    // A terminal merges stderr into stdout.
    let channels = (options.stdout, options.stderr && !tty);
    let mut output = tokio::spawn(forward_output(reader, channels, out.clone()));
    let mut shim_open = true;
    loop {
        let message = tokio::select! {
            _ = &mut output => return Some(success()),
            message = incoming.next() => message,
        };
        let frame = match message {
            Some(Ok(Message::Binary(data))) => match data.split_first() {
                Some((&STDIN, input)) if with_stdin && !input.is_empty() => Some(encode_frame(FRAME_STDIN, input)),
                Some((&RESIZE, size)) if tty => serde_json::from_slice::<TerminalSize>(size).ok().map(|size| {
                    let mut payload = size.height.to_be_bytes().to_vec();
                    payload.extend_from_slice(&size.width.to_be_bytes());
                    encode_frame(FRAME_RESIZE, &payload)
                }),
                Some((&CLOSE, [STDIN])) if v5 && with_stdin => Some(encode_frame(FRAME_STDIN_CLOSE, b"")),
                _ => None,
            },
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                output.abort();
                return None;
            }
            Some(Ok(_)) => None,
        };
        if let Some(frame) = frame
            && shim_open
            && writer.write_all(&frame).await.is_err()
        {
            // The shim is done with us: the end of the output ends the session.
            shim_open = false;
        }
    }
}

/// Copies the shim's output frames to the client's channels (`(stdout, stderr)`: whether the
/// client asked for each) until the shim ends the attach.
async fn forward_output(mut reader: OwnedReadHalf, channels: (bool, bool), out: mpsc::Sender<Message>) {
    loop {
        let mut header = [0u8; FRAME_HEADER];
        if reader.read_exact(&mut header).await.is_err() {
            return;
        }
        let (kind, len) = decode_header(header);
        if len > MAX_FRAME {
            return;
        }
        let mut message = vec![0u8; 1 + len];
        if reader.read_exact(&mut message[1..]).await.is_err() {
            return;
        }
        message[0] = match kind {
            FRAME_STDOUT if channels.0 => STDOUT,
            FRAME_STDERR if channels.1 => STDERR,
            _ => continue,
        };
        if out.send(Message::Binary(Bytes::from(message))).await.is_err() {
            return;
        }
    }
}
