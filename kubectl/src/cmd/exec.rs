//! `kubectl exec`: a command in a pod's container over the WebSocket `v5.channel.k8s.io`
//! protocol, with stdin (`-i`), a terminal (`-t`: raw mode, sizes and resizes) and the remote
//! command's exit code as kubectl's own.

use serde_json::Value;
use tokio::io::AsyncRead;

use crate::cmd::remote::{self, Streams};
use crate::cmd::{Context, logs, terminal};
use crate::error::Error;
use crate::request;

/// Execute a command in a container.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExecArgs {
    /// POD or TYPE/NAME (before `--`).
    pub args: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation
    /// for selecting the container to be attached or the first container in the pod will be chosen.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Only print output from the remote session.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The length of time (like 5s, 2m, or 3h) to wait until at least one pod is running.
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
}

/// One remote command: where it runs and which streams it has.
pub struct ExecRequest<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    pub command: &'a [String],
    pub tty: bool,
}

/// The `pods/exec` URL: `command` repeated, then `container`, and only the streams in use
/// (upstream's `url.Values` order: sorted by key).
pub fn exec_url(req: &ExecRequest<'_>, streams: &Streams) -> String {
    let mut params: Vec<(&str, &str)> = req.command.iter().map(|c| ("command", c.as_str())).collect();
    params.push(("container", req.container));
    let flag = |on: bool| if on { "true" } else { "" };
    params.push(("stderr", flag(streams.stderr.is_some())));
    params.push(("stdin", flag(streams.stdin.is_some())));
    params.push(("stdout", flag(streams.stdout.is_some())));
    params.push(("tty", flag(req.tty)));
    request::with_query(
        &format!("/api/v1/namespaces/{}/pods/{}/exec", req.namespace, req.pod),
        &params,
    )
}

/// Runs a command in a container to its end.
pub async fn exec(client: &kube::Client, req: &ExecRequest<'_>, streams: Streams) -> Result<(), Error> {
    let url = exec_url(req, &streams);
    let socket = remote::upgrade(client, &url, remote::CHANNEL_V5).await?;
    remote::run_session(socket, streams).await
}

/// The process's stdin as an async reader fed by its own thread, so a read still pending when
/// the command ends never holds up the exit (tokio's stdin would, on runtime shutdown).
pub fn process_stdin() -> Box<dyn AsyncRead + Unpin + Send> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if sender
                        .blocking_send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Box::new(tokio_util::io::StreamReader::new(Box::pin(stream)))
}

/// A pod by name for `cp` (upstream's `PodName` path: a plain GET), refusing completed pods.
pub async fn get_pod(client: &kube::Client, namespace: &str, name: &str) -> Result<Value, Error> {
    let pod = request::get(
        client,
        &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
        "application/json",
    )
    .await?;
    refuse_completed(&pod)?;
    Ok(pod)
}

fn refuse_completed(pod: &Value) -> Result<(), Error> {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::Message(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    Ok(())
}

/// Runs `kubectl exec`.
pub async fn run(ctx: &mut Context, args: &ExecArgs) -> Result<(), Error> {
    // Without `--`, upstream 1.37 refuses `exec POD COMMAND`; with it, words between the
    // pod and `--` are ignored.
    if args.command.is_empty() && args.args.len() > 1 {
        return Err(Error::Usage(
            "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'kubectl exec -h' for help and examples".into(),
        ));
    }
    let (target, command) = (args.args.first(), args.command.clone());
    component_base::parse_duration(&args.pod_running_timeout).map_err(|_| {
        Error::Usage(format!(
            "invalid argument {:?} for \"--pod-running-timeout\" flag: time: invalid duration {:?}\nSee 'kubectl exec --help' for usage.",
            args.pod_running_timeout, args.pod_running_timeout
        ))
    })?;
    let Some(target) = target else {
        return Err(Error::Message("pod, type/name or --filename must be specified".into()));
    };
    if command.is_empty() {
        return Err(Error::Message(
            "you must specify at least one command for the container".into(),
        ));
    }
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    let pod = logs::resolve_pod(ctx, target, &namespace).await?;
    refuse_completed(&pod)?;
    let container =
        remote::find_or_default_container(&pod, args.container.as_deref(), args.quiet, &mut |s| ctx.err(s))?;

    let mut tty = false;
    if args.stdin && args.tty {
        if terminal::stdin_is_terminal() {
            tty = true;
        } else if !args.quiet {
            ctx.err("Unable to use a TTY - input is not a terminal or the right kind of file\n");
        }
    }
    let streams = Streams {
        stdin: args.stdin.then(process_stdin),
        stdout: Some(Box::new(tokio::io::stdout())),
        stderr: (!tty).then(|| Box::new(tokio::io::stderr()) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>),
        resize: tty.then(terminal::monitor_size),
    };
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or(target);
    let pod_namespace = pod["metadata"]["namespace"].as_str().unwrap_or(&namespace);
    let req = ExecRequest {
        namespace: pod_namespace,
        pod: pod_name,
        container: &container,
        command: &command,
        tty,
    };
    // Raw mode only for the session itself; the guard restores the terminal on every path.
    let _raw = if tty {
        Some(terminal::RawMode::enter().map_err(|e| Error::Message(e.to_string()))?)
    } else {
        None
    };
    exec(&client, &req, streams).await
}
