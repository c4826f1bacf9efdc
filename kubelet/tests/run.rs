//! `kubectl run -i --rm` end to end: the pod is created, kubectl waits for it to run,
//! attaches with stdin, waits for its end, deletes it and exits with the container's code.
//! Every scenario runs with both clients, the real upstream kubectl and ours (`kubectl/`),
//! which must give the same results.

mod common;

use common::{Node1, Seen, clients, kubectl, seen};

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_run_attaches_waits_and_removes_the_pod() {
    let node = Node1::start(&[]).await;
    let overrides = format!(r#"--overrides={{"spec":{{"nodeName":"{}"}}}}"#, node.kubelet.node_name);
    let image = format!("--image={}", node.image);
    let mut compared: Vec<Vec<Seen>> = Vec::new();
    for (n, client) in clients().iter().enumerate() {
        let mut results = Vec::new();
        for (name, script, input) in [
            (format!("ok-{n}"), "cat; echo done", &b"hello\n"[..]),
            (format!("fail-{n}"), "cat; exit 3", &b"bye\n"[..]),
        ] {
            let args = [
                "run",
                name.as_str(),
                "-i",
                "--rm",
                "--restart=Never",
                &image,
                &overrides,
                "--",
                "sh",
                "-c",
                script,
            ];
            let out = kubectl(client, &node, &args, Some(input)).await;
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
    assert_eq!(
        compared[1][0].stdout, "hello\ndone\npod \"NAME\" deleted from default namespace\n",
        "{compared:#?}"
    );
    assert_eq!(compared[1][1].code, Some(3), "{compared:#?}");
    assert_eq!(compared[0], compared[1], "upstream (left) and ours (right) differ");
}
