//! End-to-end tests of the runtime as root: busybox containers in sandboxes.

mod common;

use std::time::Duration;

use common::{Fixture, cgroup_dirs, wait_exit};
use runtime::{ContainerState, Runtime, RuntimeError, SandboxState};

fn exit_code(state: &ContainerState) -> i32 {
    match state {
        ContainerState::Exited { exit_code, .. } => *exit_code,
        other => panic!("not exited: {other:?}"),
    }
}

#[test]
fn exit_codes_are_recorded() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-a", false);
    assert_eq!(f.runtime.sandbox_state(&sandbox).expect("state"), SandboxState::Ready);
    let ok = f.container(&sandbox, &["/bin/true"]);
    f.runtime.start_container(&ok).expect("start true");
    assert_eq!(exit_code(&f.wait_exit(&ok.id)), 0);
    let seven = f.container(&sandbox, &["sh", "-c", "exit 7"]);
    f.runtime.start_container(&seven).expect("start exit 7");
    let state = f.wait_exit(&seven.id);
    assert_eq!(exit_code(&state), 7);
    let ContainerState::Exited {
        signal,
        oom_killed,
        started_at,
        finished_at,
        ..
    } = state
    else {
        unreachable!()
    };
    assert_eq!((signal, oom_killed), (None, false));
    assert!(started_at.is_some_and(|s| s <= finished_at));
}

#[test]
fn output_lands_in_cri_log() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-log", false);
    let spec = f.container(&sandbox, &["sh", "-c", "echo out1; echo err1 >&2; printf 'no newline'"]);
    f.runtime.start_container(&spec).expect("start");
    f.wait_exit(&spec.id);
    let records = f.log_records(&spec);
    let has = |stream: &str, content: &str| records.iter().any(|(s, t, c)| s == stream && t == "F" && c == content);
    assert!(has("stdout", "out1"), "{records:?}");
    assert!(has("stderr", "err1"), "{records:?}");
    assert!(has("stdout", "no newline"), "{records:?}");
}

#[test]
fn env_cwd_and_user_are_honoured() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-user", false);
    let mut spec = f.container(&sandbox, &["sh", "-c", "echo $GREETING; pwd; id -u; id -g; id -G"]);
    spec.env.push("GREETING=hello world".into());
    spec.cwd = "/tmp".into();
    spec.user = runtime::User {
        uid: 1234,
        gid: 2345,
        additional_gids: vec![3456],
    };
    f.runtime.start_container(&spec).expect("start");
    assert_eq!(exit_code(&f.wait_exit(&spec.id)), 0);
    assert_eq!(
        f.stdout(&spec),
        vec!["hello world", "/tmp", "1234", "2345", "2345 3456"]
    );
}

#[test]
fn containers_of_a_sandbox_share_network_and_hostname() {
    let f = Fixture::new();
    let sandbox = f.sandbox("my-pod", false);
    let script = "readlink /proc/self/ns/net; readlink /proc/self/ns/mnt; hostname";
    // `a` stays alive while `b` runs, so namespace inode numbers cannot be recycled.
    let a = f.container(&sandbox, &["sh", "-c", &format!("{script}; sleep 1")]);
    let b = f.container(&sandbox, &["sh", "-c", script]);
    f.runtime.start_container(&a).expect("start a");
    f.runtime.start_container(&b).expect("start b");
    for spec in [&a, &b] {
        assert_eq!(exit_code(&f.wait_exit(&spec.id)), 0);
    }
    let (out_a, out_b) = (f.stdout(&a), f.stdout(&b));
    assert_eq!(out_a.len(), 3, "{out_a:?}");
    assert_eq!(out_a[0], out_b[0], "network namespace differs");
    assert_ne!(out_a[1], out_b[1], "mount namespaces must differ");
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("own netns");
    assert_ne!(out_a[0], host_net.to_string_lossy(), "container is in the host netns");
    assert_eq!(out_a[2], "my-pod");
    assert_eq!(out_b[2], "my-pod");
}

#[test]
fn memory_limit_oom_kill_is_reported() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-oom", false);
    let mut spec = f.container(&sandbox, &["sh", "-c", "head -c 200000000 /dev/zero | tail"]);
    spec.resources.memory_limit = Some(16 << 20);
    f.runtime.start_container(&spec).expect("start");
    let state = f.wait_exit(&spec.id);
    let ContainerState::Exited {
        oom_killed, exit_code, ..
    } = state
    else {
        unreachable!()
    };
    assert!(oom_killed, "exit code {exit_code}");
    assert_ne!(exit_code, 0);
}

