//! Registries on the host's loopback (`--insecure-registry 127.0.0.1:5000`, the seeds'
//! pattern) for nodes whose loopback is their own: for each such port a relay (`kaji
//! registry-relay`, the same TCP pass-through as the apiserver front end) listens on the
//! bridge address at that port and connects to the host's registry, and every kubelet pulls
//! `127.0.0.1:5000/...` through it (`--registry-mirror 127.0.0.1:5000=10.250.N.1:5000`). So
//! pods name images exactly as the host does. A mirror whose target is on the loopback
//! (`registryMirrors: {docker.io: 127.0.0.1:5000}`) goes through the relay too.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, bail};

use crate::config::Plan;

/// The kubelets' registry flags and the relays they need.
#[derive(Debug, Default, PartialEq)]
pub struct Registries {
    /// Words for the kubelet's command line.
    pub kubelet_words: Vec<String>,
    /// Host loopback ports to relay from the bridge address.
    pub relayed_ports: BTreeSet<u16>,
}

/// The port of `registry` (`HOST:PORT`) when its host is this machine's loopback.
pub fn loopback_port(registry: &str) -> Option<u16> {
    let (host, port) = registry.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| port.parse().ok()).flatten()
}

/// The kubelet flags for `plan`'s registries and mirrors on a cluster whose bridge address is
/// `gateway`; loopback ones are reached through relays. `reserved` are ports the gateway
/// already serves (the API, etcd).
pub fn plan_registries(plan: &Plan, gateway: &str, reserved: &[u16]) -> Result<Registries> {
    let mut out = Registries::default();
    let mut relay = |registry: &str, port: u16| -> Result<String> {
        if reserved.contains(&port) {
            bail!("registry {registry}: port {port} is taken on the cluster's bridge address (the API or etcd)");
        }
        out.relayed_ports.insert(port);
        Ok(format!("{gateway}:{port}"))
    };
    let mut words = Vec::new();
    // The user's mirrors first: the kubelet uses the first that matches a registry.
    for mirror in &plan.registry_mirrors {
        let Some((from, to)) = mirror.split_once('=') else {
            bail!("registry mirror {mirror:?} is not FROM=TO");
        };
        let to = match loopback_port(to) {
            Some(port) => {
                let relayed = relay(to, port)?;
                if plan.insecure_registries.iter().any(|r| r == to) {
                    words.push(format!("--insecure-registry {relayed}"));
                }
                relayed
            }
            None => to.to_string(),
        };
        words.push(format!("--registry-mirror {from}={to}"));
    }
    for registry in &plan.insecure_registries {
        words.push(format!("--insecure-registry {registry}"));
        if let Some(port) = loopback_port(registry) {
            let relayed = relay(registry, port)?;
            words.push(format!("--insecure-registry {relayed}"));
            words.push(format!("--registry-mirror {registry}={relayed}"));
        }
    }
    words.dedup();
    out.kubelet_words = words;
    Ok(out)
}

/// The relay's `--listen` and `--backend` for a relayed `port`.
pub fn relay_addresses(gateway: &str, port: u16) -> Result<(SocketAddr, SocketAddr)> {
    Ok((
        format!("{gateway}:{port}").parse()?,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognised() {
        assert_eq!(loopback_port("127.0.0.1:5000"), Some(5000));
        assert_eq!(loopback_port("localhost:5001"), Some(5001));
        assert_eq!(loopback_port("[::1]:5002"), Some(5002));
        assert_eq!(loopback_port("127.1.2.3:5003"), Some(5003));
        assert_eq!(loopback_port("10.250.0.1:5000"), None);
        assert_eq!(loopback_port("registry:5000"), None);
        assert_eq!(loopback_port("127.0.0.1"), None);
    }

    #[test]
    fn loopback_registries_and_mirrors_go_through_relays() {
        let plan = Plan {
            insecure_registries: vec!["127.0.0.1:5000".into(), "registry:5000".into()],
            registry_mirrors: vec!["docker.io=127.0.0.1:5000".into(), "quay.io=mirror:443".into()],
            ..Plan::default()
        };
        let registries = plan_registries(&plan, "10.250.3.1", &[6443]).expect("plan");
        assert_eq!(
            registries.kubelet_words,
            [
                "--insecure-registry 10.250.3.1:5000",
                "--registry-mirror docker.io=10.250.3.1:5000",
                "--registry-mirror quay.io=mirror:443",
                "--insecure-registry 127.0.0.1:5000",
                "--insecure-registry 10.250.3.1:5000",
                "--registry-mirror 127.0.0.1:5000=10.250.3.1:5000",
                "--insecure-registry registry:5000",
            ]
        );
        assert_eq!(registries.relayed_ports.into_iter().collect::<Vec<_>>(), [5000]);
        let taken = Plan {
            insecure_registries: vec!["localhost:6443".into()],
            ..Plan::default()
        };
        let error = plan_registries(&taken, "10.250.3.1", &[6443]).expect_err("taken");
        assert!(error.to_string().contains("port 6443 is taken"), "{error}");
    }
}
