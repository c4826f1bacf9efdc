//! `kaji up --nodes 2` and `kaji down`, run inside a namespace of their own (standing in for the
//! host, so the bridge and routes `kaji` makes never touch the real host's network): both nodes
//! become Ready, a Deployment behind a NodePort answers on every node and by DNS name, and
//! `kaji up` again starts what died and adopts what runs, `kaji load` puts an image archive on every node, `kaji logs` merges every component's log, `kaji node partition|heal|stop|start` inject faults
//! (an unreachable node, a frozen one that turns NotReady), and `kaji down` leaves links,
//! iptables rules, namespaces, mounts and cgroups as they were, with no process left.
//!
//! Needs every workspace binary built first (`cargo test --workspace` does that) and root.

use std::time::{Duration, Instant};

use e2e::{Host, text};
use testkit::netlab::NetLab;
use testkit::registry::{ImageOptions, Registry, push_busybox_image};

#[test]
fn kaji_up_makes_a_working_cluster_and_down_leaves_nothing() {
    let mut lab = NetLab::create(0).expect("lab");
    let registry = Registry::start().expect("registry");
    push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default()).expect("push busybox");
    let port = registry.port();
    let in_lab = lab.expose_host_port(port).expect("registry in the lab").to_string();
    let name = format!("t{}", std::process::id());
    let mut host = Host::new(lab, name.clone());
    let before = host.footprint();

    let started = Instant::now();
    let up = host.kaji(&[
        "up",
        "--name",
        &name,
        "--nodes",
        "2",
        "--kubeconfig",
        &host.kubeconfig.display().to_string(),
        "--insecure-registry",
        &in_lab,
    ]);
    let took = started.elapsed();
    host.up = true;
    let cluster_logs = || host.cluster_logs();
    assert!(up.status.success(), "kaji up: {}\n{}", text(&up), cluster_logs());
    eprintln!("kaji up --nodes 2 took {took:?}");
    let listed = host.kaji(&["list"]);
    assert!(text(&listed).lines().any(|l| l == name), "kaji list: {}", text(&listed));

    let nodes = host.ok(&["--context", &format!("kaji-{name}"), "get", "nodes", "--no-headers"]);
    assert_eq!(
        nodes
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count(),
        2,
        "{nodes}"
    );

    // A Deployment behind a NodePort, reached from the host on every node, and by DNS name.
    let image = format!("{in_lab}/busybox:1");
    host.ok(&[
        "create",
        "deployment",
        "web",
        "--image",
        &image,
        "--replicas",
        "2",
        "--port",
        "8080",
        "--",
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    host.ok(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
    host.ok(&[
        "expose",
        "deployment",
        "web",
        "--type",
        "NodePort",
        "--port",
        "80",
        "--target-port",
        "8080",
    ]);
    let node_port = host.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    for node in ["10", "11"] {
        let url = format!("http://10.250.0.{node}:{node_port}/");
        host.wait_for_answer(&url);
    }
    let pod = host.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fetched = host.kubectl(&[
            "exec",
            &pod,
            "--",
            "busybox",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://web/",
        ]);
        if fetched.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "http://web/ from a pod: {}", text(&fetched));
        std::thread::sleep(Duration::from_millis(300));
    }

    // An image archive loaded into every node runs without any registry.
    let archive = host.home.path().join("local.tar");
    testkit::registry::OciImage::busybox()
        .expect("image")
        .save_archive("oci-archive", &archive, "kaji.test/local:1")
        .expect("archive");
    let loaded = host.kaji_ok(&["load", "--name", &name, &archive.display().to_string()]);
    for node in ["node0", "node1"] {
        assert!(
            loaded.contains(&format!("Image: \"kaji.test/local:1\" loaded into node {name}-{node}")),
            "{loaded}"
        );
    }
    for node in ["node0", "node1"] {
        let pod = format!("loaded-{node}");
        host.ok(&[
            "run",
            &pod,
            "--image",
            "kaji.test/local:1",
            "--image-pull-policy",
            "Never",
            "--restart",
            "Never",
            "--overrides",
            &format!(r#"{{"spec": {{"nodeName": "{name}-{node}"}}}}"#),
            "--",
            "echo",
            "loaded image runs",
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logs = host.kubectl(&["logs", &pod]);
            if String::from_utf8_lossy(&logs.stdout).contains("loaded image runs") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pod {pod}: {}\n{}",
                text(&logs),
                cluster_logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let bogus = host.home.path().join("bogus.tar");
    std::fs::write(&bogus, b"not an archive").expect("bogus");
    let refused = host.kaji(&["load", "--name", &name, &bogus.display().to_string()]);
    assert!(
        !refused.status.success() && text(&refused).contains("not a readable tar archive"),
        "{}",
        text(&refused)
    );

    // Components that die are started again by `kaji up` on the same cluster, and the kubelet
    // adopts the containers that kept running: the same pods still answer.
    let pods_before = host.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.uid}",
    ]);
    let record = host.record();
    for process in record["processes"].as_array().expect("processes") {
        let victim = process["component"] == "kube-controller-manager"
            || (process["component"] == "kubelet" && process["node"] == format!("{name}-node0").as_str());
        if victim {
            // A process this test's `kaji up` started (recorded in the cluster's state).
            let pid = process["pid"].as_i64().expect("pid").to_string();
            let killed = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            assert!(killed.is_ok_and(|s| s.success()), "kill {pid}");
        }
    }
    let readopted = host.kaji_ok(&[
        "up",
        "--name",
        &name,
        "--kubeconfig",
        &host.kubeconfig.display().to_string(),
    ]);
    assert!(
        readopted.contains(&format!("starting kubelet on {name}-node0 again"))
            && readopted.contains("starting kube-controller-manager again"),
        "{readopted}"
    );
    assert_eq!(
        host.ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.uid}"
        ]),
        pods_before,
        "the same pods"
    );
    host.wait_for_answer(&format!("http://10.250.0.10:{node_port}/"));

    // Every component's log, tagged, merged; filtered by tag.
    let logs = host.kaji_ok(&["logs", "--name", &name, "--tail", "5"]);
    for tag in [
        "kube-apiserver ".to_string(),
        "kube-controller-manager ".to_string(),
        format!("kubelet/{name}-node0 "),
        format!("kube-proxy/{name}-node1 "),
    ] {
        assert!(
            logs.lines().any(|l| l.starts_with(&tag)),
            "no {tag:?} lines in:\n{logs}"
        );
    }
    let kubelets = host.kaji_ok(&["logs", "--name", &name, "kubelet", "--tail", "2"]);
    assert!(
        !kubelets.is_empty() && kubelets.lines().all(|l| l.starts_with("kubelet/")),
        "{kubelets}"
    );
    let unknown = host.kaji(&["logs", "--name", &name, "etcd"]);
    assert!(
        !unknown.status.success() && text(&unknown).contains("no log matches etcd"),
        "{}",
        text(&unknown)
    );

    // A partitioned node can't be reached; healed, it answers again.
    let node1_url = format!("http://10.250.0.11:{node_port}/");
    host.kaji_ok(&["node", "--name", &name, "partition", "node1"]);
    assert!(text(&host.kaji(&["status", "--name", &name])).contains("partitioned"));
    assert!(!host.fetch(&node1_url).status.success(), "a partitioned node answered");
    host.kaji_ok(&["node", "--name", &name, "heal", "node1"]);
    host.wait_for_answer(&node1_url);

    // A stopped (frozen) node stops renewing its lease and turns NotReady; started again, it
    // is Ready. `kaji down` copes with a stopped node too.
    let node1 = format!("{name}-node1");
    host.kaji_ok(&["node", "--name", &name, "stop", &node1]);
    let stopped = Instant::now();
    host.wait_node_status(&node1, "NotReady", Duration::from_secs(120));
    eprintln!("a stopped node turned NotReady after {:?}", stopped.elapsed());
    host.kaji_ok(&["node", "--name", &name, "start", &node1]);
    host.wait_node_status(&node1, "Ready", Duration::from_secs(60));
    host.kaji_ok(&["node", "--name", &name, "stop", "1"]);

    host.down(&before);
}

