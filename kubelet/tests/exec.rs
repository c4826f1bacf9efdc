//! `kubectl exec` and `kubectl cp` end to end: kubectl → the apiserver's `pods/exec` proxy →
//! the kubelet's WebSocket (`v5.channel.k8s.io`) → a process in the container. Every scenario
//! runs with both clients, the real upstream kubectl and ours (`kubectl/`), which must give
//! the same results. Upstream kubectl's SPDY fallback is driven too.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Node1, Seen, clients, container_state, kubectl, kubectl_with_env, phase, processes, seen, text};
use serde_json::json;
use tokio::process::Command;

/// Drives `kubectl exec -it` on a pseudo-terminal of 50x132 (after [`common::PTY_PRELUDE`]):
/// `stty size` in the container shell shows it, then the terminal is resized to 60x100 and
/// `stty size` shows that, and `exit 3` ends the session. Prints kubectl's exit code.
const PTY_SCENARIO: &str = r#"
kubeconfig, pod, kubectl = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = spawn([kubectl, '--kubeconfig', kubeconfig, 'exec', '-it', pod, '-c', 'main', '--', 'sh'], 50, 132)
expect(b'# ')
os.write(fd, b'stty size\r')
expect(b'50 132')
setsize(fd, 60, 100)
os.kill(pid, 28)
expect(b'60 100', retry=b'stty size\r')
os.write(fd, b'exit 3\r')
print(finish())
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_exec_runs_commands_in_containers() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "shell"},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "main", "image": node.image, "command": ["sleep", "3600"],
                     "env": [{"name": "WHO", "value": "main"}]},
                    {"name": "second", "image": node.image, "command": ["sleep", "3600"],
                     "env": [{"name": "WHO", "value": "second"}]},
                    {"name": "done", "image": node.image, "command": ["true"]},
                ],
            },
        }),
    )
    .await;
    node.wait_pod("default", "shell", "main and second running, done exited", |p| {
        let running = |c: &str| container_state(p, c).state.is_some_and(|s| s.running.is_some());
        let exited = container_state(p, "done").state.is_some_and(|s| s.terminated.is_some());
        phase(p) == "Running" && running("main") && running("second") && exited
    })
    .await;

    let mut seen = Vec::new();
    for (n, client) in clients().iter().enumerate() {
        seen.push(scenarios(&node, client, n).await);
    }
    // Messages and exit codes of the failures, byte for byte the same.
    assert_eq!(seen[0], seen[1], "upstream (left) and ours (right) differ");
}

