//! Golden tests of `kubectl run` and `kubectl expose` against upstream kubectl 1.37 in twin
//! namespaces (see `twins`): the same output, errors and exit codes, and the same objects
//! created. No kubelet runs here, so attaching is only tested up to its timeout.

mod common;

use anyhow::Result;
use common::twins::Twins;

const OBJECTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: nginx, image: nginx, ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: single}
spec:
  replicas: 0
  selector: {matchLabels: {app: single}}
  template:
    metadata: {labels: {app: single}}
    spec:
      containers: [{name: c, image: nginx, ports: [{containerPort: 8443}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  containers: [{name: c, image: busybox, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: portless, labels: {app: portless}}
spec:
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: unlabelled}
spec:
  containers: [{name: c, image: busybox, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: front, labels: {app: front}}
spec:
  selector: {app: web}
  ports: [{port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
"#;

/// A deployment only in a file (`expose -f` uses the file's object as it is).
const GHOST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: ghost, labels: {team: a}}
spec:
  selector: {matchLabels: {app: ghost}}
  template:
    metadata: {labels: {app: ghost}}
    spec:
      containers: [{name: c, image: nginx, ports: [{containerPort: 9090}]}]
"#;

/// Several objects in one file: upstream keeps the selector, ports and labels it took from
/// the first for the others, and reports the objects it cannot expose at the end.
const SEVERAL: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {a: b}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 1}]}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c1}
---
apiVersion: v1
kind: Pod
metadata: {name: p2, labels: {a: c}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 2}, {containerPort: 3}]}]}
"#;

#[test]
fn run_creates_upstreams_pods() -> Result<()> {
    let t = Twins::new("golden-run", "")?;
    let cases: &[&[&str]] = &[
        &["run", "plain", "--image=nginx"],
        &[
            "run",
            "opts",
            "--image=busybox:1.36",
            "--port=8080",
            "--env=A=1",
            "--env=B=x=y",
            "--labels=app=x,tier=y",
            "--annotations=note=hi",
            "--restart=Never",
            "--image-pull-policy=IfNotPresent",
            "--privileged",
        ],
        &[
            "run",
            "cmd",
            "--image=busybox",
            "--restart=OnFailure",
            "--command",
            "--",
            "sh",
            "-c",
            "echo hi",
        ],
        &["run", "args", "--image=busybox", "--", "--flag", "value"],
        &["run", "extra", "--image=busybox", "one", "two"],
        &["run", "named", "--image=nginx", "-o", "name"],
        &["run", "srv", "--image=nginx", "--dry-run=server"],
        &["run", "exp", "--image=nginx", "--port=80", "--expose"],
        &["run", "plain", "--image=nginx"],
        &["run", "saved", "--image=nginx", "--save-config", "-o", "yaml"],
        &["run", "typed", "--image=nginx", "-o", "json"],
        &["run", "bare", "--image=nginx", "--dry-run"],
    ];
    for args in cases {
        t.same(args)?;
    }
    t.same_objects("pods")?;
    t.same_objects("services")?;
    Ok(())
}

