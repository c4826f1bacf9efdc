//! Golden tests of the object-editing commands (`label`, `annotate`, `patch`, `create
//! <subcommand>`, `replace`, `set`, `edit`, `diff`): upstream kubectl works in the test
//! namespace, ours in a twin namespace holding the same objects; outputs must match (up to
//! the namespace name, uids, resourceVersions and timestamps), and both namespaces must end
//! up holding the same objects.

mod common;

use anyhow::{Result, ensure};
use common::{Clients, Output};
use serde_json::Value;

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web, tier: "1"}
  annotations: {note: hello}
data:
  color: blue
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
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
        env: [{name: MODE, value: fast}]
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox
        command: ["sleep", "3600"]
"#;

/// The test namespace (upstream's) and its twin (ours), holding the same objects.
struct Twins {
    clients: Clients,
    twin: String,
}

impl Twins {
    fn new(prefix: &str, objects: &str) -> Result<Self> {
        let clients = Clients::new(prefix)?;
        let twin = format!("{}-twin", clients.namespace);
        clients.upstream(&["create", "namespace", &twin])?.ok()?;
        if !objects.is_empty() {
            clients.apply_with(&clients.upstream, objects)?.ok()?;
            clients
                .run(&clients.upstream, &["-n", &twin, "apply", "-f", "-"], Some(objects))?
                .ok()?;
        }
        Ok(Self { clients, twin })
    }

    /// Runs `args` with upstream in the test namespace and ours in the twin; the outputs
    /// must match once server-assigned values are masked.
    fn same(&self, args: &[&str]) -> Result<Output> {
        self.same_with_stdin(args, None)
    }

    fn same_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let ns = self.clients.namespace.as_str();
        let mut upstream_args = vec!["-n", ns];
        upstream_args.extend_from_slice(args);
        let mut our_args = vec!["-n", self.twin.as_str()];
        our_args.extend_from_slice(args);
        let mut upstream = mask(self.clients.run(&self.clients.upstream, &upstream_args, stdin)?, ns, ns);
        let mut ours = mask(self.clients.run(&self.clients.ours, &our_args, stdin)?, &self.twin, ns);
        // `--list` prints a Go map: in random order upstream, so compare the sorted lines.
        if args.contains(&"--list") {
            for output in [&mut upstream, &mut ours] {
                let mut lines: Vec<&str> = output.stdout.lines().collect();
                lines.sort();
                output.stdout = lines.join("\n");
            }
        }
        ensure!(
            ours == upstream,
            "kubectl {}:\n--- upstream (exit {}):\n{}{}\n--- ours (exit {}):\n{}{}",
            args.join(" "),
            upstream.code,
            upstream.stdout,
            upstream.stderr,
            ours.code,
            ours.stdout,
            ours.stderr
        );
        Ok(ours)
    }

    /// The objects of `kind` in the test namespace and in the twin, server-assigned fields
    /// dropped; they must be equal.
    fn same_objects(&self, kind: &str) -> Result<Value> {
        let get = |ns: &str| -> Result<Value> {
            let out = self.clients.upstream(&["-n", ns, "get", kind, "-o", "json"])?.ok()?;
            let mut list: Value = serde_json::from_str(&out.stdout)?;
            for item in list["items"].as_array_mut().into_iter().flatten() {
                scrub(item);
            }
            Ok(list["items"].take())
        };
        let upstream = get(&self.clients.namespace)?;
        let ours = get(&self.twin)?;
        ensure!(
            upstream == ours,
            "{kind} differ:\nupstream: {upstream:#}\nours: {ours:#}"
        );
        Ok(ours)
    }
}

/// Ages and version-skew warnings (the harness's normalisation), then the twin's name, uids,
/// resourceVersions, timestamps and generated names.
fn mask(output: Output, namespace: &str, wanted: &str) -> Output {
    let mut output = common::normalise(output);
    let volatile = regex::Regex::new(r#"("?(uid|resourceVersion|creationTimestamp|time|generation)"?: )"?[^",\n]*"?"#)
        .expect("valid regex");
    for text in [&mut output.stdout, &mut output.stderr] {
        *text = text.replace(namespace, wanted);
        *text = volatile.replace_all(text, "$1<x>").into_owned();
    }
    output
}

/// Drops what the server assigns differently in the two namespaces (uids also appear in
/// labels and selectors, e.g. a Job's `controller-uid`).
fn scrub(object: &mut Value) {
    mask_uids(object);
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "namespace",
            "generation",
        ] {
            metadata.remove(key);
        }
        if let Some(annotations) = metadata.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    // Allocated per Service.
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        for port in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(port) = port.as_object_mut() {
                port.remove("nodePort");
            }
        }
    }
}

