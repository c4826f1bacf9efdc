//! `kubectl exec` on the node: `/exec/{namespace}/{pod}/{container}?command=…&stdin=…&stdout=…
//! &stderr=…&tty=…` upgraded to a WebSocket that speaks `v5.channel.k8s.io` (preferred) or
//! `v4.channel.k8s.io`, as upstream's kubelet does behind the apiserver's `pods/exec` proxy,
//! or to SPDY/3.1 (kubectl's fallback; `stream_spdy.rs` turns its streams into the same
//! messages).
//!
//! Every binary message starts with a channel byte: 0 stdin (client → server), 1 stdout,
//! 2 stderr, 3 the final `metav1.Status` (server → client), 4 terminal resize
//! (`{"Width":W,"Height":H}`), and in v5 255 `[255, channel]`, the client half-closing a
//! channel (`[255, 0]` is stdin EOF). The session ends with the status message and a close
//! frame with code 1000; pings are answered by the WebSocket layer while messages are read.
//! When the client goes away first, the process is killed.
//!
//! Errors found before the upgrade (no such pod, container not running, bad parameters) are
//! plain-text HTTP answers, worded like upstream's kubelet, which the apiserver passes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path as UrlPath, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use runtime::{ExecExit, ExecProcess, ExecRequest, RuntimeError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::server::NodeView;

/// The WebSocket subprotocols served, best first.
pub const PROTOCOL_V5: &str = "v5.channel.k8s.io";
pub const PROTOCOL_V4: &str = "v4.channel.k8s.io";

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const ERROR: u8 = 3;
pub(crate) const RESIZE: u8 = 4;
pub(crate) const CLOSE: u8 = 255;

/// How long output may keep flowing after the process has exited (a background child that
/// keeps the pipes open does not hold the session forever).
const DRAIN: Duration = Duration::from_secs(3);
/// How long a TTY session waits for the client's first terminal size before starting.
const FIRST_RESIZE: Duration = Duration::from_secs(1);
/// How long to wait for the client to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Why an exec request cannot be served, worded like upstream's kubelet.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("pod does not exist")]
    PodNotFound,
    #[error("container not found ({0:?})")]
    ContainerNotFound(String),
}

/// The running container an exec request enters.
pub struct ExecTarget {
    pub runtime: Arc<runtime::Runtime>,
    /// The runtime id of the container's latest running attempt.
    pub container_id: String,
}

