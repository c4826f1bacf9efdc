//! `kubectl exec` end to end: the real upstream kubectl → the apiserver's `pods/exec` proxy →
//! the kubelet's WebSocket (`v5.channel.k8s.io`) → a process in the container.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{Node1, container_state, phase};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Runs kubectl against the fixture's apiserver, feeding `stdin` if given.
async fn kubectl(node: &Node1, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("running kubectl");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).await.expect("writing kubectl's stdin");
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} timed out\n{}", node.kubelet.log_tail()))
        .expect("waiting for kubectl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Host processes whose command line is exactly `command` (argv joined by spaces).
fn processes(command: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| {
            let argv: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            argv.join(" ") == command
        })
        .count()
}

/// Drives `kubectl exec -it` on a pseudo-terminal of 50x132: `stty size` in the container
/// shell shows it, then the terminal is resized to 60x100 and `stty size` shows that, and
/// `exit 3` ends the session. Prints kubectl's exit code.
const PTY_DRIVER: &str = r#"
import fcntl, os, pty, select, struct, sys, termios, time
kubeconfig, pod = sys.argv[1], sys.argv[2]
def setsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
pid, fd = pty.fork()
if pid == 0:
    setsize(0, 50, 132)
    os.execvp('kubectl', ['kubectl', '--kubeconfig', kubeconfig, 'exec', '-it', pod, '-c', 'main', '--', 'sh'])
out = b''
def expect(pattern, timeout=30, retry=None):
    global out
    deadline = time.time() + timeout
    next_retry = time.time() + 1
    while pattern not in out:
        now = time.time()
        if now > deadline:
            sys.stderr.write('timed out waiting for %r; got %r\n' % (pattern, out))
            sys.exit(90)
        if retry and now > next_retry:
            os.write(fd, retry)
            next_retry = now + 1
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b''
            if not data:
                sys.stderr.write('kubectl ended early; got %r\n' % out)
                sys.exit(91)
            out += data
expect(b'# ')
os.write(fd, b'stty size\r')
expect(b'50 132')
setsize(fd, 60, 100)
os.kill(pid, 28)
expect(b'60 100', retry=b'stty size\r')
os.write(fd, b'exit 3\r')
while True:
    try:
        if not os.read(fd, 4096):
            break
    except OSError:
        break
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
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

    // stdout, the default container (the first) and its hostname.
    let out = kubectl(&node, &["exec", "shell", "--", "cat", "/etc/hostname"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "shell\n");

    // stdout and stderr stay apart; argv elements keep their spaces.
    let out = kubectl(
        &node,
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
        &node,
        &["exec", "shell", "-c", "second", "--", "sh", "-c", "echo $WHO"],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "second\n");

    // The exit code propagates.
    let out = kubectl(
        &node,
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
        &node,
        &["exec", "-i", "shell", "-c", "main", "--", "cat"],
        Some(b"hi\n"),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = kubectl(
        &node,
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
    let out = kubectl(&node, &["cp", &local_name, "shell:/tmp/big.bin", "-c", "main"], None).await;
    assert!(out.status.success(), "cp to the pod: {}", text(&out.stderr));
    let out = kubectl(
        &node,
        &["exec", "shell", "-c", "main", "--", "sha256sum", "/tmp/big.bin"],
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
    let out = kubectl(&node, &["cp", "shell:/tmp/big.bin", &back_name, "-c", "main"], None).await;
    assert!(out.status.success(), "cp from the pod: {}", text(&out.stderr));
    assert!(
        std::fs::read(&back).expect("copied back") == payload,
        "the file came back unchanged"
    );

    // A container the pod does not have: the apiserver's upstream message.
    let out = kubectl(&node, &["exec", "shell", "-c", "nope", "--", "true"], None).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container nope is not valid for pod shell"),
        "{}",
        text(&out.stderr)
    );

    // A container that is not running: the kubelet's upstream message.
    let out = kubectl(&node, &["exec", "shell", "-c", "done", "--", "true"], None).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"unable to upgrade connection: container not found ("done")"#),
        "{}",
        text(&out.stderr)
    );

    // A command that does not exist: an error, not a hang.
    let out = kubectl(&node, &["exec", "shell", "-c", "main", "--", "/no/such/binary"], None).await;
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());

    // The process is killed when the client goes away.
    let kubeconfig = node.apiserver.kubeconfig();
    let mut client = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["exec", "shell", "-c", "main", "--", "sleep", "4321"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("running kubectl");
    node.wait("the exec'd sleep to start", Duration::from_secs(30), || async {
        processes("sleep 4321") == 1
    })
    .await;
    client.kill().await.expect("killing kubectl");
    node.wait("the exec'd sleep to be killed", Duration::from_secs(30), || async {
        processes("sleep 4321") == 0
    })
    .await;

    // An interactive shell on a terminal, resized while it runs.
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("python3")
            .args(["-c", PTY_DRIVER])
            .arg(&kubeconfig)
            .arg("shell")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the terminal session timed out")
    .expect("running python3");
    assert!(
        out.status.success(),
        "after {:?}: {}\n{}",
        started.elapsed(),
        text(&out.stderr),
        node.kubelet.log_tail()
    );
    assert_eq!(text(&out.stdout).trim(), "3", "{}", text(&out.stderr));
}
