//! Wiring: from flags to a running kubelet (client, runtime, image store, node registration,
//! heartbeat, the pod manager, static pods and the HTTPS server).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

use crate::flags::{Options, parse_pairs};
use crate::machine::{Machine, first_ipv4};
use crate::node::{self, NodeConfig};
use crate::pods::context::Context;
use crate::pods::files::DnsConfig;
use crate::pods::manager::PodManager;

/// The argument that turns the kubelet binary into a container shim (see the `runtime` crate).
pub const SHIM_ARG: &str = "runtime-shim";

/// The CA the kubeconfig trusts (PEM), for verifying the apiserver's kubelet client certificate.
fn kubeconfig_ca(kubeconfig: &Kubeconfig) -> Result<String> {
    let cluster = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("the kubeconfig names no cluster")?;
    if let Some(data) = cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("decoding certificate-authority-data")?;
        return Ok(String::from_utf8_lossy(&pem).into_owned());
    }
    if let Some(path) = cluster.certificate_authority {
        return std::fs::read_to_string(&path).with_context(|| format!("reading {path}"));
    }
    bail!("the kubeconfig has no certificate authority: pass --client-ca-file")
}

fn reserved(options: &Options) -> Result<BTreeMap<String, i128>> {
    let mut out = BTreeMap::new();
    for text in [&options.kube_reserved, &options.system_reserved] {
        for (name, value) in parse_pairs(text).map_err(anyhow::Error::msg)? {
            let milli = api::validation::quantity::Quantity::parse(&value)
                .and_then(|q| q.milli_value())
                .with_context(|| format!("invalid quantity {value:?} for {name}"))?;
            *out.entry(name).or_insert(0) += milli;
        }
    }
    Ok(out)
}