#[test]
fn sigterm_stops_a_sleep() {
    let f = Fixture::new();
    // With a shared PID namespace the holder is init, so `sleep` gets the default action.
    let sandbox = f.sandbox("pod-term", true);
    let spec = f.container(&sandbox, &["sleep", "1000"]);
    f.runtime.start_container(&spec).expect("start");
    assert!(matches!(
        f.runtime.container_state(&spec.id),
        Ok(ContainerState::Running { .. })
    ));
    assert!(matches!(
        f.runtime.remove_container(&spec.id),
        Err(RuntimeError::StillRunning(_))
    ));
    f.runtime.kill(&spec.id, libc::SIGTERM).expect("kill");
    let ContainerState::Exited {
        exit_code,
        signal,
        oom_killed,
        ..
    } = f.wait_exit(&spec.id)
    else {
        unreachable!()
    };
    assert_eq!((exit_code, signal, oom_killed), (143, Some(15), false));
}

#[test]
fn containers_outlive_the_runtime_instance() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-adopt", false);
    let spec = f.container(&sandbox, &["sh", "-c", "sleep 1; echo done; exit 3"]);
    let pid = {
        let first = Fixture::open(f.dir.path(), &f.cgroup_parent);
        first.start_container(&spec).expect("start");
        let ContainerState::Running { pid, .. } = first.container_state(&spec.id).expect("state") else {
            panic!("not running")
        };
        pid
    };
    // A new instance (a restarted kubelet) adopts the running container, from records
    // kept on the state root's own tmpfs, which outlived the first instance.
    let second = Fixture::open(f.dir.path(), &f.cgroup_parent);
    assert_eq!(second.state_medium(), runtime::StateMedium::Memory);
    assert_eq!(state_fs_type(&f.dir.path().join("state")), libc::TMPFS_MAGIC);
    match second.container_state(&spec.id).expect("state") {
        ContainerState::Running { pid: seen, .. } => assert_eq!(seen, pid),
        other => panic!("expected running, got {other:?}"),
    }
    assert!(second.list().iter().any(|(id, _)| id == &spec.id));
    assert_eq!(exit_code(&wait_exit(&second, &spec.id)), 3);
    assert_eq!(f.stdout(&spec), vec!["done"]);
}

/// The file system type (`statfs` magic) of `dir`.
fn state_fs_type(dir: &std::path::Path) -> libc::c_long {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path without NUL");
    // SAFETY: an all-zero statfs is a valid out-parameter.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated and fs is writable.
    assert_eq!(
        unsafe { libc::statfs(path.as_ptr(), &mut fs) },
        0,
        "statfs {}",
        dir.display()
    );
    fs.f_type
}

#[test]
fn state_written_to_disk_earlier_is_not_hidden_by_a_tmpfs() {
    let dir = tempfile::Builder::new()
        .prefix("kaji-rt")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let state = dir.path().join("state");
    // A sandbox record left by a runtime that kept its state on disk.
    std::fs::create_dir_all(state.join("sandboxes/sb-old")).expect("mkdir");
    let runtime = Runtime::new(&state, common::shim()).expect("runtime");
    assert_eq!(
        runtime.state_medium(),
        runtime::StateMedium::Disk(runtime::DiskReason::HoldsState)
    );
    assert_ne!(state_fs_type(&state), libc::TMPFS_MAGIC);
    assert!(state.join("sandboxes/sb-old").exists());
}

