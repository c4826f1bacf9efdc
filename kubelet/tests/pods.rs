//! The kubelet runs real pods from a real registry: integration tests as root against a real
//! apiserver, a local registry and the built-in runtime.

mod common;

use common::{Node1, container_state, phase};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_runs_to_completion_with_its_environment_and_logs() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "hello"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": node.image,
                    "command": ["sh", "-c", "echo hello $GREETING from $(hostname); exit 3"],
                    "env": [{"name": "GREETING", "value": "world"}],
                }],
            },
        }),
    )
    .await;
    let pod = node
        .wait_pod("default", "hello", "phase Failed", |p| phase(p) == "Failed")
        .await;
    let status = container_state(&pod, "main");
    let terminated = status.state.and_then(|s| s.terminated).expect("terminated");
    assert_eq!(terminated.exit_code, 3);
    assert_eq!(terminated.reason.as_deref(), Some("Error"));
    assert!(status.image_id.contains("@sha256:"), "{}", status.image_id);
    let logs = node
        .pods("default")
        .logs("hello", &Default::default())
        .await
        .expect("logs");
    assert_eq!(logs, "hello world from hello\n", "{}", node.kubelet.log_tail());
}
