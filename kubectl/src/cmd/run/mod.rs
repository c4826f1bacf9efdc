//! `kubectl run NAME --image=IMAGE [-- ARGS]`: builds upstream's Pod (`generate`), applies
//! `--overrides`, creates it (or prints it with `--dry-run`), optionally with a ClusterIP
//! Service (`--expose`); with `--attach` or `-i` waits for the pod to run, attaches to it
//! (`cmd::attach`), waits for its end when the restart policy lets it end, exits with its
//! container's code, and with `--rm` deletes what it created, as upstream's `run.go` does.

pub mod generate;

use std::time::Duration;

use http::Method;
use serde_json::Value;

use crate::cmd::apply::DryRun;
use crate::cmd::select::Printer;
use crate::cmd::{Context, attach, logs, objects};
use crate::error::Error;
use crate::request;

/// Run a particular image on the cluster.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// NAME, then the container's arguments.
    pub names: Vec<String>,
    /// The container's arguments (or command, with `--command`) after `--`.
    #[arg(last = true)]
    pub rest: Vec<String>,
    /// The image for the container to run.
    #[arg(long)]
    pub image: Option<String>,
    /// The image pull policy for the container.
    #[arg(long, default_value = "")]
    pub image_pull_policy: String,
    /// Annotations to apply to the pod.
    #[arg(long)]
    pub annotations: Vec<String>,
    /// Environment variables to set in the container.
    #[arg(long)]
    pub env: Vec<String>,
    /// The port that this container exposes.
    #[arg(long, default_value = "")]
    pub port: String,
    /// Comma separated labels to apply to the pod. Will override previous values.
    #[arg(short = 'l', long, default_value = "")]
    pub labels: String,
    /// Keep stdin open on the container in the pod, even if nothing is attached.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Allocate a TTY for the container in the pod.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Wait for the Pod to start running, and then attach to it (default: with -i).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub attach: Option<bool>,
    /// Leave stdin open after the first attach completes.
    #[arg(long)]
    pub leave_stdin_open: bool,
    /// Delete the pod after it exits (only when attached).
    #[arg(long)]
    pub rm: bool,
    /// The restart policy for this Pod: Always, OnFailure or Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// Use the extra arguments as the container's command rather than its args.
    #[arg(long)]
    pub command: bool,
    /// Create a ClusterIP service associated with the pod (requires --port).
    #[arg(long)]
    pub expose: bool,
    /// Suppress prompt messages.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Run the container in privileged mode.
    #[arg(long)]
    pub privileged: bool,
    /// Save the configuration in the last-applied annotation.
    #[arg(long)]
    pub save_config: bool,
    /// Name of the manager used to track field ownership.
    #[arg(long, default_value = "kubectl-run")]
    pub field_manager: String,
    /// An inline JSON override for the generated object.
    #[arg(long, default_value = "")]
    pub overrides: String,
    /// The method used to override the generated object: json, merge, or strategic.
    #[arg(long, default_value = "merge")]
    pub override_type: String,
    /// How long to wait until the pod is running.
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
    /// `none`, `client` or `server`.
    #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "unchanged")]
    pub dry_run: String,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Flags upstream's `run` accepts and does not use (its delete flags, kept for `--rm`,
    /// and the attach ones).
    #[command(flatten)]
    pub unused: UnusedFlags,
}

/// Flags accepted as upstream accepts them, without effect.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UnusedFlags {
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "background")]
    pub cascade: Option<String>,
    #[arg(long, hide = true)]
    pub force: bool,
    #[arg(long, hide = true, allow_negative_numbers = true)]
    pub grace_period: Option<i64>,
    #[arg(short = 'k', long, hide = true)]
    pub kustomize: Option<String>,
    #[arg(short = 'R', long, hide = true)]
    pub recursive: bool,
    #[arg(long, hide = true)]
    pub timeout: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub wait: Option<bool>,
    #[arg(long, hide = true)]
    pub detach_keys: Option<String>,
}

/// `--dry-run`, bare `--dry-run` being the deprecated spelling of `client`.
pub(crate) fn dry_run_strategy(ctx: &mut Context, text: &str) -> Result<DryRun, Error> {
    if text == "unchanged" {
        ctx.err(&crate::printer::klog_warning(
            "helpers.go:714",
            "--dry-run is deprecated and can be replaced with --dry-run=client.",
        ));
        return Ok(DryRun::Client);
    }
    DryRun::parse(text)
}

