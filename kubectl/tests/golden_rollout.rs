//! Golden tests of `kubectl rollout`: ours and upstream 1.37 against one apiserver (no
//! controllers), on worlds the tests build the way the controllers would have: a Deployment
//! with ReplicaSets carrying revision annotations and controller references, a DaemonSet and
//! a StatefulSet with ControllerRevisions, and statuses written through the status
//! subresource.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use common::Clients;
use common::twins::Twins;
use serde_json::{Value, json};

/// The Deployment `web` (revision 2, running `nginx:1.2`) with ReplicaSets for revisions 1
/// (`nginx:1.1`, with a change cause) and 2, a DaemonSet `agent` and a StatefulSet `db`, each
/// with ControllerRevisions 1 (`busybox:1`) and 2 (`busybox:2`, the current template).
fn build_world(clients: &Clients, namespace: &str) -> Result<()> {
    let create = |object: &Value| -> Result<()> {
        let text = serde_json::to_string(object)?;
        clients
            .run(&clients.upstream, &["-n", namespace, "create", "-f", "-"], Some(&text))?
            .ok()?;
        Ok(())
    };
    let uid_of = |what: &str| -> Result<String> {
        let out = clients
            .upstream(&["-n", namespace, "get", what, "-o", "jsonpath={.metadata.uid}"])?
            .ok()?;
        Ok(out.stdout)
    };
    let owner = |kind: &str, name: &str, uid: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    create(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.2", "ports": [{"containerPort": 80}]}]}}}
    }))?;
    let uid = uid_of("deploy/web")?;
    for revision in 1..=2 {
        let hash = format!("h{revision}");
        let cause = if revision == 1 { "kubectl set image first" } else { "" };
        create(&json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{hash}"), "labels": {"app": "web", "pod-template-hash": hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision.to_string(), "kubernetes.io/change-cause": cause},
                         "ownerReferences": owner("Deployment", "web", &uid)},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash}},
                     "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": hash}},
                                  "spec": {"containers": [{"name": "nginx", "image": format!("nginx:1.{revision}"), "ports": [{"containerPort": 80}]}]}}}
        }))?;
    }
    // An unrelated ReplicaSet the Deployment's selector matches but that it does not control.
    create(&json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "stray", "annotations": {"deployment.kubernetes.io/revision": "7"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:9"}]}}}
    }))?;
    for (kind, name, extra) in [
        ("DaemonSet", "agent", json!({})),
        ("StatefulSet", "db", json!({"serviceName": "db", "replicas": 2})),
    ] {
        let mut spec = json!({"selector": {"matchLabels": {"app": name}},
                              "template": {"metadata": {"labels": {"app": name}},
                                           "spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}});
        for (key, value) in extra.as_object().into_iter().flatten() {
            spec[key] = value.clone();
        }
        create(&json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}))?;
        let uid = uid_of(&format!("{kind}/{name}"))?;
        let current = clients
            .upstream(&["-n", namespace, "get", &format!("{kind}/{name}"), "-o", "json"])?
            .ok()?;
        let current: Value = serde_json::from_str(&current.stdout)?;
        for revision in 1..=2 {
            let mut template = current["spec"]["template"].clone();
            template["spec"]["containers"][0]["image"] = format!("busybox:{revision}").into();
            template["$patch"] = "replace".into();
            let cause = if revision == 2 { "second" } else { "" };
            create(&json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": format!("{name}-r{revision}"), "labels": {"app": name},
                             "annotations": {"kubernetes.io/change-cause": cause},
                             "ownerReferences": owner(kind, name, &uid)},
                "revision": revision,
                "data": {"spec": {"template": template}}
            }))?;
        }
    }
    Ok(())
}

/// Writes `status` through the status subresource.
fn set_status(clients: &Clients, namespace: &str, what: &str, status: Value) -> Result<()> {
    let patch = json!({ "status": status }).to_string();
    clients
        .upstream(&[
            "-n",
            namespace,
            "patch",
            what,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ])?
        .ok()?;
    Ok(())
}

