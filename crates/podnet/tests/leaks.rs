//! Repeated setup and teardown leaves no file descriptors (netlink sockets) behind. A test
//! binary of its own, so no other test opens files meanwhile.

mod support;

use podnet::{NetworkConfig, NodeNetwork};
use support::Netns;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn setup_and_teardown_do_not_leak_sockets() {
    let node = Netns::new().unwrap();
    let pod = Netns::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    node.block_on(|| async {
        let net = NodeNetwork::new(NetworkConfig {
            bridge: "kaji0".to_string(),
            pod_cidr: "10.244.1.0/24".parse().unwrap(),
            state_dir: state.path().to_path_buf(),
            mtu: None,
        })
        .await
        .unwrap();
        net.setup_pod("warmup", pod.path()).await.unwrap();
        net.teardown_pod("warmup").await.unwrap();
        net.settle().await;
        tokio::task::yield_now().await;
        let before = open_fds();
        for i in 0..50 {
            let id = format!("pod-{i}");
            let pod = Netns::new().unwrap();
            net.setup_pod(&id, pod.path()).await.unwrap();
            net.teardown_pod(&id).await.unwrap();
        }
        net.settle().await;
        // let aborted connection tasks be dropped
        tokio::task::yield_now().await;
        assert_eq!(open_fds(), before);
    });
}
