//! core/v1 kinds: Pods (and the pod template every workload embeds), Services, config and
//! storage objects, and the cluster's bookkeeping kinds.

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ResourceQuota, Secret, Service, ServiceAccount,
};

use crate::strategy::{Typed, no_defaults, no_validation};

mod config;
mod containers;
pub(crate) mod misc;
mod pod;
pub mod pod_defaults;
pub mod pod_validation;
mod service;
pub mod storage;
mod volumes;

pub use pod_defaults::{default_pod_spec, default_pod_template, default_pvc_spec, pod_qos};
pub use pod_validation::{validate_pod_spec, validate_pod_template};
pub use storage::validate_pvc_spec;

pub(crate) static NAMESPACE: Typed<Namespace> = Typed::new(misc::default_namespace, misc::validate_namespace);
pub(crate) static POD: Typed<Pod> = Typed::new(pod_defaults::default_pod, pod::validate_pod);
pub(crate) static SERVICE: Typed<Service> = Typed::new(service::default_service, service::validate_service);
pub(crate) static ENDPOINTS: Typed<Endpoints> = Typed::new(misc::default_endpoints, misc::validate_endpoints);
pub(crate) static CONFIG_MAP: Typed<ConfigMap> = Typed::new(no_defaults, config::validate_config_map);
pub(crate) static SECRET: Typed<Secret> = Typed::new(config::default_secret, config::validate_secret);
pub(crate) static NODE: Typed<Node> = Typed::new(misc::default_node, misc::validate_node);
pub(crate) static EVENT: Typed<Event> = Typed::new(no_defaults, misc::validate_event);
pub(crate) static SERVICE_ACCOUNT: Typed<ServiceAccount> = Typed::new(no_defaults, no_validation);
pub(crate) static PERSISTENT_VOLUME: Typed<PersistentVolume> = Typed::new(storage::default_pv, storage::validate_pv);
pub(crate) static PERSISTENT_VOLUME_CLAIM: Typed<PersistentVolumeClaim> =
    Typed::new(storage::default_pvc, storage::validate_pvc);
pub(crate) static RESOURCE_QUOTA: Typed<ResourceQuota> =
    Typed::new(storage::default_resource_quota, storage::validate_resource_quota);
pub(crate) static LIMIT_RANGE: Typed<LimitRange> =
    Typed::new(storage::default_limit_range, storage::validate_limit_range);

#[cfg(test)]
mod pod_tests;
#[cfg(test)]
mod tests;
