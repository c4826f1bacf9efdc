//! Golden tests of `kubectl cordon`, `uncordon` and `drain`: ours and upstream 1.37 against
//! one apiserver (no kubelets, so pods are evicted with `--grace-period=0`, or stay
//! terminating to show the timeout). Each client drains its own copy of the world: nodes
//! named after the test namespace and its twin, holding a DaemonSet pod, a pod with no
//! controller, a ReplicaSet pod with an emptyDir and a plain ReplicaSet pod. Upstream evicts
//! concurrently, so drain outputs are compared as sorted lines.

mod common;

use anyhow::{Result, ensure};
use common::{Clients, Output, normalise};
use serde_json::{Value, json};

/// Nodes `<ns>-a` (with the pods) and `<ns>-b` (one controller-less pod), labelled
/// `pool=<ns>`.
fn build_world(clients: &Clients, namespace: &str) -> Result<()> {
    let create = |object: Value, ns: Option<&str>| -> Result<()> {
        let text = object.to_string();
        let mut args = vec!["create", "-f", "-"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        clients.run(&clients.upstream, &args, Some(&text))?.ok()?;
        Ok(())
    };
    for node in ["a", "b"] {
        create(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("{namespace}-{node}"), "labels": {"pool": namespace}}}),
            None,
        )?;
    }
    let template =
        json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    create(
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
               "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}}),
        Some(namespace),
    )?;
    create(
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": template}}),
        Some(namespace),
    )?;
    let uid = |what: &str| -> Result<String> {
        Ok(clients
            .upstream(&["-n", namespace, "get", what, "-o", "jsonpath={.metadata.uid}"])?
            .ok()?
            .stdout)
    };
    let owner = |kind: &str, name: &str, uid: String| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
    let pod = |name: &str, node: &str, owners: Value, volumes: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": {"app": "x"}, "ownerReferences": owners},
               "spec": {"nodeName": format!("{namespace}-{node}"), "volumes": volumes,
                        "containers": [{"name": "c", "image": "busybox"}]}})
    };
    let (ds, rs) = (uid("ds/agent")?, uid("rs/rs")?);
    let scratch = json!([{"name": "scratch", "emptyDir": {}}]);
    for object in [
        pod("agent-x", "a", owner("DaemonSet", "agent", ds), json!([])),
        pod("lonely", "a", json!([]), json!([])),
        pod("rs-x", "a", owner("ReplicaSet", "rs", rs.clone()), scratch),
        pod("rs-y", "a", owner("ReplicaSet", "rs", rs), json!([])),
        pod("elsewhere", "b", json!([]), json!([])),
    ] {
        create(object, Some(namespace))?;
    }
    Ok(())
}

