//! The twin-namespace harness of the object-editing golden tests: upstream kubectl works in
//! the test namespace, ours in a twin namespace holding the same objects; outputs must match
//! up to the namespace name, uids, resourceVersions and timestamps, and both namespaces must
//! end up holding the same objects.

#![allow(dead_code)] // each test binary uses a different part of the harness

use anyhow::{Result, ensure};
use serde_json::Value;

use super::{Clients, Output, ensure_same, normalise};

/// Objects most tests start from.
pub(crate) const OBJECTS: &str = r#"
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
pub(crate) struct Twins {
    pub(crate) clients: Clients,
    pub(crate) twin: String,
}

impl Twins {
    pub(crate) fn new(prefix: &str, objects: &str) -> Result<Self> {
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
    pub(crate) fn same(&self, args: &[&str]) -> Result<Output> {
        self.same_with_stdin(args, None)
    }

    pub(crate) fn same_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
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
        ensure_same(&args.join(" "), &upstream, &ours)?;
        Ok(ours)
    }

    /// The objects `what` names (`configmaps`, `deploy/web`) in the test namespace and in the
    /// twin, server-assigned fields dropped; they must be equal.
    pub(crate) fn same_objects(&self, what: &str) -> Result<Value> {
        let get = |ns: &str| -> Result<Value> {
            let out = self.clients.upstream(&["-n", ns, "get", what, "-o", "json"])?.ok()?;
            let mut found: Value = serde_json::from_str(&out.stdout)?;
            if found["kind"] == "List" {
                found = found["items"].take();
            }
            match &mut found {
                Value::Array(items) => items.iter_mut().for_each(scrub),
                object => scrub(object),
            }
            Ok(found)
        };
        let upstream = get(&self.clients.namespace)?;
        let ours = get(&self.twin)?;
        ensure!(
            upstream == ours,
            "{what} differ:\nupstream: {upstream:#}\nours: {ours:#}"
        );
        Ok(ours)
    }
}

/// The twin's name first (a namespace like `golden-run-dry-0521393d` also reads as an age),
/// then ages and version-skew warnings (the harness's normalisation), uids, resourceVersions,
/// timestamps and generated names.
pub(crate) fn mask(mut output: Output, namespace: &str, wanted: &str) -> Output {
    for text in [&mut output.stdout, &mut output.stderr] {
        *text = text.replace(namespace, wanted);
    }
    let mut output = normalise(output);
    let volatile = regex::Regex::new(r#"("?(uid|resourceVersion|creationTimestamp|time|generation)"?: )"?[^",\n]*"?"#)
        .expect("valid regex");
    for text in [&mut output.stdout, &mut output.stderr] {
        *text = volatile.replace_all(text, "$1<x>").into_owned();
    }
    output
}

/// Drops what the server assigns differently in the two namespaces (uids also appear in
/// labels and selectors, e.g. a Job's `controller-uid`).
pub(crate) fn scrub(object: &mut Value) {
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
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    // Set to the moment each client ran (`rollout restart`).
    if let Some(annotations) = object
        .pointer_mut("/spec/template/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove("kubectl.kubernetes.io/restartedAt");
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

impl Twins {
    /// Runs `args` with upstream in the test namespace and ours in the twin with extra
    /// environment (`None` removes a variable), `before` run ahead of each; returns
    /// [upstream, ours], masked as `same` masks them.
    pub(crate) fn run_both(
        &self,
        args: &[&str],
        env: &[(&str, Option<&str>)],
        before: impl Fn(),
    ) -> Result<Vec<Output>> {
        let mut results = Vec::new();
        for (binary, ns) in [
            (&self.clients.upstream, &self.clients.namespace),
            (&self.clients.ours, &self.twin),
        ] {
            before();
            let mut full = vec!["-n", ns.as_str()];
            full.extend_from_slice(args);
            let output = self.clients.run_env(binary, &full, None, env)?;
            results.push(mask(output, ns, &self.clients.namespace));
        }
        Ok(results)
    }

    /// As `same`, with `EDITOR` set to `script` (a shell script; `$STEP` counts its runs
    /// within one command, starting at 1); temporary file names are masked.
    pub(crate) fn same_edit(&self, script: &str, args: &[&str]) -> Result<Output> {
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
        let temp = regex::Regex::new(r"/\S*kubectl-edit-\d+\.(yaml|json)").expect("valid regex");
        let editor = editor.display().to_string();
        // Copies kept when an edit gives up go to TMPDIR: this test's directory.
        let tmp = dir.path().display().to_string();
        let mut results = Vec::new();
        for mut output in self.run_both(
            args,
            &[
                ("EDITOR", Some(editor.as_str())),
                ("KUBE_EDITOR", None),
                ("TMPDIR", Some(tmp.as_str())),
            ],
            || {
                let _ = std::fs::remove_file(&counter);
            },
        )? {
            output.stderr = temp.replace_all(&output.stderr, "<tmp>/kubectl-edit-N.$1").into_owned();
            results.push(output);
        }
        let (ours, upstream) = (results.pop().unwrap(), results.pop().unwrap());
        ensure_same(&format!("{} (editor: {script})", args.join(" ")), &upstream, &ours)?;
        Ok(ours)
    }
}

/// A tiny HTTP server on 127.0.0.1 serving `files` (path → body), 404 otherwise; it stops
/// when the test process ends (the thread only accepts).
pub(crate) fn serve(files: Vec<(&'static str, String)>) -> Result<String> {
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
