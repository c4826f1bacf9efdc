//! Host-local IPAM: hands out addresses of the node's podCIDR, persisted in one JSON file.

use std::collections::{BTreeMap, HashSet};
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Ipv4Cidr};

/// Name of the state file under `NetworkConfig::state_dir`.
pub(crate) const STATE_FILE: &str = "ipam.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The range the allocations were made from.
    cidr: Option<Ipv4Cidr>,
    /// The most recently handed out address; the next search starts after it.
    last: Option<Ipv4Addr>,
    /// Pod id → address.
    allocations: BTreeMap<String, Ipv4Addr>,
}

/// Allocations of one podCIDR. The network address, the gateway (first host) and the
/// broadcast address are never handed out.
#[derive(Debug)]
pub(crate) struct Ipam {
    path: PathBuf,
    cidr: Ipv4Cidr,
    state: State,
    used: HashSet<Ipv4Addr>,
}

impl Ipam {
    /// Loads the state file of `dir` (an absent file is an empty state). Allocations outside
    /// `cidr` (the node's podCIDR changed) are dropped.
    pub(crate) fn load(dir: &Path, cidr: Ipv4Cidr) -> Result<Self, Error> {
        if cidr.prefix_len() > 30 {
            return Err(Error::Config(format!(
                "pod CIDR {cidr} is too small: it needs room for a gateway and a pod (at most /30)"
            )));
        }
        let path = dir.join(STATE_FILE);
        let mut state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|source| Error::State {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        let mut ipam = Self {
            path,
            cidr,
            state: State::default(),
            used: HashSet::new(),
        };
        let before = state.allocations.len();
        state.allocations.retain(|pod, ip| {
            let keep = ipam.is_assignable(*ip);
            if !keep {
                tracing::warn!(pod, %ip, %cidr, "dropping IPAM allocation outside the pod CIDR");
            }
            keep
        });
        let changed = state.cidr != Some(cidr) || before != state.allocations.len();
        state.cidr = Some(cidr);
        ipam.used = state.allocations.values().copied().collect();
        if ipam.used.len() != state.allocations.len() {
            return Err(Error::Config(format!(
                "IPAM state {} holds one address for two pods",
                ipam.path.display()
            )));
        }
        ipam.state = state;
        if changed {
            ipam.persist()?;
        }
        Ok(ipam)
    }

    /// The gateway address: the first host of the range.
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        // A /30 or larger network always has a first host.
        self.cidr.nth(1).unwrap_or(self.cidr.network())
    }

    fn is_assignable(&self, ip: Ipv4Addr) -> bool {
        match self.cidr.offset_of(ip) {
            Some(off) => off >= 2 && off < self.cidr.size() - 1,
            None => false,
        }
    }

    pub(crate) fn get(&self, pod_id: &str) -> Option<Ipv4Addr> {
        self.state.allocations.get(pod_id).copied()
    }

    pub(crate) fn allocated(&self) -> Vec<(String, Ipv4Addr)> {
        self.state
            .allocations
            .iter()
            .map(|(pod, ip)| (pod.clone(), *ip))
            .collect()
    }

    /// The address of `pod_id`, allocating (and persisting) one if it holds none. The
    /// boolean tells whether the address is new.
    pub(crate) fn allocate(&mut self, pod_id: &str) -> Result<(Ipv4Addr, bool), Error> {
        if let Some(ip) = self.get(pod_id) {
            return Ok((ip, false));
        }
        // Hosts that may be handed out: offsets 2 ..= size-2.
        let first = 2u64;
        let last = self.cidr.size() - 2;
        let count = last - first + 1;
        let start = match self.state.last.and_then(|ip| self.cidr.offset_of(ip)) {
            Some(off) if off >= first && off <= last => off - first + 1,
            _ => 0,
        };
        let found = (0..count)
            .map(|i| first + (start + i) % count)
            .filter_map(|off| self.cidr.nth(off))
            .find(|ip| !self.used.contains(ip));
        let Some(ip) = found else {
            return Err(Error::Exhausted { cidr: self.cidr });
        };
        let previous_last = self.state.last.replace(ip);
        self.state.allocations.insert(pod_id.to_string(), ip);
        self.used.insert(ip);
        if let Err(e) = self.persist() {
            self.state.allocations.remove(pod_id);
            self.used.remove(&ip);
            self.state.last = previous_last;
            return Err(e);
        }
        Ok((ip, true))
    }

