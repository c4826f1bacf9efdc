//! Caches of the objects pods draw on at start (upstream's service lister and the
//! watch-based ConfigMap and Secret managers): one reflector per kind, started once, so a pod
//! start reads memory instead of listing every Service of its namespace and fetching each
//! ConfigMap and Secret. A ConfigMap or Secret the cache does not hold (yet) is fetched from
//! the API, as is everything while a cache has not finished its first list.

use std::fmt::Debug;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// The cached Services, ConfigMaps and Secrets of the whole cluster.
#[derive(Clone)]
pub struct SourceCache {
    client: kube::Client,
    services: Option<Store<Service>>,
    config_maps: Option<Store<ConfigMap>>,
    secrets: Option<Store<Secret>>,
}

impl SourceCache {
    /// A cache that holds nothing: every read goes to the API.
    pub fn uncached(client: kube::Client) -> SourceCache {
        SourceCache {
            client,
            services: None,
            config_maps: None,
            secrets: None,
        }
    }

    /// Starts the three reflectors (they run until `cancel`).
    pub fn start(client: kube::Client, cancel: &CancellationToken) -> SourceCache {
        SourceCache {
            services: Some(reflect(client.clone(), cancel)),
            config_maps: Some(reflect(client.clone(), cancel)),
            secrets: Some(reflect(client.clone(), cancel)),
            client,
        }
    }

    /// The Services of `namespace`.
    pub async fn services(&self, namespace: &str) -> Vec<Service> {
        if let Some(store) = ready(&self.services) {
            return store
                .state_filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect();
        }
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        api.list(&ListParams::default())
            .await
            .map(|list| list.items)
            .unwrap_or_default()
    }

    /// Service `namespace/name`, if it exists.
    pub async fn service(&self, namespace: &str, name: &str) -> Option<Service> {
        match ready(&self.services) {
            Some(store) => store
                .get(&ObjectRef::new(name).within(namespace))
                .map(Arc::unwrap_or_clone),
            None => get(&self.client, namespace, name).await,
        }
    }

    /// ConfigMap `namespace/name`, if it exists.
    pub async fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        cached_or_get(&self.config_maps, &self.client, namespace, name).await
    }

    /// Secret `namespace/name`, if it exists.
    pub async fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        cached_or_get(&self.secrets, &self.client, namespace, name).await
    }
}

/// Starts a cluster-wide reflector of `K` in the background.
fn reflect<K>(client: kube::Client, cancel: &CancellationToken) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(Api::<K>::all(client), watcher::Config::default()).default_backoff(),
    );
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                event = stream.next() => match event {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::debug!(%error, kind = %K::kind(&()), "watching for the pod source cache");
                    }
                    None => return,
                },
            }
        }
    });
    reader
}

/// The store, once it has completed its first list.
fn ready<K>(store: &Option<Store<K>>) -> Option<&Store<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .as_ref()
        .filter(|s| s.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok()))
}

async fn cached_or_get<K>(store: &Option<Store<K>>, client: &kube::Client, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + 'static,
{
    if let Some(found) = store
        .as_ref()
        .and_then(|s| s.get(&ObjectRef::new(name).within(namespace)))
    {
        return Some(Arc::unwrap_or_clone(found));
    }
    get(client, namespace, name).await
}

async fn get<K>(client: &kube::Client, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .ok()
        .flatten()
}