/// The exec request's query parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    /// Parses `command=…` (repeated, in order) and the boolean flags (`true` or `1`, as the
    /// apiserver may pass either).
    pub fn parse(query: &str) -> Result<ExecOptions, String> {
        let options = ExecOptions::parse_query(query)?;
        if options.command.is_empty() {
            return Err("you must specify at least one command for the container".to_string());
        }
        options.checked()
    }

    /// The streams of an attach request (no command).
    pub fn parse_attach(query: &str) -> Result<ExecOptions, String> {
        ExecOptions::parse_query(query)?.checked()
    }

    fn parse_query(query: &str) -> Result<ExecOptions, String> {
        let mut options = ExecOptions::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| format!("invalid query parameter {key}"))?;
            let flag = || matches!(value.as_str(), "1" | "true" | "True" | "TRUE" | "t" | "T");
            match key {
                "command" => options.command.push(value),
                "input" | "stdin" => options.stdin = flag(),
                "output" | "stdout" => options.stdout = flag(),
                "error" | "stderr" => options.stderr = flag(),
                "tty" => options.tty = flag(),
                _ => {}
            }
        }
        Ok(options)
    }

    fn checked(mut self) -> Result<ExecOptions, String> {
        let options = &mut self;
        if !options.stdin && !options.stdout && !options.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".to_string());
        }
        if options.tty {
            // A terminal merges stderr into stdout.
            options.stderr = false;
        }
        Ok(self)
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub(crate) fn text(code: StatusCode, message: String) -> Response {
    (
        code,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// `GET` (or `POST`) `/exec/{namespace}/{pod}/{container}` with a WebSocket upgrade.
pub async fn exec(
    State(view): State<Arc<dyn NodeView>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let options = match ExecOptions::parse(query.as_deref().unwrap_or("")) {
        Ok(options) => options,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let target = match view.exec_target(&namespace, &pod, &container) {
        Ok(target) => target,
        Err(error @ StreamError::PodNotFound) => return text(StatusCode::NOT_FOUND, error.to_string()),
        Err(error) => return text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let upgrade = match upgrade(request, "exec").await {
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

/// The client's side of an exec or attach session as WebSocket messages (the SPDY
/// fallback's streams are translated into the same messages).
pub(crate) type Incoming = dyn futures::Stream<Item = Result<Message, axum::Error>> + Send + Unpin;

/// What carries an exec or attach session on either transport: reads the client's messages,
/// sends output through the channel, and returns the final status (`None`: the client went
/// away). The flag says whether the client can half-close channels (the v5 close signal).
pub(crate) type Runner =
    Box<dyn for<'a> FnOnce(&'a mut Incoming, &'a mpsc::Sender<Message>, bool) -> BoxFuture<'a, Option<Value>> + Send>;

/// The upgrade an exec or attach request asked for.
pub(crate) enum Upgrade {
    /// `v5.channel.k8s.io` (`v5: true`) or `v4.channel.k8s.io`.
    WebSocket { upgrade: WebSocketUpgrade, v5: bool },
    /// SPDY/3.1 with the chosen `X-Stream-Protocol-Version`.
    Spdy {
        on_upgrade: hyper::upgrade::OnUpgrade,
        protocol: &'static str,
    },
}

impl Upgrade {
    /// Answers the upgrade and runs the session on the upgraded connection, closing it once
    /// no data flowed either way for `idle_timeout`.
    pub(crate) fn serve(self, options: &ExecOptions, idle_timeout: Option<Duration>, run: Runner) -> Response {
        match self {
            Upgrade::WebSocket { upgrade, v5 } => upgrade
                .on_upgrade(move |socket| session(socket, idle_timeout, move |incoming, out| run(incoming, out, v5))),
            Upgrade::Spdy { on_upgrade, protocol } => {
                crate::stream_spdy::serve(on_upgrade, protocol, options, idle_timeout, run)
            }
        }
    }
}

/// Whether any `name` header lists `token` (comma-separated, case-insensitive).
pub(crate) fn header_has(headers: &http::HeaderMap, name: impl http::header::AsHeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// Accepts the upgrade of a `what` (exec, attach) request: WebSocket with
/// `v5.channel.k8s.io` or `v4.channel.k8s.io`, or SPDY/3.1 with either as
/// `X-Stream-Protocol-Version` (the client's first choice that we speak); or the answer
/// refusing it.
pub(crate) async fn upgrade(request: Request, what: &str) -> Result<Upgrade, Response> {
    let (mut parts, _body) = request.into_parts();
    if header_has(&parts.headers, http::header::UPGRADE, "SPDY/3.1") {
        let offered: Vec<String> = parts
            .headers
            .get_all("x-stream-protocol-version")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .collect();
        let Some(protocol) = offered
            .iter()
            .find_map(|p| [PROTOCOL_V5, PROTOCOL_V4].into_iter().find(|ours| ours == p))
        else {
            return Err(text(
                StatusCode::FORBIDDEN,
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [{PROTOCOL_V5} {PROTOCOL_V4}]"
                ),
            ));
        };
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "the connection cannot be upgraded".to_string(),
            ));
        };
        return Ok(Upgrade::Spdy { on_upgrade, protocol });
    }
    if !header_has(&parts.headers, http::header::UPGRADE, "websocket") {
        return Err(text(
            StatusCode::BAD_REQUEST,
            format!("{what} needs an upgrade to WebSocket ({PROTOCOL_V5} or {PROTOCOL_V4}) or SPDY/3.1"),
        ));
    }
    // Upstream accepts the upgrade on POST as well as GET.
    parts.method = http::Method::GET;
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade.protocols([PROTOCOL_V5, PROTOCOL_V4]),
        Err(rejection) => return Err(rejection.into_response()),
    };
    let v5 = match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(PROTOCOL_V5) => true,
        Some(_) => false,
        None => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("requested protocol(s) are not supported; supported: {PROTOCOL_V5}, {PROTOCOL_V4}"),
            ));
        }
    };
    Ok(Upgrade::WebSocket { upgrade, v5 })
}

