//! `kubectl attach`: the stdio of a container's main process over the WebSocket
//! `v5.channel.k8s.io` protocol (the session `exec` runs, `remote.rs`), with stdin (`-i`) and
//! the container's terminal (`-t`: raw mode, sizes and resizes) as upstream's `attach`.

use serde_json::Value;
use tokio::io::AsyncWrite;

use crate::cmd::remote::{self, Streams, TerminalSize};
use crate::cmd::{Context, exec, logs, terminal};
use crate::error::Error;
use crate::request;

/// Attach to a running container.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AttachArgs {
    /// POD, TYPE/NAME, or TYPE NAME.
    pub args: Vec<String>,
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
    /// Override the key sequence for detaching a container.
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running.
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
}

/// The `pods/attach` URL with only the streams in use (upstream's `url.Values` order).
pub fn attach_url(namespace: &str, pod: &str, container: &str, streams: &Streams, tty: bool) -> String {
    let flag = |on: bool| if on { "true" } else { "" };
    request::with_query(
        &format!("/api/v1/namespaces/{namespace}/pods/{pod}/attach"),
        &[
            ("container", container),
            ("stderr", flag(streams.stderr.is_some())),
            ("stdin", flag(streams.stdin.is_some())),
            ("stdout", flag(streams.stdout.is_some())),
            ("tty", flag(tty)),
        ],
    )
}

/// Runs `kubectl attach`.
pub async fn run(ctx: &mut Context, args: &AttachArgs) -> Result<(), Error> {
    let timeout = component_base::parse_duration(&args.pod_running_timeout).map_err(|_| {
        Error::Usage(format!(
            "invalid argument {:?} for \"--pod-running-timeout\" flag: time: invalid duration {:?}\nSee 'kubectl attach --help' for usage.",
            args.pod_running_timeout, args.pod_running_timeout
        ))
    })?;
    let target = match args.args.as_slice() {
        [] => return Err(Error::Message("at least 1 argument is required for attach".into())),
        [target] => target.clone(),
        [kind, name] => format!("{kind}/{name}"),
        more => {
            return Err(Error::Message(format!(
                "expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw {}: [{}]",
                more.len(),
                more.join(" ")
            )));
        }
    };
    if timeout.is_zero() {
        return Err(Error::Message("--pod-running-timeout must be higher than zero".into()));
    }
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    let pod = logs::resolve_pod(ctx, &target, &namespace).await?;
    let session = Session {
        container: args.container.clone(),
        stdin: args.stdin,
        tty: args.tty,
        quiet: args.quiet,
    };
    attach_pod(ctx, &client, &pod, &namespace, &session).await
}

/// What an attach session asks for: the container (None: the default one), stdin, a
/// terminal, and whether upstream's notices are left out.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub container: Option<String>,
    pub stdin: bool,
    pub tty: bool,
    pub quiet: bool,
}

/// Attaches to a container of `pod` (as fetched) until the session ends (upstream's
/// `AttachOptions.Run` with the pod known, as `kubectl run` calls it too).
pub async fn attach_pod(
    ctx: &mut Context,
    client: &kube::Client,
    pod: &Value,
    namespace: &str,
    args: &Session,
) -> Result<(), Error> {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::Message(format!(
            "cannot attach a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = remote::find_or_default_container(pod, args.container.as_deref(), args.quiet, &mut |s| ctx.err(s))
        .map_err(|e| Error::Message(format!("cannot attach to the container: {e}")))?;
    let spec = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|key| pod["spec"][*key].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == container.as_str())
        .unwrap_or_default();
    let container_tty = spec["tty"].as_bool().unwrap_or(false);
    if args.tty && !container_tty && !args.quiet {
        ctx.err(&format!(
            "error: Unable to use a TTY - container {container} did not allocate one\n"
        ));
    }
    // A container with a terminal is attached with one (upstream forces it), but raw mode
    // needs stdin on a terminal.
    let mut raw = false;
    if args.stdin && container_tty {
        if terminal::stdin_is_terminal() {
            raw = true;
        } else if !args.quiet {
            ctx.err("Unable to use a TTY - input is not a terminal or the right kind of file\n");
        }
    }
    let resize = raw.then(|| {
        let bigger = terminal::size().map(|size| TerminalSize {
            width: size.width + 1,
            height: size.height + 1,
        });
        terminal::monitor_size_after(bigger)
    });
    let streams = Streams {
        stdin: args.stdin.then(exec::process_stdin),
        stdout: Some(Box::new(tokio::io::stdout())),
        stderr: (!raw).then(|| Box::new(tokio::io::stderr()) as Box<dyn AsyncWrite + Unpin + Send>),
        resize,
    };
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let pod_namespace = pod["metadata"]["namespace"].as_str().unwrap_or(namespace).to_string();
    if !args.quiet {
        ctx.err(
            "All commands and output from this session will be recorded in container logs, including credentials and sensitive information passed through the command prompt.\n",
        );
        ctx.err("If you don't see a command prompt, try pressing enter.\n");
    }
    let url = attach_url(&pod_namespace, &pod_name, &container, &streams, raw);
    {
        // Raw mode only for the session itself; the guard restores the terminal on every path.
        let _raw = if raw {
            Some(terminal::RawMode::enter().map_err(|e| Error::Message(e.to_string()))?)
        } else {
            None
        };
        let socket = remote::upgrade(client, &url, remote::CHANNEL_V5).await?;
        remote::run_session(socket, streams).await?;
    }
    if !args.quiet && args.stdin && raw {
        ctx.out(&format!(
            "Session ended, resume using 'kubectl attach {pod_name} -c {container} -n {pod_namespace} -i -t' command\n"
        ));
    }
    Ok(())
}
