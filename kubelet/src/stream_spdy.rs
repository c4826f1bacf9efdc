//! The SPDY/3.1 fallback of exec and attach: `Upgrade: SPDY/3.1` with
//! `X-Stream-Protocol-Version: v5.channel.k8s.io` or `v4.channel.k8s.io`, which kubectl sends
//! when its WebSocket upgrade fails (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` forces it) and
//! which older clients send first.
//!
//! The client opens one stream per channel, named by its `streamType` header (`error` first,
//! then `stdin`, `stdout`, `stderr`, and `resize` with a terminal). The kubelet answers each
//! and translates the streams into the WebSocket session's messages (`streaming.rs`), so exec
//! and attach run unchanged on either transport: stdin DATA becomes channel-0 messages and its
//! FIN the v5 `[255, 0]` close signal, each newline-terminated JSON size on `resize` a
//! channel-4 message, and the end of the connection the client going away. Output goes to
//! the `stdout`/`stderr` streams, the final `Status` to the `error` stream; then every stream
//! is closed and the client ends the connection. A session without DATA either way for
//! `--streaming-connection-idle-timeout` is closed (the client's pings do not count).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::Message;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use spdy::{Role, Session, StreamReader, StreamWriter, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::streaming::{CLOSE, ERROR, ExecOptions, RESIZE, Runner, STDERR, STDIN, STDOUT, text};

/// How long the client may take to open the streams it asked for (upstream's
/// `streamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the client to end the connection once every stream is closed.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The `101 Switching Protocols` answer to a SPDY upgrade that chose `protocol`.
pub(crate) fn switching_protocols(protocol: &str) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "building the response".to_string()))
}

/// Answers the upgrade and serves the exec or attach session `run` on the connection once
/// the upgrade completes.
pub(crate) fn serve(
    on_upgrade: hyper::upgrade::OnUpgrade,
    protocol: &'static str,
    options: &ExecOptions,
    idle_timeout: Option<Duration>,
    run: Runner,
) -> Response {
    let expected = expected_streams(options);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session(TokioIo::new(upgraded), expected, idle_timeout, run).await,
            Err(error) => tracing::debug!(%error, "SPDY upgrade failed"),
        }
    });
    switching_protocols(protocol)
}

/// The stream types a request's options make the client open (a terminal has no stderr and
/// adds `resize`).
fn expected_streams(options: &ExecOptions) -> Vec<&'static str> {
    let mut kinds = vec!["error"];
    for (wanted, kind) in [
        (options.stdin, "stdin"),
        (options.stdout, "stdout"),
        (options.stderr && !options.tty, "stderr"),
        (options.tty, "resize"),
    ] {
        if wanted {
            kinds.push(kind);
        }
    }
    kinds
}

async fn session<IO>(io: IO, expected: Vec<&'static str>, idle_timeout: Option<Duration>, run: Runner)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut spdy = match Session::new(io, Role::Server) {
        Ok(session) => session,
        Err(error) => {
            tracing::debug!(%error, "starting the SPDY session");
            return;
        }
    };
    if let Some(timeout) = idle_timeout {
        spdy.close_when_idle(timeout);
    }
    let mut streams = match tokio::time::timeout(STREAM_CREATION_TIMEOUT, accept_streams(&mut spdy, &expected)).await {
        Ok(Some(streams)) => streams,
        Ok(None) => return,
        Err(_) => {
            tracing::debug!(?expected, "the client did not open its streams in time");
            return;
        }
    };
    let Some((_, error)) = streams.remove("error") else {
        return;
    };
    let (in_tx, in_rx) = mpsc::channel::<Result<Message, axum::Error>>(16);
    let mut tasks = Vec::new();
    if let Some((reader, _)) = streams.remove("stdin") {
        tasks.push(tokio::spawn(forward_stdin(reader, in_tx.clone())));
    }
    if let Some((reader, _)) = streams.remove("resize") {
        tasks.push(tokio::spawn(forward_resize(reader, in_tx.clone())));
    }
    let spdy = std::sync::Arc::new(spdy);
    tasks.push(tokio::spawn({
        let (spdy, in_tx) = (spdy.clone(), in_tx);
        async move {
            spdy.closed().await;
            let _ = in_tx.send(Ok(Message::Close(None))).await;
        }
    }));
    let mut incoming = tokio_stream::wrappers::ReceiverStream::new(in_rx);
    let (out_tx, out_rx) = mpsc::channel::<Message>(16);
    let stdout = streams.remove("stdout").map(|(_, writer)| writer);
    let stderr = streams.remove("stderr").map(|(_, writer)| writer);
    let writer = tokio::spawn(write_output(out_rx, error, stdout, stderr));
    // The client's half-close of stdin arrives as the v5 close signal, whatever the protocol.
    let status = run(&mut incoming, &out_tx, true).await;
    let ended = status.is_some();
    if let Some(status) = status {
        let mut frame = vec![ERROR];
        frame.extend_from_slice(status.to_string().as_bytes());
        let _ = out_tx.send(Message::Binary(frame.into())).await;
    }
    drop(out_tx);
    let _ = writer.await;
    if ended {
        // The client resets its streams and ends the connection once it has the status.
        let _ = tokio::time::timeout(CLOSE_WAIT, spdy.closed()).await;
    }
    for task in tasks {
        task.abort();
    }
}