/// One exec or attach session on an upgraded connection: `run` carries the streams (reading
/// the client's messages, sending output through the channel) and returns the final status,
/// or `None` when the client went away; the status message and a close frame end it. After
/// `idle_timeout` without a data message either way (pings do not count), the client's
/// messages end as if it had gone away, and the connection is dropped.
pub(crate) async fn session<F>(socket: WebSocket, idle_timeout: Option<Duration>, run: F)
where
    F: for<'a> FnOnce(&'a mut Incoming, &'a mpsc::Sender<Message>) -> BoxFuture<'a, Option<Value>>,
{
    let (mut sink, incoming) = socket.split();
    let activity = spdy::IdleClock::new();
    let (out, mut outgoing) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn({
        let activity = activity.clone();
        async move {
            while let Some(message) = outgoing.recv().await {
                if matches!(message, Message::Binary(_)) {
                    activity.touch();
                }
                if sink.send(message).await.is_err() {
                    return;
                }
            }
        }
    });
    let idle: BoxFuture<'static, ()> = match idle_timeout {
        Some(timeout) => {
            let activity = activity.clone();
            Box::pin(async move { activity.expired(timeout).await })
        }
        None => Box::pin(futures::future::pending()),
    };
    let mut incoming = incoming
        .inspect(move |message| {
            if matches!(message, Ok(Message::Binary(_))) {
                activity.touch();
            }
        })
        .take_until(idle);
    let status = run(&mut incoming, &out).await;
    let ended = match status {
        Some(status) => {
            let mut frame = vec![ERROR];
            frame.extend_from_slice(status.to_string().as_bytes());
            let close = Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            }));
            out.send(Message::Binary(frame.into())).await.is_ok() && out.send(close).await.is_ok()
        }
        None => false,
    };
    drop(out);
    let _ = writer.await;
    if ended {
        // Let the client answer the close frame before the connection goes.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(message)) = incoming.next().await {
                if matches!(message, Message::Close(_)) {
                    return;
                }
            }
        })
        .await;
    }
}

/// The process's streams, as async pipes.
struct ProcessIo {
    stdin: Option<pipe::Sender>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    /// The terminal's master, for resizing.
    pty: Option<std::fs::File>,
}

impl ProcessIo {
    fn take(process: &mut ExecProcess, options: &ExecOptions) -> std::io::Result<ProcessIo> {
        if let Some(master) = process.take_pty() {
            let input = options.stdin.then(|| master.try_clone()).transpose()?;
            let output = master.try_clone()?;
            return Ok(ProcessIo {
                stdin: input.map(sender).transpose()?,
                stdout: Some(receiver(output)?),
                stderr: None,
                pty: Some(master),
            });
        }
        Ok(ProcessIo {
            stdin: process.take_stdin().map(sender).transpose()?,
            stdout: process.take_stdout().map(receiver).transpose()?,
            stderr: process.take_stderr().map(receiver).transpose()?,
            pty: None,
        })
    }
}

