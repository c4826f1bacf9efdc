//! Golden tests of `kubectl get --sort-by`: ours and upstream 1.37 against one apiserver —
//! Tables sorted by the objects behind their rows, full objects sorted across the list;
//! strings, numbers, quantities, timestamps, missing fields and bad paths.

mod common;

use anyhow::Result;
use common::Clients;

fn objects() -> String {
    let mut yaml = String::new();
    for (name, size, key) in [
        ("cm-10", "10Mi", "a1"),
        ("cm-2", "1Gi", "a10"),
        ("cm-1", "900Ki", "a2"),
        ("cm-33", "2", "v1.10"),
    ] {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{size: \"{size}\", key: \"{key}\"}}\n---\n"
        ));
    }
    yaml.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bare}\n---\n");
    yaml.push_str("apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n---\n");
    for (name, replicas) in [("web", 10), ("api", 2), ("db", 1)] {
        yaml.push_str(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: nginx}}]}}\n---\n"
        ));
    }
    yaml
}

#[test]
fn sort_by_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-sort")?;
    clients.apply_with(&clients.upstream, &objects())?.ok()?;
    let by_size = clients.same(&["get", "cm", "--sort-by=.data.size", "-o", "name"])?;
    assert_eq!(
        by_size.stdout,
        "configmap/bare\nconfigmap/cm-33\nconfigmap/cm-1\nconfigmap/cm-10\nconfigmap/cm-2\n"
    );
    for args in [
        &["get", "cm", "--sort-by=.data.size"][..],
        &["get", "cm", "--sort-by={.data.key}"],
        &["get", "cm", "--sort-by=metadata.name"],
        &["get", "cm", "--sort-by=.data.key", "-o", "json"],
        &[
            "get",
            "cm",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "custom-columns=N:.metadata.name",
        ],
        &["get", "deploy", "--sort-by=.spec.replicas"],
        &["get", "deploy", "--sort-by=.spec.replicas", "-o", "name"],
        &["get", "cm,deploy", "--sort-by=.metadata.name", "-o", "name"],
        &["get", "cm,deploy", "--sort-by=.metadata.name"],
        &["get", "cm,secret", "--sort-by=.kind"],
        &["get", "cm", "--sort-by=.nope"],
        &["get", "cm", "--sort-by=.nope", "-o", "yaml"],
        &["get", "cm", "cm-1", "--sort-by=.nope"],
        &["get", "cm", "cm-1", "--sort-by=.nope", "-o", "name"],
        &["get", "cm", "cm-1", "cm-2", "--sort-by=.metadata.name", "-o", "name"],
        &["get", "cm", "cm-1", "cm-2", "--sort-by=.metadata.name"],
        &["get", "cm", "--sort-by={.metadata.name"],
        &["get", "cm", "--sort-by={.metadata.name", "-o", "name"],
    ] {
        clients.same(args)?;
    }
    Ok(())
}
