//! Background deletion of torn-down host veths.
//!
//! Unregistering a network device waits for an RCU grace period inside the netlink call
//! (tens of milliseconds on a busy or virtualised host). Teardown therefore only takes the
//! host veth down, which already cuts the pod off the bridge, and leaves the deletion to
//! this std thread with its own blocking netlink socket, so no tokio worker blocks on it.
//! Devices are deleted by index, so a pod set up again under the same veth name is safe.

use std::io;
use std::sync::mpsc;

use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::Error;

enum Job {
    Delete { index: u32, name: String },
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Deletes links in the background; the thread ends (after the queued deletions) when this
/// value is dropped.
#[derive(Debug)]
pub(crate) struct Reaper {
    jobs: mpsc::Sender<Job>,
}

impl Reaper {
    /// Starts the thread. Its socket is created here, so it lives in the network namespace
    /// of the calling thread.
    pub(crate) fn start() -> Result<Self, Error> {
        let io = |source| Error::Io {
            context: "opening the netlink socket for link deletion".to_string(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("podnet-reaper".to_string())
            .spawn(move || run(&socket, &queue))
            .map_err(io)?;
        Ok(Self { jobs })
    }

    /// Queues the deletion of link `index`; `name` is for logs.
    pub(crate) fn delete(&self, index: u32, name: String) {
        if self.jobs.send(Job::Delete { index, name }).is_err() {
            tracing::warn!(index, "link deletion thread is gone");
        }
    }

    /// Waits until the deletions queued so far are done.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn run(socket: &Socket, queue: &mpsc::Receiver<Job>) {
    let mut sequence = 0u32;
    for job in queue {
        match job {
            Job::Delete { index, name } => {
                sequence = sequence.wrapping_add(1);
                match delete_link(socket, index, sequence) {
                    Ok(()) => tracing::debug!(index, name, "deleted link"),
                    Err(error) => tracing::warn!(index, name, %error, "deleting link"),
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// RTM_DELLINK for `index`; a link that is already gone is fine.
fn delete_link(socket: &Socket, index: u32, sequence: u32) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = index;
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::DelLink(link));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.sequence_number = sequence;
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;
    loop {
        let (answer, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < answer.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = message.header.length as usize;
            if message.header.sequence_number == sequence
                && let NetlinkPayload::Error(error) = message.payload
            {
                return match error.code.map(|c| c.get().saturating_abs()) {
                    None => Ok(()),
                    Some(code) if code == nix::errno::Errno::ENODEV as i32 => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(code)),
                };
            }
            if len == 0 {
                break;
            }
            offset += len.next_multiple_of(4);
        }
    }
}