/// Runs `args` with upstream on the test namespace's nodes (`NODE` in an argument becomes
/// `<ns>`) and with ours on the twin's, and asserts the same output up to the names, as
/// sorted lines.
fn same_drain(clients: &Clients, twin: &str, args: &[&str]) -> Result<Output> {
    let run = |binary, ns: &str| -> Result<Output> {
        let args: Vec<String> = args.iter().map(|a| a.replace("NODE", ns)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut output = normalise(clients.run(binary, &args, None)?);
        for text in [&mut output.stdout, &mut output.stderr] {
            let mut lines: Vec<String> = text.lines().map(warning_groups_sorted).collect();
            lines.sort();
            *text = lines.join("\n").replace(twin, &clients.namespace);
        }
        Ok(output)
    };
    let upstream = run(&clients.upstream, &clients.namespace)?;
    let ours = run(&clients.ours, twin)?;
    ensure!(
        ours == upstream,
        "kubectl {}:\n--- upstream:\n{upstream:#?}\n--- ours:\n{ours:#?}",
        args.join(" ")
    );
    Ok(ours)
}

/// Upstream joins the warning groups (`ignoring DaemonSet-managed Pods: ..; deleting Pods that
/// declare no controller: ..`) and the errors of `unable to drain node "x" due to error: [..]`
/// in Go map order, which changes from run to run: compare them sorted.
fn warning_groups_sorted(line: &str) -> String {
    if let Some(groups) = line.strip_prefix("Warning: ") {
        let mut groups: Vec<&str> = groups.split("; ").collect();
        groups.sort();
        return format!("Warning: {}", groups.join("; "));
    }
    if let Some((head, rest)) = line.split_once("due to error: [")
        && let Some((errors, tail)) = rest.rsplit_once(']')
    {
        let mut errors: Vec<&str> = errors.split(", ").collect();
        errors.sort();
        return format!("{head}due to error: [{}]{tail}", errors.join(", "));
    }
    line.to_string()
}

/// The world in the test namespace and in a twin namespace (returned).
fn twin_worlds(clients: &Clients) -> Result<String> {
    let twin = format!("{}-twin", clients.namespace);
    clients.upstream(&["create", "namespace", &twin])?.ok()?;
    build_world(clients, &clients.namespace)?;
    build_world(clients, &twin)?;
    Ok(twin)
}

fn cleanup(clients: &Clients, twin: &str) -> Result<()> {
    for ns in [clients.namespace.as_str(), twin] {
        clients
            .upstream(&["delete", "nodes", "-l", &format!("pool={ns}"), "--wait=false"])?
            .ok()?;
    }
    Ok(())
}

#[test]
fn cordon_and_uncordon_match_upstream() -> Result<()> {
    let clients = Clients::new("golden-cordon")?;
    let twin = twin_worlds(&clients)?;
    let cordoned = same_drain(&clients, &twin, &["cordon", "NODE-a"])?;
    assert_eq!(cordoned.stdout, format!("node/{}-a cordoned", clients.namespace));
    same_drain(&clients, &twin, &["cordon", "NODE-a"])?;
    same_drain(&clients, &twin, &["cordon", "-l", "pool=NODE", "--dry-run=client"])?;
    same_drain(&clients, &twin, &["cordon", "-l", "pool=NODE", "--dry-run=server"])?;
    same_drain(&clients, &twin, &["uncordon", "NODE-a", "NODE-b"])?;
    same_drain(&clients, &twin, &["uncordon", "-l", "pool=NODE"])?;
    same_drain(&clients, &twin, &["cordon", "NODE-nope"])?;
    same_drain(&clients, &twin, &["cordon"])?;
    same_drain(&clients, &twin, &["uncordon"])?;
    for ns in [clients.namespace.as_str(), twin.as_str()] {
        let node = clients.upstream(&["get", "node", &format!("{ns}-a"), "-o", "jsonpath={.spec}"])?;
        assert_eq!(node.stdout, "{}", "{ns}-a is schedulable again");
    }
    cleanup(&clients, &twin)
}

#[test]
fn drain_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-drain")?;
    let twin = twin_worlds(&clients)?;
    let refused = same_drain(&clients, &twin, &["drain", "NODE-a"])?;
    assert_eq!(refused.code, 1);
    same_drain(
        &clients,
        &twin,
        &["drain", "NODE-a", "--ignore-daemonsets", "--delete-emptydir-data"],
    )?;
    same_drain(&clients, &twin, &["drain", "NODE-a", "--pod-selector=app=none"])?;
    same_drain(
        &clients,
        &twin,
        &["drain", "NODE-a", "--ignore-daemonsets", "--force", "--dry-run=client"],
    )?;
    same_drain(
        &clients,
        &twin,
        &[
            "drain",
            "-l",
            "pool=NODE",
            "--force",
            "--ignore-daemonsets",
            "--dry-run=server",
        ],
    )?;
    // No kubelet confirms a graceful deletion: the pod stays terminating past the timeout.
    same_drain(&clients, &twin, &["drain", "NODE-b", "--force", "--timeout=2s"])?;
    let drained = same_drain(
        &clients,
        &twin,
        &[
            "drain",
            "NODE-a",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
            "--grace-period=0",
        ],
    )?;
    assert!(drained.stdout.contains("pod/rs-x evicted"), "{}", drained.stdout);
    for ns in [clients.namespace.as_str(), twin.as_str()] {
        let pods = clients.upstream(&["-n", ns, "get", "pods", "-o", "name"])?.ok()?;
        assert_eq!(
            pods.stdout, "pod/agent-x\npod/elsewhere\n",
            "only the DaemonSet pod and the terminating one stay"
        );
    }
    same_drain(&clients, &twin, &["drain", "NODE-a", "--ignore-daemonsets"])?;
    same_drain(&clients, &twin, &["drain", "NODE-nope"])?;
    same_drain(&clients, &twin, &["drain"])?;
    cleanup(&clients, &twin)
}

/// `--disable-eviction` deletes the pods instead, through the typed core client: a DELETE with
/// a protobuf DeleteOptions body (`v1`/`DeleteOptions`).
#[test]
fn drain_without_eviction_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-drain-delete")?;
    let twin = twin_worlds(&clients)?;
    let drained = same_drain(
        &clients,
        &twin,
        &[
            "drain",
            "NODE-a",
            "--disable-eviction",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
            "--grace-period=0",
        ],
    )?;
    ensure!(drained.code == 0, "{drained:#?}");
    assert!(drained.stdout.contains("pod/rs-x deleted"), "{}", drained.stdout);
    for ns in [clients.namespace.as_str(), twin.as_str()] {
        let pods = clients.upstream(&["-n", ns, "get", "pods", "-o", "name"])?.ok()?;
        assert_eq!(pods.stdout, "pod/agent-x\npod/elsewhere\n");
    }
    cleanup(&clients, &twin)
}
