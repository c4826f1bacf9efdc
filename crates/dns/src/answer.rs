//! The pure answering logic: a query name and type against a [`Catalog`], as CoreDNS's
//! kubernetes plugin answers (https://github.com/kubernetes/dns/blob/master/docs/specification.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use crate::catalog::{Catalog, PortEntry, ServiceEntry, ServiceKind};

/// TTL of every answer and of the SOA, like kubeadm's Corefile (`kubernetes ... { ttl 30 }`).
pub const TTL: u32 = 30;

/// Version of the Kubernetes DNS schema served at `dns-version.<domain>` (TXT).
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The name exists and has records of the asked type.
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name exists but has no records of the asked type (NOERROR, SOA in authority).
    NoData { soa: Record },
    /// The name does not exist (NXDOMAIN, SOA in authority).
    NxDomain { soa: Record },
    /// Not ours to answer: outside the cluster domain, or a reverse name we know nothing about
    /// (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`). Forward it, or refuse.
    NotAuthoritative,
}

/// Answers `qname`/`qtype` from `catalog` for the cluster `domain` (e.g. `cluster.local.`).
///
/// Names are matched case-insensitively; answer records for the question are owned by `qname`
/// exactly as asked.
pub fn answer(catalog: &Catalog, domain: &Name, qname: &Name, qtype: RecordType) -> Answer {
    let domain = domain.to_lowercase();
    let lower = qname.to_lowercase();
    let mut qname = qname.clone();
    qname.set_fqdn(true);
    let ctx = Ctx {
        catalog,
        domain: &domain,
        qname: &qname,
        qtype,
    };
    if domain.zone_of(&lower) {
        let n = usize::from(lower.num_labels()) - usize::from(domain.num_labels());
        let labels: Vec<String> = lower
            .iter()
            .take(n)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        ctx.cluster(&labels)
    } else if let Some(ip) = reverse_ip(&lower) {
        ctx.reverse(ip)
    } else {
        Answer::NotAuthoritative
    }
}

/// Whether `name` is in a zone this server is authoritative for (the cluster domain), or one it
/// may answer from (the reverse zones).
pub fn in_served_zones(domain: &Name, name: &Name) -> bool {
    let reverse = ["in-addr.arpa.", "ip6.arpa."];
    domain.zone_of(name)
        || reverse
            .iter()
            .filter_map(|z| Name::from_ascii(z).ok())
            .any(|z| z.zone_of(name))
}

/// The zone's SOA, like CoreDNS's: `ns.dns.<zone>. hostmaster.<zone>. serial 7200 1800 86400 ttl`.
pub fn soa(zone: &Name, serial: u32) -> Record {
    let mname = Name::from_ascii("ns.dns")
        .ok()
        .and_then(|n| n.append_domain(zone).ok())
        .unwrap_or_else(|| zone.clone());
    let rname = Name::from_ascii("hostmaster")
        .ok()
        .and_then(|n| n.append_domain(zone).ok())
        .unwrap_or_else(|| zone.clone());
    let data = SOA::new(mname, rname, serial, 7200, 1800, 86400, TTL);
    Record::from_rdata(zone.clone(), TTL, RData::SOA(data))
}

struct Ctx<'a> {
    catalog: &'a Catalog,
    domain: &'a Name,
    qname: &'a Name,
    qtype: RecordType,
}

