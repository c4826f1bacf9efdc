//! A set of equally sized sub-CIDRs carved out of a cluster CIDR (upstream's `cidrset`):
//! allocate the next free one, occupy one found on a Node, release one.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// Why a CIDR set cannot be built or a CIDR not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `address/prefix`.
    #[error("invalid CIDR {0:?}")]
    Invalid(String),
    /// The node mask is not longer than the cluster mask, or too long for the family.
    #[error("node CIDR mask size {node} does not fit cluster CIDR {cluster}")]
    MaskSize { cluster: String, node: u8 },
    /// Every sub-CIDR is taken.
    #[error("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")]
    Full,
    /// The CIDR is not one of this set's sub-CIDRs.
    #[error("CIDR {0} is outside the cluster CIDR or of another size")]
    Outside(String),
}

/// A parsed `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address as a 128-bit number (IPv4 in the low 32 bits).
    pub base: u128,
    pub prefix: u8,
    pub v6: bool,
}

impl Cidr {
    /// Parses `10.244.0.0/16` or `fd00::/48`; host bits are cleared.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let invalid = || CidrError::Invalid(text.to_string());
        let (address, prefix) = text.trim().split_once('/').ok_or_else(invalid)?;
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        let (base, v6) = match address {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
            IpAddr::V6(v6) => (u128::from(v6), true),
        };
        let cidr = Cidr { base, prefix, v6 };
        if prefix > cidr.bits() {
            return Err(invalid());
        }
        Ok(Cidr {
            base: base & cidr.mask(prefix),
            ..cidr
        })
    }

    fn bits(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    fn mask(&self, prefix: u8) -> u128 {
        let bits = u32::from(self.bits());
        let host_bits = bits - u32::from(prefix);
        let all: u128 = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let address: IpAddr = if self.v6 {
            IpAddr::V6(std::net::Ipv6Addr::from(self.base))
        } else {
            IpAddr::V4(std::net::Ipv4Addr::from(self.base as u32))
        };
        write!(f, "{address}/{}", self.prefix)
    }
}

/// The sub-CIDRs of one cluster CIDR.
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: Cidr,
    node_prefix: u8,
    used: BTreeSet<u128>,
    next: u128,
}

impl CidrSet {
    /// A set of `/node_prefix` blocks in `cluster`.
    pub fn new(cluster: Cidr, node_prefix: u8) -> Result<Self, CidrError> {
        // Upstream caps the number of blocks at 2^16 per cluster CIDR.
        if node_prefix < cluster.prefix || node_prefix > cluster.bits() || node_prefix - cluster.prefix > 16 {
            return Err(CidrError::MaskSize {
                cluster: cluster.to_string(),
                node: node_prefix,
            });
        }
        Ok(CidrSet {
            cluster,
            node_prefix,
            used: BTreeSet::new(),
            next: 0,
        })
    }

    /// The family of the set.
    pub fn is_v6(&self) -> bool {
        self.cluster.v6
    }

    fn count(&self) -> u128 {
        1u128 << (self.node_prefix - self.cluster.prefix)
    }

    fn block(&self, index: u128) -> Cidr {
        let shift = u32::from(self.cluster.bits() - self.node_prefix);
        Cidr {
            base: self.cluster.base | (index << shift),
            prefix: self.node_prefix,
            v6: self.cluster.v6,
        }
    }

    fn index_of(&self, text: &str) -> Result<u128, CidrError> {
        let cidr = Cidr::parse(text)?;
        let outside = || CidrError::Outside(text.to_string());
        if cidr.v6 != self.cluster.v6 || cidr.prefix != self.node_prefix {
            return Err(outside());
        }
        if cidr.base & self.cluster.mask(self.cluster.prefix) != self.cluster.base {
            return Err(outside());
        }
        let shift = u32::from(self.cluster.bits() - self.node_prefix);
        Ok((cidr.base - self.cluster.base) >> shift)
    }

    /// Takes the next free block.
    pub fn allocate(&mut self) -> Result<String, CidrError> {
        let count = self.count();
        for offset in 0..count {
            let index = (self.next + offset) % count;
            if self.used.insert(index) {
                self.next = (index + 1) % count;
                return Ok(self.block(index).to_string());
            }
        }
        Err(CidrError::Full)
    }

    /// Marks a block taken (found on a Node); true when it was free.
    pub fn occupy(&mut self, cidr: &str) -> Result<bool, CidrError> {
        let index = self.index_of(cidr)?;
        Ok(self.used.insert(index))
    }

    /// Frees a block.
    pub fn release(&mut self, cidr: &str) -> Result<(), CidrError> {
        let index = self.index_of(cidr)?;
        self.used.remove(&index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_occupies_and_releases() {
        let mut set = CidrSet::new(Cidr::parse("10.244.0.0/16").unwrap(), 24).unwrap();
        assert!(set.occupy("10.244.0.0/24").unwrap());
        assert!(!set.occupy("10.244.0.0/24").unwrap(), "already taken");
        assert_eq!(set.allocate().unwrap(), "10.244.1.0/24");
        assert_eq!(set.allocate().unwrap(), "10.244.2.0/24");
        set.release("10.244.1.0/24").unwrap();
        // The next block after the last allocated, then wrapping round to the freed one.
        assert_eq!(set.allocate().unwrap(), "10.244.3.0/24");
        assert!(set.occupy("10.245.0.0/24").is_err());
        assert!(set.occupy("10.244.0.0/25").is_err());
    }

    #[test]
    fn fills_up_and_handles_ipv6() {
        let mut set = CidrSet::new(Cidr::parse("10.0.0.0/30").unwrap(), 31).unwrap();
        assert_eq!(set.allocate().unwrap(), "10.0.0.0/31");
        assert_eq!(set.allocate().unwrap(), "10.0.0.2/31");
        assert_eq!(set.allocate(), Err(CidrError::Full));
        let mut v6 = CidrSet::new(Cidr::parse("fd00:10::/56").unwrap(), 64).unwrap();
        assert_eq!(v6.allocate().unwrap(), "fd00:10::/64");
        assert_eq!(v6.allocate().unwrap(), "fd00:10:0:1::/64");
        assert!(CidrSet::new(Cidr::parse("10.0.0.0/16").unwrap(), 8).is_err());
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert_eq!(Cidr::parse("10.1.2.3/16").unwrap().to_string(), "10.1.0.0/16");
    }
}
