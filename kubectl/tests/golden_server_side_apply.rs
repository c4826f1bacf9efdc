//! Golden tests of `apply --server-side` against upstream kubectl in twin namespaces (see
//! `twins`): create, re-apply, a conflict with the field manager of `scale`, forcing, and the
//! managedFields both clients leave behind.

mod common;

use anyhow::{Result, ensure};
use common::twins::Twins;
use serde_json::Value;

/// The managedFields of `what` in both namespaces, which must agree up to their times. The
/// server orders entries by the second they were written in, so they are compared sorted.
fn same_owners(t: &Twins, what: &str) -> Result<Vec<Value>> {
    let owners = |ns: &str| -> Result<Vec<Value>> {
        let out = t
            .clients
            .upstream(&["-n", ns, "get", what, "-o", "json", "--show-managed-fields"])?
            .ok()?;
        let object: Value = serde_json::from_str(&out.stdout)?;
        let mut entries = object["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for entry in &mut entries {
            entry.as_object_mut().map(|e| e.remove("time"));
        }
        entries.sort_by_key(|e| e.to_string());
        Ok(entries)
    };
    let (upstream, ours) = (owners(&t.clients.namespace)?, owners(&t.twin)?);
    ensure!(
        upstream == ours,
        "{what} owners differ:\nupstream: {upstream:#?}\nours: {ours:#?}"
    );
    Ok(ours)
}

const WEB: &str = r#"
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
"#;

#[test]
fn server_side_apply_matches_upstream() -> Result<()> {
    let t = Twins::new("mut-ssa", "")?;
    let apply = ["apply", "--server-side", "-f", "-"];
    let created = t.same_with_stdin(&apply, Some(WEB))?;
    ensure!(
        created.stdout == "deployment.apps/web serverside-applied\n",
        "{created:?}"
    );
    t.same_with_stdin(&apply, Some(WEB))?;
    t.same_with_stdin(&["apply", "--server-side", "--dry-run=server", "-f", "-"], Some(WEB))?;

    // `scale` writes spec.replicas as manager "kubectl" through /scale: a conflict for apply.
    t.same(&["scale", "deployment/web", "--replicas=3"])?;
    let conflict = t.same_with_stdin(&apply, Some(WEB))?;
    ensure!(
        conflict.code != 0
            && conflict.stderr.contains(
                "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
            ),
        "{conflict:?}"
    );
    t.same_with_stdin(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(WEB))?;
    // Agreeing with the values kubectl applied: shared ownership, no conflict.
    t.same_with_stdin(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(WEB),
    )?;

    // The owners both clients leave behind, and the objects themselves.
    let owners = same_owners(&t, "deployment/web")?;
    ensure!(owners.iter().any(|e| e["manager"] == "other"), "{owners:?}");
    t.same_objects("deployment/web")?;
    Ok(())
}

/// A client-side applied object taken over by server-side apply: kubectl moves the
/// last-applied fields to its Apply entry (its managedFields migration).
#[test]
fn server_side_apply_takes_over_client_side_apply_like_upstream() -> Result<()> {
    let t = Twins::new("mut-ssa-csa", "")?;
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n  size: big\n";
    t.same_with_stdin(&["apply", "-f", "-"], Some(settings))?;
    let smaller = settings.replace("  size: big\n", "");
    t.same_with_stdin(&["apply", "--server-side", "-f", "-"], Some(&smaller))?;
    let owners = same_owners(&t, "configmap/settings")?;
    ensure!(
        owners
            .iter()
            .map(|e| e["manager"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            == ["kubectl", "kubectl-last-applied"],
        "{owners:?}"
    );
    let objects = t.same_objects("configmap/settings")?;
    ensure!(objects["data"] == serde_json::json!({"color": "blue"}), "{objects}");
    Ok(())
}
