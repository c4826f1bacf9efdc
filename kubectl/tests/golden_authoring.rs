//! Golden tests of `create <generator>`, `edit`, `diff` and `apply --prune` / `apply -f
//! URL`, against upstream kubectl in twin namespaces (see `twins`).

mod common;

use anyhow::{Result, ensure};
use common::Output;
use common::twins::{OBJECTS, Twins, serve};

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
        with_yaml(&["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"]),
        with_yaml(&[
            "create",
            "cj",
            "never",
            "--image=busybox",
            "--schedule=@hourly",
            "--restart=Never",
        ]),
        with_yaml(&["create", "serviceaccount", "robot"]),
        with_yaml(&[
            "create",
            "rolebinding",
            "readers",
            "--clusterrole=view",
            "--user=alice",
            "--user=bob",
            "--group=team",
            "--serviceaccount=ns1:robot",
        ]),
        with_yaml(&["create", "rolebinding", "local", "--role=pod-reader"]),
        with_yaml(&[
            "create",
            "clusterrolebinding",
            "admins",
            "--clusterrole=cluster-admin",
            "--group=ops",
        ]),
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
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
            "--",
            "date",
        ],
        &["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"],
        &[
            "create",
            "cronjob",
            "bad",
            "--image=busybox",
            "--schedule=not a schedule",
        ],
        &["create", "cronjob", "noflags"],
        &["create", "cronjob", "nosched", "--image=busybox"],
        &["create", "sa", "robot"],
        &["create", "serviceaccount", "robot", "-o", "name"],
        &["create", "serviceaccount"],
        &["create", "rolebinding", "readers", "--clusterrole=view", "--user=alice"],
        &["create", "rolebinding", "readers", "--clusterrole=view", "--user=alice"],
        &["create", "rolebinding", "both", "--clusterrole=view", "--role=r"],
        &["create", "rolebinding", "neither", "--user=alice"],
        &["create", "rolebinding", "badsa", "--role=r", "--serviceaccount=robot"],
        &["create", "clusterrolebinding", "noroles"],
        &[
            "create",
            "clusterrolebinding",
            "badsa",
            "--clusterrole=view",
            "--serviceaccount=:x",
        ],
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
    // Go's struct field order in JSON, client-side and for the created objects.
    for args in [
        &[
            "create",
            "namespace",
            "mut-create-json",
            "--dry-run=client",
            "-o",
            "json",
        ][..],
        &[
            "create",
            "deployment",
            "json",
            "--image=nginx",
            "--port=80",
            "--dry-run=client",
            "-o",
            "json",
            "--",
            "sleep",
            "1",
        ],
        &[
            "create",
            "job",
            "json",
            "--image=busybox",
            "--dry-run=client",
            "-o",
            "json",
        ],
        &[
            "create",
            "configmap",
            "json",
            "--from-literal=b=2",
            "--from-literal=a=<1>",
            "--dry-run=client",
            "-o",
            "json",
        ],
        &[
            "create",
            "secret",
            "generic",
            "json",
            "--from-literal=a=1",
            "--type=Opaque",
            "--dry-run=client",
            "-o",
            "json",
        ],
        &[
            "create",
            "service",
            "nodeport",
            "json",
            "--tcp=80:8080",
            "--node-port=30080",
            "--dry-run=client",
            "-o",
            "json",
        ],
        &["create", "deployment", "typed", "--image=nginx", "-o", "json"],
        &["create", "deployment", "typed-yaml", "--image=nginx", "-o", "yaml"],
        &["create", "configmap", "typed", "--from-literal=a=1", "-o", "json"],
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
        for mut output in t.run_both(args, &[("KUBECTL_EXTERNAL_DIFF", env)], || {})? {
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
    // Applying over an object `create` made warns that the annotation will be added.
    t.same(&["create", "deployment", "made", "--image=nginx"])?;
    let made = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: made}\nspec:\n  selector: {matchLabels: {app: made}}\n  template:\n    metadata: {labels: {app: made}}\n    spec: {containers: [{name: nginx, image: nginx:2}]}\n";
    let out = t.same_with_stdin(&["apply", "-f", "-"], Some(made))?;
    assert!(
        out.stderr.starts_with("Warning: resource deployments/made is missing"),
        "{out:?}"
    );
    t.same_with_stdin(&["apply", "-f", "-"], Some(made))?;
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

/// A self-signed test certificate (P-256, `CN=kaji-test`) and its key.
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIUQOb+ze6toQ9hT8aHCAMTJHeGXkAwCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJa2FqaS10ZXN0MCAXDTI2MTEyMzA4NTU1NVoYDzIxMjYxMDMw\nMDg1NTU1WjAUMRIwEAYDVQQDDAlrYWppLXRlc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAASAgkujSEsnT2/aaIS3dv+kL/CA4kc6UHKtk1V9hbWgvk5K6eCCupSt\nHyhXIHusDk6cMhY9km3+aQ1NtQvHVl2xo1MwUTAdBgNVHQ4EFgQUOWGrPpHbH2KY\nxOZTvZnUKZzhbnMwHwYDVR0jBBgwFoAUOWGrPpHbH2KYxOZTvZnUKZzhbnMwDwYD\nVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBbQ28iINBGuX0SWsgJtIt/\nfWeUdgueMbPYdiCkeo08NAIhANErKXPwT/2ChWNaoTo+DAgvMsZ7Sj8/v9YICYeC\nbt8i\n-----END CERTIFICATE-----\n";
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEhd07J43Nxe764OE\nROBxaldI8Cmt+rmOvAuKLobkO/GhRANCAASAgkujSEsnT2/aaIS3dv+kL/CA4kc6\nUHKtk1V9hbWgvk5K6eCCupStHyhXIHusDk6cMhY9km3+aQ1NtQvHVl2x\n-----END PRIVATE KEY-----\n";

#[test]
fn create_secret_registry_and_tls_match_upstream() -> Result<()> {
    let t = Twins::new("mut-secrets", "")?;
    let dir = tempfile::tempdir()?;
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(at("tls.crt"), TEST_CERT)?;
    std::fs::write(at("tls.key"), TEST_KEY)?;
    std::fs::write(at("junk.pem"), "junk\n")?;
    std::fs::write(at("config.json"), "{\"auths\":{}}\n")?;
    let (cert, key, junk) = (
        format!("--cert={}", at("tls.crt")),
        format!("--key={}", at("tls.key")),
        at("junk.pem"),
    );
    let config = format!("--from-file=.dockerconfigjson={}", at("config.json"));
    let swapped = [format!("--cert={}", at("tls.key")), format!("--key={}", at("tls.crt"))];
    let junk_cert = format!("--cert={junk}");
    let junk_key = format!("--key={junk}");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "docker-registry",
            "reg",
            "--docker-server=r.example.com",
            "--docker-username=u",
            "--docker-password=p<&>",
            "--docker-email=e@x",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        vec![
            "docker-registry",
            "hub",
            "--docker-username=u",
            "--docker-password=p",
            "--append-hash",
            "-o",
            "name",
        ],
        vec!["docker-registry", "fromfile", &config, "--dry-run=client", "-o", "yaml"],
        vec!["docker-registry", "real", "--docker-username=u", "--docker-password=p"],
        vec!["docker-registry", "real", "--docker-username=u", "--docker-password=p"],
        vec!["docker-registry", "nouser"],
        vec!["docker-registry", "nopass", "--docker-username=u"],
        vec!["tls", "web", &cert, &key, "--dry-run=client", "-o", "yaml"],
        vec!["tls", "web", &cert, &key],
        vec!["tls", "web", &cert, &key],
        vec!["tls", "nokey", &cert],
        vec!["tls", "swapped", &swapped[0], &swapped[1]],
        vec!["tls", "junk", &junk_cert, &key],
        vec!["tls", "junk", &cert, &junk_key],
        vec!["tls", "missing", "--cert=/nonexistent/c.pem", &key],
    ];
    for case in cases {
        let mut args = vec!["create", "secret"];
        args.extend(case);
        t.same(&args)?;
    }
    let secrets = t.same_objects("secret")?;
    let types: Vec<&str> = secrets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "kubernetes.io/dockerconfigjson",
            "kubernetes.io/dockerconfigjson",
            "kubernetes.io/tls"
        ]
    );
    Ok(())
}
