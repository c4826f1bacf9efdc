//! Golden-output tests: kaji's kubectl and the real upstream kubectl 1.37 run the same
//! commands against the same apiserver, and their stdout, stderr and exit codes must match
//! (ages, which the server computes at slightly different moments, normalised). Applies are
//! mixed between the two clients on the same objects.

mod common;

use std::process::Command;

use anyhow::{Result, ensure};
use common::twins::Twins;
use common::{Clients, Output};
use serde_json::Value;

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web, tier: "1"}
data:
  color: blue
  "multi": "one\ntwo\n"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: empty
---
apiVersion: v1
kind: Secret
metadata:
  name: token
  labels: {app: web}
stringData:
  key: s3cret
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo, "example.com/team": blue}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
  - name: side
    image: busybox
"#;

#[test]
fn get_prints_what_upstream_prints() -> Result<()> {
    let clients = Clients::new("golden-get")?;
    clients.apply_with(&clients.upstream, OBJECTS)?.ok()?;
    for args in [
        &["get", "pods"][..],
        &["get", "pods", "-o", "wide"],
        &["get", "deploy,svc"],
        &["get", "cm,secret", "--show-labels"],
        &["get", "pods", "-L", "app,example.com/team"],
        &["get", "configmaps", "settings"],
        &["get", "cm", "settings", "empty", "--no-headers"],
        &["get", "cm/settings", "secret/token"],
        &["get", "cm", "-l", "app=web"],
        &["get", "cm", "-l", "app=nothing"],
        &["get", "pod", "missing"],
        &["get", "cm", "settings", "missing"],
        &["get", "cm", "missing", "--ignore-not-found"],
        &["get", "frobnicators"],
        &["get", "pods", "-o", "name"],
        &["get", "cm", "settings", "-o", "json"],
        &["get", "cm", "settings", "-o", "yaml"],
        &["get", "deploy", "web", "-o", "yaml"],
        &["get", "cm", "-o", "yaml"],
        &["get", "svc", "-o", "json"],
        &["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"],
        &[
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\t\"}{.spec.containers[*].name}{\"\\n\"}{end}",
        ],
        &[
            "get",
            "cm",
            "-o",
            "custom-columns=NAME:.metadata.name,COLOR:.data.color",
        ],
        &["describe", "cm", "settings"],
        &["describe", "secret", "token"],
        &["describe", "svc", "web"],
        &["describe", "deploy", "web"],
        &["describe", "pod", "solo"],
        &["describe", "cm"],
        &["describe", "cm", "sett"],
        &["describe", "pod", "missing"],
    ] {
        clients.same(args)?;
    }
    // Across namespaces, narrowed to this test's objects so parallel tests do not interfere.
    let selector = "app in (web,solo)";
    clients.same(&["get", "cm,pods", "-A", "-l", selector])?;
    // An unknown format fails the same way (ours lists only the formats it has).
    let xml = clients.ours(&["get", "cm", "-o", "xml"])?;
    assert_eq!(xml.code, 1);
    assert!(
        xml.stderr.starts_with(
            "error: unable to match a printer suitable for the output format \"xml\", allowed formats are: "
        ),
        "{xml:?}"
    );
    Ok(())
}

/// `-A` with cluster-scoped resources: no NAMESPACE column, unless a namespaced type was printed
/// before them in the same command (upstream's printer flags keep it), or in a watch's listing.
#[test]
fn all_namespaces_with_cluster_scoped_resources() -> Result<()> {
    let clients = Clients::new("golden-all-ns")?;
    let label = format!("golden={}", clients.namespace);
    let label_arg = label.as_str();
    clients
        .upstream(&["label", "namespace", &clients.namespace, label_arg])?
        .ok()?;
    clients
        .upstream(&["-n", &clients.namespace, "create", "configmap", "labelled"])?
        .ok()?;
    clients
        .upstream(&["-n", &clients.namespace, "label", "configmap", "labelled", label_arg])?
        .ok()?;
    for args in [
        &["get", "ns", "-A", "-l", label_arg][..],
        &["get", "ns", "-A", "-l", label_arg, "-o", "wide", "--show-labels"],
        &["get", "ns", &clients.namespace, "-A"],
        &["get", "ns,cm", "-A", "-l", label_arg],
        &["get", "cm,ns", "-A", "-l", label_arg],
        &["get", "ns,cm,namespaces", "-A", "-l", label_arg],
        &["get", "ns", "-A", "-l", label_arg, "--no-headers"],
    ] {
        let out = clients.same(args)?;
        assert_eq!(out.code, 0, "{out:?}");
    }
    let plain = clients.same(&["get", "ns", "-A", "-l", label_arg])?;
    assert!(plain.stdout.starts_with("NAME "), "{}", plain.stdout);
    Ok(())
}

