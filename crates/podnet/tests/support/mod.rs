//! Helpers for tests and the benchmark: throwaway network namespaces and inspection.
//!
//! A namespace is held by an open file descriptor only (no bind mount), so dropping a
//! [`Netns`] frees it and everything in it; nothing is left on the filesystem.
#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use nix::sched::CloneFlags;

/// A fresh network namespace, alive as long as this value.
pub(crate) struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = std::thread::spawn(|| -> io::Result<OwnedFd> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            Ok(File::open("/proc/thread-self/ns/net")?.into())
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))??;
        let path = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()));
        Ok(Self { fd, path })
    }

    /// A path that opens this namespace, also from child processes.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a std thread inside this namespace.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&self.fd, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs an async body on a current-thread runtime whose thread is in this namespace.
    pub(crate) fn block_on<F: Future>(&self, f: impl FnOnce() -> F + Send) -> F::Output
    where
        F::Output: Send,
    {
        self.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f())
        })
    }

    /// Links, addresses and routes of this namespace.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.block_on(|| async {
            let (conn, handle, _) = rtnetlink::new_connection().expect("netlink");
            tokio::spawn(conn);
            let links: Vec<_> = handle.link().get().execute().try_collect().await.unwrap();
            let links: Vec<Link> = links
                .into_iter()
                .map(|l| {
                    let mut link = Link {
                        index: l.header.index,
                        up: l.header.flags.contains(LinkFlags::Up),
                        ..Link::default()
                    };
                    for attr in l.attributes {
                        match attr {
                            LinkAttribute::IfName(n) => link.name = n,
                            LinkAttribute::Controller(m) => link.master = Some(m),
                            LinkAttribute::Mtu(m) => link.mtu = m,
                            _ => {}
                        }
                    }
                    link
                })
                .collect();
            let name_of = |index: u32| {
                links
                    .iter()
                    .find(|l| l.index == index)
                    .map(|l| l.name.clone())
                    .unwrap_or_default()
            };
            let addrs: Vec<_> = handle.address().get().execute().try_collect().await.unwrap();
            let addrs = addrs
                .into_iter()
                .filter_map(|a| {
                    a.attributes.iter().find_map(|attr| match attr {
                        AddressAttribute::Address(std::net::IpAddr::V4(ip)) => {
                            Some((name_of(a.header.index), *ip, a.header.prefix_len))
                        }
                        _ => None,
                    })
                })
                .collect();
            let dump = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().build();
            let routes: Vec<_> = handle.route().get(dump).execute().try_collect().await.unwrap();
            let routes = routes
                .into_iter()
                .filter(|r| r.header.table == 254)
                .map(|r| {
                    let mut route = Route {
                        dst: format!("0.0.0.0/{}", r.header.destination_prefix_length),
                        protocol: u8::from(r.header.protocol),
                        ..Route::default()
                    };
                    for attr in &r.attributes {
                        match attr {
                            RouteAttribute::Destination(RouteAddress::Inet(d)) => {
                                route.dst = format!("{d}/{}", r.header.destination_prefix_length)
                            }
                            RouteAttribute::Gateway(RouteAddress::Inet(g)) => route.gateway = Some(*g),
                            RouteAttribute::Oif(i) => route.dev = name_of(*i),
                            _ => {}
                        }
                    }
                    route
                })
                .collect();
            Snapshot { links, addrs, routes }
        })
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Link {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) up: bool,
    pub(crate) master: Option<u32>,
    pub(crate) mtu: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) dst: String,
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) dev: String,
    pub(crate) protocol: u8,
}

#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) links: Vec<Link>,
    /// (link name, address, prefix length)
    pub(crate) addrs: Vec<(String, Ipv4Addr, u8)>,
    /// Routes of the main table.
    pub(crate) routes: Vec<Route>,
}

impl Snapshot {
    pub(crate) fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}
