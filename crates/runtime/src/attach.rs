//! Attaching to a container's main process (`kubectl attach`, [`Runtime::attach`]).
//!
//! The shim sets the container's stdio up so that clients can attach later: a stdin pipe it
//! keeps the write end of (`stdin: true`; `/dev/null` otherwise), or with `tty: true` a
//! pseudo-terminal whose master it keeps (stdout and stderr merged, as a terminal does). It
//! listens on `attach.sock` in the container's state directory; every client gets what the
//! process writes from the moment it attached (the log file keeps getting everything), may
//! write the process's stdin and sizes its terminal.
//!
//! The socket carries frames: a kind byte, the payload's length (big-endian `u32`) and the
//! payload. Shim → client: [`FRAME_STDOUT`], [`FRAME_STDERR`]. Client → shim:
//! [`FRAME_ATTACH_STDIN`] (first, when the client attaches with stdin), [`FRAME_STDIN`],
//! [`FRAME_STDIN_CLOSE`] and [`FRAME_RESIZE`] (rows then columns, big-endian `u16`s).
//!
//! Stdin follows containerd's CRI attach: when a client's input ends, a `stdinOnce`
//! container without a terminal gets EOF on its stdin (as it does when the first client that
//! attached with stdin goes away); otherwise that client's attach ends. The container
//! never blocks on a slow client: a client more than [`MAX_BACKLOG`] behind is dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::RuntimeError;
use crate::logs::Stream;
use crate::runtime::Runtime;
use crate::state::{self, ShimConfig};
use crate::types::ContainerState;

/// Shim → client: output the process wrote on stdout (or its terminal).
pub const FRAME_STDOUT: u8 = 1;
/// Shim → client: output the process wrote on stderr.
pub const FRAME_STDERR: u8 = 2;
/// Client → shim: input for the process's stdin.
pub const FRAME_STDIN: u8 = 0;
/// Client → shim: new terminal size, rows then columns as big-endian `u16`s.
pub const FRAME_RESIZE: u8 = 4;
/// Client → shim: this client attaches with stdin (sent first).
pub const FRAME_ATTACH_STDIN: u8 = 5;
/// Client → shim: this client's input has ended.
pub const FRAME_STDIN_CLOSE: u8 = 255;
/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 5;
/// Largest payload accepted.
pub const MAX_FRAME: usize = 1 << 20;

/// Output queued for one client beyond which it is dropped.
const MAX_BACKLOG: usize = 8 << 20;
/// Input queued for the process beyond which clients are not read.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// Largest output frame sent.
const CHUNK: usize = 32 * 1024;
/// How long the shim tries to deliver queued output once the container has exited.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// One frame: kind, length, payload.
pub fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A frame header's kind and payload length.
pub fn decode_header(header: [u8; FRAME_HEADER]) -> (u8, usize) {
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    (header[0], len as usize)
}

/// A connection to a running container's main process.
#[derive(Debug)]
pub struct Attachment {
    /// The shim's socket, speaking the frames of this module.
    pub socket: UnixStream,
    /// The container runs on a terminal (output comes as [`FRAME_STDOUT`] only).
    pub tty: bool,
    /// The container has a stdin that clients may write.
    pub stdin: bool,
}

impl Runtime {
    /// Connects to the main process of a running container: [`RuntimeError::NotRunning`]
    /// when it is not running.
    pub fn attach(&self, id: &str) -> Result<Attachment, RuntimeError> {
        match self.container_state(id)? {
            ContainerState::Running { .. } => {}
            _ => return Err(RuntimeError::NotRunning(id.to_owned())),
        }
        let spec = self.container_spec(id)?;
        let dir = self.container_dir(id);
        let (_dir, path) = socket_path(&dir).map_err(RuntimeError::at(&dir, "open"))?;
        let socket = UnixStream::connect(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => RuntimeError::NotRunning(id.to_owned()),
            _ => RuntimeError::io(format!("connecting to {}", dir.join(state::ATTACH_SOCKET).display()), e),
        })?;
        Ok(Attachment {
            socket,
            tty: spec.tty,
            stdin: spec.stdin,
        })
    }
}

