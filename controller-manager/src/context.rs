//! What every controller gets: the client, the flags, the shared informers and an event
//! recorder factory.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::informer::{Informer, Slot};
use crate::options::Options;

/// Shared state handed to each controller.
pub struct Context {
    pub client: Client,
    pub options: Options,
    pub token: CancellationToken,
    pub informers: Informers,
    /// The wall clock time-driven controllers read (shifted only in tests).
    pub clock: Clock,
}

impl Context {
    /// A context whose informers start on first use and stop with `token`.
    pub fn new(client: Client, options: Options, token: CancellationToken) -> Arc<Self> {
        Self::with_clock(client, options, token, Clock::default())
    }

    /// Like `new`, with the given clock.
    pub fn with_clock(client: Client, options: Options, token: CancellationToken, clock: Clock) -> Arc<Self> {
        Arc::new(Context {
            informers: Informers {
                client: client.clone(),
                token: token.clone(),
                pods: Slot::default(),
                replicasets: Slot::default(),
                deployments: Slot::default(),
                services: Slot::default(),
                endpointslices: Slot::default(),
                endpoints: Slot::default(),
                namespaces: Slot::default(),
                serviceaccounts: Slot::default(),
                nodes: Slot::default(),
                leases: Slot::default(),
                jobs: Slot::default(),
                cronjobs: Slot::default(),
                resourcequotas: Slot::default(),
                configmaps: Slot::default(),
                secrets: Slot::default(),
                persistentvolumeclaims: Slot::default(),
                horizontalpodautoscalers: Slot::default(),
            },
            clock,
            client,
            options,
            token,
        })
    }

    /// An event recorder reporting as `controller`.
    pub fn recorder(&self, controller: &str) -> EventRecorder {
        EventRecorder {
            // core/v1 Events with source and counts, as upstream's controllers write them.
            recorder: component_base::events::EventRecorder::new(self.client.clone(), controller, None),
        }
    }
}

/// Publishes Events about objects; failures are logged, never fatal.
#[derive(Clone)]
pub struct EventRecorder {
    recorder: component_base::events::EventRecorder,
}

impl EventRecorder {
    /// Records an event of `type_` about `obj`.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, warning: bool, reason: &str, note: String) {
        if let Err(error) = self.recorder.record(&obj.object_ref(&()), warning, reason, &note).await {
            tracing::debug!(%error, reason, "cannot record event");
        }
    }
}

macro_rules! informers {
    ($($field:ident: $kind:ty => $api:expr, $config:expr;)*) => {
        /// The shared informers, each started when a controller first asks for it.
        pub struct Informers {
            client: Client,
            token: CancellationToken,
            $($field: Slot<$kind>,)*
        }

        impl Informers {
            $(
                #[doc = concat!("The shared ", stringify!($field), " informer.")]
                pub fn $field(&self) -> Arc<Informer<$kind>> {
                    self.$field.get_or_start(|| {
                        let make_api: fn(Client) -> Api<$kind> = $api;
                        Informer::start(make_api(self.client.clone()), $config, stringify!($field), self.token.clone())
                    })
                }
            )*
        }
    };
}

informers! {
    pods: Pod => Api::all, watcher::Config::default();
    replicasets: ReplicaSet => Api::all, watcher::Config::default();
    deployments: Deployment => Api::all, watcher::Config::default();
    services: Service => Api::all, watcher::Config::default();
    endpointslices: EndpointSlice => Api::all, watcher::Config::default();
    endpoints: Endpoints => Api::all, watcher::Config::default();
    namespaces: Namespace => Api::all, watcher::Config::default();
    serviceaccounts: ServiceAccount => Api::all, watcher::Config::default();
    nodes: Node => Api::all, watcher::Config::default();
    leases: Lease => |client| Api::namespaced(client, "kube-node-lease"), watcher::Config::default();
    jobs: Job => Api::all, watcher::Config::default();
    cronjobs: CronJob => Api::all, watcher::Config::default();
    resourcequotas: ResourceQuota => Api::all, watcher::Config::default();
    configmaps: ConfigMap => Api::all, watcher::Config::default();
    secrets: Secret => Api::all, watcher::Config::default();
    persistentvolumeclaims: PersistentVolumeClaim => Api::all, watcher::Config::default();
    horizontalpodautoscalers: HorizontalPodAutoscaler => Api::all, watcher::Config::default();
}