/// Everything `exec` and `cp` must do, run with one client; returns what it printed for
/// commands whose output is deterministic, to compare the clients.
/// `n` keeps each client's files in the pod apart.
async fn scenarios(node: &Node1, client: &Path, n: usize) -> Vec<Seen> {
    let mut compared = Vec::new();
    // stdout, the default container (the first) and its hostname.
    let out = kubectl(client, node, &["exec", "shell", "--", "cat", "/etc/hostname"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "shell\n");

    // stdout and stderr stay apart; argv elements keep their spaces.
    let out = kubectl(
        client,
        node,
        &[
            "exec",
            "shell",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "echo out $WHO; echo err >&2",
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out main\n");
    assert_eq!(text(&out.stderr), "err\n");

    // -c picks the container.
    let out = kubectl(
        client,
        node,
        &["exec", "shell", "-c", "second", "--", "sh", "-c", "echo $WHO"],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "second\n");

    // The exit code propagates.
    let out = kubectl(
        client,
        node,
        &["exec", "shell", "-c", "main", "--", "sh", "-c", "exit 7"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("command terminated with exit code 7"),
        "{}",
        text(&out.stderr)
    );

    // stdin is piped and closed at its end (v5 close signal).
    let out = kubectl(
        client,
        node,
        &["exec", "-i", "shell", "-c", "main", "--", "cat"],
        Some(b"hi\n"),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = kubectl(
        client,
        node,
        &["exec", "-i", "shell", "-c", "main", "--", "wc", "-c"],
        Some(&big),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "300000");

    // `kubectl cp` both ways (tar through exec's stdin and stdout): 10 MiB, same checksum.
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("big.bin");
    let payload: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&local, &payload).expect("writing the local file");
    let local_name = local.display().to_string();
    let remote = format!("/tmp/big-{n}.bin");
    let remote_spec = format!("shell:{remote}");
    let out = kubectl(client, node, &["cp", &local_name, &remote_spec, "-c", "main"], None).await;
    assert!(out.status.success(), "cp to the pod: {}", text(&out.stderr));
    let out = kubectl(
        client,
        node,
        &["exec", "shell", "-c", "main", "--", "sha256sum", &remote],
        None,
    )
    .await;
    let local_sum = Command::new("sha256sum").arg(&local).output().await.expect("sha256sum");
    let first_word = |b: &[u8]| text(b).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(
        first_word(&out.stdout),
        first_word(&local_sum.stdout),
        "checksum in the pod"
    );
    let back = dir.path().join("back.bin");
    let back_name = back.display().to_string();
    let out = kubectl(client, node, &["cp", &remote_spec, &back_name, "-c", "main"], None).await;
    assert!(out.status.success(), "cp from the pod: {}", text(&out.stderr));
    assert!(
        std::fs::read(&back).expect("copied back") == payload,
        "the file came back unchanged"
    );

    // A directory with a subdirectory and a symlink, both ways: the same tree comes back,
    // the symlink skipped with upstream's warning.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::write(tree.join("a.txt"), "a\n").expect("write");
    std::fs::write(tree.join("sub/b.txt"), "b\n").expect("write");
    std::os::unix::fs::symlink("a.txt", tree.join("link")).expect("symlink");
    let tree_name = tree.display().to_string();
    let out = kubectl(
        client,
        node,
        &["cp", &tree_name, &format!("shell:/tmp/tree-{n}"), "-c", "main"],
        None,
    )
    .await;
    assert!(out.status.success(), "cp a directory to the pod: {}", text(&out.stderr));
    let out = kubectl(
        client,
        node,
        &[
            "exec",
            "shell",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            &format!("cd /tmp/tree-{n} && cat a.txt sub/b.txt && readlink link"),
        ],
        None,
    )
    .await;
    assert_eq!(text(&out.stdout), "a\nb\na.txt\n", "{}", text(&out.stderr));
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(client)
        .current_dir(home.path())
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(["cp", &format!("shell:/tmp/tree-{n}"), "copy", "-c", "main"])
        .output()
        .await
        .expect("kubectl cp");
    assert!(
        out.status.success(),
        "cp a directory from the pod: {}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("copy/sub/b.txt"))
            .ok()
            .as_deref(),
        Some("b\n")
    );
    assert!(!home.path().join("copy/link").exists(), "symlinks are skipped");
    assert!(
        text(&out.stderr).starts_with(&format!(
            r#"warning: skipping symlink: "copy/link" -> "a.txt" (consider using "kubectl exec -n "" "shell" -- tar cf - "/tmp/tree-{n}" | tar xf -")"#
        )),
        "{}",
        text(&out.stderr)
    );
    // The remote tar's note about the leading `/` is passed on (on stdout, like upstream).
    assert_eq!(text(&out.stdout), "tar: removing leading '/' from member names\n");

    // Deterministic answers, compared across the clients: errors and their exit codes, the
    // default container's note, the exit code of the command.
    let cases: &[&[&str]] = &[
        // A container the pod does not have.
        &["exec", "shell", "-c", "nope", "--", "true"],
        // A container that is not running: the kubelet's upstream message.
        &["exec", "shell", "-c", "done", "--", "true"],
        // A command that does not exist: an error, not a hang.
        &["exec", "shell", "-c", "main", "--", "/no/such/binary"],
        &["exec", "shell", "-c", "main", "--", "sh", "-c", "exit 7"],
        &["exec", "shell", "--", "sh", "-c", "echo $WHO"],
        &["exec", "-q", "shell", "--", "sh", "-c", "echo $WHO"],
        &["exec", "-t", "shell", "-c", "main", "--", "echo", "no terminal"],
        &["exec", "-ti", "shell", "-c", "main", "--", "echo", "no terminal"],
        &["exec", "shell", "echo", "old form"],
        &["exec", "shell"],
        &["exec", "nosuch", "--", "true"],
        &["exec", "deploy/nosuch", "--", "true"],
        &["cp", "shell:/tmp/tree/a.txt", "shell:/tmp/x"],
        &["cp", "/no/such/file", "shell:/tmp/x", "-c", "main"],
        &["cp", "shell:", "x"],
        &["cp", "a/b/c:x", "y"],
        &["cp", "x", "y"],
        &["cp", "x"],
    ];
    for args in cases {
        let out = kubectl(client, node, args, None).await;
        compared.push(seen(args, &out));
    }
    let out = kubectl(client, node, &["exec", "shell", "-c", "done", "--", "true"], None).await;
    assert!(
        text(&out.stderr).contains(r#"unable to upgrade connection: container not found ("done")"#),
        "{}",
        text(&out.stderr)
    );
    // The process is killed when the client goes away.
    let kubeconfig = node.apiserver.kubeconfig();
    killed_with_its_client(
        node,
        client,
        &[],
        &["exec", "shell", "-c", "main", "--", "sleep", "4321"],
    )
    .await;

    // An interactive shell on a terminal, resized while it runs.
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("python3")
            .args(["-c", &format!("{}{PTY_SCENARIO}", common::PTY_PRELUDE)])
            .arg(&kubeconfig)
            .arg("shell")
            .arg(client)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the terminal session timed out")
    .expect("running python3");
    assert!(
        out.status.success(),
        "{} after {:?}: {}\n{}",
        client.display(),
        started.elapsed(),
        text(&out.stderr),
        node.kubelet.log_tail()
    );
    assert_eq!(text(&out.stdout).trim(), "3", "{}", text(&out.stderr));
    compared
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_exec_over_the_spdy_fallback() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "shell"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": node.image, "command": ["sleep", "3600"]}],
            },
        }),
    )
    .await;
    node.wait_pod("default", "shell", "running", |p| phase(p) == "Running")
        .await;
    // Upstream kubectl speaks SPDY/3.1 (its fallback) with WebSockets turned off.
    let client = testkit::upstream_kubectl().expect("upstream kubectl");
    let spdy = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")];
    let run = |args: &'static [&'static str], stdin: Option<&'static [u8]>| {
        let (client, node) = (&client, &node);
        async move { kubectl_with_env(client, node, &spdy, args, stdin).await }
    };

    let out = run(&["exec", "shell", "--", "sh", "-c", "echo out; echo err >&2"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        (text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        ("out\n", "err\n")
    );

    let out = run(&["exec", "shell", "--", "sh", "-c", "exit 7"], None).await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("command terminated with exit code 7"),
        "{}",
        text(&out.stderr)
    );

    // stdin: its end is the stream's FIN.
    let out = run(&["exec", "-i", "shell", "--", "cat"], Some(b"hi\n")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    let big: &'static [u8] = Box::leak(
        (0..300_000u32)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let out = run(&["exec", "-i", "shell", "--", "wc", "-c"], Some(big)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "300000");

    // A terminal, resized through the `resize` stream.
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("python3")
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
            .args(["-c", &format!("{}{PTY_SCENARIO}", common::PTY_PRELUDE)])
            .arg(node.apiserver.kubeconfig())
            .arg("shell")
            .arg(&client)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the terminal session timed out")
    .expect("running python3");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        node.kubelet.log_tail()
    );
    assert_eq!(text(&out.stdout).trim(), "3", "{}", text(&out.stderr));

    // The process is killed when the client goes away.
    killed_with_its_client(&node, &client, &spdy, &["exec", "shell", "--", "sleep", "4322"]).await;
}

