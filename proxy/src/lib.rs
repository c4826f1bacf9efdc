//! kube-proxy: programs iptables or nftables so that Service IPs reach their endpoints.
//!
//! Watchers ([`run`]) keep caches of Services and EndpointSlices; on every change (batched by
//! `--iptables-min-sync-period`) and every `--iptables-sync-period` the proxy mode's pure step
//! derives its rules from the backend-neutral [`model`]. In iptables mode (the default)
//! [`rules::compute`] derives the desired chains, and the [`proxier::Proxier`] applies only the
//! chains that changed (`iptables-restore --noflush`), or the whole nat and filter tables on a
//! full resync (start, failures, every `--iptables-full-sync-period`). In nftables mode
//! ([`nft`]) the tables `ip kube-proxy` and its 16 service shards `ip kube-proxy-N` are
//! computed as data and changed over netlink, only the changed chains and map elements per
//! sync, every table on a full resync.
//!
//! Beside the proxier runs the node's cluster DNS server ([`cluster_dns`]), unless
//! `--cluster-dns` is empty.

pub mod cluster_dns;
pub mod flags;
pub mod iptables;
pub mod model;
pub mod nft;
pub mod proxier;
pub mod rules;
mod run;
#[cfg(test)]
mod testutil;

pub use flags::Options;
pub use run::run;

/// Why kube-proxy stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("unsupported --proxy-mode {0:?}: \"iptables\" or \"nftables\"")]
    UnsupportedMode(String),
    #[error("--hostname-override is required")]
    MissingNodeName,
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("loading client configuration: {0}")]
    InferConfig(#[from] kube::config::InferConfigError),
    #[error("creating the API client: {0}")]
    Client(#[from] kube::Error),
    #[error(transparent)]
    Iptables(#[from] iptables::IptablesError),
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    #[error("a watcher stopped: {0}")]
    Watcher(String),
    #[error("--cluster-dns {0:?}: not an IPv4 address")]
    ClusterDns(String),
}
