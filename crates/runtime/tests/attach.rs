//! Attaching to busybox containers' main processes, as root: output fanned out to every
//! client and the log, stdin (with stdinOnce), a terminal sized by the client.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::Fixture;
use runtime::attach::{
    FRAME_ATTACH_STDIN, FRAME_HEADER, FRAME_RESIZE, FRAME_STDERR, FRAME_STDIN, FRAME_STDIN_CLOSE, FRAME_STDOUT,
    decode_header, encode_frame,
};
use runtime::{ContainerState, RuntimeError};

/// Reads frames until `wanted` shows up in the output of `kind`, or end of stream (`None`).
fn read_until(socket: &mut UnixStream, kind: u8, wanted: &str) -> Option<String> {
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut seen = String::new();
    while !seen.contains(wanted) {
        let mut header = [0u8; FRAME_HEADER];
        if socket.read_exact(&mut header).is_err() {
            return None;
        }
        let (got, len) = decode_header(header);
        let mut payload = vec![0u8; len];
        socket.read_exact(&mut payload).expect("payload");
        if got == kind {
            seen.push_str(&String::from_utf8_lossy(&payload));
        }
    }
    Some(seen)
}

fn at_eof(socket: &mut UnixStream) -> bool {
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut rest = Vec::new();
    socket.read_to_end(&mut rest).is_ok()
}

fn wait_exit(f: &Fixture, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f.runtime.container_state(id).expect("state") {
            ContainerState::Exited { exit_code, .. } => return exit_code,
            _ if Instant::now() > deadline => panic!("{id} did not exit"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn output_goes_to_every_client_and_the_log() {
    let f = Fixture::new();
    let sandbox = f.sandbox("ticker", false);
    let spec = f.container(
        &sandbox,
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo tick $i; echo tock >&2; sleep 0.1; done",
        ],
    );
    f.runtime.start_container(&spec).expect("start");
    let mut one = f.runtime.attach(&spec.id).expect("attach").socket;
    let mut two = f.runtime.attach(&spec.id).expect("attach").socket;
    assert!(read_until(&mut one, FRAME_STDOUT, "tick").is_some());
    assert!(read_until(&mut two, FRAME_STDERR, "tock").is_some());
    // A client that leaves does not disturb the others.
    drop(one);
    assert!(read_until(&mut two, FRAME_STDOUT, "tick").is_some());
    f.runtime.kill(&spec.id, libc::SIGKILL).expect("kill");
    wait_exit(&f, &spec.id);
    assert!(at_eof(&mut two), "the attach ends with the container");
    let log = std::fs::read_to_string(&spec.log_path).expect("log");
    assert!(log.contains(" stdout F tick 1\n"), "{log}");
    assert!(log.contains(" stderr F tock\n"), "{log}");
    assert!(matches!(f.runtime.attach(&spec.id), Err(RuntimeError::NotRunning(_))));
}

#[test]
fn stdin_once_closes_stdin_when_the_first_client_is_done() {
    let f = Fixture::new();
    let sandbox = f.sandbox("cat", false);
    let mut spec = f.container(&sandbox, &["sh", "-c", "cat; echo done $?"]);
    spec.stdin = true;
    spec.stdin_once = true;
    f.runtime.start_container(&spec).expect("start");
    let attachment = f.runtime.attach(&spec.id).expect("attach");
    assert!(attachment.stdin && !attachment.tty);
    let mut socket = attachment.socket;
    let mut watcher = f.runtime.attach(&spec.id).expect("attach").socket;
    socket.write_all(&encode_frame(FRAME_ATTACH_STDIN, b"")).expect("write");
    socket.write_all(&encode_frame(FRAME_STDIN, b"hello\n")).expect("write");
    assert!(read_until(&mut socket, FRAME_STDOUT, "hello\n").is_some());
    assert!(read_until(&mut watcher, FRAME_STDOUT, "hello\n").is_some());
    socket.write_all(&encode_frame(FRAME_STDIN_CLOSE, b"")).expect("write");
    assert!(read_until(&mut socket, FRAME_STDOUT, "done 0\n").is_some());
    assert_eq!(wait_exit(&f, &spec.id), 0);
    let log = std::fs::read_to_string(&spec.log_path).expect("log");
    assert!(
        log.contains(" stdout F hello\n") && log.contains(" stdout F done 0\n"),
        "{log}"
    );
}

#[test]
fn a_terminal_is_sized_by_the_client() {
    let f = Fixture::new();
    let sandbox = f.sandbox("tty", false);
    let mut spec = f.container(&sandbox, &["sh"]);
    spec.stdin = true;
    spec.tty = true;
    f.runtime.start_container(&spec).expect("start");
    let attachment = f.runtime.attach(&spec.id).expect("attach");
    assert!(attachment.tty);
    let mut socket = attachment.socket;
    socket.write_all(&encode_frame(FRAME_ATTACH_STDIN, b"")).expect("write");
    socket
        .write_all(&encode_frame(FRAME_RESIZE, &[0, 33, 0, 77]))
        .expect("write");
    socket
        .write_all(&encode_frame(
            FRAME_STDIN,
            b"stty size; [ -t 1 ] && echo on-a-ter''minal\n",
        ))
        .expect("write");
    let out = read_until(&mut socket, FRAME_STDOUT, "on-a-terminal").expect("a terminal");
    assert!(out.contains("33 77\r\n"), "{out:?}");
    // Without stdinOnce, the end of the client's input ends its attach, not the shell.
    socket.write_all(&encode_frame(FRAME_STDIN_CLOSE, b"")).expect("write");
    assert!(at_eof(&mut socket));
    assert!(matches!(
        f.runtime.container_state(&spec.id),
        Ok(ContainerState::Running { .. })
    ));
    let mut again = f.runtime.attach(&spec.id).expect("attach again").socket;
    again.write_all(&encode_frame(FRAME_ATTACH_STDIN, b"")).expect("write");
    again.write_all(&encode_frame(FRAME_STDIN, b"exit 5\n")).expect("write");
    assert_eq!(wait_exit(&f, &spec.id), 5);
    assert!(at_eof(&mut again));
}