/// Upstream's restart policy: the flag (Always unless given), or when set empty OnFailure
/// with `-i`, Always otherwise.
fn restart_policy(restart: &str, interactive: bool) -> Result<&'static str, Error> {
    match restart {
        "" if interactive => Ok("OnFailure"),
        "" | "Always" => Ok("Always"),
        "OnFailure" => Ok("OnFailure"),
        "Never" => Ok("Never"),
        other => Err(Error::Message(format!(
            "invalid restart policy: {other}, valid values are: Always, OnFailure, Never"
        ))),
    }
}

/// The checks upstream makes before building anything, in its order; returns the restart
/// policy and whether to attach.
fn validate(args: &RunArgs) -> Result<(&'static str, bool), Error> {
    let image = args.image.as_deref().unwrap_or_default();
    if image.is_empty() {
        return Err(Error::Message("--image is required".into()));
    }
    if !generate::valid_image(image) {
        return Err(Error::Message(format!(
            "invalid image name {image:?}: invalid reference format"
        )));
    }
    let policy = restart_policy(&args.restart, args.stdin)?;
    if !matches!(
        args.image_pull_policy.as_str(),
        "" | "Always" | "IfNotPresent" | "Never"
    ) {
        return Err(Error::Message(format!(
            "invalid image pull policy: {}, valid values are: Always, IfNotPresent, Never",
            args.image_pull_policy
        )));
    }
    Ok((policy, args.attach.unwrap_or(args.stdin)))
}

/// The checks after the generator's (which word bad annotations, labels and variables).
fn validate_late(args: &RunArgs, attach: bool, dry_run: DryRun) -> Result<(), Error> {
    if args.tty && !args.stdin {
        return Err(Error::Message(
            "-i/--stdin is required for containers with -t/--tty=true".into(),
        ));
    }
    if !args.port.is_empty() {
        generate::parse_port(&args.port).map_err(Error::Message)?;
    }
    if args.expose && args.port.is_empty() {
        return Err(Error::Message("--port must be set when exposing a service".into()));
    }
    if !attach && args.rm {
        return Err(Error::Message(
            "--rm should only be used for attached containers".into(),
        ));
    }
    if attach && dry_run != DryRun::None {
        return Err(Error::Message(
            "--dry-run=[server|client] can't be used with attached containers options (--attach, --stdin, or --tty)"
                .into(),
        ));
    }
    Ok(())
}

/// What was created, for `--rm`.
struct Created {
    kind: &'static str,
    url: String,
    name: String,
    namespace: String,
}

/// Runs `kubectl run`.
pub async fn run(ctx: &mut Context, args: &RunArgs) -> Result<(), Error> {
    if args.image.is_none() {
        return Err(Error::Message("required flag(s) \"image\" not set".into()));
    }
    let timeout = component_base::parse_duration(&args.pod_running_timeout).map_err(|_| {
        Error::Message(format!(
            "invalid argument {:?} for \"--pod-running-timeout\" flag: time: invalid duration {:?}\nSee 'kubectl run --help' for usage.",
            args.pod_running_timeout, args.pod_running_timeout
        ))
    })?;
    if timeout.is_zero() {
        return Err(Error::Message("--pod-running-timeout must be higher than zero".into()));
    }
    let dry_run = dry_run_strategy(ctx, &args.dry_run)?;
    let mut printer = Printer::new(args.output.as_deref(), dry_run)?;
    printer.typed_json = true;
    // Upstream takes the first argument as NAME even after `--`.
    let mut words: Vec<String> = args.names.clone();
    words.extend(args.rest.iter().cloned());
    let Some(name) = words.first().cloned() else {
        return Err(Error::Message("NAME is required for run".into()));
    };
    let (policy, attaching) = validate(args)?;
    let container_args: Vec<String> = words[1..].to_vec();
    let params = generate::PodParams {
        name: name.clone(),
        image: args.image.clone().unwrap_or_default(),
        labels: args.labels.clone(),
        annotations: args.annotations.clone(),
        env: args.env.clone(),
        port: args.port.clone(),
        stdin: args.stdin,
        leave_stdin_open: args.leave_stdin_open,
        tty: args.tty,
        restart: args.restart.clone(),
        command: args.command,
        args: container_args,
        image_pull_policy: args.image_pull_policy.clone(),
        privileged: args.privileged,
    };
    generate::check(&params).map_err(Error::Message)?;
    validate_late(args, attaching, dry_run)?;
    let pod = generate::pod(&params).map_err(Error::Message)?;
    let pod = apply_overrides(pod, &args.overrides, &args.override_type)?;

    let conn = ctx.connection().await?;
    let (namespace, explicit) = (conn.namespace.clone(), conn.namespace_explicit);
    let mut created = Vec::new();
    let pod = create(ctx, args, dry_run, pod, &namespace, explicit).await?;
    created.push(Created {
        kind: "pod",
        url: format!("/api/v1/namespaces/{namespace}/pods/{name}"),
        name: name.clone(),
        namespace: namespace.clone(),
    });
    if !attaching {
        print(ctx, &mut printer, "Pod", &pod).await?;
    }
    if args.expose {
        created.push(expose(ctx, args, &name, (dry_run, &mut printer), &namespace, explicit).await?);
    }
    if !attaching {
        return Ok(());
    }
    let result = attach_and_wait(ctx, args, &pod, &namespace, policy, timeout).await;
    if args.rm {
        // Upstream defers the removal and drops its error.
        let _ = remove(ctx, &created, args.quiet).await;
    }
    result
}

