//! hostPort mappings: DNAT rules in the node's `nat` table, in one chain (`KAJI-HOSTPORTS`)
//! that is rewritten as a whole with `iptables-restore --noflush` whenever a mapping changes.

use std::collections::BTreeMap;
use std::process::Stdio;

use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// The chain holding every mapping.
pub const CHAIN: &str = "KAJI-HOSTPORTS";

/// One `hostPort` of a running pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping {
    pub protocol: String,
    pub host_ip: Option<String>,
    pub host_port: i32,
    pub pod_ip: String,
    pub container_port: i32,
}

/// The pod's hostPort mappings, to `pod_ip`.
pub fn mappings(pod: &Pod, pod_ip: &str) -> Vec<Mapping> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<Mapping> = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|port| {
            let host_port = port.host_port.filter(|p| *p > 0)?;
            Some(Mapping {
                protocol: port.protocol.clone().unwrap_or_else(|| "TCP".into()).to_lowercase(),
                host_ip: port.host_ip.clone().filter(|ip| !ip.is_empty() && ip != "0.0.0.0"),
                host_port,
                pod_ip: pod_ip.to_string(),
                container_port: port.container_port,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `iptables-restore` input for all mappings (declaring the chain flushes it).
pub fn render(all: &BTreeMap<String, Vec<Mapping>>) -> String {
    let mut out = format!("*nat\n:{CHAIN} - [0:0]\n");
    for (uid, mappings) in all {
        for m in mappings {
            let destination = m.host_ip.as_ref().map(|ip| format!(" -d {ip}/32")).unwrap_or_default();
            out.push_str(&format!(
                "-A {CHAIN} -m comment --comment \"pod {uid} hostPort {port}\"{destination} -p {proto} -m {proto} \
                 --dport {port} -j DNAT --to-destination {ip}:{target}\n",
                port = m.host_port,
                proto = m.protocol,
                ip = m.pod_ip,
                target = m.container_port,
            ));
        }
    }
    out.push_str("COMMIT\n");
    out
}

/// The node's hostPort rules.
#[derive(Default)]
pub struct HostPorts {
    /// Mappings by pod UID; None until the jumps into the chain exist.
    state: Mutex<Option<BTreeMap<String, Vec<Mapping>>>>,
}

impl HostPorts {
    /// Makes the pod's mappings `mappings` (none removes them); rewrites the chain only when
    /// something changed.
    pub async fn set(&self, uid: &str, mappings: Vec<Mapping>) -> Result<(), String> {
        let mut state = self.state.lock().await;
        let current = state.as_ref().and_then(|all| all.get(uid));
        if current.map(Vec::as_slice).unwrap_or_default() == mappings.as_slice()
            && (state.is_some() || mappings.is_empty())
        {
            return Ok(());
        }
        if state.is_none() {
            ensure_jumps().await?;
            *state = Some(BTreeMap::new());
        }
        let Some(all) = state.as_mut() else {
            return Ok(());
        };
        if mappings.is_empty() {
            all.remove(uid);
        } else {
            all.insert(uid.to_string(), mappings);
        }
        restore(&render(all)).await
    }
}

/// Jumps from PREROUTING and OUTPUT to the chain for traffic addressed to this node.
async fn ensure_jumps() -> Result<(), String> {
    restore(&format!("*nat\n:{CHAIN} - [0:0]\nCOMMIT\n")).await?;
    for builtin in ["PREROUTING", "OUTPUT"] {
        let rule = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN];
        let check = tokio::process::Command::new("iptables")
            .args(["-w", "-t", "nat", "-C", builtin])
            .args(rule)
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|e| format!("running iptables: {e}"))?;
        if !check.success() {
            let output = tokio::process::Command::new("iptables")
                .args(["-w", "-t", "nat", "-I", builtin])
                .args(rule)
                .output()
                .await
                .map_err(|e| format!("running iptables: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "iptables -I {builtin}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
    }
    Ok(())
}

async fn restore(rules: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running iptables-restore: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(rules.as_bytes())
            .await
            .map_err(|e| format!("writing to iptables-restore: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("iptables-restore: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    #[test]
    fn host_ports_become_dnat_rules_to_the_pod() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    ports: Some(vec![
                        ContainerPort {
                            container_port: 80,
                            host_port: Some(8080),
                            ..Default::default()
                        },
                        ContainerPort {
                            container_port: 53,
                            host_port: Some(5353),
                            host_ip: Some("10.0.0.5".into()),
                            protocol: Some("UDP".into()),
                            ..Default::default()
                        },
                        ContainerPort {
                            container_port: 9000,
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let all = BTreeMap::from([("uid1".to_string(), mappings(&pod, "10.244.1.7"))]);
        assert_eq!(
            render(&all),
            "*nat\n:KAJI-HOSTPORTS - [0:0]\n\
             -A KAJI-HOSTPORTS -m comment --comment \"pod uid1 hostPort 8080\" -p tcp -m tcp --dport 8080 -j DNAT \
             --to-destination 10.244.1.7:80\n\
             -A KAJI-HOSTPORTS -m comment --comment \"pod uid1 hostPort 5353\" -d 10.0.0.5/32 -p udp -m udp --dport \
             5353 -j DNAT --to-destination 10.244.1.7:53\n\
             COMMIT\n"
        );
        assert!(mappings(&Pod::default(), "10.244.1.7").is_empty());
    }
}