#[test]
fn missing_executable_is_a_typed_error() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-noexec", false);
    let spec = f.container(&sandbox, &["foo"]);
    match f.runtime.start_container(&spec) {
        Err(e @ RuntimeError::Exec(_)) => {
            assert!(e.is_start_error());
            assert_eq!(e.to_string(), "exec: \"foo\": executable file not found in $PATH");
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
    assert_eq!(exit_code(&f.runtime.container_state(&spec.id).expect("state")), 128);
    f.runtime.remove_container(&spec.id).expect("remove");
}

#[test]
fn remove_leaves_nothing_behind() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-clean", false);
    let mut spec = f.container(&sandbox, &["sh", "-c", "cat /etc/hosts; echo x > /dev/null"]);
    let hosts = f.dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("hosts");
    spec.mounts.push(runtime::Mount {
        source: hosts,
        destination: "/etc/hosts".into(),
        kind: runtime::MountKind::Bind,
        read_only: true,
    });
    spec.resources.cpu_shares = Some(512);
    f.runtime.start_container(&spec).expect("start");
    assert_eq!(exit_code(&f.wait_exit(&spec.id)), 0);
    assert_eq!(f.stdout(&spec), vec!["127.0.0.1 localhost"]);
    let record = f.runtime.sandbox(&sandbox).expect("sandbox");
    f.runtime.remove_container(&spec.id).expect("remove container");
    assert!(matches!(
        f.runtime.container_state(&spec.id),
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(spec.log_path.exists(), "the log file stays");
    f.runtime.remove_sandbox(&sandbox).expect("remove sandbox");
    assert!(matches!(
        f.runtime.sandbox_state(&sandbox),
        Err(RuntimeError::NotFound { .. })
    ));

    // No process, cgroup, mount or state left.
    std::thread::sleep(Duration::from_millis(50));
    // The holder is gone (at most a zombie waiting for init to reap it).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", record.pid)).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    assert!(matches!(state, None | Some("Z" | "X")), "holder still alive: {stat}");
    for dir in cgroup_dirs(&f.cgroup_parent) {
        let children: Vec<_> = std::fs::read_dir(&dir)
            .expect("cgroup dir")
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        assert!(children.is_empty(), "cgroups left: {children:?}");
    }
    // Only the state root's own tmpfs stays mounted (it outlives containers and runtimes).
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = f.dir.path().to_string_lossy().into_owned();
    let state = f.dir.path().join("state");
    let left: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|target| target.starts_with(&root) && std::path::Path::new(target) != state)
        .collect();
    assert!(left.is_empty(), "mounts left under {root}: {left:?}");
    for sub in ["sandboxes", "containers", "lc"] {
        assert_eq!(
            std::fs::read_dir(state.join(sub)).expect("state dir").count(),
            0,
            "{sub} not empty"
        );
    }
}

#[test]
fn pod_cgroup_gets_pod_limits() {
    let f = Fixture::new();
    let spec = runtime::SandboxSpec {
        id: common::unique("sb"),
        pod_uid: common::unique("uid"),
        hostname: "limited".into(),
        host_network: true,
        share_process_namespace: false,
        resources: runtime::Resources {
            cpu_shares: Some(256),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory_limit: Some(64 << 20),
        },
    };
    let sandbox = f.runtime.create_sandbox(&spec).expect("create sandbox");
    let rel = sandbox.cgroup_path.trim_start_matches('/');
    let read = |file: &str| std::fs::read_to_string(file).expect(file).trim().to_owned();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(
            read(&format!("/sys/fs/cgroup/{rel}/memory.max")),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(&format!("/sys/fs/cgroup/{rel}/cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(&format!("/sys/fs/cgroup/memory/{rel}/memory.limit_in_bytes")),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(&format!("/sys/fs/cgroup/cpu/{rel}/cpu.shares")), "256");
        assert_eq!(read(&format!("/sys/fs/cgroup/cpu/{rel}/cpu.cfs_quota_us")), "50000");
    }
    // Host network: the container sees the node's network namespace.
    let probe = f.container(&sandbox.id, &["readlink", "/proc/self/ns/net"]);
    f.runtime.start_container(&probe).expect("start");
    assert_eq!(exit_code(&f.wait_exit(&probe.id)), 0);
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("own netns");
    assert_eq!(f.stdout(&probe), vec![host_net.to_string_lossy().into_owned()]);
}

#[test]
fn logs_rotate_at_the_size_limit() {
    let f = Fixture::new();
    let rotating = Fixture::open(f.dir.path(), &f.cgroup_parent).with_log_rotation(runtime::LogRotation {
        max_size: 4096,
        max_files: 3,
    });
    let sandbox = f.sandbox("pod-rotate", false);
    // ~1000 records of ~50 bytes: many rotations.
    let spec = f.container(
        &sandbox,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done",
        ],
    );
    rotating.start_container(&spec).expect("start");
    assert_eq!(exit_code(&wait_exit(&rotating, &spec.id)), 0);
    let dir = spec.log_path.parent().expect("log dir");
    let name = spec.log_path.file_name().and_then(|n| n.to_str()).expect("name");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("log dir")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(name))
        .collect();
    // Oldest first: by stamp, then by the counter of rotations within one second.
    files.sort_by_key(|n| {
        let rest = n.strip_prefix(name).unwrap_or_default().trim_start_matches('.');
        let (stamp, count) = rest.split_once('.').unwrap_or((rest, "0"));
        (rest.is_empty(), stamp.to_owned(), count.parse::<u64>().unwrap_or(0))
    });
    assert_eq!(files.len(), 3, "{files:?}");
    for rotated in files.iter().filter(|n| *n != name) {
        let stamp = &rotated[name.len() + 1..];
        assert!(stamp.len() >= 15 && stamp.as_bytes()[8] == b'-', "{rotated}");
        let size = std::fs::metadata(dir.join(rotated)).expect("meta").len();
        assert!((4096..4096 + 200).contains(&size), "{rotated}: {size} bytes");
    }
    // Oldest rotated, newer rotated, current: together the tail of the output, in order.
    let mut kept = Vec::new();
    for file in files.iter().filter(|n| *n != name).chain([&name.to_owned()]) {
        let text = std::fs::read_to_string(dir.join(file)).expect("read");
        kept.extend(
            text.lines()
                .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned()),
        );
    }
    let first: usize = kept[0].trim_start_matches("line-").parse().expect("line number");
    assert!(first > 0, "nothing was deleted");
    let expected: Vec<String> = (first..1000).map(|i| format!("line-{i}")).collect();
    assert_eq!(kept, expected);
}