impl Ctx<'_> {
    /// `labels` are the query's labels left of the cluster domain, lowercased.
    fn cluster(&self, labels: &[String]) -> Answer {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        match labels.as_slice() {
            [] => match self.qtype {
                RecordType::SOA => self.records(vec![soa(self.domain, self.catalog.serial)], vec![]),
                RecordType::NS => match self.name("ns.dns") {
                    Some(ns) => self.records(vec![self.rec(RData::NS(NS(ns)))], vec![]),
                    None => self.nodata(),
                },
                _ => self.nodata(),
            },
            ["dns-version"] => match self.qtype {
                RecordType::TXT => {
                    let txt = TXT::new(vec![SCHEMA_VERSION.to_string()]);
                    self.records(vec![self.rec(RData::TXT(txt))], vec![])
                }
                _ => self.nodata(),
            },
            ["svc"] | ["pod"] => self.nodata(),
            [ns, "svc"] => self.exists(self.catalog.namespaces.contains(*ns)),
            [svc, ns, "svc"] => match self.service(ns, svc) {
                Some(entry) => self.service_records(entry),
                None => self.nxdomain(),
            },
            [first, svc, ns, "svc"] => match self.service(ns, svc) {
                Some(entry) => self.endpoint_or_proto(entry, first),
                None => self.nxdomain(),
            },
            [port, proto, svc, ns, "svc"] => match self.service(ns, svc) {
                Some(entry) => self.srv(entry, port, proto, ns, svc),
                None => self.nxdomain(),
            },
            [_ns, "pod"] => self.nodata(),
            [ip, _ns, "pod"] => self.pod(ip),
            _ => self.nxdomain(),
        }
    }

    fn reverse(&self, ip: IpAddr) -> Answer {
        let Some(owners) = self.catalog.reverse.get(&ip) else {
            return Answer::NotAuthoritative;
        };
        if !matches!(self.qtype, RecordType::PTR | RecordType::ANY) {
            let zone = if ip.is_ipv4() { "in-addr.arpa." } else { "ip6.arpa." };
            let zone = Name::from_ascii(zone).unwrap_or_else(|_| Name::root());
            return Answer::NoData {
                soa: soa(&zone, self.catalog.serial),
            };
        }
        let answers = owners
            .iter()
            .filter_map(|owner| self.name(owner))
            .map(|target| self.rec(RData::PTR(PTR(target))))
            .collect();
        self.records(answers, vec![])
    }

    fn service(&self, ns: &str, name: &str) -> Option<&ServiceEntry> {
        self.catalog.services.get(&(ns.to_string(), name.to_string()))
    }

    fn service_records(&self, entry: &ServiceEntry) -> Answer {
        match &entry.kind {
            ServiceKind::ExternalName(target) => self.cname(target),
            ServiceKind::ClusterIp(ips) => self.addresses(self.qname, ips.iter().copied()),
            ServiceKind::Headless => {
                let ips = entry.endpoints.iter().map(|e| e.ip);
                self.addresses(self.qname, dedup(ips))
            }
        }
    }

    /// `<label>.<svc>.<ns>.svc`: a headless endpoint, or the `_<proto>` empty non-terminal
    /// above SRV names.
    fn endpoint_or_proto(&self, entry: &ServiceEntry, first: &str) -> Answer {
        if let Some(proto) = first.strip_prefix('_') {
            let has = self.srv_ports(entry).any(|p| p.protocol == proto);
            return if has { self.nodata() } else { self.nxdomain() };
        }
        if !matches!(entry.kind, ServiceKind::Headless) {
            return self.nxdomain();
        }
        let ips: Vec<IpAddr> = entry
            .endpoints
            .iter()
            .filter(|e| e.label == first)
            .map(|e| e.ip)
            .collect();
        if ips.is_empty() {
            return self.nxdomain();
        }
        self.addresses(self.qname, ips)
    }

    fn srv_ports<'e>(&self, entry: &'e ServiceEntry) -> impl Iterator<Item = &'e PortEntry> {
        let endpoint_ports = entry.endpoints.iter().flat_map(|e| e.ports.iter());
        let ports: Box<dyn Iterator<Item = _>> = match entry.kind {
            ServiceKind::Headless => Box::new(endpoint_ports),
            _ => Box::new(entry.ports.iter()),
        };
        ports.filter(|p| !p.name.is_empty())
    }

    /// `_<port>._<proto>.<svc>.<ns>.svc`.
    fn srv(&self, entry: &ServiceEntry, port: &str, proto: &str, ns: &str, svc: &str) -> Answer {
        let (Some(port), Some(proto)) = (port.strip_prefix('_'), proto.strip_prefix('_')) else {
            return self.nxdomain();
        };
        let Some(svc_name) = self.name(&format!("{svc}.{ns}.svc")) else {
            return self.nxdomain();
        };
        let matches = |p: &PortEntry| p.name == port && p.protocol == proto;
        // (target, port, addresses of the target)
        let mut targets: Vec<(Name, u16, Vec<IpAddr>)> = Vec::new();
        match &entry.kind {
            ServiceKind::ExternalName(_) => {}
            ServiceKind::ClusterIp(ips) => {
                for p in entry.ports.iter().filter(|p| matches(p)) {
                    targets.push((svc_name.clone(), p.port, ips.clone()));
                }
            }
            ServiceKind::Headless => {
                for ep in &entry.endpoints {
                    let Some(target) = self.name(&format!("{}.{svc}.{ns}.svc", ep.label)) else {
                        continue;
                    };
                    for p in ep.ports.iter().filter(|p| matches(p)) {
                        match targets.iter_mut().find(|t| t.0 == target && t.1 == p.port) {
                            Some(t) => t.2.push(ep.ip),
                            None => targets.push((target.clone(), p.port, vec![ep.ip])),
                        }
                    }
                }
            }
        }
        if targets.is_empty() {
            let known = self.srv_ports(entry).any(matches);
            return if known { self.nodata() } else { self.nxdomain() };
        }
        if !matches!(self.qtype, RecordType::SRV | RecordType::ANY) {
            return self.nodata();
        }
        // CoreDNS: priority 0, the weight of 100 split evenly among the records.
        let weight = u16::try_from(100 / targets.len()).unwrap_or(0).max(1);
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        for (target, port, ips) in targets {
            let data = SRV::new(0, weight, port, target.clone());
            answers.push(self.rec(RData::SRV(data)));
            for ip in ips {
                let rec = Record::from_rdata(target.clone(), TTL, ip_rdata(ip));
                if !additionals.contains(&rec) {
                    additionals.push(rec);
                }
            }
        }
        self.records(answers, additionals)
    }

    /// `<dashed-ip>.<ns>.pod`, answered for any IP like CoreDNS's `pods insecure`.
    fn pod(&self, label: &str) -> Answer {
        let ip = if label.contains(':') || label.contains('.') {
            None
        } else {
            label
                .replace('-', ".")
                .parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .ok()
                .or_else(|| label.replace('-', ":").parse::<Ipv6Addr>().map(IpAddr::V6).ok())
        };
        match ip {
            Some(ip) => self.addresses(self.qname, [ip]),
            None => self.nxdomain(),
        }
    }

    fn cname(&self, target: &str) -> Answer {
        match Name::from_ascii(target) {
            Ok(mut target) => {
                target.set_fqdn(true);
                self.records(vec![self.rec(RData::CNAME(CNAME(target)))], vec![])
            }
            Err(_) => self.nodata(),
        }
    }

    /// A/AAAA records of `ips` matching the query type; NODATA when none match.
    fn addresses(&self, owner: &Name, ips: impl IntoIterator<Item = IpAddr>) -> Answer {
        let answers: Vec<Record> = ips
            .into_iter()
            .filter(|ip| match self.qtype {
                RecordType::A => ip.is_ipv4(),
                RecordType::AAAA => ip.is_ipv6(),
                RecordType::ANY => true,
                _ => false,
            })
            .map(|ip| Record::from_rdata(owner.clone(), TTL, ip_rdata(ip)))
            .collect();
        self.records(answers, vec![])
    }

    fn records(&self, answers: Vec<Record>, additionals: Vec<Record>) -> Answer {
        if answers.is_empty() {
            return self.nodata();
        }
        Answer::Records { answers, additionals }
    }

    fn rec(&self, data: RData) -> Record {
        Record::from_rdata(self.qname.clone(), TTL, data)
    }

    fn exists(&self, exists: bool) -> Answer {
        if exists { self.nodata() } else { self.nxdomain() }
    }

    fn nodata(&self) -> Answer {
        Answer::NoData {
            soa: soa(self.domain, self.catalog.serial),
        }
    }

    fn nxdomain(&self) -> Answer {
        Answer::NxDomain {
            soa: soa(self.domain, self.catalog.serial),
        }
    }

    /// `relative` + the cluster domain.
    fn name(&self, relative: &str) -> Option<Name> {
        Name::from_ascii(relative).ok()?.append_domain(self.domain).ok()
    }
}

fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

fn dedup(ips: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ips {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// The IP of a complete reverse name (`4.3.2.1.in-addr.arpa.`, 32 nibbles `.ip6.arpa.`).
fn reverse_ip(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    match labels.as_slice() {
        [d, c, b, a, in_addr, arpa] if *in_addr == b"in-addr" && *arpa == b"arpa" => {
            let octet = |l: &[u8]| std::str::from_utf8(l).ok()?.parse::<u8>().ok();
            Some(IpAddr::V4(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?)))
        }
        [nibbles @ .., ip6, arpa] if *ip6 == b"ip6" && *arpa == b"arpa" && nibbles.len() == 32 => {
            let mut value: u128 = 0;
            for label in nibbles.iter().rev() {
                let [digit] = label else { return None };
                value = (value << 4) | u128::from(char::from(*digit).to_digit(16)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
