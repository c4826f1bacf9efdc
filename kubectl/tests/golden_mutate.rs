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

/// Drops what the server assigns differently in the two namespaces.
fn scrub(object: &mut Value) {
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