fn mask_uids(value: &mut Value) {
    let uid = regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").expect("valid regex");
    match value {
        Value::String(text) if uid.is_match(text) => *text = "<uid>".into(),
        Value::Array(items) => items.iter_mut().for_each(mask_uids),
        Value::Object(map) => map.values_mut().for_each(mask_uids),
        _ => {}
    }
}

#[test]
fn label_and_annotate_match_upstream() -> Result<()> {
    let t = Twins::new("mut-label", OBJECTS)?;
    for args in [
        &["label", "cm", "settings", "color=red"][..],
        &["label", "cm", "settings", "color=red"],
        &["label", "cm", "settings", "color=green"],
        &["label", "cm", "settings", "color=green", "--overwrite"],
        &["label", "cm/settings", "tier-", "extra=1"],
        &["label", "cm", "settings", "extra-"],
        &["label", "cm", "settings", "extra-"],
        &["label", "cm", "settings", "--list"],
        &["label", "cm", "plain", "settings", "--list"],
        &["label", "cm", "--all", "team=a", "-o", "name"],
        &["label", "cm", "-l", "app=web", "team=b", "--overwrite", "-o", "yaml"],
        &["label", "cm", "-l", "app=nothing", "team=c"],
        &["label", "deploy", "web", "version=v1", "--dry-run=client", "-o", "json"],
        &["label", "deploy", "web", "version=v1", "--dry-run=server"],
        &["label", "cm", "plain", "missing", "x=1"],
        &["label", "cm", "settings", "a=1", "--resource-version=1"],
        &["label", "cm", "settings", "team=b", "--resource-version=1"],
        &["label", "cm", "--all", "a=1", "--resource-version=1"],
        // Bad input.
        &["label", "cm", "settings", "a=1=2"],
        &["label", "cm", "settings", "a=bad value"],
        &["label", "cm", "settings", "a=1", "a-"],
        &["label", "cm", "settings", "a=1", "stray"],
        &["label", "cm", "settings"],
        &["label", "a=1"],
        &["label", "cm", "a=1"],
        &["label", "cm", "settings", "-l", "app=web", "a=1"],
        &["label", "cm", "--all", "-l", "app=web", "a=1"],
        &["label", "cm", "settings", "a=1", "-o", "wide"],
        &["label", "cm", "settings", "--list", "-o", "yaml"],
        &["label", "cm", "settings", "a=1", "--dry-run=maybe"],
        &["label", "frobs", "x", "a=1"],
        &["label", "cm", "missing", "a=1"],
        // Annotations.
        &["annotate", "cm", "settings", "note=hello"],
        &["annotate", "cm", "settings", "note=bye"],
        &["annotate", "cm", "settings", "note=bye", "--overwrite"],
        &["annotate", "cm", "settings", "url=http://x/?a=b", "note-"],
        &["annotate", "cm", "settings", "--list"],
        &["annotate", "cm", "settings", "plain", "--list"],
        &["annotate", "cm", "settings", "plain", "owner=me", "-o", "yaml"],
        &["annotate", "deploy/web", "owner=me", "--dry-run=server", "-o", "name"],
        &[
            "annotate",
            "cm",
            "settings",
            "owner=you",
            "--overwrite",
            "--resource-version=1",
        ],
        &["annotate", "cm", "settings", "=x"],
        &["annotate", "cm", "settings", "a-", "a=1"],
        &["annotate", "cm", "settings"],
        &["annotate", "cm", "missing", "a=1"],
    ] {
        t.same(args)?;
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cm.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n")?;
    let path = file.to_str().unwrap();
    t.same(&["label", "-f", path, "from=file"])?;
    t.same(&["label", "-f", path, "--local", "from=local", "-o", "yaml"])?;
    t.same(&["annotate", "-f", path, "from=file"])?;
    t.same(&["annotate", "-f", path, "cm", "x=1"])?;
    let cms = t.same_objects("cm")?;
    assert_eq!(cms[1]["metadata"]["labels"]["team"], "b", "{cms:#}");
    assert_eq!(cms[1]["metadata"]["annotations"]["url"], "http://x/?a=b", "{cms:#}");
    t.same_objects("deploy")?;
    Ok(())
}

#[test]
fn patch_matches_upstream() -> Result<()> {
    let t = Twins::new("mut-patch", OBJECTS)?;
    let dir = tempfile::tempdir()?;
    let patch_file = dir.path().join("patch.yaml");
    std::fs::write(&patch_file, "data:\n  from: file\n")?;
    let patch_path = patch_file.to_str().unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
    )?;
    let manifest_path = manifest.to_str().unwrap();
    let image = r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#;
    for args in [
        &["patch", "cm", "settings", "-p", r#"{"data":{"color":"red"}}"#][..],
        &["patch", "cm", "settings", "-p", r#"{"data":{"color":"red"}}"#],
        &[
            "patch",
            "cm/settings",
            "cm/plain",
            "--type=merge",
            "-p",
            "data: {shape: round}",
        ],
        &[
            "patch",
            "cm",
            "settings",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/data/shape"}]"#,
        ],
        &[
            "patch",
            "cm",
            "settings",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/data/nothing"}]"#,
        ],
        &["patch", "cm", "settings", "--patch-file", patch_path],
        &["patch", "deploy", "web", "-p", image],
        &["patch", "deploy", "web", "-p", image, "-o", "yaml"],
        &[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
            "--subresource",
            "scale",
        ],
        &[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"replicas":1}}"#,
            "--dry-run=server",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        &[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"replicas":1}}"#,
            "--dry-run=client",
        ],
        &["patch", "-f", manifest_path, "-p", r#"{"data":{"via":"file"}}"#],
        &[
            "patch",
            "-f",
            manifest_path,
            "-p",
            r#"{"data":{"via":"local"}}"#,
            "--local",
            "-o",
            "yaml",
        ],
        &[
            "patch",
            "-f",
            manifest_path,
            "--type=merge",
            "-p",
            "metadata: {labels: {l: x}}",
            "--local",
            "-o",
            "json",
        ],
        // Bad input.
        &[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"replicas":-1,"template":{"spec":{"containers":[{"name":"x"}]}}}}"#,
            "--type=merge",
        ],
        &["patch", "cm", "settings", "-p", "{bad"],
        &["patch", "cm", "settings", "-p", "just-a-string"],
        &["patch", "cm", "settings", "--type=yaml", "-p", "{}"],
        &["patch", "cm", "settings"],
        &["patch", "cm", "settings", "-p", "{}", "--patch-file", patch_path],
        &["patch", "cm", "settings", "--patch-file", "/nonexistent/patch.json"],
        &["patch", "cm", "settings", "-p", "{}", "--subresource", "frob"],
        &["patch", "cm", "settings", "-p", "{}", "--local"],
        &["patch", "cm", "missing", "-p", "{}"],
        &["patch", "cm", "-p", "{}"],
    ] {
        t.same(args)?;
    }
    let deployments = t.same_objects("deploy")?;
    assert_eq!(deployments[0]["spec"]["replicas"], 5);
    let cms = t.same_objects("cm")?;
    assert_eq!(cms[1]["data"]["from"], "file", "{cms:#}");
    Ok(())
}

