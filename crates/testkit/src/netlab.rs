//! A network lab for multi-node tests: a "lab" network namespace holding a bridge, and one
//! network namespace per node joined to it by a veth pair, kind-style. Nothing is created in the
//! host's network namespace, and no namespace has a route to the outside world, so test traffic
//! can only reach the lab's own addresses. Everything is removed on drop.
//!
//! The lab's bridge is `10.100.0.1/24`; node `i` is `10.100.0.(10 + i)` with a default route via
//! the bridge (which leads nowhere further). [`NetLab::forward`] gives host-side tests (the kube
//! client, kubectl) a loopback port that reaches an address inside the lab.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};

/// The bridge address inside the lab namespace.
pub const LAB_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 1);

/// A named network namespace (`/run/netns/NAME`), deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// Creates a new, empty network namespace with its loopback up.
    pub fn create(name: &str) -> Result<NetNs> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = NetNs { name: name.to_string() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace file, for `setns(2)` or `nsenter --net=`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// A command that will run inside this namespace (its network namespace only: the mount
    /// namespace stays the host's, unlike `ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        self.enter_on_spawn(&mut command);
        command
    }

    /// Makes `command` join this network namespace when it is spawned.
    pub fn enter_on_spawn(&self, command: &mut Command) {
        join_on_spawn(command, &self.path());
    }

    /// Runs `f` on a fresh thread that has joined this namespace (sockets it creates live here).
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let file = File::open(self.path()).with_context(|| format!("opening {}", self.path().display()))?;
        std::thread::spawn(move || -> Result<T> {
            // SAFETY: setns on this thread only; the thread is ours and ends after `f`.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns: {}", std::io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in netns panicked"))?
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).output();
    }
}

/// One node of the lab.
pub struct LabNode {
    pub name: String,
    pub ns: NetNs,
    pub ip: Ipv4Addr,
}

/// The lab: its own namespace with the bridge, and the nodes.
pub struct NetLab {
    pub nodes: Vec<LabNode>,
    forwards: Vec<Forward>,
    /// Listeners inside the lab relaying to the host: (stop flag, address).
    exposed: Vec<(Arc<AtomicBool>, SocketAddr)>,
    /// Declared last: the lab namespace goes after the nodes (their veths die with them).
    pub lab: NetNs,
}

static LABS: AtomicU32 = AtomicU32::new(0);

impl NetLab {
    /// A lab with `nodes` node namespaces named `<prefix>-n<i>`.
    pub fn create(nodes: usize) -> Result<NetLab> {
        let prefix = format!("kl{}-{}", std::process::id(), LABS.fetch_add(1, Ordering::Relaxed));
        let lab = NetNs::create(&format!("{prefix}-lab"))?;
        lab.ip(&["link", "add", "br0", "type", "bridge"])?;
        lab.ip(&["addr", "add", &format!("{LAB_GATEWAY}/24"), "dev", "br0"])?;
        lab.ip(&["link", "set", "br0", "up"])?;
        let mut lab = NetLab {
            nodes: Vec::new(),
            forwards: Vec::new(),
            exposed: Vec::new(),
            lab,
        };
        for i in 0..nodes {
            let name = format!("{prefix}-n{i}");
            let ns = NetNs::create(&name)?;
            let ip = Ipv4Addr::new(10, 100, 0, 10 + i as u8);
            let host_side = format!("vn{i}");
            lab.lab.ip(&[
                "link", "add", &host_side, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
            ])?;
            lab.lab.ip(&["link", "set", &host_side, "master", "br0", "up"])?;
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            ns.ip(&["route", "add", "default", "via", &LAB_GATEWAY.to_string()])?;
            lab.nodes.push(LabNode { name, ns, ip });
        }
        Ok(lab)
    }

    /// A port on the host's 127.0.0.1 whose connections are relayed to `target` inside the lab
    /// namespace.
    pub fn forward(&mut self, target: SocketAddr) -> Result<u16> {
        let forward = Forward::start(&self.lab, target)?;
        let port = forward.port;
        self.forwards.push(forward);
        Ok(port)
    }
}

impl NetLab {
    /// Makes the host's `127.0.0.1:port` reachable from the lab at `10.100.0.1:port` (a local
    /// registry for the nodes, say).
    pub fn expose_host_port(&mut self, port: u16) -> Result<SocketAddr> {
        self.expose_host_port_at(SocketAddr::from((LAB_GATEWAY, port)))
    }