pub(crate) fn set_nonblocking(file: &std::fs::File) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    fcntl(file, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn sender(file: std::fs::File) -> std::io::Result<pipe::Sender> {
    set_nonblocking(&file)?;
    pipe::Sender::from_file_unchecked(file)
}

fn receiver(file: std::fs::File) -> std::io::Result<pipe::Receiver> {
    set_nonblocking(&file)?;
    pipe::Receiver::from_file_unchecked(file)
}

/// Starts the process and carries its streams until it exits (`Some(status)`) or the client
/// goes away (`None`, the process is killed).
async fn run(
    incoming: &mut Incoming,
    out: &mpsc::Sender<Message>,
    v5: bool,
    target: ExecTarget,
    options: ExecOptions,
) -> Option<Value> {
    // A terminal client sends its size first: wait for it so the process starts with it.
    let mut first = None;
    if options.tty {
        match tokio::time::timeout(FIRST_RESIZE, incoming.next()).await {
            Ok(Some(Ok(message))) => first = Some(message),
            Ok(_) => return None,
            Err(_) => {}
        }
    }
    let request = ExecRequest {
        args: options.command.clone(),
        tty: options.tty,
        stdin: options.stdin,
        ..Default::default()
    };
    let (runtime, id) = (target.runtime.clone(), target.container_id.clone());
    let mut process = match tokio::task::spawn_blocking(move || runtime.exec(&id, &request)).await {
        Ok(Ok(process)) => process,
        Ok(Err(error)) => return Some(exec_failure(&options.command, &error)),
        Err(error) => return Some(internal_error(&format!("exec task failed: {error}"))),
    };
    let io = match ProcessIo::take(&mut process, &options) {
        Ok(io) => io,
        Err(error) => return Some(internal_error(&format!("setting up the exec streams: {error}"))),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let mut waiter = {
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || wait_or_kill(process, &cancel))
    };
    let mut pumps = tokio::spawn(pump(
        io.stdout.map(|r| (r, options.stdout.then_some(STDOUT))),
        io.stderr.map(|r| (r, options.stderr.then_some(STDERR))),
        out.clone(),
    ));
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let stdin_task = io.stdin.map(|w| tokio::spawn(write_stdin(w, stdin_rx)));
    let mut stdin_tx = Some(stdin_tx);
    let pty = io.pty;
    let mut pending = first;
    let exit = loop {
        let message = match pending.take() {
            Some(message) => Some(Ok(message)),
            None => tokio::select! {
                exit = &mut waiter => break exit,
                message = incoming.next() => message,
            },
        };
        match message {
            Some(Ok(Message::Binary(data))) => match data.split_first() {
                Some((&STDIN, input)) => {
                    if let Some(tx) = &stdin_tx
                        && !input.is_empty()
                        && tx.send(Bytes::copy_from_slice(input)).await.is_err()
                    {
                        stdin_tx = None;
                    }
                }
                Some((&RESIZE, size)) => resize(pty.as_ref(), size),
                Some((&CLOSE, [STDIN])) if v5 => stdin_tx = None,
                _ => {}
            },
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                cancel.store(true, Ordering::Release);
                pumps.abort();
                if let Some(task) = &stdin_task {
                    task.abort();
                }
                let _ = waiter.await;
                return None;
            }
            Some(Ok(_)) => {}
        }
    };
    drop(stdin_tx);
    if let Some(task) = &stdin_task {
        task.abort();
    }
    if tokio::time::timeout(DRAIN, &mut pumps).await.is_err() {
        pumps.abort();
    }
    Some(match exit {
        Ok(Ok(exit)) => exit_status(&options.command, exit),
        Ok(Err(error)) => internal_error(&format!("waiting for the command: {error}")),
        Err(error) => internal_error(&format!("exec task failed: {error}")),
    })
}

/// Waits for the process; kills it once `cancel` is set.
fn wait_or_kill(mut process: ExecProcess, cancel: &AtomicBool) -> Result<ExecExit, RuntimeError> {
    loop {
        if cancel.load(Ordering::Acquire) {
            process.kill()?;
            return process.wait();
        }
        if let Some(exit) = process.wait_timeout(Duration::from_millis(100))? {
            return Ok(exit);
        }
    }
}

/// An output pipe and the channel it goes to (`None`: the client did not ask for it, the
/// output is read and dropped so the process never blocks on a full pipe).
type Output = (pipe::Receiver, Option<u8>);