/// Creates the object on the server (unless `--dry-run=client`, which only places it in an
/// explicit namespace), as upstream's `createGeneratedObject`.
async fn create(
    ctx: &mut Context,
    args: &RunArgs,
    dry_run: DryRun,
    mut object: Value,
    namespace: &str,
    explicit: bool,
) -> Result<Value, Error> {
    if dry_run == DryRun::Client {
        if explicit && let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.insert("namespace".into(), namespace.into());
        }
        return Ok(object);
    }
    if args.save_config {
        object = with_last_applied(object);
    }
    let plural = if object["kind"] == "Service" {
        "services"
    } else {
        "pods"
    };
    let url = request::with_query(
        &format!("/api/v1/namespaces/{namespace}/{plural}"),
        &[
            ("dryRun", if dry_run == DryRun::Server { "All" } else { "" }),
            ("fieldManager", &args.field_manager),
        ],
    );
    let client = ctx.client().await?;
    let body = serde_json::to_vec(&object)?;
    let created = request::send(
        &client,
        Method::POST,
        &url,
        "application/json",
        Some("application/json"),
        body,
    )
    .await?;
    Ok(typed(created))
}

/// The object as upstream holds it after decoding it into its Go type.
pub(crate) fn typed(object: Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let mut object = crate::cmd::set::typed_view(object, &kind);
    if kind == "Service"
        && let Some(map) = object.as_object_mut()
    {
        let status = map.entry("status").or_insert_with(|| serde_json::json!({}));
        if let Some(status) = status.as_object_mut() {
            status.entry("loadBalancer").or_insert_with(|| serde_json::json!({}));
        }
    }
    object
}

/// Upstream's `CreateApplyAnnotation` of a typed object: the object without the annotation
/// (an emptied annotation map is left out), compact, in Go's field order.
pub(crate) fn with_last_applied(mut object: Value) -> Value {
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
    let Some(metadata) = object["metadata"].as_object_mut() else {
        return object;
    };
    if let Some(annotations) = metadata.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    let text = crate::printer::gojson::to_compact(&object);
    if let Some(metadata) = object["metadata"].as_object_mut() {
        let annotations = metadata.entry("annotations").or_insert_with(|| serde_json::json!({}));
        annotations[LAST_APPLIED] = Value::String(text);
    }
    object
}

/// Prints one created object the way upstream's printer flags do.
async fn print(ctx: &mut Context, printer: &mut Printer, kind: &str, object: &Value) -> Result<(), Error> {
    let discovery = ctx.discovery().await?;
    let resource = discovery.for_kind("v1", kind)?.clone();
    printer.print(ctx, Some(&discovery), &resource, object, "created")
}

/// `--expose`: upstream's `service/v2` generator for the pod (selector: the pod's labels
/// flag or `run=NAME`), printed after the pod, YAML documents separated by `---`.
async fn expose(
    ctx: &mut Context,
    args: &RunArgs,
    name: &str,
    dry_run_printer: (DryRun, &mut Printer),
    namespace: &str,
    explicit: bool,
) -> Result<Created, Error> {
    let name = name.to_string();
    let selector = if args.labels.is_empty() {
        format!("run={name}")
    } else {
        args.labels.clone()
    };
    let spec = crate::cmd::expose::ServiceParams {
        name: name.clone(),
        selector,
        labels: args.labels.clone(),
        port: args.port.clone(),
        ..Default::default()
    };
    let service = crate::cmd::expose::service(&spec).map_err(Error::Message)?;
    let (dry_run, printer) = dry_run_printer;
    let service = create(ctx, args, dry_run, service, namespace, explicit).await?;
    if args.output.as_deref() == Some("yaml") {
        ctx.out("---\n");
    }
    print(ctx, printer, "Service", &service).await?;
    Ok(Created {
        kind: "service",
        url: format!("/api/v1/namespaces/{namespace}/services/{name}"),
        name,
        namespace: namespace.to_string(),
    })
}

