//! Test fixtures shared by the workspace's tests (dev-only): real processes on free loopback
//! ports, cleaned up on drop.

pub mod apiserver;
pub mod etcd;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}