    /// Releases the address of `pod_id`; returns it if there was one.
    pub(crate) fn release(&mut self, pod_id: &str) -> Result<Option<Ipv4Addr>, Error> {
        let Some(ip) = self.state.allocations.remove(pod_id) else {
            return Ok(None);
        };
        self.used.remove(&ip);
        if let Err(e) = self.persist() {
            self.state.allocations.insert(pod_id.to_string(), ip);
            self.used.insert(ip);
            return Err(e);
        }
        Ok(Some(ip))
    }

    /// Writes the state to a temporary file and renames it over the state file.
    fn persist(&self) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|source| Error::State {
            path: self.path.clone(),
            source,
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let io = |what: &str, source| Error::Io {
            context: format!("{what} {}", tmp.display()),
            source,
        };
        std::fs::write(&tmp, bytes).map_err(|e| io("writing", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("renaming", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(dir: &Path, cidr: &str) -> Ipam {
        Ipam::load(dir, cidr.parse().unwrap()).unwrap()
    }

    #[test]
    fn allocates_round_robin_skipping_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = ipam(dir.path(), "10.0.0.0/29"); // hosts .2 ..= .6 assignable
        assert_eq!(ipam.gateway(), Ipv4Addr::new(10, 0, 0, 1));
        let ips: Vec<_> = ["a", "b", "c"].iter().map(|p| ipam.allocate(p).unwrap()).collect();
        assert_eq!(
            ips,
            vec![
                (Ipv4Addr::new(10, 0, 0, 2), true),
                (Ipv4Addr::new(10, 0, 0, 3), true),
                (Ipv4Addr::new(10, 0, 0, 4), true)
            ]
        );
        // same pod, same address
        assert_eq!(ipam.allocate("b").unwrap(), (Ipv4Addr::new(10, 0, 0, 3), false));
        // a released address is not reused before the range wraps
        assert_eq!(ipam.release("a").unwrap(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(ipam.release("a").unwrap(), None);
        assert_eq!(ipam.allocate("d").unwrap().0, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(ipam.allocate("e").unwrap().0, Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(ipam.allocate("f").unwrap().0, Ipv4Addr::new(10, 0, 0, 2));
        let err = ipam.allocate("g").unwrap_err();
        assert!(matches!(err, Error::Exhausted { .. }), "{err}");
        assert_eq!(err.to_string(), "address range 10.0.0.0/29 is exhausted");
    }

    #[test]
    fn survives_reload_and_drops_foreign_allocations() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = ipam(dir.path(), "10.0.0.0/24");
        first.allocate("a").unwrap();
        first.allocate("b").unwrap();
        first.release("a").unwrap();
        let mut second = ipam(dir.path(), "10.0.0.0/24");
        assert_eq!(second.allocated(), vec![("b".to_string(), Ipv4Addr::new(10, 0, 0, 3))]);
        // round robin continues after the last handed out address
        assert_eq!(second.allocate("c").unwrap().0, Ipv4Addr::new(10, 0, 0, 4));
        let third = ipam(dir.path(), "10.1.0.0/24");
        assert!(third.allocated().is_empty());
        assert!(!dir.path().join("ipam.json.tmp").exists());
    }

    #[test]
    fn rejects_tiny_ranges_and_corrupt_state() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Ipam::load(dir.path(), "10.0.0.0/31".parse().unwrap()).is_err());
        let mut smallest = ipam(dir.path(), "10.0.0.0/30");
        assert_eq!(smallest.allocate("a").unwrap().0, Ipv4Addr::new(10, 0, 0, 2));
        assert!(smallest.allocate("b").is_err());
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let err = Ipam::load(dir.path(), "10.0.0.0/24".parse().unwrap()).unwrap_err();
        assert!(matches!(err, Error::State { .. }), "{err}");
    }
}