/// `--overrides`: the patch (`--override-type`: merge, json or strategic) applied to the
/// generated object.
pub(crate) fn apply_overrides(object: Value, overrides: &str, kind: &str) -> Result<Value, Error> {
    if overrides.is_empty() {
        return Ok(object);
    }
    if !matches!(kind, "json" | "merge" | "strategic") {
        return Err(Error::Message(format!("invalid override type: {kind}")));
    }
    // evanphx/json-patch's word for a merge patch that is not JSON.
    if kind == "merge" && serde_json::from_str::<Value>(overrides).is_err() {
        return Err(Error::Message("Invalid JSON Patch".into()));
    }
    Ok(typed(crate::cmd::patch::patch_locally(&object, overrides, kind)?))
}

/// Waits for the pod to run, attaches (or streams the log of a pod already finished), then,
/// where the restart policy lets the pod end, waits for its end and turns a failed
/// container's exit code into kubectl's.
async fn attach_and_wait(
    ctx: &mut Context,
    args: &RunArgs,
    pod: &Value,
    namespace: &str,
    policy: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let client = ctx.client().await?;
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let pod = wait_for_pod(&client, namespace, &name, timeout, running_and_ready).await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        stream_log(ctx, &pod).await?;
    } else {
        let session = attach::Session {
            container: None,
            stdin: args.stdin,
            tty: args.tty,
            quiet: args.quiet,
        };
        if let Err(error) = attach::attach_pod(ctx, &client, &pod, namespace, &session).await {
            let text = error.render();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            ctx.err(&format!(
                "warning: couldn't attach to pod/{name}, falling back to streaming logs: {text}\n"
            ));
            stream_log(ctx, &pod).await?;
        }
    }
    if args.leave_stdin_open || policy == "Always" {
        return Ok(());
    }
    let condition = if policy == "OnFailure" { succeeded } else { completed };
    let pod = wait_for_pod(&client, namespace, &name, timeout, condition).await?;
    exit_status(&pod)
}

/// The outcome of a finished pod: success, its container's exit code, or upstream's errors.
fn exit_status(pod: &Value) -> Result<(), Error> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    match pod["status"]["phase"].as_str().unwrap_or_default() {
        "Succeeded" => Ok(()),
        "Failed" => {
            let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
            let code = terminated["exitCode"].as_i64().unwrap_or(0);
            if terminated.is_null() || code == 0 {
                return Err(Error::Message(format!(
                    "pod {namespace}/{name} failed with unknown exit code"
                )));
            }
            let message = format!(
                "pod {namespace}/{name} terminated ({})\n{}",
                terminated["reason"].as_str().unwrap_or_default(),
                terminated["message"].as_str().unwrap_or_default()
            );
            // Go's error handler adds the final newline only where the message has none.
            let message = message.strip_suffix('\n').unwrap_or(&message).to_string();
            Err(Error::Exit {
                code: i32::try_from(code).unwrap_or(1),
                message,
            })
        }
        other => Err(Error::Message(format!("pod {namespace}/{name} left in phase {other}"))),
    }
}

/// Upstream's `podRunningAndReady`: done when running and ready; a finished pod ends the wait
/// too (its log is streamed instead).
fn running_and_ready(pod: &Value) -> bool {
    match pod["status"]["phase"].as_str().unwrap_or_default() {
        "Succeeded" | "Failed" => true,
        "Running" => pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True"),
        _ => false,
    }
}