/// The parent PID and command line of a process.
fn parent_of(pid: u32) -> (u32, String) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ppid = stat
        .rsplit_once(") ")
        .expect("stat format")
        .1
        .split(' ')
        .nth(1)
        .expect("ppid");
    let ppid: u32 = ppid.parse().expect("ppid number");
    let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    (ppid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
}

/// The shim's PID from the container's started record.
fn shim_pid(f: &Fixture, id: &str) -> u32 {
    let path = f.dir.path().join("state/containers").join(id).join("started.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("started.json")).expect("json");
    record["shim"]["pid"].as_u64().expect("shim pid") as u32
}

#[test]
fn shims_are_forked_by_a_launcher_that_is_replaced_when_it_dies() {
    let f = Fixture::new();
    let sandbox = f.sandbox("pod-launcher", false);
    let first = f.container(&sandbox, &["sleep", "30"]);
    f.runtime.start_container(&first).expect("start");
    let (launcher, cmdline) = parent_of(shim_pid(&f, &first.id));
    assert!(
        cmdline.contains(" launcher "),
        "shim's parent is {launcher}: {cmdline:?}"
    );
    // Forked shims keep the launcher's command line, which names the state root: node
    // reclaim finds them by it.
    assert!(
        runtime::reclaim::processes_of(f.dir.path(), &f.cgroup_parent).contains(&(shim_pid(&f, &first.id) as i32)),
        "reclaim does not see the shim"
    );
    assert_eq!(
        parent_of(launcher).0,
        std::process::id(),
        "the launcher is the runtime's child"
    );

    // The launcher dies: running containers are unaffected, the next start gets a new one.
    // SAFETY: kill(2) on a child process of this test.
    assert_eq!(unsafe { libc::kill(launcher as i32, libc::SIGKILL) }, 0);
    let second = f.container(&sandbox, &["sh", "-c", "exit 4"]);
    f.runtime
        .start_container(&second)
        .expect("start after the launcher died");
    assert_eq!(exit_code(&f.wait_exit(&second.id)), 4);
    assert!(matches!(
        f.runtime.container_state(&first.id).expect("state"),
        ContainerState::Running { .. }
    ));
    // A long-lived container: a shim whose container has exited may be gone before its
    // parent is read.
    let third = f.container(&sandbox, &["sleep", "30"]);
    f.runtime.start_container(&third).expect("start");
    let (replacement, cmdline) = parent_of(shim_pid(&f, &third.id));
    assert_ne!(replacement, launcher);
    assert!(cmdline.contains(" launcher "), "{cmdline:?}");

    // A dropped runtime takes its launcher with it; the containers stay.
    let other = Fixture::open(f.dir.path(), &f.cgroup_parent);
    let fourth = f.container(&sandbox, &["sleep", "30"]);
    other.start_container(&fourth).expect("start");
    let (other_launcher, _) = parent_of(shim_pid(&f, &fourth.id));
    drop(other);
    assert!(
        !std::path::Path::new(&format!("/proc/{other_launcher}")).exists(),
        "the launcher outlived its runtime"
    );
    assert!(matches!(
        f.runtime.container_state(&fourth.id).expect("state"),
        ContainerState::Running { .. }
    ));
    for spec in [&first, &second, &third, &fourth] {
        let _ = f.runtime.kill(&spec.id, libc::SIGKILL);
        f.wait_exit(&spec.id);
        f.runtime.remove_container(&spec.id).expect("remove");
    }
}