    /// Makes the host's `127.0.0.1:port` reachable at `address` inside the lab namespace
    /// (`127.0.0.1:port` there: the lab then has the host's registry on its own loopback, as
    /// the host it stands in for would).
    pub fn expose_host_port_at(&mut self, address: SocketAddr) -> Result<SocketAddr> {
        let port = address.port();
        let listener = self.lab.run_in(move || TcpListener::bind(address))??;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(upstream) => relay(client, upstream),
                    Err(_) => {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        self.exposed.push((stop, address));
        Ok(address)
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for (stop, address) in self.exposed.drain(..) {
            stop.store(true, Ordering::Relaxed);
            // Wake the accept loop from inside the lab so that it sees the flag.
            let _ = self.lab.run_in(move || TcpStream::connect(address).map(|_| ()));
        }
    }
}

/// A TCP relay from the host's loopback into a namespace.
struct Forward {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Forward {
    fn start(ns: &NetNs, target: SocketAddr) -> Result<Forward> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        // A thread that stays in the namespace and dials for the accept loop.
        let (dial_tx, dial_rx) = mpsc::channel::<mpsc::Sender<std::io::Result<TcpStream>>>();
        let file = File::open(ns.path())?;
        std::thread::spawn(move || {
            // SAFETY: setns on this dedicated thread only.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return;
            }
            for reply in dial_rx {
                let _ = reply.send(TcpStream::connect(target));
            }
        });
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (tx, rx) = mpsc::channel();
                if dial_tx.send(tx).is_err() {
                    break;
                }
                let Ok(Ok(upstream)) = rx.recv() else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                relay(client, upstream);
            }
        });
        Ok(Forward { port, stop })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    std::thread::spawn(move || pump(a, b2));
    std::thread::spawn(move || pump(b, a2));
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Makes `command` join the network namespace at `path` when it is spawned.
pub fn join_on_spawn(command: &mut Command, path: &Path) {
    use std::os::unix::process::CommandExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (open, setns, close) on a path prepared beforehand.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let rc = libc::setns(fd, libc::CLONE_NEWNET);
            let error = std::io::Error::last_os_error();
            libc::close(fd);
            if rc != 0 {
                return Err(error);
            }
            Ok(())
        });
    }
}

fn run(command: &mut Command) -> Result<Output> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_reach_each_other_and_the_forward_reaches_the_lab() {
        let mut lab = NetLab::create(2).expect("lab");
        // A listener on node 1; a connection from node 0.
        let node1 = lab.nodes[1].ip;
        let listener = lab.nodes[1]
            .ns
            .run_in(move || TcpListener::bind((node1, 7000)))
            .expect("thread")
            .expect("bind");
        let connected = lab.nodes[0]
            .ns
            .run_in(move || TcpStream::connect((node1, 7000)).map(|_| ()))
            .expect("thread");
        assert!(connected.is_ok(), "{connected:?}");
        let (mut accepted, _) = listener.accept().expect("accept");
        // The host's loopback forward reaches the same listener through the lab.
        let port = lab.forward(SocketAddr::from((node1, 7000))).expect("forward");
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect forward");
        client.write_all(b"ping").expect("write");
        let (mut second, _) = listener.accept().expect("accept forwarded");
        let mut got = [0u8; 4];
        second.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"ping");
        let _ = accepted.write_all(b"x");
        // A host port exposed in the lab answers a node.
        let host_listener = TcpListener::bind("127.0.0.1:0").expect("host listener");
        let host_port = host_listener.local_addr().expect("addr").port();
        let exposed = lab.expose_host_port(host_port).expect("expose");
        let reached = lab.nodes[0]
            .ns
            .run_in(move || TcpStream::connect(exposed).and_then(|mut s| s.write_all(b"hi")))
            .expect("thread");
        assert!(reached.is_ok(), "{reached:?}");
        let (mut from_node, _) = host_listener.accept().expect("accept from the lab");
        from_node.read_exact(&mut got[..2]).expect("read");
        assert_eq!(&got[..2], b"hi");
        let names: Vec<String> = lab.nodes.iter().map(|n| n.ns.name.clone()).collect();
        drop(lab);
        for name in names {
            assert!(!Path::new("/run/netns").join(name).exists());
        }
    }
}