#[test]
fn create_generators_match_upstream() -> Result<()> {
    let t = Twins::new("mut-create", "")?;
    let dir = tempfile::tempdir()?;
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(at("hello.txt"), "hello\n")?;
    std::fs::write(at("bin.dat"), [0xff, 0xfe, 0x00])?;
    std::fs::write(
        at("app.env"),
        "\u{feff}MODE=fast\n# comment\n  SPACED=  kept \r\n\nEMPTY=\n",
    )?;
    std::fs::write(at("bad.env"), "GOOD=1\nexport BAD=2\n")?;
    std::fs::create_dir(at("dir"))?;
    std::fs::write(at("dir/a.txt"), "a\n")?;
    std::fs::write(at("dir/b"), "b\n")?;
    let (hello, bin, env, bad_env, directory) =
        (at("hello.txt"), at("bin.dat"), at("app.env"), at("bad.env"), at("dir"));
    let from_hello = format!("--from-file={hello}");
    let keyed_hello = format!("--from-file=greeting={hello}");
    let from_bin = format!("--from-file={bin}");
    let from_env = format!("--from-env-file={env}");
    let from_bad_env = format!("--from-env-file={bad_env}");
    let from_dir = format!("--from-file={directory}");
    let keyed_dir = format!("--from-file=k={directory}");
    let yaml = ["--dry-run=client", "-o", "yaml"];
    let with_yaml =
        |args: &[&'static str]| -> Vec<String> { args.iter().chain(yaml.iter()).map(|s| s.to_string()).collect() };
    let mut cases: Vec<Vec<String>> = vec![
        with_yaml(&["create", "namespace", "mut-create-dry"]),
        with_yaml(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--port=80",
            "--replicas=2",
        ]),
        with_yaml(&[
            "create",
            "deploy",
            "multi",
            "--image=nginx",
            "--image=registry.io:5000/team/busybox:1.36",
        ]),
        with_yaml(&["create", "job", "once", "--image=busybox"]),
        with_yaml(&["create", "service", "clusterip", "web", "--tcp=80:8080", "--tcp=443"]),
        with_yaml(&["create", "svc", "clusterip", "headless", "--clusterip=None"]),
        with_yaml(&[
            "create",
            "service",
            "nodeport",
            "np",
            "--tcp=80:http",
            "--node-port=30080",
        ]),
        with_yaml(&["create", "service", "loadbalancer", "lb", "--tcp=80,81"]),
        with_yaml(&[
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=db.example.com",
        ]),
        with_yaml(&[
            "create",
            "secret",
            "generic",
            "typed",
            "--from-literal=user=admin",
            "--type=kubernetes.io/basic-auth",
        ]),
    ];
    let mut owned = |args: &[&str]| cases.push(args.iter().map(|s| s.to_string()).collect());
    owned(&[
        "create",
        "deployment",
        "cmd",
        "--image=busybox",
        "--dry-run=client",
        "-o",
        "yaml",
        "--",
        "sleep",
        "10",
    ]);
    owned(&[
        "create",
        "job",
        "echo",
        "--image=busybox",
        "--dry-run=client",
        "-o",
        "yaml",
        "--",
        "echo",
        "hi",
    ]);
    owned(&[
        "create",
        "configmap",
        "files",
        "--from-literal=a=1",
        "--from-literal=b=x=y",
        &from_hello,
        &keyed_hello,
        &from_bin,
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    owned(&["create", "cm", "env", &from_env, "--dry-run=client", "-o", "yaml"]);
    owned(&["create", "cm", "dir", &from_dir, "--dry-run=client", "-o", "yaml"]);
    owned(&[
        "create",
        "secret",
        "generic",
        "files",
        "--from-literal=a=1",
        &from_hello,
        &from_bin,
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    owned(&[
        "create",
        "secret",
        "generic",
        "env",
        &from_env,
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    // Real creations, then the same again (already exists), and server dry runs.
    for args in [
        &["create", "deployment", "web", "--image=nginx", "--replicas=2"][..],
        &["create", "deployment", "web", "--image=nginx"],
        &["create", "job", "once", "--image=busybox", "--", "echo", "hi"],
        &["create", "job", "once", "--image=busybox"],
        &["create", "configmap", "literal", "--from-literal=a=1", "--append-hash"],
        &["create", "configmap", "plain", "--from-literal=a=1"],
        &["create", "configmap", "plain", "--from-literal=a=1"],
        &[
            "create",
            "secret",
            "generic",
            "token",
            "--from-literal=t=s3cret",
            "--append-hash",
            "-o",
            "name",
        ],
        &["create", "secret", "generic", "token", "--from-literal=t=s3cret"],
        &["create", "secret", "generic", "token", "--from-literal=t=s3cret"],
        &[
            "create",
            "secret",
            "generic",
            "tls",
            "--from-literal=a=1",
            "--type=kubernetes.io/tls",
        ],
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        &["create", "service", "nodeport", "np", "--tcp=80"],
        &[
            "create",
            "configmap",
            "checked",
            "--from-literal=a=1",
            "--dry-run=server",
        ],
        &[
            "create",
            "deploy",
            "checked",
            "--image=nginx",
            "--dry-run=server",
            "-o",
            "name",
        ],
        // Bad input.
        &["create", "deployment", "noimage"],
        &["create", "deployment", "--image=nginx"],
        &[
            "create",
            "deployment",
            "two",
            "--image=a",
            "--image=b",
            "--",
            "sleep",
            "1",
        ],
        &["create", "job", "neither"],
        &["create", "job", "both", "--image=busybox", "--from=cronjob/x"],
        &["create", "job", "fromcm", "--from=configmap/plain"],
        &["create", "job", "fromnothing", "--from=cronjob/missing"],
        &["create", "configmap"],
        &["create", "configmap", "a", "b"],
        &["create", "configmap", "badkey", "--from-literal=bad/key=1"],
        &["create", "configmap", "dup", "--from-literal=a=1", "--from-literal=a=2"],
        &["create", "configmap", "noeq", "--from-literal=novalue"],
        &["create", "configmap", "eqs", "--from-file=a=b=c"],
        &["create", "configmap", "missing", "--from-file=/nonexistent/file"],
        &["create", "secret", "generic", "badkey", "--from-literal=bad/key=1"],
        &[
            "create",
            "secret",
            "generic",
            "dup",
            "--from-literal=a=1",
            "--from-literal=a=2",
        ],
        &["create", "service", "clusterip", "noports"],
        &["create", "service", "clusterip", "badport", "--tcp=x"],
        &["create", "service", "clusterip", "badport", "--tcp=70000"],
        &["create", "service", "clusterip", "badport", "--tcp=80:0"],
        &["create", "service", "clusterip", "badport", "--tcp=80:Bad_Name"],
        &["create", "service", "externalname", "noname"],
        &[
            "create",
            "service",
            "externalname",
            "badname",
            "--external-name=Bad_Name",
        ],
        &["create", "namespace"],
        &["create", "configmap", "x", "--from-literal=a=1", "--dry-run=maybe"],
    ] {
        owned(args);
    }
    owned(&["create", "configmap", "keyeddir", &keyed_dir]);
    owned(&["create", "configmap", "mixed", &from_env, "--from-literal=a=1"]);
    owned(&["create", "configmap", "badenv", &from_bad_env]);
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.same(&args)?;
    }
    // Namespaces are cluster-wide: each client creates its own.
    let ns = format!("{}-made", t.clients.namespace);
    let upstream = t.clients.upstream(&["create", "namespace", &ns])?;
    let ours = t.clients.ours(&["create", "namespace", &format!("{ns}-ours")])?;
    assert_eq!(ours.stdout.replace("-ours", ""), upstream.stdout);
    let again = t.clients.ours(&["create", "namespace", &ns])?;
    assert_eq!(again, t.clients.upstream(&["create", "namespace", &ns])?);
    t.same_objects("deploy")?;
    t.same_objects("job")?;
    t.same_objects("cm")?;
    t.same_objects("secret")?;
    let services = t.same_objects("svc")?;
    assert_eq!(services[0]["spec"]["ports"][0]["targetPort"], 80, "{services:#}");
    for name in [ns.clone(), format!("{ns}-ours")] {
        t.clients.upstream(&["delete", "namespace", &name, "--wait=false"])?;
    }
    Ok(())
}

#[test]
fn replace_matches_upstream() -> Result<()> {
    let t = Twins::new("mut-replace", OBJECTS)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("replace.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {replaced: \"yes\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh}\ndata: {new: \"1\"}\n",
    )?;
    let stale = dir.path().join("stale.yaml");
    std::fs::write(
        &stale,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, resourceVersion: \"1\"}\ndata: {a: b}\n",
    )?;
    let (path, stale) = (file.to_str().unwrap(), stale.to_str().unwrap());
    for args in [
        &["replace", "-f", path][..],
        &["replace", "-f", path, "--dry-run=client"],
        &["replace", "-f", path, "--dry-run=server", "-o", "name"],
        &["replace", "-f", path, "--force"],
        &["replace", "-f", path, "-o", "yaml"],
        &["replace", "-f", path, "--save-config"],
        &["replace", "-f", stale],
        &["replace", "-f", path, "--force", "--dry-run=client"],
        &["replace", "cm", "settings"],
        &["replace"],
        &["replace", "-f", "/nonexistent/x.yaml"],
    ] {
        t.same(args)?;
    }
    let cms = t.same_objects("cm")?;
    let names: Vec<&str> = cms
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fresh", "plain", "settings"]);
    assert_eq!(cms[2]["data"], serde_json::json!({"replaced": "yes"}));
    Ok(())
}

#[test]
fn set_image_and_env_match_upstream() -> Result<()> {
    let t = Twins::new("mut-set", OBJECTS)?;
    for ns in [t.clients.namespace.as_str(), t.twin.as_str()] {
        let extra = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: envcm}\ndata: {db.host: db}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: envsec}\nstringData: {PASS: hunter2}\n";
        t.clients
            .run(&t.clients.upstream, &["-n", ns, "apply", "-f", "-"], Some(extra))?
            .ok()?;
    }
    for args in [
        &["set", "image", "deploy/web", "nginx=nginx:1.28"][..],
        &["set", "image", "deploy/web", "nginx=nginx:1.28"],
        &[
            "set",
            "image",
            "deployment",
            "web",
            "nginx=nginx:1.29",
            "sidecar=busybox:1.36",
        ],
        &["set", "image", "deploy/web", "*=alpine", "--dry-run=client"],
        &[
            "set",
            "image",
            "deploy/web",
            "*=alpine",
            "--dry-run=server",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image}",
        ],
        &["set", "image", "deploy", "--all", "nginx=nginx:1.30", "-o", "name"],
        &["set", "image", "deploy", "-l", "app=web", "sidecar=busybox:1.37"],
        &["set", "image", "deploy/web", "nope=x"],
        &["set", "image", "deploy/web"],
        &["set", "image", "deploy/web", "*=a", "nginx=b"],
        &["set", "image", "cm/settings", "a=b"],
        &["set", "image", "deploy/missing", "a=b"],
        &["set", "image", "deploy/web", "a=b", "--local"],
        &["set", "env", "deploy/web", "MODE=slow", "EXTRA=1"],
        &["set", "env", "deploy/web", "MODE=slow"],
        &["set", "env", "deploy/web", "--list"],
        &["set", "env", "deploy/web", "-c", "side*", "ONLY=sidecar"],
        &["set", "env", "deploy/web", "EXTRA-"],
        &["set", "env", "deploy/web", "--from=configmap/envcm", "-c", "nginx"],
        &[
            "set",
            "env",
            "deploy/web",
            "--from=secret/envsec",
            "--prefix=APP_",
            "--keys=PASS",
            "-c",
            "nginx",
        ],
        &["set", "env", "deploy/web", "--list"],
        &["set", "env", "deploy/web", "--list", "--resolve"],
        &[
            "set",
            "env",
            "deploy/web",
            "-e",
            "E1=v1",
            "--env=E2=v2",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        &["set", "env", "deploy/web", "MODE=fast", "--overwrite=false"],
        &["set", "env", "deploy/web", "-c", "nope", "X=1"],
        &["set", "env", "deploy/web", "1BAD=x"],
        &["set", "env", "deploy/web", "A=1", "A-"],
        &["set", "env", "deploy/web", "--keys=a"],
        &["set", "env", "deploy/web", "--list", "-o", "yaml"],
        &["set", "env", "deploy/web", "--from=deploy/web"],
        &["set", "env", "deploy/web", "--from=configmap/missing"],
        &["set", "env", "cm/settings", "A=1"],
    ] {
        t.same(args)?;
    }
    let deployments = t.same_objects("deploy")?;
    let containers = &deployments[0]["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.30", "{containers:#}");
    assert_eq!(containers[1]["image"], "busybox:1.37", "{containers:#}");
    Ok(())
}

impl Twins {
    /// As `same`, with `EDITOR` set to `script` (a shell script; `$STEP` counts its runs
    /// within one command, starting at 1); temporary file names are masked.
    fn same_edit(&self, script: &str, args: &[&str]) -> Result<Output> {
        let dir = tempfile::tempdir()?;
        let editor = dir.path().join("editor.sh");
        let counter = dir.path().join("count");
        std::fs::write(
            &editor,
            format!(
                "#!/bin/sh\nSTEP=$(( $(cat {0} 2>/dev/null || echo 0) + 1 ))\necho $STEP > {0}\n{script}\n",
                counter.display()
            ),
        )?;
        std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let temp = regex::Regex::new(r"kubectl-edit-\d+\.(yaml|json)").expect("valid regex");
        let mut results = Vec::new();
        for (binary, ns) in [
            (&self.clients.upstream, &self.clients.namespace),
            (&self.clients.ours, &self.twin),
        ] {
            let _ = std::fs::remove_file(&counter);
            let output = std::process::Command::new(binary)
                .arg("--kubeconfig")
                .arg(&self.clients.kubeconfig)
                .args(["-n", ns])
                .args(args)
                .env("KUBECTL_KUBERC", "false")
                .env("EDITOR", &editor)
                .env_remove("KUBE_EDITOR")
                .stdin(std::process::Stdio::null())
                .output()?;
            let mut output = mask(
                Output {
                    code: output.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                },
                ns,
                &self.clients.namespace,
            );
            output.stderr = temp.replace_all(&output.stderr, "kubectl-edit-N.$1").into_owned();
            results.push(output);
        }
        let (ours, upstream) = (results.pop().unwrap(), results.pop().unwrap());
        ensure!(
            ours == upstream,
            "kubectl {} (editor: {script}):\n--- upstream (exit {}):\n{}{}\n--- ours (exit {}):\n{}{}",
            args.join(" "),
            upstream.code,
            upstream.stdout,
            upstream.stderr,
            ours.code,
            ours.stdout,
            ours.stderr
        );
        Ok(ours)
    }
}

#[test]
fn edit_matches_upstream() -> Result<()> {
    let t = Twins::new("mut-edit", OBJECTS)?;
    let saw = tempfile::tempdir()?;
    let seen = saw.path().join("seen");
    // The editor sees upstream's header and the object; nothing changed.
    let keep = format!("cp \"$1\" {}-$STEP", seen.display());
    let out = t.same_edit(&keep, &["edit", "cm", "settings"])?;
    assert_eq!(out.stderr, "Edit cancelled, no changes made.\n");
    let shown = std::fs::read_to_string(format!("{}-1", seen.display()))?;
    assert!(shown.starts_with("# Please edit the object below."), "{shown}");
    t.same_edit("true", &["edit", "cm/settings", "-o", "json"])?;
    // Real edits, strategic for a Deployment.
    t.same_edit(
        r#"sed -i 's/color: blue/color: green/' "$1""#,
        &["edit", "cm", "settings"],
    )?;
    t.same_edit(
        r#"sed -i 's/image: nginx:1.27/image: nginx:1.28/; s/^  replicas: 2/  replicas: 3/' "$1""#,
        &["edit", "deploy/web"],
    )?;
    t.same_edit(
        r#"sed -i 's/"color": "green"/"color": "red"/' "$1""#,
        &["edit", "cm", "settings", "-o", "json"],
    )?;
    // Invalid: re-opened with the reasons; fixed the second time, or given up.
    let invalid =
        r#"if [ $STEP = 1 ]; then sed -i 's/^  name: plain/  name: plain\n  labels: {"bad key": x}/' "$1"; fi"#;
    let out = t.same_edit(invalid, &["edit", "cm", "plain"])?;
    assert_eq!(out.code, 1);
    let fixed = format!(
        "cp \"$1\" {}-$STEP; if [ $STEP = 1 ]; then sed -i 's/^  name: plain/  name: plain\\n  labels: {{\"bad key\": x}}/' \"$1\"; else sed -i 's/bad key/good-key/' \"$1\"; fi",
        seen.display()
    );
    t.same_edit(&fixed, &["edit", "cm", "plain"])?;
    let reopened = std::fs::read_to_string(format!("{}-2", seen.display()))?;
    assert!(
        reopened.contains("# configmaps \"plain\" was not valid:\n# * metadata.labels: Invalid value: \"bad key\""),
        "{reopened}"
    );
    t.same_edit(r#": > "$1""#, &["edit", "cm", "plain"])?;
    t.same_edit(
        r#"sed -i 's/^  name: plain/  name: other/' "$1""#,
        &["edit", "cm", "plain"],
    )?;
    t.same_edit("exit 3", &["edit", "cm", "plain"])?;
    t.same_edit("true", &["edit", "cm", "missing"])?;
    t.same_edit("true", &["edit"])?;
    let cms = t.same_objects("cm")?;
    assert_eq!(cms[0]["metadata"]["labels"]["good-key"], "x", "{cms:#}");
    assert_eq!(cms[1]["data"]["color"], "red", "{cms:#}");
    let deployments = t.same_objects("deploy")?;
    assert_eq!(deployments[0]["spec"]["replicas"], 3);
    Ok(())
}

#[test]
fn diff_matches_upstream() -> Result<()> {
    let t = Twins::new("mut-diff", OBJECTS)?;
    let dir = tempfile::tempdir()?;
    let changed = dir.path().join("changed.yaml");
    std::fs::write(
        &changed,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app: web, tier: \"2\"}\n  annotations: {note: hello}\ndata:\n  color: red\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: brand-new}\ndata: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: token}\nstringData: {key: changed, extra: x}\n",
    )?;
    let same = dir.path().join("same.yaml");
    std::fs::write(
        &same,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app: web, tier: \"1\"}\n  annotations: {note: hello}\ndata:\n  color: blue\n",
    )?;
    for ns in [t.clients.namespace.as_str(), t.twin.as_str()] {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\nstringData: {key: s3cret}\n";
        t.clients
            .run(&t.clients.upstream, &["-n", ns, "apply", "-f", "-"], Some(secret))?
            .ok()?;
    }
    let (changed, same) = (changed.to_str().unwrap(), same.to_str().unwrap());
    let dirs = regex::Regex::new(r"/(LIVE|MERGED)-\d+/").expect("valid regex");
    let stamps = regex::Regex::new(r"\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [+-]\d{4}").expect("valid regex");
    let run = |args: &[&str], env: Option<&str>| -> Result<Output> {
        let mut results = Vec::new();
        for (binary, ns) in [(&t.clients.upstream, &t.clients.namespace), (&t.clients.ours, &t.twin)] {
            let mut command = std::process::Command::new(binary);
            command
                .arg("--kubeconfig")
                .arg(&t.clients.kubeconfig)
                .args(["-n", ns])
                .args(args)
                .env("KUBECTL_KUBERC", "false")
                .env_remove("KUBECTL_EXTERNAL_DIFF");
            if let Some(diff) = env {
                command.env("KUBECTL_EXTERNAL_DIFF", diff);
            }
            let output = command.output()?;
            let mut output = mask(
                Output {
                    code: output.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                },
                ns,
                &t.clients.namespace,
            );
            output.stdout = dirs.replace_all(&output.stdout, "/$1-N/").into_owned();
            output.stdout = stamps.replace_all(&output.stdout, "\t<time>").into_owned();
            results.push(output);
        }
        let (ours, upstream) = (results.pop().unwrap(), results.pop().unwrap());
        ensure!(
            ours == upstream,
            "kubectl {}:\n--- upstream:\n{upstream:?}\n--- ours:\n{ours:?}",
            args.join(" ")
        );
        Ok(ours)
    };
    let out = run(&["diff", "-f", changed], None)?;
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("-  key: '*** (before)'\n+  extra: '***'\n+  key: '*** (after)'"),
        "{}",
        out.stdout
    );
    assert_eq!(run(&["diff", "-f", same], None)?.code, 0);
    run(&["diff", "-f", changed, "--server-side"], None)?;
    run(&["diff", "-f", changed], Some("diff -q"))?;
    run(&["diff", "-f", changed], Some("/nonexistent/differ"))?;
    let missing = run(&["diff", "-f", "/nonexistent/x.yaml"], None)?;
    assert_eq!(missing.code, 2);
    // Nothing was changed.
    let cms = t.same_objects("cm")?;
    assert_eq!(cms.as_array().unwrap().len(), 2);
    assert_eq!(cms[1]["data"]["color"], "blue");
    Ok(())
}

/// A tiny HTTP server on 127.0.0.1 serving `files` (path → body), 404 otherwise; it stops
/// when the test process ends (the thread only accepts).
fn serve(files: Vec<(&'static str, String)>) -> Result<String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
            let response = match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Ok(format!("http://{address}"))
}

#[test]
fn apply_prune_and_urls_match_upstream() -> Result<()> {
    let t = Twins::new("mut-prune", "")?;
    let three = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pa, labels: {app: pr}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: pb, labels: {app: pr}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: pc, labels: {app: other}}\n";
    let one = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pa, labels: {app: pr}}\n";
    let base = serve(vec![("/three.yaml", three.to_string()), ("/one.yaml", one.to_string())])?;
    let (three_url, one_url, missing_url) = (
        format!("{base}/three.yaml"),
        format!("{base}/one.yaml"),
        format!("{base}/missing.yaml"),
    );
    let allow = "--prune-allowlist=core/v1/ConfigMap";
    // Manifests from a URL; the selector chooses among them.
    let out = t.same(&["apply", "-f", &three_url, "-l", "app=pr"])?;
    assert_eq!(out.stdout, "configmap/pa created\nconfigmap/pb created\n");
    t.same(&["apply", "-f", &three_url, "-l", "app=none"])?;
    t.same(&["apply", "-f", &missing_url])?;
    t.same(&["apply", "-f", "http://127.0.0.1:1/x.yaml"])?;
    // Pruning what the files no longer hold.
    t.same(&[
        "apply",
        "-f",
        &one_url,
        "--prune",
        "-l",
        "app=pr",
        allow,
        "--dry-run=client",
    ])?;
    t.same(&[
        "apply",
        "-f",
        &one_url,
        "--prune",
        "-l",
        "app=pr",
        allow,
        "--dry-run=server",
        "-o",
        "name",
    ])?;
    let out = t.same(&["apply", "-f", &one_url, "--prune", "-l", "app=pr", allow])?;
    assert_eq!(out.stdout, "configmap/pa unchanged\nconfigmap/pb pruned\n");
    t.same(&["apply", "-f", &one_url, "--prune", "-l", "app=pr", allow])?;
    t.same(&["apply", "-f", &one_url, "--prune"])?;
    t.same(&["apply", "-f", &one_url, "--prune", "-l", "app=pr", "--all"])?;
    t.same(&[
        "apply",
        "-f",
        &one_url,
        "--prune",
        "-l",
        "app=pr",
        "--prune-allowlist=v1/ConfigMap",
    ])?;
    t.same(&[
        "apply",
        "-f",
        &one_url,
        "--prune",
        "-l",
        "app=pr",
        "--prune-allowlist=core/v1/Frob",
    ])?;
    // The default allowlist names kinds this server does not serve: upstream's error, after
    // its deprecation warning (a klog line, its time and pid masked).
    let klog = regex::Regex::new(r"(?m)^W\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ ").expect("valid regex");
    let ns = t.clients.namespace.as_str();
    let upstream = t
        .clients
        .upstream(&["-n", ns, "apply", "-f", &one_url, "--prune", "-l", "app=pr"])?;
    let ours = t
        .clients
        .ours(&["-n", ns, "apply", "-f", &one_url, "--prune", "-l", "app=pr"])?;
    assert_eq!(
        klog.replace_all(&ours.stderr, "W<klog> "),
        klog.replace_all(&upstream.stderr, "W<klog> ")
    );
    assert_eq!((ours.code, &ours.stdout), (upstream.code, &upstream.stdout));
    let cms = t.same_objects("cm")?;
    let names: Vec<&str> = cms
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pa"]);
    Ok(())
}
