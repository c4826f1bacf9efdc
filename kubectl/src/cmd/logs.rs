//! `kubectl logs`: a pod's (or a workload's first pod's) container log, once or followed,
//! with `--tail`, `--since`, `--previous`, `--timestamps`; `-l` streams every matching pod's
//! log with `[pod/name/container]` prefixes.

use futures::{AsyncBufReadExt, StreamExt};
use serde_json::Value;

use crate::cmd::Context;
use crate::error::Error;
use crate::request;

/// Print the logs for a container in a pod.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogsArgs {
    /// POD | TYPE/NAME, optionally followed by the container name.
    pub args: Vec<String>,
    /// Print the logs of this container.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Get all containers' logs in the pod(s).
    #[arg(long)]
    pub all_containers: bool,
    /// Specify if the logs should be streamed.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Print the logs for the previous instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Lines of recent log file to display (-1: all; 10 with a selector).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    pub since: Option<String>,
    /// Only return logs after a specific date (RFC3339).
    #[arg(long)]
    pub since_time: Option<String>,
    /// Include timestamps on each line.
    #[arg(long)]
    pub timestamps: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Prefix each log line with the log source (pod name and container name).
    #[arg(long)]
    pub prefix: bool,
    /// Maximum number of concurrent logs to follow when using a selector.
    #[arg(long, default_value_t = 5)]
    pub max_log_requests: usize,
}

/// One log stream to print.
struct Source {
    namespace: String,
    pod: String,
    container: String,
}

/// Runs `kubectl logs`.
pub async fn run(ctx: &mut Context, args: &LogsArgs) -> Result<(), Error> {
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    let mut container = args.container.clone();
    let pods: Vec<Value> = if let Some(selector) = &args.selector {
        if !args.args.is_empty() {
            return Err(Error::Usage("only a selector (-l) or a POD name is allowed".into()));
        }
        let url = request::with_query(
            &format!("/api/v1/namespaces/{namespace}/pods"),
            &[("labelSelector", selector)],
        );
        let list = request::get(&client, &url, "application/json").await?;
        let pods = list["items"].as_array().cloned().unwrap_or_default();
        if pods.is_empty() {
            ctx.err(&format!("No resources found in {namespace} namespace.\n"));
            return Ok(());
        }
        pods
    } else {
        let (target, rest) = match args.args.as_slice() {
            [] => {
                return Err(Error::Usage(
                    "expected POD or TYPE/NAME is a required argument for the logs command".into(),
                ));
            }
            [target] => (target, None),
            [target, c] => (target, Some(c.clone())),
            _ => {
                return Err(Error::Usage(
                    "expected POD or TYPE/NAME, and optionally a container name".into(),
                ));
            }
        };
        if rest.is_some() {
            container = rest;
        }
        vec![resolve_pod(ctx, target, &namespace).await?]
    };

    let mut sources = Vec::new();
    for pod in &pods {
        let names: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let chosen: Vec<String> = if args.all_containers {
            names.clone()
        } else if let Some(c) = &container {
            vec![c.clone()]
        } else {
            let default = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
                .as_str()
                .map(str::to_string)
                .or_else(|| names.first().cloned())
                .unwrap_or_default();
            if names.len() > 1 && args.selector.is_none() {
                ctx.err(&format!(
                    "Defaulted container \"{default}\" out of: {}\n",
                    names.join(", ")
                ));
            }
            vec![default]
        };
        for container in chosen {
            sources.push(Source {
                namespace: pod["metadata"]["namespace"].as_str().unwrap_or(&namespace).to_string(),
                pod: pod_name.clone(),
                container,
            });
        }
    }

    let tail = if args.tail < 0 && args.selector.is_some() {
        10
    } else {
        args.tail
    };
    let since_seconds = match &args.since {
        Some(since) => component_base::parse_duration(since)
            .map_err(|e| Error::Usage(format!("invalid argument \"{since}\" for \"--since\" flag: {e}")))?
            .as_secs()
            .max(1)
            .to_string(),
        None => String::new(),
    };
    let prefix = args.prefix || sources.len() > 1;
    if args.follow && sources.len() > args.max_log_requests {
        return Err(Error::Message(format!(
            "you are attempting to follow {} log streams, but maximum allowed concurrency is {}, use --max-log-requests to increase the limit",
            sources.len(),
            args.max_log_requests
        )));
    }
    let urls: Vec<(String, String)> = sources
        .iter()
        .map(|s| {
            let tail = if tail >= 0 { tail.to_string() } else { String::new() };
            let url = request::with_query(
                &format!("/api/v1/namespaces/{}/pods/{}/log", s.namespace, s.pod),
                &[
                    ("container", &s.container),
                    ("follow", if args.follow { "true" } else { "" }),
                    ("previous", if args.previous { "true" } else { "" }),
                    ("tailLines", &tail),
                    ("sinceSeconds", &since_seconds),
                    ("sinceTime", args.since_time.as_deref().unwrap_or_default()),
                    ("timestamps", if args.timestamps { "true" } else { "" }),
                ],
            );
            let label = if prefix {
                format!("[pod/{}/{}] ", s.pod, s.container)
            } else {
                String::new()
            };
            (url, label)
        })
        .collect();

    if args.follow && urls.len() > 1 {
        // Every stream at once, lines interleaved as they arrive.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Result<String, Error>>();
        for (url, label) in urls {
            let client = client.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                if let Err(error) = stream_lines(&client, &url, &label, |line| {
                    let _ = sender.send(Ok(line));
                })
                .await
                {
                    let _ = sender.send(Err(error));
                }
            });
        }
        drop(sender);
        while let Some(line) = receiver.recv().await {
            ctx.out(&line?);
        }
        return Ok(());
    }
    for (url, label) in urls {
        let mut lines = Vec::new();
        if args.follow {
            // One stream: print as it comes.
            let mut out = std::io::stdout();
            stream_lines(&client, &url, &label, |line| {
                use std::io::Write;
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
            })
            .await?;
        } else {
            stream_lines(&client, &url, &label, |line| lines.push(line)).await?;
            ctx.out(&lines.concat());
        }
    }
    Ok(())
}

