//! The kube-proxy process: client, watchers, and the sync loop beside them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::iptables::{Backend, CommandBackend, cleanup};
use crate::model::Config;
use crate::nft::netlink::{NetlinkBackend, delete_tables_blocking};
use crate::nft::{NftBackend, NftProxier};
use crate::proxier::{Proxier, SyncKind};
use crate::{Options, ProxyError};

/// The proxy mode's sync step: compute the mode's rules from the caches and apply them.
trait ModeSync: Send {
    fn sync(
        &mut self,
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
        config: &Config,
    ) -> impl std::future::Future<Output = Result<SyncKind, ProxyError>> + Send;
}

impl<B: Backend> ModeSync for Proxier<B> {
    async fn sync(
        &mut self,
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
        config: &Config,
    ) -> Result<SyncKind, ProxyError> {
        Ok(Proxier::sync(self, crate::rules::compute(services, slices, config)).await?)
    }
}

impl<B: NftBackend> ModeSync for NftProxier<B> {
    async fn sync(
        &mut self,
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
        config: &Config,
    ) -> Result<SyncKind, ProxyError> {
        // Shards whose services did not change are the applied tables, not built again.
        let desired = crate::nft::compute::compute_reusing(services, slices, config, self.applied());
        Ok(NftProxier::sync(self, desired).await?)
    }
}

/// The proxy modes `--proxy-mode` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Iptables,
    Nftables,
}

/// Removes the nftables mode's tables, the main one and every shard (blocking netlink work
/// off the runtime's threads).
async fn delete_nft_tables() -> Result<(), ProxyError> {
    tokio::task::spawn_blocking(|| delete_tables_blocking(&NetlinkBackend::new()))
        .await
        .map_err(|e| ProxyError::Nft(crate::nft::NftError::Task(e.to_string())))??;
    Ok(())
}

/// A client from `--kubeconfig`, or inferred (in-cluster, `$KUBECONFIG`, `~/.kube/config`).
async fn client(options: &Options) -> Result<kube::Client, ProxyError> {
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| ProxyError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(kubeconfig_error)?
        }
        None => kube::Config::infer().await?,
    };
    let mut config = config;
    component_base::set_user_agent(&mut config, "kube-proxy");
    Ok(kube::Client::try_from(config)?)
}