fn completed(pod: &Value) -> bool {
    matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn succeeded(pod: &Value) -> bool {
    pod["status"]["phase"] == "Succeeded"
}

/// Lists the pod by name and watches it until `done` holds (upstream's `UntilWithSync`); a
/// deleted pod is `pods "" not found`, the timeout upstream's wait error.
async fn wait_for_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    done: fn(&Value) -> bool,
) -> Result<Value, Error> {
    let collection = request::with_query(
        &format!("/api/v1/namespaces/{namespace}/pods"),
        &[("fieldSelector", &format!("metadata.name={name}"))],
    );
    let watching = async {
        let list = request::get(client, &collection, "application/json").await?;
        if let Some(pod) = list["items"].as_array().into_iter().flatten().find(|p| done(p)) {
            return Ok(pod.clone());
        }
        let version = list["metadata"]["resourceVersion"].as_str().unwrap_or_default();
        objects::watch_until(client, &collection, version, async |kind, object| match kind {
            "DELETED" => {
                let mut status = kube::core::Status::failure("pods \"\" not found", "NotFound");
                status.code = 404;
                Err(Error::Api(Box::new(status)))
            }
            _ if done(object) => Ok(Some(object.clone())),
            _ => Ok(None),
        })
        .await
    };
    match tokio::time::timeout(timeout, watching).await {
        Ok(result) => result,
        Err(_) => Err(Error::Message("timed out waiting for the condition".into())),
    }
}

/// The pod's container log, printed whole (upstream's fallback when attaching is not
/// possible).
async fn stream_log(ctx: &mut Context, pod: &Value) -> Result<(), Error> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let container = pod["spec"]["containers"][0]["name"].as_str().map(str::to_string);
    let args = logs::LogsArgs {
        args: vec![name],
        container,
        tail: -1,
        max_log_requests: 5,
        ..Default::default()
    };
    logs::run(ctx, &args).await
}

/// `--rm`: deletes what was created, printing upstream's delete lines (not found is fine).
async fn remove(ctx: &mut Context, created: &[Created], quiet: bool) -> Result<(), Error> {
    let client = ctx.client().await?;
    // Upstream's delete options: background propagation, the default grace period.
    let options = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
    let body = serde_json::to_vec(&options)?;
    for object in created {
        let sent = request::send(
            &client,
            Method::DELETE,
            &object.url,
            "application/json",
            Some("application/json"),
            body.clone(),
        );
        match sent.await {
            Ok(_) => {
                if !quiet {
                    ctx.out(&format!(
                        "{} \"{}\" deleted from {} namespace\n",
                        object.kind, object.name, object.namespace
                    ));
                }
            }
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restart_policy_defaults_by_interactivity() {
        assert_eq!(restart_policy("", true).unwrap(), "OnFailure");
        assert_eq!(restart_policy("", false).unwrap(), "Always");
        assert_eq!(restart_policy("Never", true).unwrap(), "Never");
        assert_eq!(
            restart_policy("x", false).unwrap_err().to_string(),
            "invalid restart policy: x, valid values are: Always, OnFailure, Never"
        );
    }

    #[test]
    fn attaching_defaults_to_stdin_and_refuses_dry_runs() {
        let mut args = RunArgs {
            image: Some("busybox".into()),
            stdin: true,
            ..Default::default()
        };
        assert_eq!(validate(&args).unwrap(), ("OnFailure", true));
        args.attach = Some(false);
        assert_eq!(validate(&args).unwrap(), ("OnFailure", false));
        args.rm = true;
        assert!(validate_late(&args, false, DryRun::None).is_err());
        assert!(validate_late(&args, true, DryRun::Client).is_err());
        assert!(validate_late(&args, true, DryRun::None).is_ok());
    }

    #[test]
    fn finished_pods_give_their_exit_code() {
        let pod = |phase: &str, terminated: Value| {
            json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": phase,
                "containerStatuses": [{"state": {"terminated": terminated}}]}})
        };
        assert!(exit_status(&pod("Succeeded", Value::Null)).is_ok());
        let error = exit_status(&pod("Failed", json!({"exitCode": 3, "reason": "Error"}))).unwrap_err();
        assert_eq!(error.exit_code(), 3);
        assert_eq!(error.render(), "pod ns/p terminated (Error)");
        let error = exit_status(&pod(
            "Failed",
            json!({"exitCode": 2, "reason": "Error", "message": "oom"}),
        ))
        .unwrap_err();
        assert_eq!(error.render(), "pod ns/p terminated (Error)\noom");
        assert_eq!(
            exit_status(&pod("Failed", json!({"exitCode": 0})))
                .unwrap_err()
                .render(),
            "error: pod ns/p failed with unknown exit code"
        );
        assert_eq!(
            exit_status(&pod("Running", Value::Null)).unwrap_err().render(),
            "error: pod ns/p left in phase Running"
        );
        assert!(running_and_ready(&pod("Failed", Value::Null)));
        assert!(!running_and_ready(&json!({"status": {"phase": "Running"}})));
        assert!(running_and_ready(
            &json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
        ));
    }
}