/// The test namespace and a twin, each holding the same world.
fn twin_world(prefix: &str) -> Result<Twins> {
    let twins = Twins::new(prefix, "")?;
    build_world(&twins.clients, &twins.clients.namespace)?;
    build_world(&twins.clients, &twins.twin)?;
    Ok(twins)
}

#[test]
fn rollout_history_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-history")?;
    build_world(&clients, &clients.namespace)?;
    let table = clients.same(&["rollout", "history", "deploy/web"])?;
    assert_eq!(
        table.stdout,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         kubectl set image first\n2         <none>\n\n"
    );
    let revision = clients.same(&["rollout", "history", "deployment", "web", "--revision=1"])?;
    assert!(revision.stdout.contains("nginx:1.1"), "{}", revision.stdout);
    clients.same(&["rollout", "history", "deploy/web", "--revision=5"])?;
    clients.same(&["rollout", "history", "deploy/web", "--revision=-1"])?;
    clients.same(&["rollout", "history", "deploy"])?;
    clients.same(&["rollout", "history", "deploy", "-l", "app=web"])?;
    clients.same(&["rollout", "history", "ds/agent"])?;
    clients.same(&["rollout", "history", "ds/agent", "--revision=1"])?;
    clients.same(&["rollout", "history", "statefulset/db"])?;
    clients.same(&["rollout", "history", "sts/db", "--revision=2"])?;
    clients.same(&["rollout", "history", "deploy/web", "deploy/nope", "sts/db"])?;
    clients.same(&["rollout", "history", "rs/stray"])?;
    clients.same(&["rollout", "history", "cm/x"])?;
    clients.same(&["rollout", "history"])?;
    Ok(())
}

#[test]
fn rollout_status_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-status")?;
    build_world(&clients, &clients.namespace)?;
    let ns = clients.namespace.clone();
    clients.same(&["rollout", "status", "deploy/web", "--watch=false"])?;
    let steps = [
        json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}),
        json!({"observedGeneration": 1, "replicas": 4, "updatedReplicas": 3}),
        json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}),
    ];
    for status in steps {
        set_status(&clients, &ns, "deploy/web", status)?;
        clients.same(&["rollout", "status", "deploy/web", "-w=false"])?;
    }
    let timeout = clients.same(&["rollout", "status", "deploy/web", "--timeout=1s"])?;
    assert_eq!(timeout.stderr, "error: timed out waiting for the condition\n");
    clients.same(&["rollout", "status", "deploy/web", "--revision=1", "--watch=false"])?;
    set_status(
        &clients,
        &ns,
        "deploy/web",
        json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
    )?;
    let done = clients.same(&["rollout", "status", "deploy/web", "--revision=2"])?;
    assert_eq!(done.stdout, "deployment \"web\" successfully rolled out\n");
    set_status(
        &clients,
        &ns,
        "deploy/web",
        json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
    )?;
    clients.same(&["rollout", "status", "deploy/web"])?;

    clients.same(&["rollout", "status", "ds/agent", "-w=false"])?;
    set_status(
        &clients,
        &ns,
        "ds/agent",
        json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 1}),
    )?;
    clients.same(&["rollout", "status", "ds/agent", "-w=false"])?;
    clients.same(&["rollout", "status", "sts/db", "-w=false"])?;
    set_status(
        &clients,
        &ns,
        "sts/db",
        json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentReplicas": 2, "currentRevision": "db-r2", "updateRevision": "db-r2"}),
    )?;
    clients.same(&["rollout", "status", "sts/db"])?;
    clients.same(&["rollout", "status", "rs/stray"])?;
    clients.same(&["rollout", "status", "cm/x"])?;
    clients.same(&["rollout", "status"])?;
    clients.same(&["rollout", "status", "deploy/web", "--revision=-2"])?;
    Ok(())
}

