//! Netlink connections whose socket lives in another network namespace.
//!
//! A socket belongs to the network namespace of the thread that creates it, and keeps it for
//! its whole life whichever thread uses it. So a short-lived std thread (never a tokio
//! worker) joins the target namespace, creates the socket with the caller's runtime entered
//! (the socket registers with that runtime's reactor) and exits; the connection then runs
//! as an ordinary task of the caller's runtime.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::sched::CloneFlags;

use crate::Error;

/// An rtnetlink connection whose socket lives in another network namespace. Dropping it
/// stops the connection task and closes the socket (a netlink connection task does not end
/// by itself when its handles are dropped).
pub(crate) struct NetnsConnection {
    pub(crate) handle: rtnetlink::Handle,
    _task: AbortOnDrop,
}

/// Aborts a task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connection whose requests act inside the network namespace `netns` (a path such as
/// `/proc/<pid>/ns/net` or a bind mount under `/run/netns`).
pub(crate) async fn connect_in(netns: &Path) -> Result<NetnsConnection, Error> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let path = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("podnet-netns".to_string())
        .spawn(move || {
            let res = (|| {
                let file = File::open(&path)?;
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                let _entered = runtime.enter();
                rtnetlink::new_connection()
            })();
            // The receiver only goes away when the caller was cancelled.
            let _ = tx.send(res);
        });
    let context = || format!("opening a netlink socket in {}", netns.display());
    spawned.map_err(|source| Error::Io {
        context: context(),
        source,
    })?;
    let (connection, handle, _unsolicited) = rx
        .await
        .map_err(|_| Error::Io {
            context: context(),
            source: io::Error::other("namespace thread ended without an answer"),
        })?
        .map_err(|source| Error::Io {
            context: context(),
            source,
        })?;
    Ok(NetnsConnection {
        handle,
        _task: AbortOnDrop(tokio::spawn(connection)),
    })
}