/// Copies the process's stdout and stderr to the client until both end. One task reads
/// both, stderr first whenever both have data, so output keeps the order in which the
/// process wrote it across the two streams as far as the pipes let us see it (`tar` warns
/// on stderr before it writes the archive, and upstream `kubectl cp` stops reading once the
/// archive is complete: a warning forwarded after it would be lost).
async fn pump(mut stdout: Option<Output>, mut stderr: Option<Output>, out: mpsc::Sender<Message>) {
    let mut out_buf = vec![0u8; 32 * 1024];
    let mut err_buf = vec![0u8; 32 * 1024];
    while stdout.is_some() || stderr.is_some() {
        let (read, which) = tokio::select! {
            biased;
            read = read_output(&mut stderr, &mut err_buf), if stderr.is_some() => (read, 1),
            read = read_output(&mut stdout, &mut out_buf), if stdout.is_some() => (read, 0),
        };
        let (output, buf) = if which == 1 {
            (&mut stderr, &mut err_buf)
        } else {
            (&mut stdout, &mut out_buf)
        };
        // A terminal's master reports EIO once the last slave is closed: that is its EOF.
        let n = match read {
            Ok(0) | Err(_) => {
                *output = None;
                continue;
            }
            Ok(n) => n,
        };
        if let Some((_, Some(channel))) = output {
            buf[0] = *channel;
            if out
                .send(Message::Binary(Bytes::copy_from_slice(&buf[..=n])))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Reads from an output into `buf[1..]` (`buf[0]` is left for the channel byte).
async fn read_output(output: &mut Option<Output>, buf: &mut [u8]) -> std::io::Result<usize> {
    match output {
        Some((reader, _)) => reader.read(&mut buf[1..]).await,
        None => std::future::pending().await,
    }
}

/// Writes the client's input to the process; closing `input` closes its stdin.
async fn write_stdin(mut writer: pipe::Sender, mut input: mpsc::Receiver<Bytes>) {
    while let Some(data) = input.recv().await {
        if writer.write_all(&data).await.is_err() {
            return;
        }
    }
}

/// A resize message's `{"Width":W,"Height":H}`.
#[derive(serde::Deserialize)]
pub(crate) struct TerminalSize {
    #[serde(rename = "Width")]
    pub(crate) width: u16,
    #[serde(rename = "Height")]
    pub(crate) height: u16,
}

fn resize(pty: Option<&std::fs::File>, size: &[u8]) {
    let (Some(pty), Ok(size)) = (pty, serde_json::from_slice::<TerminalSize>(size)) else {
        return;
    };
    if let Err(error) = runtime::resize_pty(pty, size.height, size.width) {
        tracing::debug!(%error, "resizing an exec terminal");
    }
}

/// The status for a finished process: Success, or upstream's NonZeroExitCode failure whose
/// `ExitCode` cause kubectl exits with.
fn exit_status(command: &[String], exit: ExecExit) -> Value {
    if exit.exit_code == 0 {
        return success();
    }
    let code = exit.exit_code;
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: command '{}' exited with {code}: ",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The status of a session that ended well.
pub(crate) fn success() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

fn exec_failure(command: &[String], error: &RuntimeError) -> Value {
    match error {
        RuntimeError::Exec(message) => internal_error(&format!(
            "error executing command in container: failed to exec in container: failed to start exec {:?}: {message}",
            command.join(" ")
        )),
        other => internal_error(&format!("error executing command in container: {other}")),
    }
}

/// Upstream's `apierrors.NewInternalError`.
pub(crate) fn internal_error(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_kubectl_and_the_apiserver() {
        let options =
            ExecOptions::parse("command=sh&command=-c&command=echo+hi%26there&container=c&stderr=true&stdout=true")
                .unwrap();
        assert_eq!(options.command, ["sh", "-c", "echo hi&there"]);
        assert!(options.stdout && options.stderr && !options.stdin && !options.tty);
        let options = ExecOptions::parse("command=sh&stdin=1&stdout=1&tty=1&stderr=1").unwrap();
        assert!(options.stdin && options.tty && !options.stderr);
        assert_eq!(
            ExecOptions::parse("stdout=true").unwrap_err(),
            "you must specify at least one command for the container"
        );
        assert!(ExecOptions::parse("command=ls").is_err());
        assert!(ExecOptions::parse("command=%zz&stdout=1").is_err());
    }

    #[test]
    fn statuses_are_upstreams() {
        let command = ["sh".to_string(), "-c".to_string(), "exit 7".to_string()];
        let success = exit_status(
            &command,
            ExecExit {
                exit_code: 0,
                signal: None,
            },
        );
        assert_eq!(success.to_string(), r#"{"metadata":{},"status":"Success"}"#);
        let failure = exit_status(
            &command,
            ExecExit {
                exit_code: 7,
                signal: None,
            },
        );
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(
            failure["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "7"})
        );
        assert_eq!(
            StreamError::ContainerNotFound("x".into()).to_string(),
            r#"container not found ("x")"#
        );
    }
}