/// A short path to the attach socket of `dir` (unix socket addresses hold 108 bytes; state
/// directories can be longer): through `/proc/self/fd` and a descriptor of the directory,
/// which must stay open while the path is used.
fn socket_path(dir: &Path) -> io::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{}", handle.as_raw_fd(), state::ATTACH_SOCKET));
    Ok((handle, path))
}

/// The container's end of its stdio, handed to libcontainer.
pub(crate) struct ContainerStdio {
    pub(crate) stdin: OwnedFd,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// The shim's end: the output to read (stdout and stderr, or the terminal) and the hub
/// serving attach clients.
pub(crate) struct ShimStdio {
    pub(crate) outputs: Vec<(OwnedFd, Stream)>,
    pub(crate) hub: Hub,
}

/// Sets up the container's stdio as `config` asks and starts listening for attach clients.
pub(crate) fn setup(config: &ShimConfig, dir: &Path) -> io::Result<(ContainerStdio, ShimStdio)> {
    let listener = listen(dir)?;
    let mut hub = Hub {
        listener: Some(listener),
        clients: Vec::new(),
        stdin: None,
        input: Vec::new(),
        close_stdin: false,
        pty: None,
        stdin_once: config.stdin_once,
        tty: config.tty,
    };
    if config.tty {
        let (master, slave) = crate::process_exec::open_pty().map_err(io::Error::other)?;
        set_nonblocking(master.as_raw_fd())?;
        if config.stdin {
            hub.stdin = Some(master.try_clone()?);
        }
        let output = master.try_clone()?;
        hub.pty = Some(master);
        let container = ContainerStdio {
            stdin: slave.try_clone()?.into(),
            stdout: slave.try_clone()?.into(),
            stderr: slave.into(),
        };
        let outputs = vec![(OwnedFd::from(output), Stream::Stdout)];
        return Ok((container, ShimStdio { outputs, hub }));
    }
    let stdin: OwnedFd = if config.stdin {
        let (r, w) = crate::shim::pipe()?;
        set_nonblocking(w.as_raw_fd())?;
        hub.stdin = Some(File::from(w));
        r
    } else {
        File::open("/dev/null")?.into()
    };
    let (out_r, out_w) = crate::shim::pipe()?;
    let (err_r, err_w) = crate::shim::pipe()?;
    let container = ContainerStdio {
        stdin,
        stdout: out_w,
        stderr: err_w,
    };
    let outputs = vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)];
    Ok((container, ShimStdio { outputs, hub }))
}

