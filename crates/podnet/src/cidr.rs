//! `Ipv4Cidr`: an IPv4 network written as "10.244.1.0/24".

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// An IPv4 network: a network address and a prefix length. Host bits are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// Builds a network from an address and a prefix length; host bits of `addr` are cleared.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, Error> {
        if prefix_len > 32 {
            return Err(Error::InvalidCidr {
                input: format!("{addr}/{prefix_len}"),
                reason: "prefix length above 32",
            });
        }
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix_len));
        Ok(Self { network, prefix_len })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The last address of the network (all host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// Number of addresses in the network, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// The address `n` places after the network address, if it lies inside the network.
    /// `nth(0)` is the network address, `nth(1)` the first host.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        if n >= self.size() {
            return None;
        }
        let n = u32::try_from(n).ok()?;
        Some(Ipv4Addr::from(u32::from(self.network) + n))
    }

    /// Position of `addr` inside the network (the inverse of [`Ipv4Cidr::nth`]).
    pub fn offset_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains(addr)
            .then(|| u64::from(u32::from(addr) - u32::from(self.network)))
    }
}

fn mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

impl FromStr for Ipv4Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidCidr {
            input: s.to_string(),
            reason,
        };
        let (addr, len) = s.split_once('/').ok_or_else(|| invalid("missing '/'"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid("not an IPv4 address"))?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("prefix length is not a number"));
        }
        let len: u8 = len.parse().map_err(|_| invalid("prefix length is not a number"))?;
        if len > 32 {
            return Err(invalid("prefix length above 32"));
        }
        Self::new(addr, len)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let c: Ipv4Cidr = "10.244.1.0/24".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(10, 244, 1, 0));
        assert_eq!(c.prefix_len(), 24);
        assert_eq!(c.to_string(), "10.244.1.0/24");
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 244, 1, 255));
        assert_eq!(c.size(), 256);
        // host bits are cleared
        let c: Ipv4Cidr = "10.244.1.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.244.1.0/24");
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(all.size(), 1 << 32);
        let one: Ipv4Cidr = "1.2.3.4/32".parse().unwrap();
        assert_eq!(one.broadcast(), Ipv4Addr::new(1, 2, 3, 4));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0/8",
            "::1/64",
            "10.0.0.0/8/8",
            "10.0.0.0/999999999999",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn contains_nth_offset() {
        let c: Ipv4Cidr = "10.244.1.0/24".parse().unwrap();
        assert!(c.contains(Ipv4Addr::new(10, 244, 1, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 244, 2, 1)));
        assert_eq!(c.nth(1), Some(Ipv4Addr::new(10, 244, 1, 1)));
        assert_eq!(c.nth(255), Some(Ipv4Addr::new(10, 244, 1, 255)));
        assert_eq!(c.nth(256), None);
        assert_eq!(c.offset_of(Ipv4Addr::new(10, 244, 1, 9)), Some(9));
        assert_eq!(c.offset_of(Ipv4Addr::new(10, 244, 2, 9)), None);
    }
}