/// Accepts streams until every `expected` type is open, answering each; `None` when the
/// connection ends first or a stream type is unknown.
async fn accept_streams(
    spdy: &mut Session,
    expected: &[&'static str],
) -> Option<HashMap<&'static str, (StreamReader, StreamWriter)>> {
    let mut streams = HashMap::new();
    while streams.len() < expected.len() {
        let stream = spdy.accept().await?;
        let kind = header(&stream.headers, "streamtype").unwrap_or("").to_ascii_lowercase();
        let Some(known) = expected.iter().find(|k| **k == kind) else {
            tracing::debug!(kind, "unexpected stream type");
            let _ = stream.writer.reset(spdy::frame::rst::PROTOCOL_ERROR).await;
            return None;
        };
        if stream.writer.reply(Vec::new()).await.is_err() {
            return None;
        }
        streams.insert(*known, stream.split());
    }
    Some(streams)
}

/// Client's stdin: DATA as channel-0 messages, its end as `[255, 0]`.
async fn forward_stdin(mut reader: StreamReader, incoming: mpsc::Sender<Result<Message, axum::Error>>) {
    while let Some(data) = reader.recv().await {
        let mut message = BytesMut::with_capacity(1 + data.len());
        message.extend_from_slice(&[STDIN]);
        message.extend_from_slice(&data);
        if incoming.send(Ok(Message::Binary(message.freeze()))).await.is_err() {
            return;
        }
    }
    let _ = incoming
        .send(Ok(Message::Binary(Bytes::from_static(&[CLOSE, STDIN]))))
        .await;
}

/// Terminal sizes: one JSON object per line, each a channel-4 message.
async fn forward_resize(mut reader: StreamReader, incoming: mpsc::Sender<Result<Message, axum::Error>>) {
    let mut pending = BytesMut::new();
    while let Some(data) = reader.recv().await {
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line = pending.split_to(end + 1);
            let mut message = BytesMut::with_capacity(line.len());
            message.extend_from_slice(&[RESIZE]);
            message.extend_from_slice(&line[..end]);
            if incoming.send(Ok(Message::Binary(message.freeze()))).await.is_err() {
                return;
            }
        }
    }
}

/// Output messages to their streams; closes every stream when the session is done.
async fn write_output(
    mut outgoing: mpsc::Receiver<Message>,
    error: StreamWriter,
    stdout: Option<StreamWriter>,
    stderr: Option<StreamWriter>,
) {
    while let Some(message) = outgoing.recv().await {
        let Message::Binary(data) = message else { continue };
        let stream = match data.first() {
            Some(&STDOUT) => stdout.as_ref(),
            Some(&STDERR) => stderr.as_ref(),
            Some(&ERROR) => Some(&error),
            _ => None,
        };
        if let Some(stream) = stream {
            // A client that reset a stream no longer wants it; the others carry on.
            let _ = stream.send(data.slice(1..)).await;
        }
    }
    for stream in [Some(&error), stdout.as_ref(), stderr.as_ref()].into_iter().flatten() {
        let _ = stream.finish().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_follow_the_options() {
        let options = |stdin, stdout, stderr, tty| ExecOptions {
            command: vec!["sh".into()],
            stdin,
            stdout,
            stderr,
            tty,
        };
        assert_eq!(
            expected_streams(&options(false, true, true, false)),
            ["error", "stdout", "stderr"]
        );
        assert_eq!(
            expected_streams(&options(true, true, false, true)),
            ["error", "stdin", "stdout", "resize"]
        );
    }
}
