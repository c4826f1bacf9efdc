//! `kubectl attach` end to end: kubectl → the apiserver's `pods/attach` proxy → the kubelet's
//! WebSocket (`v5.channel.k8s.io`) → the container's shim → its main process. Every scenario
//! runs with both clients, the real upstream kubectl and ours (`kubectl/`), which must give
//! the same results.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Node1, Seen, clients, container_state, kubectl, kubectl_with_env, phase, seen, text};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Counts on stdout every 0.2 s, with a word on stderr now and then.
const TICKER: &str =
    "i=0; while true; do i=$((i+1)); echo tick $i; [ $((i % 5)) = 0 ] && echo tock >&2; sleep 0.2; done";

/// Attaches `kubectl attach -it` on a pseudo-terminal of 40x120 to a `tty: true` container
/// running `sh` (after [`common::PTY_PRELUDE`]): `stty size` shows the size, a resize to
/// 45x100 shows too, `exit 4` ends the shell and so the session. Prints kubectl's exit code,
/// then what it wrote after the shell's end.
const PTY_SCENARIO: &str = r#"
kubeconfig, pod, kubectl = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = spawn([kubectl, '--kubeconfig', kubeconfig, 'attach', '-it', pod], 40, 120)
expect(b"If you don't see a command prompt, try pressing enter.")
expect(b'# ', retry=b'\r')
os.write(fd, b'stty size\r')
expect(b'40 120')
setsize(fd, 45, 100)
os.kill(pid, 28)
expect(b'45 100', retry=b'stty size\r')
os.write(fd, b'exit 4\r')
seen = len(out)
code = finish()
print(code)
print(out[seen:].decode('utf-8', 'replace'))
"#;

fn tick_numbers(output: &str) -> Vec<u32> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok())
        .collect()
}

/// Runs a `kubectl attach` that does not end by itself until its stdout shows `lines`
/// lines, then interrupts it; returns what it printed.
async fn follow(client: &Path, node: &Node1, args: &[&str], lines: usize) -> (String, String) {
    let mut child = Command::new(client)
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running kubectl");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lines().count() < lines {
        let mut line = String::new();
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stdout.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => seen.push_str(&line),
            other => {
                let mut err = String::new();
                let _ = child.kill().await;
                let _ = child.stderr.take().expect("stderr").read_to_string(&mut err).await;
                panic!(
                    "{} {args:?}: {other:?} after {seen:?}; stderr {err}\n{}",
                    client.display(),
                    node.kubelet.log_tail()
                );
            }
        }
    }
    child.start_kill().expect("interrupting kubectl");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .await
        .expect("stderr");
    let _ = child.wait().await;
    (seen, err)
}

async fn logs(client: &Path, node: &Node1, pod: &str, container: &str) -> String {
    let out = kubectl(client, node, &["logs", pod, "-c", container], None).await;
    assert!(out.status.success(), "logs {pod}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_attach_connects_to_the_main_process() {
    let node = Node1::start(&[]).await;
    let clients = clients();
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "ticker"},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "main", "image": node.image, "command": ["sh", "-c", TICKER]},
                    {"name": "done", "image": node.image, "command": ["true"]},
                ],
            },
        }),
    )
    .await;
    for n in 0..clients.len() {
        for (name, container) in [
            (
                format!("cat-{n}"),
                json!({"name": "main", "image": node.image, "command": ["sh", "-c", "cat; echo stdin closed"],
                       "stdin": true, "stdinOnce": true}),
            ),
            (
                format!("tty-{n}"),
                json!({"name": "main", "image": node.image, "command": ["sh"], "stdin": true, "tty": true}),
            ),
        ] {
            node.create_pod(
                "default",
                json!({
                    "metadata": {"name": name},
                    "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container]},
                }),
            )
            .await;
        }
    }
    let running =
        |p: &k8s_openapi::api::core::v1::Pod| container_state(p, "main").state.is_some_and(|s| s.running.is_some());
    node.wait_pod("default", "ticker", "main running, done exited", |p| {
        let exited = container_state(p, "done").state.is_some_and(|s| s.terminated.is_some());
        running(p) && exited
    })
    .await;
    for n in 0..clients.len() {
        node.wait_pod("default", &format!("cat-{n}"), "running", running).await;
        node.wait_pod("default", &format!("tty-{n}"), "running", running).await;
    }

    let mut compared = Vec::new();
    for (n, client) in clients.iter().enumerate() {
        compared.push(scenarios(&node, client, n).await);
    }
    assert_eq!(compared[0], compared[1], "upstream (left) and ours (right) differ");
}

