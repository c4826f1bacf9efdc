//! Upstream resolvers from a resolv.conf file, for forwarding names outside the cluster domain.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The `nameserver` entries of the resolv.conf at `path`, on port 53, minus `exclude` (the
/// addresses this server itself answers on, so it never forwards to itself).
///
/// A missing or unreadable file yields no upstreams (logged): names outside the cluster domain
/// are then refused.
pub fn upstreams_from_resolv_conf(path: impl AsRef<Path>, exclude: &[IpAddr]) -> Vec<SocketAddr> {
    let path = path.as_ref();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_resolv_conf(&text, exclude),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "cannot read resolv.conf; no upstream resolvers");
            Vec::new()
        }
    }
}

fn parse_resolv_conf(text: &str, exclude: &[IpAddr]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // An IPv6 link-local address may carry a zone (`fe80::1%eth0`); the zone is dropped.
        let Some(ip) = words
            .next()
            .and_then(|w| w.split('%').next())
            .and_then(|w| w.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let addr = SocketAddr::new(ip, 53);
        if !exclude.contains(&ip) && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_skipping_excluded_and_junk() {
        let text = "\
# generated
search default.svc.cluster.local svc.cluster.local
nameserver 10.96.0.10
nameserver 192.168.1.1 # router
nameserver not-an-ip
nameserver 2001:db8::53
nameserver fe80::1%eth0
nameserver 192.168.1.1
options ndots:5
";
        let got = parse_resolv_conf(text, &["10.96.0.10".parse().unwrap()]);
        let want: Vec<SocketAddr> = vec![
            "192.168.1.1:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn missing_file_gives_no_upstreams() {
        assert!(upstreams_from_resolv_conf("/nonexistent/resolv.conf", &[]).is_empty());
    }
}
