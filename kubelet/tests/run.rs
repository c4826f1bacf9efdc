//! `kubectl run -i --rm` end to end: the pod is created, kubectl waits for it to run,
//! attaches with stdin (and with `-t` a terminal), waits for its end, deletes it and exits
//! with the container's code.
//! Every scenario runs with both clients, the real upstream kubectl and ours (`kubectl/`),
//! which must give the same results.

mod common;

use common::{Node1, Seen, clients, kubectl, seen, text};

/// `kubectl run -it --rm --restart=Never NAME -- sh` on a pseudo-terminal of 40x120 (after
/// [`common::PTY_PRELUDE`]): the shell sees the size, `exit 4` ends it, and so the pod.
/// Prints kubectl's exit code, then its lines about the session and the pod.
const PTY_SCENARIO: &str = r#"
kubeconfig, name, kubectl, image, overrides = sys.argv[1:6]
argv = [kubectl, '--kubeconfig', kubeconfig, 'run', name, '-it', '--rm', '--restart=Never', image, overrides, '--', 'sh']
pid, fd = spawn(argv, 40, 120)
expect(b"If you don't see a command prompt, try pressing enter.")
expect(b'# ', retry=b'\r')
os.write(fd, b'stty size\r')
expect(b'40 120')
os.write(fd, b'exit 4\r')
code = finish()
print(code)
for line in out.decode('utf-8', 'replace').splitlines():
    if line.startswith('pod ') or line.startswith('Session ended'):
        print(line.strip())
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_run_attaches_waits_and_removes_the_pod() {
    let node = Node1::start(&[]).await;
    let overrides = format!(r#"--overrides={{"spec":{{"nodeName":"{}"}}}}"#, node.kubelet.node_name);
    let image = format!("--image={}", node.image);
    let mut compared: Vec<Vec<Seen>> = Vec::new();
    for (n, client) in clients().iter().enumerate() {
        let mut results = Vec::new();
        // `-i` attaches with stdin; `--attach` without it only follows the output (the
        // script waits so that the session is there before it prints).
        // Without `--restart` the pod restarts (Always): kubectl ends with the session.
        for (name, mode, restart, script, input) in [
            (
                format!("ok-{n}"),
                "-i",
                "--restart=Never",
                "cat; echo done",
                Some(&b"hello\n"[..]),
            ),
            (
                format!("fail-{n}"),
                "-i",
                "--restart=Never",
                "cat; exit 3",
                Some(&b"bye\n"[..]),
            ),
            (
                format!("out-{n}"),
                "--attach",
                "--restart=Never",
                "sleep 2; echo out; echo err >&2; exit 5",
                None,
            ),
            (
                format!("always-{n}"),
                "-i",
                "--pod-running-timeout=20s",
                "cat; exit 3",
                Some(&b"again\n"[..]),
            ),
        ] {
            let args = [
                "run",
                name.as_str(),
                mode,
                "--rm",
                restart,
                &image,
                &overrides,
                "--",
                "sh",
                "-c",
                script,
            ];
            let out = kubectl(client, &node, &args, input).await;
            let mut result = seen(&args, &out);
            // Each client has its own pod name; the image and node differ per run too.
            for field in [&mut result.stdout, &mut result.stderr] {
                *field = field.replace(&name, "NAME");
            }
            result.args = vec![script.to_string()];
            results.push(result);
            node.wait_gone("default", &name).await;
        }
        compared.push(results);
    }
    for (n, client) in clients().iter().enumerate() {
        let name = format!("tty-{n}");
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(90),
            tokio::process::Command::new("python3")
                .args(["-c", &format!("{}{PTY_SCENARIO}", common::PTY_PRELUDE)])
                .arg(node.apiserver.kubeconfig())
                .arg(&name)
                .arg(client)
                .arg(&image)
                .arg(&overrides)
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
        let printed = text(&out.stdout).replace(&name, "NAME");
        compared[n].push(Seen {
            args: vec!["-it".into()],
            code: None,
            stdout: printed,
            stderr: String::new(),
        });
        node.wait_gone("default", &name).await;
    }
    assert_eq!(compared[0], compared[1], "upstream (left) and ours (right) differ");
    assert!(
        compared[1][4].stdout.starts_with("4\n")
            && compared[1][4]
                .stdout
                .ends_with("pod \"NAME\" deleted from default namespace\npod default/NAME terminated (Error)\n"),
        "{compared:#?}"
    );
    assert_eq!(
        compared[1][0].stdout, "hello\ndone\npod \"NAME\" deleted from default namespace\n",
        "{compared:#?}"
    );
    assert_eq!(compared[1][1].code, Some(3), "{compared:#?}");
    assert_eq!(compared[1][3].code, Some(0), "{compared:#?}");
    assert_eq!(
        (compared[1][2].code, compared[1][2].stdout.as_str()),
        (Some(5), "out\npod \"NAME\" deleted from default namespace\n"),
        "{compared:#?}"
    );
}
