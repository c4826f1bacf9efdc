//! Session affinity across a full sync. A full sync deletes and recreates every table of ours
//! (that is how it repairs drift without reading the tables), and with them the sets the data
//! path fills with `update @affinity-… { ip saddr }`: every client would be balanced afresh.
//! Upstream's nftables mode never deletes those sets. Here the sets' elements are read back
//! first (an `NFT_MSG_GETSETELEM` dump per affinity set) and written into the new tables with
//! what was left of their timeouts, in the same transaction.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{MsgFlags, recv, send};

use super::NftError;
use super::netlink::{
    NFNL_SUBSYS_NFTABLES, NFPROTO_IPV4, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBackend,
};
use super::table::{Ruleset, SetKind};

const MSG_NEWSETELEM: u16 = 12;
const MSG_GETSETELEM: u16 = 13;
/// A sequence number no batch uses (batches number their messages from 0).
const DUMP_SEQ: u32 = u32::MAX - 1;

/// One client address in an affinity set, and how long its entry has left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    pub table: String,
    pub set: String,
    pub client: Ipv4Addr,
    pub remaining_ms: u64,
}

/// Every affinity set of `ruleset`, as (table, set).
pub fn affinity_sets(ruleset: &Ruleset) -> Vec<(String, String)> {
    let mut sets = Vec::new();
    for (table, content) in &ruleset.tables {
        for (name, set) in &content.sets {
            if matches!(set.kind, SetKind::Affinity { .. }) {
                sets.push((table.clone(), name.clone()));
            }
        }
    }
    sets
}

impl NetlinkBackend {
    /// The entries of the given affinity sets; a set that does not exist has none.
    pub fn affinity_blocking(&self, sets: &[(String, String)]) -> Result<Vec<Remembered>, NftError> {
        self.with_socket(|fd| {
            let mut entries = Vec::new();
            for (table, set) in sets {
                dump_set(fd, table, set, &mut entries)?;
            }
            Ok(entries)
        })
    }
}

/// Appends the elements of `table`'s set `set` to `entries`.
fn dump_set(fd: &OwnedFd, table: &str, set: &str, entries: &mut Vec<Remembered>) -> Result<(), NftError> {
    let raw = fd.as_raw_fd();
    let mut request = Vec::with_capacity(64);
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | MSG_GETSETELEM).to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&DUMP_SEQ.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[NFPROTO_IPV4, 0, 0, 0]);
    for (kind, text) in [(1u16, table), (2, set)] {
        // NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET: NUL-terminated, padded to 4.
        let len = u16::try_from(4 + text.len() + 1).unwrap_or(u16::MAX);
        request.extend_from_slice(&len.to_ne_bytes());
        request.extend_from_slice(&kind.to_ne_bytes());
        request.extend_from_slice(text.as_bytes());
        request.push(0);
        while !request.len().is_multiple_of(4) {
            request.push(0);
        }
    }
    let total = u32::try_from(request.len()).unwrap_or(u32::MAX);
    request[0..4].copy_from_slice(&total.to_ne_bytes());
    send(raw, &request, MsgFlags::empty()).map_err(|e| NftError::Socket(format!("send: {e}")))?;
    let mut reply = vec![0u8; 1 << 16];
    let mut done = false;
    while !done {
        // Blocking, bounded by the socket's receive timeout.
        let n = recv(raw, &mut reply, MsgFlags::empty())
            .map_err(|e| NftError::Socket(format!("recv (set element dump): {e}")))?;
        done = parse_elements(&reply[..n], table, set, entries)?;
    }
    Ok(())
}

/// The attributes in `buf`, as (type without flags, payload).
fn attributes(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = buf.get(at..at + 4)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & 0x3fff;
        let payload = buf.get(at + 4..at + len.max(4))?;
        at += len.max(4).next_multiple_of(4);
        Some((kind, payload))
    })
}

fn be64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads one buffer of the dump's answers into `entries`; true at its end. A set that does
/// not exist (ENOENT) ends the dump with nothing.
fn parse_elements(buf: &[u8], table: &str, set: &str, entries: &mut Vec<Remembered>) -> Result<bool, NftError> {
    let mut at = 0;
    while let Some(header) = buf.get(at..at + 16) {
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let Some(message) = buf.get(at..at + len).filter(|_| len >= 16) else {
            break;
        };
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR if len >= 20 => {
                let errno = i32::from_ne_bytes([message[16], message[17], message[18], message[19]]);
                if errno == -(nix::errno::Errno::ENOENT as i32) {
                    return Ok(true);
                }
                if errno != 0 {
                    return Err(NftError::Kernel {
                        errno: nix::errno::Errno::from_raw(-errno),
                        op: format!("list set {table} {set}"),
                    });
                }
            }
            _ if kind == (NFNL_SUBSYS_NFTABLES << 8) | MSG_NEWSETELEM => {
                // nlmsghdr (16) + nfgenmsg (4), then NFTA_SET_ELEM_LIST_ELEMENTS (3).
                let lists = attributes(message.get(20..).unwrap_or_default()).filter(|(kind, _)| *kind == 3);
                for (_, elements) in lists {
                    for (_, element) in attributes(elements).filter(|(kind, _)| *kind == 1) {
                        if let Some(entry) = element_entry(element, table, set) {
                            entries.push(entry);
                        }
                    }
                }
            }
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    Ok(false)
}

/// An element's key (`NFTA_SET_ELEM_KEY` → `NFTA_DATA_VALUE`, an IPv4 address) and the time
/// it has left (`NFTA_SET_ELEM_EXPIRATION`, ms); elements without either are skipped.
fn element_entry(element: &[u8], table: &str, set: &str) -> Option<Remembered> {
    let mut client = None;
    let mut remaining_ms = None;
    for (kind, payload) in attributes(element) {
        match kind {
            1 => {
                let (_, value) = attributes(payload).find(|(kind, _)| *kind == 1)?;
                let octets: [u8; 4] = value.try_into().ok()?;
                client = Some(Ipv4Addr::from(octets));
            }
            5 => remaining_ms = be64(payload),
            _ => {}
        }
    }
    Some(Remembered {
        table: table.to_owned(),
        set: set.to_owned(),
        client: client?,
        remaining_ms: remaining_ms?,
    })
}
