//! Golden tests of `label`, `annotate`, `patch`, `replace` and `set image|env`, against
//! upstream kubectl in twin namespaces (see `twins`).

mod common;

use anyhow::Result;
use common::twins::{OBJECTS, Twins};

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
    t.same_with_stdin(
        &["set", "env", "deploy/web", "-", "LAST=1", "-c", "nginx"],
        Some("FROM_STDIN=a # note\nB=x=y\n"),
    )?;
    let deployments = t.same_objects("deploy")?;
    let env = &deployments[0]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "B" && e["value"] == "x=y"),
        "{env:#}"
    );
    let containers = &deployments[0]["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.30", "{containers:#}");
    assert_eq!(containers[1]["image"], "busybox:1.37", "{containers:#}");
    Ok(())
}