#[test]
fn apply_mixes_with_upstream_on_the_same_objects() -> Result<()> {
    let clients = Clients::new("golden-apply")?;
    let v1 = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.26
        env: [{name: FOO, value: bar}, {name: BAR, value: "1"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
"#;
    let v2 = v1
        .replace("replicas: 2", "replicas: 3")
        .replace("value: bar", "value: baz");
    let v3 = v2
        .replace(
            "env: [{name: FOO, value: baz}, {name: BAR, value: \"1\"}]",
            "env: [{name: NEW, value: \"1\"}, {name: FOO, value: baz}]",
        )
        .replace(", {containerPort: 443}", "")
        .replace("nginx:1.26", "nginx:1.27")
        .replace(
            "labels: {app: web}\nspec:\n  replicas",
            "labels: {app: web, tier: frontend}\nspec:\n  replicas",
        );
    let expect = |output: Output, verb: &str| -> Result<()> {
        let output = output.ok()?;
        ensure!(
            output.stdout == format!("deployment.apps/web {verb}\n"),
            "wanted {verb}: {output:?}"
        );
        Ok(())
    };
    // Ours creates; upstream sees nothing to do: the last-applied annotation is byte-identical.
    expect(clients.apply_with(&clients.ours, v1)?, "created")?;
    expect(clients.apply_with(&clients.upstream, v1)?, "unchanged")?;
    // Upstream changes it; ours agrees there is nothing left to do, then changes it again.
    expect(clients.apply_with(&clients.upstream, &v2)?, "configured")?;
    expect(clients.apply_with(&clients.ours, &v2)?, "unchanged")?;
    expect(clients.apply_with(&clients.ours, &v3)?, "configured")?;
    expect(clients.apply_with(&clients.upstream, &v3)?, "unchanged")?;

    let get = |args: &[&str]| -> Result<Value> {
        let mut full = vec!["-n", clients.namespace.as_str()];
        full.extend_from_slice(args);
        Ok(serde_json::from_str(&clients.upstream(&full)?.ok()?.stdout)?)
    };
    let deployment = get(&["get", "deploy", "web", "-o", "json"])?;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(container["image"], "nginx:1.27");
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["NEW", "FOO"]);
    assert_eq!(container["ports"].as_array().unwrap().len(), 1);
    assert_eq!(deployment["metadata"]["labels"]["tier"], "frontend");

    // Going back removes the label ours added (deletion through the last-applied diff).
    expect(clients.apply_with(&clients.ours, &v2)?, "configured")?;
    let deployment = get(&["get", "deploy", "web", "-o", "json"])?;
    assert!(deployment["metadata"]["labels"].get("tier").is_none(), "{deployment}");
    let env: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["FOO", "BAR"]);
    Ok(())
}

#[test]
fn create_scale_delete_and_errors_match_upstream() -> Result<()> {
    let twins = Twins::new("golden-write", "")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, OBJECTS)?;
    let path = file.to_str().unwrap();
    // Upstream creates in the test namespace, ours in a twin; then both work on their own copy.
    let created = twins.same(&["create", "-f", path])?;
    assert_eq!(
        created.stdout,
        "configmap/settings created\nconfigmap/empty created\nsecret/token created\nservice/web created\ndeployment.apps/web created\npod/solo created\n"
    );
    let again = twins.same(&["create", "-f", path])?;
    assert_eq!(again.code, 1);
    twins.same(&["scale", "deploy/web", "--replicas=4"])?;
    twins.same(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?;
    twins.same(&["scale", "deploy", "web", "--replicas=1", "--current-replicas=3"])?;
    twins.same(&["delete", "cm", "empty"])?;
    twins.same(&["delete", "cm", "empty"])?;
    twins.same(&["delete", "cm", "empty", "--ignore-not-found"])?;
    twins.same(&["delete", "secret", "-l", "app=web"])?;
    twins.same(&["delete", "svc"])?;
    twins.same(&["delete", "-f", path, "--wait=false"])?;
    twins.clients.same(&["apply", "-f", "/nonexistent/app.yaml"])?;
    Ok(())
}

#[test]
fn discovery_and_config_commands_match_upstream() -> Result<()> {
    let clients = Clients::new("golden-info")?;
    clients.same(&["api-resources"])?;
    clients.same(&["api-resources", "--namespaced=false", "-o", "wide"])?;
    clients.same(&["api-resources", "-o", "name", "--api-group", "apps"])?;
    clients.same(&["api-versions"])?;
    clients.same(&["config", "get-contexts"])?;
    clients.same(&["config", "current-context"])?;
    clients.same(&["config", "view"])?;
    clients.same(&["config", "view", "--minify", "-o", "json"])?;

    // Editing: both clients set the namespace of the current context in their own copy.
    let dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    for (name, binary) in [("ours", &clients.ours), ("upstream", &clients.upstream)] {
        let copy = dir.path().join(name);
        std::fs::copy(&clients.kubeconfig, &copy)?;
        let output = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&copy)
            .args(["config", "set-context", "--current", "--namespace", "team-a"])
            .output()?;
        ensure!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let get = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&copy)
            .args(["config", "get-contexts"])
            .output()?;
        results.push((
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&get.stdout).into_owned(),
        ));
    }
    assert_eq!(results[0], results[1]);
    assert!(results[0].1.contains("team-a"));
    Ok(())
}

#[test]
fn bad_input_is_one_clear_line_and_exit_code_1() -> Result<()> {
    let clients = Clients::new("golden-bad")?;
    for (yaml, wanted) in [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n",
            "error: error parsing STDIN",
        ),
        ("apiVersion: v1\nmetadata: {name: x}\n", "Object 'Kind' is missing"),
        (
            "apiVersion: example.com/v9\nkind: Frob\nmetadata: {name: x}\n",
            "no matches for kind \"Frob\" in version \"example.com/v9\"",
        ),
    ] {
        let output = clients.apply_with(&clients.ours, yaml)?;
        assert_eq!(output.code, 1, "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        assert!(
            output.stderr.starts_with("error: ") && output.stderr.contains(wanted),
            "{output:?}"
        );
    }
    let output = clients.ours(&["frobnicate"])?;
    assert_eq!(output.code, 1);
    assert!(output.stderr.contains("frobnicate"), "{output:?}");
    Ok(())
}