#[test]
fn run_prints_and_refuses_like_upstream() -> Result<()> {
    let t = Twins::new("golden-run-dry", "")?;
    let dry = ["--dry-run=client", "-o", "yaml"];
    let with_dry = |args: &[&'static str]| -> Vec<&'static str> { args.iter().chain(dry.iter()).copied().collect() };
    let cases: Vec<Vec<&str>> = vec![
        with_dry(&["run", "dry", "--image=nginx"]),
        with_dry(&[
            "run",
            "full",
            "--image=busybox",
            "--port=70000",
            "--env=A=1",
            "-l",
            "k=v",
            "--annotations=a=b",
            "--annotations=c=",
            "--restart=Never",
            "--privileged",
            "--command",
            "--",
            "sleep",
            "10",
        ]),
        with_dry(&["run", "exp", "--image=nginx", "--port=80", "--expose"]),
        with_dry(&[
            "run",
            "over",
            "--image=nginx",
            r#"--overrides={"spec":{"nodeName":"n1"}}"#,
        ]),
        vec![
            "run",
            "json",
            "--image=nginx",
            "--port=80",
            "--env=A=1",
            "--dry-run=client",
            "-o",
            "json",
        ],
        vec!["run", "x"],
        vec!["run", "--image=nginx"],
        vec!["run", "x", "--image="],
        vec!["run", "x", "--image=Nginx"],
        vec!["run", "x", "--image=nginx", "--rm"],
        vec!["run", "x", "--image=nginx", "-t"],
        vec!["run", "x", "--image=nginx", "-i", "--dry-run=client"],
        vec!["run", "x", "--image=nginx", "--attach", "--dry-run=server"],
        vec!["run", "x", "--image=nginx", "--restart=Sometimes"],
        vec!["run", "x", "--image=nginx", "--image-pull-policy=Maybe"],
        vec!["run", "x", "--image=nginx", "--port=http"],
        vec!["run", "x", "--image=nginx", "--expose"],
        vec!["run", "x", "--image=nginx", "--env=NOVALUE"],
        vec!["run", "x", "--image=nginx", "--labels=a"],
        vec!["run", "x", "--image=nginx", "--annotations=a", "--annotations=b"],
        vec!["run", "x", "--image=nginx", "--pod-running-timeout=0s"],
        vec!["run", "x", "--image=nginx", "--dry-run=maybe"],
        vec!["run", "x", "--image=nginx", "-o", "wide"],
    ];
    for args in &cases {
        t.same(args)?;
    }
    Ok(())
}

#[test]
fn run_attach_times_out_and_removes_the_pod() -> Result<()> {
    let t = Twins::new("golden-run-attach", "")?;
    // No kubelet: the pod never runs, so both wait out the timeout; with --rm the pod goes.
    t.same(&[
        "run",
        "gone",
        "--image=busybox",
        "--attach",
        "--rm",
        "--pod-running-timeout=2s",
    ])?;
    t.same(&[
        "run",
        "-i",
        "kept",
        "--image=busybox",
        "--restart=Never",
        "--pod-running-timeout=1s",
    ])?;
    t.same_objects("pods")?;
    Ok(())
}

#[test]
fn expose_builds_upstreams_services() -> Result<()> {
    let t = Twins::new("golden-expose", OBJECTS)?;
    let dir = tempfile::tempdir()?;
    let ghost = dir.path().join("ghost.yaml");
    std::fs::write(&ghost, GHOST)?;
    let ghost = ghost.display().to_string();
    let several = dir.path().join("several.yaml");
    std::fs::write(&several, SEVERAL)?;
    let several = several.display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["expose", "deployment", "web"],
        vec!["expose", "rs", "single", "--name=single-svc", "--labels=a=b"],
        vec![
            "expose",
            "pod",
            "solo",
            "--port=80",
            "--target-port=8080",
            "--type=NodePort",
        ],
        vec![
            "expose",
            "service/front",
            "--name=front2",
            "--session-affinity=ClientIP",
        ],
        vec!["expose", "pod", "portless", "--name=headless", "--cluster-ip=None"],
        vec![
            "expose",
            "deploy",
            "web",
            "--name=dry",
            "--port=8000",
            "--protocol=UDP",
            "--external-ip=10.1.2.3",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        vec![
            "expose",
            "deploy",
            "web",
            "--name=dry-json",
            "--dry-run=client",
            "-o",
            "json",
        ],
        vec!["expose", "deploy", "web", "--name=srv", "--dry-run=server"],
        vec!["expose", "-f", &ghost, "--dry-run=client", "-o", "yaml"],
        vec!["expose", "-f", &several, "--dry-run=client", "-o", "yaml"],
        vec![
            "expose",
            "pod",
            "portless",
            "missing",
            "solo",
            "--name=many",
            "--dry-run=client",
        ],
        vec!["expose", "pod", "portless"],
        vec!["expose", "pod", "unlabelled", "--port=80"],
        vec!["expose", "configmap", "cfg", "--port=80"],
        vec!["expose", "pod", "missing", "--port=80"],
        vec!["expose", "pod", "solo", "--name=bad", "--session-affinity=Sticky"],
        vec!["expose", "deploy", "web", "--name=web-o", "-o", "name"],
        vec![
            "expose",
            "pod",
            "solo",
            "--name=saved",
            "--port=84",
            "--save-config",
            "-o",
            "name",
        ],
        vec!["expose", "pod", "solo", "--name=bare", "--port=85", "--dry-run"],
        vec!["expose"],
        vec!["expose", "pod"],
        vec!["expose", "pod", "solo", "--dry-run=maybe"],
    ];
    for args in &cases {
        t.same(args)?;
    }
    t.same_objects("services")?;
    Ok(())
}
