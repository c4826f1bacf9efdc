//! Golden tests of `kubectl wait`: ours and upstream 1.37 against one apiserver; the waits
//! that need something to happen run both clients at once while the test changes the objects
//! (status conditions through the status subresource, creations, deletions).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use common::{Clients, Output, normalise};
use serde_json::json;

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: a, labels: {app: x}}
data: {size: "3"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, labels: {app: x}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx}]
"#;

/// Starts `kubectl -n NS ARGS` with both clients at once.
fn spawn_both(clients: &Clients, args: &[&str]) -> Result<(Child, Child)> {
    let spawn = |binary: &std::path::PathBuf| {
        Command::new(binary)
            .arg("--kubeconfig")
            .arg(&clients.kubeconfig)
            .args(["-n", &clients.namespace])
            .args(args)
            .env("KUBECTL_KUBERC", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    Ok((spawn(&clients.upstream)?, spawn(&clients.ours)?))
}

/// Waits for both and asserts the same output; returns ours.
fn same_outputs(children: (Child, Child)) -> Result<Output> {
    let collect = |child: Child| -> Result<Output> {
        let output = child.wait_with_output()?;
        Ok(normalise(Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }))
    };
    let upstream = collect(children.0)?;
    let ours = collect(children.1)?;
    assert_eq!(ours, upstream);
    Ok(ours)
}

#[test]
fn wait_results_and_errors_match_upstream() -> Result<()> {
    let clients = Clients::new("golden-wait")?;
    clients.apply_with(&clients.upstream, OBJECTS)?.ok()?;
    let met = clients.same(&["wait", "cm/a", "--for=jsonpath={.data.size}=3"])?;
    assert_eq!(met.stdout, "configmap/a condition met\n");
    clients.same(&["wait", "cm/a", "--for=jsonpath={.metadata.name}"])?;
    clients.same(&["wait", "configmap", "a", "b", "--for=jsonpath=.kind=ConfigMap"])?;
    clients.same(&["wait", "cm", "--all", "--for=jsonpath={.kind}"])?;
    clients.same(&["wait", "cm", "-l", "app=x", "--for", "create", "--for=jsonpath={.kind}"])?;
    clients.same(&["wait", "cm", "--field-selector", "metadata.name=b", "--for=create"])?;
    clients.same(&["wait", "cm", "-l", "app=none", "--for=jsonpath={.kind}"])?;
    clients.same(&["wait", "cm", "-l", "app=none", "--for=delete"])?;
    clients.same(&["wait", "cm", "--for=jsonpath={.kind}"])?;
    clients.same(&["wait", "cm/a", "cm/b", "--for=jsonpath={.data.size}=3", "--timeout=1s"])?;
    let timeout = clients.same(&["wait", "deploy/web", "--for=condition=Available", "--timeout=1s"])?;
    assert_eq!(
        timeout.stderr,
        "error: timed out waiting for the condition on deployments/web\n"
    );
    clients.same(&["wait", "deploy/web", "--for=condition=Available", "--timeout=0"])?;
    clients.same(&["wait", "cm/a", "--for=delete", "--timeout=0"])?;
    clients.same(&["wait", "cm/a", "--for=delete", "--timeout=1s"])?;
    clients.same(&["wait", "cm/gone", "--for=delete"])?;
    clients.same(&["wait", "cm/gone", "--for=condition=Ready"])?;
    clients.same(&["wait", "cm/gone", "cm/a", "--for=jsonpath={.kind}"])?;
    clients.same(&["wait", "cm/gone", "--for=create", "--timeout=1s"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.metadata}=x"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.metadata.name}="])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.metadata.name"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.kind}", "-o", "name"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.kind}", "-o", "json"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.kind}", "--timeout=-1s"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.kind}", "--timeout=soon"])?;
    clients.same(&["wait", "cm/a", "--for=jsonpath={.kind}", "--for=delete", "--timeout=1s"])?;
    clients.same(&["wait", "cm/a", "--for=sometime"])?;
    clients.same(&["wait", "cm/a"])?;
    clients.same(&["wait", "--for=delete"])?;
    Ok(())
}

#[test]
fn wait_follows_conditions_creations_and_deletions_like_upstream() -> Result<()> {
    let clients = Clients::new("golden-waiting")?;
    clients.apply_with(&clients.upstream, OBJECTS)?.ok()?;
    let ns = clients.namespace.clone();

    let waiting = spawn_both(
        &clients,
        &[
            "wait",
            "deploy/web",
            "--for=condition=available",
            "--for=jsonpath={.status.readyReplicas}=2",
            "--timeout=30s",
        ],
    )?;
    std::thread::sleep(Duration::from_secs(2));
    let statuses = [
        json!({"status": {"observedGeneration": 1, "readyReplicas": 1,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"}]}}),
        json!({"status": {"readyReplicas": 2}}),
    ];
    for status in statuses {
        let patch = status.to_string();
        let args = [
            "-n",
            &ns,
            "patch",
            "deploy/web",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ];
        clients.upstream(&args)?.ok()?;
        std::thread::sleep(Duration::from_millis(500));
    }
    let met = same_outputs(waiting)?;
    assert_eq!(
        met.stdout,
        "deployment.apps/web condition met\ndeployment.apps/web condition met\n"
    );

    let waiting = spawn_both(&clients, &["wait", "cm/later", "--for=create", "--timeout=30s"])?;
    std::thread::sleep(Duration::from_secs(2));
    clients.upstream(&["-n", &ns, "create", "configmap", "later"])?.ok()?;
    let created = same_outputs(waiting)?;
    assert_eq!(created.stdout, "configmap/later condition met\n");

    let waiting = spawn_both(&clients, &["wait", "cm/later", "cm/b", "--for=delete", "--timeout=30s"])?;
    // Both clients must have fetched the objects before they go (upstream starts slowly on a
    // loaded machine and then reports only what it saw being deleted), and upstream waits for
    // one object after the other: `b` goes only once both are watching it.
    std::thread::sleep(Duration::from_secs(6));
    clients.upstream(&["-n", &ns, "delete", "configmap", "later"])?.ok()?;
    std::thread::sleep(Duration::from_secs(3));
    clients.upstream(&["-n", &ns, "delete", "configmap", "b"])?.ok()?;
    let deleted = same_outputs(waiting)?;
    assert_eq!(
        deleted.stdout,
        "configmap/later condition met\nconfigmap/b condition met\n"
    );
    Ok(())
}