#[test]
fn kaji_up_with_three_etcd_members_and_two_apiservers_survives_losing_one_of_each() {
    let lab = NetLab::create(0).expect("lab");
    let name = format!("h{}", std::process::id());
    let mut host = Host::new(lab, name.clone());
    let before = host.footprint();
    let refused = host.kaji(&["up", "--name", &name, "--apiservers", "2"]);
    assert!(
        !refused.status.success() && text(&refused).contains("--apiservers 2 needs --etcd"),
        "{}",
        text(&refused)
    );

    let up = host.kaji(&[
        "up",
        "--name",
        &name,
        "--etcd-members",
        "3",
        "--apiservers",
        "2",
        "--kubeconfig",
        &host.kubeconfig.display().to_string(),
    ]);
    host.up = true;
    assert!(up.status.success(), "kaji up: {}", text(&up));
    assert_eq!(host.recorded_pids("kube-apiserver").len(), 2);
    host.ok(&["create", "configmap", "before", "--from-literal", "k=v"]);

    // One apiserver and one etcd member (the first, which the apiservers use until it fails)
    // go; the cluster still reads and writes through the same kubeconfig.
    let victims = [
        host.recorded_pids("kube-apiserver")[0].clone(),
        host.recorded_pids("etcd0")[0].clone(),
    ];
    for pid in &victims {
        // Processes this test's `kaji up` started (recorded in the cluster's state).
        let killed = std::process::Command::new("kill").args(["-KILL", pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill {pid}");
    }
    // The survivors elect a new leader (etcd's election timeout is 1 s); writes meanwhile may
    // fail, as they would with upstream's apiserver.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !host
        .kubectl(&["create", "configmap", "after-election", "--from-literal", "k=v"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "no write succeeded after losing a member");
        std::thread::sleep(Duration::from_millis(300));
    }
    for i in 0..10 {
        host.ok(&["create", "configmap", &format!("after-{i}"), "--from-literal", "k=v"]);
    }
    let names = host.ok(&["get", "configmaps", "-o", "name"]);
    assert!(
        names.contains("configmap/before") && names.contains("configmap/after-9"),
        "{names}"
    );
    host.wait_node_status(&format!("{name}-node0"), "Ready", Duration::from_secs(30));

    host.down(&before);
}
