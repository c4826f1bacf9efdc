//! The files the kubelet writes for every pod and bind-mounts into its containers:
//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, as upstream's kubelet writes them.

use k8s_openapi::api::core::v1::Pod;

/// DNS settings of the node (from flags).
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// The node's own resolv.conf, for `dnsPolicy: Default` and host-network pods.
    pub host_resolv_conf: String,
}

/// The pod's host name: `spec.hostname` or the pod name, cut to 63 characters like upstream.
pub fn hostname(pod: &Pod) -> String {
    let spec_hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty());
    let name = spec_hostname.unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

/// The managed `/etc/hosts`.
pub fn hosts_file(pod: &Pod, pod_ip: Option<&str>, domain: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let name = hostname(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    if let Some(ip) = pod_ip.filter(|ip| !ip.is_empty()) {
        match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
            Some(subdomain) => {
                let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!("{ip}\t{name}.{subdomain}.{namespace}.svc.{domain}\t{name}\n"));
            }
            None => out.push_str(&format!("{ip}\t{name}\n")),
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", alias.ip));
        }
    }
    out
}

/// The pod's `/etc/resolv.conf` per `dnsPolicy` and `dnsConfig`.
pub fn resolv_conf(pod: &Pod, dns: &DnsConfig) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let (host_servers, host_searches, host_options) = parse_resolv(&dns.host_resolv_conf);
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    } && !dns.cluster_dns.is_empty();
    let (mut servers, mut searches, mut options) = match policy {
        "None" => (vec![], vec![], vec![]),
        _ if cluster => {
            let domain = &dns.cluster_domain;
            let mut searches = vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
            searches.extend(host_searches);
            (dns.cluster_dns.clone(), searches, vec!["ndots:5".to_string()])
        }
        _ => (host_servers, host_searches, host_options),
    };
    if let Some(config) = spec.dns_config {
        for server in config.nameservers.unwrap_or_default() {
            if !servers.contains(&server) {
                servers.push(server);
            }
        }
        for search in config.searches.unwrap_or_default() {
            if !searches.contains(&search) {
                searches.push(search);
            }
        }
        for option in config.options.unwrap_or_default() {
            let text = match option.value {
                Some(value) => format!("{}:{value}", option.name.unwrap_or_default()),
                None => option.name.unwrap_or_default(),
            };
            let key = text.split(':').next().unwrap_or_default().to_string();
            options.retain(|o| o.split(':').next() != Some(key.as_str()));
            options.push(text);
        }
    }
    servers.truncate(3);
    searches.truncate(32);
    let mut out = String::new();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for server in servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn parse_resolv(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut servers, mut searches, mut options) = (vec![], vec![], vec![]);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_string)),
            Some("search" | "domain") => searches.extend(words.map(str::to_string)),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    (servers, searches, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodDNSConfig, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn dns() -> DnsConfig {
        DnsConfig {
            cluster_dns: vec!["10.96.0.10".into()],
            cluster_domain: "cluster.local".into(),
            host_resolv_conf: "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n".into(),
        }
    }

    #[test]
    fn cluster_first_resolv_conf() {
        let text = resolv_conf(&pod(PodSpec::default()), &dns());
        assert_eq!(
            text,
            "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn default_and_host_network_use_the_node() {
        let host = resolv_conf(
            &pod(PodSpec {
                host_network: Some(true),
                ..Default::default()
            }),
            &dns(),
        );
        assert_eq!(host, "search corp.example\nnameserver 192.0.2.53\noptions edns0\n");
        let none = resolv_conf(
            &pod(PodSpec {
                dns_policy: Some("None".into()),
                dns_config: Some(PodDNSConfig {
                    nameservers: Some(vec!["1.2.3.4".into()]),
                    searches: Some(vec!["a.b".into()]),
                    options: None,
                }),
                ..Default::default()
            }),
            &dns(),
        );
        assert_eq!(none, "search a.b\nnameserver 1.2.3.4\n");
    }

    #[test]
    fn hosts_with_subdomain_and_aliases() {
        let p = pod(PodSpec {
            subdomain: Some("web".into()),
            host_aliases: Some(vec![HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            }]),
            ..Default::default()
        });
        let text = hosts_file(&p, Some("10.244.1.5"), "cluster.local");
        assert!(
            text.contains("10.244.1.5\tweb-0.web.shop.svc.cluster.local\tweb-0\n"),
            "{text}"
        );
        assert!(text.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"));
        assert_eq!(hostname(&p), "web-0");
    }
}