/// Everything `attach` must do, with one client and its own `cat-{n}` and `tty-{n}` pods;
/// returns what it printed where that is deterministic, to compare the clients.
async fn scenarios(node: &Node1, client: &Path, n: usize) -> Vec<Seen> {
    let mut compared = Vec::new();
    // The output from the moment of the attach on, stdout and stderr apart.
    let before = logs(client, node, "ticker", "main").await;
    let logged = tick_numbers(&before).into_iter().max().unwrap_or(0);
    let args = ["attach", "ticker", "-c", "main"];
    let (stdout, stderr) = follow(client, node, &args, 6).await;
    let ticks = tick_numbers(&stdout);
    assert!(
        ticks.first().is_some_and(|first| *first > logged),
        "attached output starts after what was logged ({logged}): {stdout:?}"
    );
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "no output lost: {stdout:?}");
    compared.push(Seen {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: None,
        stdout: String::new(),
        stderr: stderr.replace("tock\n", ""),
    });
    // -q: only the remote output.
    let (stdout, stderr) = follow(client, node, &["attach", "-q", "ticker", "-c", "main"], 6).await;
    assert_eq!(stderr.replace("tock\n", ""), "");
    assert!(stdout.starts_with("tick "), "{stdout:?}");
    // The container's log keeps everything.
    let after = logs(client, node, "ticker", "main").await;
    let all = tick_numbers(&after);
    assert!(
        all.windows(2).all(|w| w[1] == w[0] + 1) && all.first() == Some(&1) && all.len() > ticks.len(),
        "the log has every line: {after:?}"
    );

    // -i to a stdinOnce container: the input reaches `cat`, whose stdin closes when kubectl's
    // input ends, and the session ends with the process.
    let cat = format!("cat-{n}");
    let out = kubectl(client, node, &["attach", "-i", &cat], Some(b"hello\nworld\n")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nworld\nstdin closed\n");
    compared.push(seen(&["attach", "-i", "cat-N"], &out));
    assert_eq!(logs(client, node, &cat, "main").await, "hello\nworld\nstdin closed\n");
    node.wait_pod("default", &cat, "Succeeded", |p| phase(p) == "Succeeded")
        .await;
    let out = kubectl(client, node, &["attach", &cat], None).await;
    compared.push(seen(&["attach", "cat-N"], &out));

    // -it on a tty container, through a pseudo-terminal, resized.
    let tty = format!("tty-{n}");
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("python3")
            .args(["-c", &format!("{}{PTY_SCENARIO}", common::PTY_PRELUDE)])
            .arg(node.apiserver.kubeconfig())
            .arg(&tty)
            .arg(client)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the terminal session timed out")
    .expect("running python3");
    assert!(
        out.status.success(),
        "{}: {}\n{}",
        client.display(),
        text(&out.stderr),
        node.kubelet.log_tail()
    );
    let printed = text(&out.stdout);
    assert_eq!(printed.lines().next(), Some("0"), "{printed}");
    assert!(
        printed.contains(&format!(
            "Session ended, resume using 'kubectl attach {tty} -c main -n default -i -t' command"
        )),
        "{printed}"
    );

    // Errors, compared across the clients.
    let cases: &[&[&str]] = &[
        // A container the pod does not have.
        &["attach", "ticker", "-c", "nope"],
        // A container that is not running: the kubelet's upstream message.
        &["attach", "ticker", "-c", "done"],
        &["attach", "nosuch"],
        &["attach", "deploy/nosuch"],
        &["attach"],
        &["attach", "a", "b", "c"],
    ];
    for args in cases {
        let out = kubectl(client, node, args, None).await;
        compared.push(seen(args, &out));
    }
    let out = kubectl(client, node, &["attach", "ticker", "-c", "done"], None).await;
    assert!(
        text(&out.stderr).contains("unable to upgrade connection: container done not found in pod ticker_default"),
        "{}",
        text(&out.stderr)
    );
    compared
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_attach_over_the_spdy_fallback() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "cat"},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": node.image, "command": ["sh", "-c", "cat; echo stdin closed"],
                 "stdin": true, "stdinOnce": true},
            ]},
        }),
    )
    .await;
    node.wait_pod("default", "cat", "running", |p| {
        container_state(p, "main").state.is_some_and(|s| s.running.is_some())
    })
    .await;
    // Upstream kubectl speaks SPDY/3.1 (its fallback) with WebSockets turned off: the input
    // reaches `cat`, the end of it (the stdin stream's FIN) closes its stdin.
    let client = testkit::upstream_kubectl().expect("upstream kubectl");
    let out = kubectl_with_env(
        &client,
        &node,
        &[("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")],
        &["attach", "-i", "cat"],
        Some(b"hello\nworld\n"),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nworld\nstdin closed\n");
}