async fn stream_lines(
    client: &kube::Client,
    url: &str,
    label: &str,
    mut each: impl FnMut(String),
) -> Result<(), Error> {
    let request = http::Request::get(url)
        .body(Vec::new())
        .map_err(|e| Error::Message(e.to_string()))?;
    let stream = client.request_stream(request).await?;
    let mut lines = stream.lines();
    while let Some(line) = lines.next().await {
        each(format!("{label}{}\n", line?));
    }
    Ok(())
}

/// The pod a `logs` argument names: a pod, `pod/x`, or a workload (`deploy/web`,
/// `job/x`, ...) whose first pod by its selector is used.
pub(crate) async fn resolve_pod(ctx: &mut Context, target: &str, namespace: &str) -> Result<Value, Error> {
    let client = ctx.client().await?;
    let (word, name) = match target.split_once('/') {
        Some((word, name)) => (word, name),
        None => ("pods", target),
    };
    let discovery = ctx.discovery().await?;
    let resource = discovery.resolve(word)?;
    let object = request::get(&client, &resource.object_url(Some(namespace), name), "application/json").await?;
    if resource.kind == "Pod" {
        return Ok(object);
    }
    let selector = &object["spec"]["selector"];
    let labels = selector.get("matchLabels").unwrap_or(selector);
    let selector: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if selector.is_empty() {
        return Err(Error::Message(format!(
            "cannot get the logs from {}",
            resource.kind_prefix()
        )));
    }
    let url = request::with_query(
        &format!("/api/v1/namespaces/{namespace}/pods"),
        &[("labelSelector", &selector.join(","))],
    );
    let list = request::get(&client, &url, "application/json").await?;
    let mut pods = list["items"].as_array().cloned().unwrap_or_default();
    // Upstream prefers running, ready, then older pods; the creation time orders the rest.
    pods.sort_by_key(|p| {
        (
            p["status"]["phase"] != "Running",
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    pods.into_iter()
        .next()
        .ok_or_else(|| Error::Message("timed out waiting for the condition".to_string()))
}