#[test]
fn rollout_undo_matches_upstream() -> Result<()> {
    let twins = twin_world("golden-undo")?;
    let skipped = twins.same(&["rollout", "undo", "deploy/web", "--to-revision=2"])?;
    assert_eq!(
        skipped.stdout,
        "deployment.apps/web skipped rollback (current template already matches revision 2)\n"
    );
    twins.same(&["rollout", "undo", "deploy/web", "--to-revision=9"])?;
    twins.same(&["rollout", "undo", "deploy/web", "--dry-run=client"])?;
    twins.same(&["rollout", "undo", "deploy/web", "--dry-run=server"])?;
    let undone = twins.same(&["rollout", "undo", "deploy/web"])?;
    assert_eq!(undone.stdout, "deployment.apps/web rolled back\n");
    twins.same_objects("deploy/web")?;
    twins.same(&["rollout", "undo", "ds/agent", "--dry-run=client"])?;
    twins.same(&["rollout", "undo", "daemonset/agent"])?;
    twins.same_objects("ds/agent")?;
    twins.same(&["rollout", "undo", "sts/db", "--to-revision=1"])?;
    twins.same_objects("sts/db")?;
    twins.same(&["rollout", "undo", "sts/db", "--to-revision=3"])?;
    twins.same(&["rollout", "undo", "rs/stray", "cm/nope"])?;
    twins.same(&["rollout", "pause", "deploy/web"])?;
    twins.same(&["rollout", "undo", "deploy/web", "--to-revision=1"])?;
    Ok(())
}

#[test]
fn rollout_restart_pause_and_resume_match_upstream() -> Result<()> {
    let twins = twin_world("golden-restart")?;
    let paused = twins.same(&["rollout", "pause", "deploy/web"])?;
    assert_eq!(paused.stdout, "deployment.apps/web paused\n");
    twins.same(&["rollout", "pause", "deploy/web"])?;
    twins.same(&["rollout", "restart", "deploy/web"])?;
    twins.same_objects("deploy/web")?;
    twins.same(&["rollout", "resume", "deploy/web"])?;
    twins.same(&["rollout", "resume", "deploy/web"])?;
    twins.same_objects("deploy/web")?;
    let restarted = twins.same(&["rollout", "restart", "deploy", "-l", "app=web"])?;
    assert_eq!(restarted.stdout, "deployment.apps/web restarted\n");
    twins.same_objects("deploy/web")?;
    twins.same(&["rollout", "restart", "ds/agent", "sts/db"])?;
    twins.same_objects("ds/agent")?;
    twins.same(&["rollout", "restart", "deploy", "-l", "app=none"])?;
    twins.same(&["rollout", "pause", "ds/agent", "cm/nope"])?;
    twins.same(&["rollout", "resume", "rs/stray"])?;
    twins.same(&["rollout", "restart", "rs/stray"])?;
    twins.same(&["rollout", "restart"])?;
    Ok(())
}

/// Both clients watch one Deployment while the test moves its status through a rollout:
/// every step is printed, and both stop at the same message.
#[test]
fn rollout_status_follows_a_rollout_like_upstream() -> Result<()> {
    let clients = Clients::new("golden-follow")?;
    build_world(&clients, &clients.namespace)?;
    let ns = clients.namespace.clone();
    set_status(
        &clients,
        &ns,
        "deploy/web",
        json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}),
    )?;
    let spawn = |binary: &std::path::PathBuf| {
        Command::new(binary)
            .arg("--kubeconfig")
            .arg(&clients.kubeconfig)
            .args(["-n", &ns, "rollout", "status", "deploy/web", "--timeout=30s"])
            .env("KUBECTL_KUBERC", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let upstream = spawn(&clients.upstream)?;
    let ours = spawn(&clients.ours)?;
    std::thread::sleep(Duration::from_secs(3));
    for status in [
        json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
        json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
    ] {
        set_status(&clients, &ns, "deploy/web", status)?;
        std::thread::sleep(Duration::from_millis(500));
    }
    let upstream = upstream.wait_with_output()?;
    let ours = ours.wait_with_output()?;
    let expected = "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n\
                    Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...\n\
                    deployment \"web\" successfully rolled out\n";
    assert_eq!(String::from_utf8_lossy(&upstream.stdout), expected);
    assert_eq!(String::from_utf8_lossy(&ours.stdout), expected);
    assert_eq!(ours.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&ours.stderr), "");
    Ok(())
}
