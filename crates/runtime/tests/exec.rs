//! Exec into running busybox containers, as root.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Fixture;
use runtime::{ContainerSpec, ContainerState, ExecRequest, RuntimeError};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// A sandbox with one long-running container (`sleep 1000` after `setup`); returns its spec
/// and host PID.
fn running(f: &Fixture, hostname: &str, setup: &str, tweak: impl FnOnce(&mut ContainerSpec)) -> (ContainerSpec, u32) {
    let sandbox = f.sandbox(hostname, false);
    let mut spec = f.container(&sandbox, &["sh", "-c", &format!("{setup} exec sleep 1000")]);
    tweak(&mut spec);
    f.runtime.start_container(&spec).expect("start");
    let pid = match f.runtime.container_state(&spec.id).expect("state") {
        ContainerState::Running { pid, .. } => pid,
        other => panic!("not running: {other:?}"),
    };
    (spec, pid)
}

fn exec_ok(f: &Fixture, id: &str, args: &[&str]) -> String {
    let out = f
        .runtime
        .exec_sync(id, &strings(args), Duration::from_secs(20))
        .expect("exec_sync");
    assert_eq!(
        out.exit_code,
        0,
        "{args:?}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Host PIDs whose command line is exactly `args`.
fn processes_with_cmdline(args: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit_once(") ").is_none_or(|(_, rest)| rest.starts_with('Z')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn exec_joins_the_containers_namespaces_filesystem_and_cgroup() {
    let f = Fixture::new();
    let hostname_file = f.dir.path().join("hostname");
    std::fs::write(&hostname_file, "exec-pod\n").expect("hostname file");
    let (spec, pid) = running(&f, "exec-pod", "echo inside > /scratch/marker;", |spec| {
        spec.mounts.push(runtime::Mount {
            source: hostname_file.clone(),
            destination: "/etc/hostname".into(),
            kind: runtime::MountKind::Bind,
            read_only: true,
        });
        spec.mounts.push(runtime::Mount {
            source: "tmpfs".into(),
            destination: "/scratch".into(),
            kind: runtime::MountKind::Tmpfs { size: Some(1 << 20) },
            read_only: false,
        });
    });
    assert_eq!(exec_ok(&f, &spec.id, &["cat", "/etc/hostname"]), "exec-pod\n");
    assert_eq!(exec_ok(&f, &spec.id, &["hostname"]), "exec-pod\n");
    // The container's own files (its rootfs and a tmpfs only its mount namespace has), not
    // the host's.
    assert_eq!(
        exec_ok(&f, &spec.id, &["cat", "/etc/passwd"]),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    let marker = wait_for_output(&f, &spec.id, &["cat", "/scratch/marker"]);
    assert_eq!(marker, "inside\n");
    // Every namespace is the container's; PID 1 is the container's command.
    for ns in ["pid", "mnt", "net", "uts", "ipc"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("container ns");
        let seen = exec_ok(&f, &spec.id, &["readlink", &format!("/proc/self/ns/{ns}")]);
        assert_eq!(seen.trim(), theirs.to_string_lossy(), "{ns} namespace");
    }
    assert_eq!(exec_ok(&f, &spec.id, &["cat", "/proc/1/comm"]), "sleep\n");
    let host_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert_eq!(exec_ok(&f, &spec.id, &["cat", "/proc/self/cgroup"]), host_cgroup);
}

/// Retries briefly: the container's setup line may not have run yet.
fn wait_for_output(f: &Fixture, id: &str, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = f
            .runtime
            .exec_sync(id, &strings(args), Duration::from_secs(10))
            .expect("exec");
        if out.exit_code == 0 || Instant::now() > deadline {
            return String::from_utf8(out.stdout).expect("utf8");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exit_codes_env_user_and_cwd() {
    let f = Fixture::new();
    let (spec, _) = running(&f, "exec-codes", "", |spec| {
        spec.env.push("GREETING=hello".into());
        spec.user = runtime::User {
            uid: 1234,
            gid: 2345,
            additional_gids: vec![],
        };
        spec.cwd = "/tmp".into();
    });
    let out = f
        .runtime
        .exec_sync(
            &spec.id,
            &strings(&["sh", "-c", "echo out; echo err >&2; exit 7"]),
            Duration::from_secs(20),
        )
        .expect("exec");
    assert_eq!(
        (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
        (7, &b"out\n"[..], &b"err\n"[..])
    );
    // The container's environment, user and working directory by default.
    assert_eq!(
        exec_ok(&f, &spec.id, &["sh", "-c", "echo $GREETING; id -u; id -g; pwd"]),
        "hello\n1234\n2345\n/tmp\n"
    );
    // Overridden per exec.
    let mut process = f
        .runtime
        .exec(
            &spec.id,
            &ExecRequest {
                args: strings(&["sh", "-c", "echo $GREETING $EXTRA; id -u; pwd"]),
                env: vec!["GREETING=bye".into(), "EXTRA=x".into()],
                cwd: Some("/bin".into()),
                user: Some(runtime::User::default()),
                ..Default::default()
            },
        )
        .expect("exec");
    let mut stdout = String::new();
    process
        .take_stdout()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    assert_eq!(process.wait().expect("wait").exit_code, 0);
    assert_eq!(stdout, "bye x\n0\n/bin\n");
    // A command that is not there: upstream's wording.
    match f
        .runtime
        .exec_sync(&spec.id, &strings(&["nope"]), Duration::from_secs(20))
    {
        Err(RuntimeError::Exec(message)) => {
            assert_eq!(message, "exec: \"nope\": executable file not found in $PATH")
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
}

#[test]
fn timeout_kills_the_process() {
    let f = Fixture::new();
    let (spec, _) = running(&f, "exec-timeout", "", |_| {});
    let started = Instant::now();
    match f
        .runtime
        .exec_sync(&spec.id, &strings(&["sleep", "101"]), Duration::from_millis(500))
    {
        Err(RuntimeError::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(
        processes_with_cmdline(&["sleep", "101"]).is_empty(),
        "sleep 101 survived"
    );
    // Dropping a handle kills its process too.
    let process = f
        .runtime
        .exec(
            &spec.id,
            &ExecRequest {
                args: strings(&["sleep", "102"]),
                ..Default::default()
            },
        )
        .expect("exec");
    let pid = process.pid();
    assert_eq!(processes_with_cmdline(&["sleep", "102"]), vec![pid]);
    drop(process);
    assert!(wait_gone(pid), "sleep 102 survived the drop");
    // And an explicit kill reports the signal.
    let mut process = f
        .runtime
        .exec(
            &spec.id,
            &ExecRequest {
                args: strings(&["sleep", "103"]),
                ..Default::default()
            },
        )
        .expect("exec");
    assert_eq!(process.wait_timeout(Duration::from_millis(50)).expect("wait"), None);
    process.kill().expect("kill");
    let exit = process.wait().expect("wait");
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
}

#[test]
fn exec_into_an_exited_container_is_a_typed_error() {
    let f = Fixture::new();
    let sandbox = f.sandbox("exec-exited", false);
    let spec = f.container(&sandbox, &["true"]);
    f.runtime.start_container(&spec).expect("start");
    f.wait_exit(&spec.id);
    match f
        .runtime
        .exec_sync(&spec.id, &strings(&["true"]), Duration::from_secs(5))
    {
        Err(RuntimeError::NotRunning(id)) => assert_eq!(id, spec.id),
        other => panic!("expected NotRunning, got {other:?}"),
    }
    assert!(matches!(
        f.runtime
            .exec_sync("no-such-container", &strings(&["true"]), Duration::from_secs(5)),
        Err(RuntimeError::NotFound { .. })
    ));
}

#[test]
fn stdin_is_piped() {
    let f = Fixture::new();
    let (spec, _) = running(&f, "exec-stdin", "", |_| {});
    let mut process = f
        .runtime
        .exec(
            &spec.id,
            &ExecRequest {
                args: strings(&["cat"]),
                stdin: true,
                ..Default::default()
            },
        )
        .expect("exec");
    let mut stdin = process.take_stdin().expect("stdin");
    let mut stdout = process.take_stdout().expect("stdout");
    stdin.write_all(b"hello through stdin\n").expect("write");
    drop(stdin);
    let mut echoed = String::new();
    stdout.read_to_string(&mut echoed).expect("read");
    assert_eq!(echoed, "hello through stdin\n");
    assert_eq!(process.wait().expect("wait").exit_code, 0);
}

#[test]
fn tty_gets_a_terminal_and_its_size() {
    let f = Fixture::new();
    let (spec, _) = running(&f, "exec-tty", "", |_| {});
    let mut process = f
        .runtime
        .exec(
            &spec.id,
            &ExecRequest {
                args: strings(&["sh", "-c", "read line; stty size; [ -t 0 ] && echo is-a-tty; exit 3"]),
                tty: true,
                ..Default::default()
            },
        )
        .expect("exec");
    process.resize(42, 101).expect("resize");
    let mut pty = process.take_pty().expect("pty");
    pty.write_all(b"go\n").expect("write");
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the process is done and the terminal hangs up (EIO).
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        output.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("42 101"), "{text:?}");
    assert!(text.contains("is-a-tty"), "{text:?}");
    assert_eq!(process.wait().expect("wait").exit_code, 3);
}