/// Runs `client` with `env` and `args` (ending in `-- sleep N`, a command line no other test
/// runs), waits for the process in the container, kills kubectl and waits for the process to
/// be killed too.
async fn killed_with_its_client(node: &Node1, client: &Path, env: &[(&str, &str)], args: &[&str]) {
    let command = args
        .iter()
        .skip_while(|arg| **arg != "--")
        .skip(1)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut running = Command::new(client)
        .envs(env.iter().copied())
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("running kubectl");
    node.wait("the exec'd process to start", Duration::from_secs(30), || async {
        processes(&command) == 1
    })
    .await;
    running.kill().await.expect("killing kubectl");
    node.wait("the exec'd process to be killed", Duration::from_secs(30), || async {
        processes(&command) == 0
    })
    .await;
}

/// What the kubelet answers to `GET /pods` over TLS with `client_cert` (DER chain and key),
/// or the error that ended the exchange.
async fn kubelet_answer(
    port: u16,
    client_cert: Option<(
        Vec<rustls_pki_types::CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<String, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(component_base::tls::AnyServerCertificate::new(
            provider,
        )));
    let config = match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(std::io::Error::other)?,
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await?;
    tls.write_all(b"GET /pods HTTP/1.1\r\nHost: kubelet\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubelet_serves_nobody_without_a_trusted_client_certificate() {
    use rustls_pki_types::pem::PemObject;
    let node = Node1::start(&[]).await;
    let port = node.kubelet.port;
    // The admin's certificate (system:masters, signed by the cluster CA) is served.
    let kubeconfig = std::fs::read_to_string(node.apiserver.kubeconfig()).expect("kubeconfig");
    let field = |name: &str| {
        let line = kubeconfig
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{name} in the kubeconfig"));
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, line.trim()).expect("base64")
    };
    let admin = (
        rustls_pki_types::CertificateDer::pem_slice_iter(&field("client-certificate-data"))
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM"),
        rustls_pki_types::PrivateKeyDer::from_pem_slice(&field("client-key-data")).expect("key PEM"),
    );
    let served = kubelet_answer(port, Some(admin)).await.expect("the admin is served");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    // No client certificate: the handshake (or the first read, with TLS 1.3) fails.
    let anonymous = kubelet_answer(port, None).await;
    assert!(anonymous.is_err(), "served anonymously: {anonymous:?}");
    // A certificate from a CA the kubelet does not trust fails the same way.
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "intruder");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let cert = params.self_signed(&key).expect("self-signed");
    let untrusted = kubelet_answer(
        port,
        Some((
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key PEM"),
        )),
    )
    .await;
    assert!(untrusted.is_err(), "served an untrusted certificate: {untrusted:?}");
}