/// Runs kube-proxy until `shutdown`. With `--cleanup`, removes our rules and returns.
///
/// Long-running parts are tasks in one [`JoinSet`]; more (a DNS server) can be spawned beside
/// the proxier there.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<(), ProxyError> {
    let mode = match options.proxy_mode.as_str() {
        "iptables" | "" => Mode::Iptables,
        "nftables" => Mode::Nftables,
        other => return Err(ProxyError::UnsupportedMode(other.to_string())),
    };
    let backend = CommandBackend::new(&options.iptables_restore_path, &options.iptables_save_path);
    if options.cleanup {
        // As upstream: --cleanup removes what every mode may have left.
        let iptables = cleanup(&backend).await;
        delete_nft_tables().await?;
        iptables?;
        tracing::info!("removed kube-proxy's iptables rules and nftables tables");
        return Ok(());
    }
    // Leftovers of the other mode would keep intercepting Service traffic: remove them first,
    // as upstream does when it starts in one mode.
    match mode {
        Mode::Iptables => {
            if let Err(error) = delete_nft_tables().await {
                tracing::warn!(%error, "could not remove the nftables mode's tables");
            }
        }
        Mode::Nftables => {
            if let Err(error) = cleanup(&backend).await {
                tracing::warn!(%error, "could not remove the iptables mode's rules");
            }
        }
    }
    let node_name = options.hostname_override.clone().ok_or(ProxyError::MissingNodeName)?;
    let cluster_dns = match options.cluster_dns.trim() {
        "" => None,
        text => Some(
            text.parse::<std::net::Ipv4Addr>()
                .map_err(|_| ProxyError::ClusterDns(text.to_string()))?,
        ),
    };
    let client = client(&options).await?;
    let mut tasks: JoinSet<Result<(), ProxyError>> = JoinSet::new();
    if let Some(cluster_ip) = cluster_dns {
        let dns_options = crate::cluster_dns::DnsOptions {
            cluster_ip,
            domain: options.cluster_domain.clone(),
            node_name: node_name.clone(),
            resolv_conf: options.dns_resolv_conf.clone(),
        };
        let (client, shutdown) = (client.clone(), shutdown.clone());
        // The DNS server is a node service beside the proxier: its failures are retried with
        // back-off, never allowed to take the Service rules down with them.
        tasks.spawn(async move {
            let mut delay = std::time::Duration::from_secs(1);
            loop {
                let options = dns_options.clone();
                match crate::cluster_dns::run(client.clone(), options, shutdown.clone()).await {
                    Ok(()) if shutdown.is_cancelled() => return Ok(()),
                    Ok(()) => tracing::warn!("the cluster DNS server stopped; restarting"),
                    Err(error) => tracing::error!(%error, ?delay, "cluster DNS failed; retrying"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        });
    }
    let config = Config {
        node_name,
        cluster_cidr: options.cluster_cidr.clone(),
    };

    let changed = Arc::new(Notify::new());
    let services = spawn_reflector(
        &mut tasks,
        Api::<Service>::all(client.clone()),
        changed.clone(),
        &shutdown,
    );
    let slices = spawn_reflector(
        &mut tasks,
        Api::<EndpointSlice>::all(client),
        changed.clone(),
        &shutdown,
    );
    let loop_settings = LoopSettings {
        sync_period: options.iptables_sync_period,
        min_sync_period: options.iptables_min_sync_period,
    };
    let full_sync_period = options.iptables_full_sync_period;
    match mode {
        Mode::Iptables => tasks.spawn(sync_loop(
            Proxier::new(backend, full_sync_period),
            config,
            services,
            slices,
            changed,
            loop_settings,
            shutdown.clone(),
        )),
        Mode::Nftables => tasks.spawn(sync_loop(
            NftProxier::new(NetlinkBackend::new(), full_sync_period),
            config,
            services,
            slices,
            changed,
            loop_settings,
            shutdown.clone(),
        )),
    };

    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.unwrap_or_else(|error| Err(ProxyError::Watcher(error.to_string())));
        if let Err(error) = outcome {
            if result.is_ok() {
                result = Err(error);
            }
            shutdown.cancel();
        }
    }
    result
}

/// Keeps a store of `api` objects up to date, pinging `changed` on every event.
fn spawn_reflector<K>(
    tasks: &mut JoinSet<Result<(), ProxyError>>,
    api: Api<K>,
    changed: Arc<Notify>,
    shutdown: &CancellationToken,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                item = stream.next() => match item {
                    Some(Ok(_)) => changed.notify_one(),
                    Some(Err(error)) => tracing::warn!(%error, "watch error"),
                    None => return Err(ProxyError::Watcher("stream ended".into())),
                },
            }
        }
    });
    store
}

/// Timing of the sync loop.
#[derive(Clone, Copy, Debug)]
struct LoopSettings {
    sync_period: Duration,
    min_sync_period: Duration,
}

async fn sync_loop<M: ModeSync>(
    mut proxier: M,
    config: Config,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    changed: Arc<Notify>,
    settings: LoopSettings,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        ready = async { tokio::try_join!(services.wait_until_ready(), slices.wait_until_ready()) } => {
            ready.map_err(|error| ProxyError::Watcher(error.to_string()))?;
        }
    }
    let mut retry_delay = settings.min_sync_period.max(Duration::from_millis(100));
    loop {
        let started = tokio::time::Instant::now();
        // The caches' own objects, shared: no copy of every object per sync.
        let service_list: Vec<Arc<Service>> = services.state();
        let slice_list: Vec<Arc<EndpointSlice>> = slices.state();
        let next_wait = match proxier.sync(&service_list, &slice_list, &config).await {
            Ok(kind) => {
                if kind != SyncKind::Unchanged {
                    tracing::info!(?kind, elapsed = ?started.elapsed(), services = service_list.len(), "synced proxy rules");
                }
                retry_delay = settings.min_sync_period.max(Duration::from_millis(100));
                settings.sync_period
            }
            Err(error) => {
                tracing::error!(%error, "syncing proxy rules failed; retrying with a full sync");
                retry_delay = (retry_delay * 2).min(settings.sync_period.max(Duration::from_secs(1)));
                retry_delay
            }
        };
        // Batch changes: never sync more often than the minimum period.
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(started + settings.min_sync_period) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = changed.notified() => {}
            _ = tokio::time::sleep_until(started + next_wait) => {}
        }
    }
}