/// Runs the kubelet until `cancel`.
pub async fn run(options: Options, cancel: CancellationToken) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if options.image_gc_low_threshold > options.image_gc_high_threshold || options.image_gc_high_threshold > 100 {
        bail!(
            "--image-gc-low-threshold ({}) must not exceed --image-gc-high-threshold ({}), which must be at most 100",
            options.image_gc_low_threshold,
            options.image_gc_high_threshold
        );
    }
    let node_name = match &options.node_name {
        Some(name) => name.clone(),
        None => nix::unistd::gethostname()?.to_string_lossy().to_lowercase(),
    };
    let node_ip: IpAddr = options
        .node_ip
        .or_else(|| (!options.address.is_unspecified()).then_some(options.address))
        .or_else(first_ipv4)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    std::fs::create_dir_all(&options.root_dir)
        .with_context(|| format!("creating --root-dir {}", options.root_dir.display()))?;
    let root_dir = options.root_dir.canonicalize()?;

    let kubeconfig = Kubeconfig::read_from(&options.kubeconfig)
        .with_context(|| format!("reading --kubeconfig {}", options.kubeconfig.display()))?;
    let client_ca = match &options.client_ca_file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => kubeconfig_ca(&kubeconfig)?,
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    component_base::set_user_agent(&mut config, "kubelet");
    let client = kube::Client::try_from(config)?;

    let shim = runtime::ShimCommand {
        program: std::env::current_exe()?,
        args: vec![SHIM_ARG.into()],
    };
    let cgroup_parent = format!("{}/kubepods", options.cgroup_root.trim_matches('/'));
    let log_max_size = api::validation::quantity::Quantity::parse(&options.container_log_max_size)
        .and_then(|q| q.milli_value())
        .filter(|m| *m > 0)
        .with_context(|| format!("invalid --container-log-max-size {:?}", options.container_log_max_size))?;
    let runtime = runtime::Runtime::new(&root_dir.join("runtime"), shim)?
        .with_cgroup_parent(cgroup_parent.trim_start_matches('/'))?
        .with_log_rotation(runtime::LogRotation {
            max_size: u64::try_from(log_max_size / 1000).unwrap_or(u64::MAX),
            max_files: options.container_log_max_files.max(1),
        });
    let images = images::ImageStore::open(
        &root_dir.join("images"),
        images::RegistryConfig {
            insecure: options.insecure_registries.clone(),
            mirrors: options.registry_mirrors.clone(),
        },
    )?;

    let node_config = NodeConfig {
        name: node_name.clone(),
        address: node_ip,
        port: options.port,
        max_pods: options.max_pods,
        reserved_milli: reserved(&options)?,
        labels: parse_pairs(&options.node_labels).map_err(anyhow::Error::msg)?,
        taints: node::parse_taints(&options.register_with_taints).map_err(anyhow::Error::msg)?,
    };
    let machine = Machine::read(&root_dir);
    let registered = loop {
        match node::register(&client, &node_config, &machine).await {
            Ok(node) => break node,
            Err(error) => {
                tracing::warn!(%error, "registering the node; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    tracing::info!(node = %node_name, ip = %node_ip, "node registered");
    let allocatable = registered.status.and_then(|s| s.allocatable).unwrap_or_default();
    let milli = |name: &str| {
        allocatable
            .get(name)
            .and_then(|q| api::validation::quantity::Quantity::parse(&q.0))
            .and_then(|q| q.milli_value())
            .unwrap_or(0)
    };

    let dns = DnsConfig {
        cluster_dns: options
            .cluster_dns
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        cluster_domain: options.cluster_domain.clone(),
        host_resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    let mut ctx = Context::new(
        client.clone(),
        node_name.clone(),
        node_ip.to_string(),
        root_dir.clone(),
        Arc::new(runtime),
        Arc::new(images),
        dns,
        milli("cpu"),
        milli("memory") / 1000,
    );
    ctx.pod_manifest_path = options.pod_manifest_path.clone();
    ctx.streaming_idle_timeout = Some(options.streaming_connection_idle_timeout).filter(|timeout| !timeout.is_zero());
    ctx.sources = crate::pods::sources::SourceCache::start(client.clone(), &cancel);
    ctx.network = Arc::new(crate::network::PodNetworking::new(
        options.pod_network == "bridge",
        options.network_bridge.clone(),
        &root_dir,
    ));
    let ctx = Arc::new(ctx);
    tokio::spawn(ctx.network.clone().run(
        client.clone(),
        node_name.clone(),
        options.pod_cidr.clone(),
        {
            let runtime = ctx.runtime.clone();
            move |uid: &str| runtime.sandbox(uid).is_ok()
        },
        cancel.clone(),
    ));
    let manager = PodManager::new(ctx.clone());

    let (cert, key) = crate::server::serving_certificate(&root_dir, &node_name, &[node_ip])?;
    let tls = crate::server::tls_config(&cert, &key, &client_ca)?;
    let router = crate::server::router(Arc::new(manager.clone()));
    let addr = SocketAddr::new(options.address, options.port);
    let server = tokio::spawn(crate::server::serve(addr, tls, router, cancel.clone()));

    tokio::spawn(crate::image_gc::run(
        root_dir.clone(),
        ctx.images.clone(),
        options.image_gc_high_threshold,
        options.image_gc_low_threshold,
        cancel.clone(),
    ));
    tokio::spawn(node::heartbeat(
        client.clone(),
        node_config,
        ctx.network.clone(),
        root_dir.clone(),
        options.node_status_update_frequency,
        cancel.clone(),
    ));
    if let Some(dir) = options.pod_manifest_path.clone() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        tokio::spawn(crate::static_pods::run(
            manager.clone(),
            client.clone(),
            dir,
            node_name.clone(),
            cancel.clone(),
        ));
    }
    tokio::spawn({
        let manager = manager.clone();
        let cancel = cancel.clone();
        async move { manager.run_pleg(cancel).await }
    });
    let watch = tokio::spawn({
        let manager = manager.clone();
        let cancel = cancel.clone();
        async move { manager.watch_api(cancel).await }
    });
    tokio::select! {
        result = server => {
            result??;
            bail!("the kubelet server stopped");
        }
        _ = watch => {}
        _ = cancel.cancelled() => {}
    }
    // Containers keep running: a restarted kubelet adopts them (fail-static).
    Ok(())
}