fn listen(dir: &Path) -> io::Result<UnixListener> {
    match fs::remove_file(dir.join(state::ATTACH_SOCKET)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let (_dir, path) = socket_path(dir)?;
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Serves attach clients inside the shim's poll loop: [`Hub::poll_entries`] says what to
/// wait for, [`Hub::handle`] acts on what poll reported, [`Hub::output`] fans the
/// process's output out, [`Hub::finish`] delivers what is queued once the process is gone.
pub(crate) struct Hub {
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    /// The process's stdin (the pipe's write end or the terminal's master), non-blocking.
    stdin: Option<File>,
    /// Input not yet written to the process.
    input: Vec<u8>,
    /// Close the process's stdin once `input` is written.
    close_stdin: bool,
    pty: Option<File>,
    stdin_once: bool,
    tty: bool,
}

struct Client {
    stream: UnixStream,
    received: Vec<u8>,
    queued: Vec<u8>,
    with_stdin: bool,
    gone: bool,
}

impl Client {
    /// Sends what is queued without blocking; a broken connection marks the client gone.
    fn flush(&mut self) {
        while !self.gone && !self.queued.is_empty() {
            // SAFETY: send from a valid buffer of the given length on a socket we own.
            let sent = unsafe {
                libc::send(
                    self.stream.as_raw_fd(),
                    self.queued.as_ptr().cast(),
                    self.queued.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if sent >= 0 {
                self.queued.drain(..sent as usize);
                continue;
            }
            if !would_block(&io::Error::last_os_error()) {
                self.gone = true;
            }
            return;
        }
    }

    /// Reads what arrived; end of stream or an error marks the client gone.
    fn receive(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => self.gone = true,
            Ok(n) => self.received.extend_from_slice(&buf[..n]),
            Err(e) if would_block(&e) => {}
            Err(_) => self.gone = true,
        }
    }

    /// The complete frames received so far.
    fn frames(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        let mut at = 0;
        while self.received.len() - at >= FRAME_HEADER {
            let mut header = [0u8; FRAME_HEADER];
            header.copy_from_slice(&self.received[at..at + FRAME_HEADER]);
            let (kind, len) = decode_header(header);
            if len > MAX_FRAME {
                self.gone = true;
                break;
            }
            if self.received.len() - at - FRAME_HEADER < len {
                break;
            }
            let start = at + FRAME_HEADER;
            frames.push((kind, self.received[start..start + len].to_vec()));
            at = start + len;
        }
        self.received.drain(..at);
        frames
    }
}

fn entry(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

impl Hub {
    /// What to poll: the listener, the process's stdin, then each client.
    pub(crate) fn poll_entries(&self) -> Vec<libc::pollfd> {
        let mut entries = Vec::with_capacity(2 + self.clients.len());
        entries.push(entry(
            self.listener.as_ref().map_or(-1, |l| l.as_raw_fd()),
            libc::POLLIN,
        ));
        let stdin = self.stdin.as_ref().filter(|_| !self.input.is_empty());
        entries.push(entry(stdin.map_or(-1, |f| f.as_raw_fd()), libc::POLLOUT));
        for client in &self.clients {
            let mut events = 0;
            if self.input.len() < MAX_PENDING_INPUT {
                events |= libc::POLLIN;
            }
            if !client.queued.is_empty() {
                events |= libc::POLLOUT;
            }
            entries.push(entry(client.stream.as_raw_fd(), events));
        }
        entries
    }

    /// Acts on the entries of [`Hub::poll_entries`] after a poll.
    pub(crate) fn handle(&mut self, entries: &[libc::pollfd]) {
        let mut entries = entries.iter();
        if entries.next().is_some_and(|e| e.revents != 0) {
            self.accept();
        }
        let _stdin = entries.next();
        for (client, entry) in self.clients.iter_mut().zip(entries) {
            if entry.revents & (libc::POLLOUT | libc::POLLERR) != 0 {
                client.flush();
            }
            if entry.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                client.receive();
            }
        }
        for i in 0..self.clients.len() {
            for (kind, payload) in self.clients[i].frames() {
                self.apply(i, kind, &payload);
            }
        }
        self.write_input();
        self.reap();
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            received: Vec::new(),
                            queued: Vec::new(),
                            with_stdin: false,
                            gone: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn apply(&mut self, client: usize, kind: u8, payload: &[u8]) {
        match kind {
            FRAME_ATTACH_STDIN => self.clients[client].with_stdin = true,
            FRAME_STDIN => {
                if self.stdin.is_some() && !self.close_stdin {
                    self.input.extend_from_slice(payload);
                }
            }
            FRAME_STDIN_CLOSE => {
                if self.stdin_once && !self.tty {
                    self.close_stdin = true;
                } else {
                    // Without stdinOnce the end of a client's input ends its attach.
                    self.clients[client].gone = true;
                }
            }
            FRAME_RESIZE => {
                if let (Some(pty), [r0, r1, c0, c1]) = (&self.pty, payload) {
                    let rows = u16::from_be_bytes([*r0, *r1]);
                    let cols = u16::from_be_bytes([*c0, *c1]);
                    if let Err(e) = crate::process_exec::resize_pty(pty, rows, cols) {
                        eprintln!("attach: resizing the terminal: {e}");
                    }
                }
            }
            _ => self.clients[client].gone = true,
        }
    }

    /// Writes queued input to the process without blocking; closes its stdin when asked to
    /// once everything is written, or when it can take no more (it closed its end).
    fn write_input(&mut self) {
        use std::io::Write;
        if let Some(stdin) = self.stdin.as_mut() {
            while !self.input.is_empty() {
                match stdin.write(&self.input) {
                    Ok(n) => {
                        self.input.drain(..n);
                    }
                    Err(e) if would_block(&e) => break,
                    Err(_) => {
                        self.input.clear();
                        self.close_stdin = true;
                    }
                }
            }
        }
        if self.close_stdin && self.input.is_empty() {
            self.stdin = None;
        }
    }

    /// Drops the clients that went away; the first that had attached with stdin closes a
    /// `stdinOnce` process's stdin.
    fn reap(&mut self) {
        let mut closes = false;
        self.clients.retain(|c| {
            closes |= c.gone && c.with_stdin;
            !c.gone
        });
        if closes && self.stdin_once && !self.tty {
            self.close_stdin = true;
            self.write_input();
        }
    }

    /// Queues output for every client and sends what it can.
    pub(crate) fn output(&mut self, stream: Stream, data: &[u8]) {
        let kind = match stream {
            Stream::Stdout => FRAME_STDOUT,
            Stream::Stderr => FRAME_STDERR,
        };
        for client in &mut self.clients {
            if client.queued.len() > MAX_BACKLOG {
                client.gone = true;
                continue;
            }
            for chunk in data.chunks(CHUNK) {
                client.queued.extend_from_slice(&encode_frame(kind, chunk));
            }
            client.flush();
        }
        self.reap();
    }

    /// Stops listening, delivers queued output (for up to [`FLUSH_TIMEOUT`]) and
    /// disconnects every client, which ends their attach.
    pub(crate) fn finish(&mut self, dir: &Path) {
        self.listener = None;
        let _ = fs::remove_file(dir.join(state::ATTACH_SOCKET));
        self.stdin = None;
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        loop {
            self.clients.retain(|c| !c.gone && !c.queued.is_empty());
            let left = deadline.saturating_duration_since(Instant::now());
            if self.clients.is_empty() || left.is_zero() {
                break;
            }
            let mut entries: Vec<libc::pollfd> = self
                .clients
                .iter()
                .map(|c| entry(c.stream.as_raw_fd(), libc::POLLOUT))
                .collect();
            // SAFETY: a valid array of pollfds of the given length.
            unsafe {
                libc::poll(
                    entries.as_mut_ptr(),
                    entries.len() as libc::nfds_t,
                    left.as_millis() as i32,
                )
            };
            for client in &mut self.clients {
                client.flush();
            }
        }
        self.clients.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split() {
        let mut bytes = encode_frame(FRAME_STDIN, b"hello");
        bytes.extend(encode_frame(FRAME_RESIZE, &[0, 24, 0, 80]));
        bytes.extend(&encode_frame(FRAME_STDIN_CLOSE, b"")[..3]);
        let (ours, _theirs) = UnixStream::pair().expect("socketpair");
        let mut client = Client {
            stream: ours,
            received: bytes,
            queued: Vec::new(),
            with_stdin: false,
            gone: false,
        };
        assert_eq!(
            client.frames(),
            vec![(FRAME_STDIN, b"hello".to_vec()), (FRAME_RESIZE, vec![0, 24, 0, 80])]
        );
        assert_eq!(client.received.len(), 3, "the partial frame waits");
        client.received.extend(&encode_frame(FRAME_STDIN_CLOSE, b"")[3..]);
        assert_eq!(client.frames(), vec![(FRAME_STDIN_CLOSE, Vec::new())]);
        assert!(!client.gone);
        let mut header = [0u8; FRAME_HEADER];
        header.copy_from_slice(&encode_frame(FRAME_STDOUT, &[7; 300])[..FRAME_HEADER]);
        assert_eq!(decode_header(header), (FRAME_STDOUT, 300));
    }
}
