//! core/v1 kinds.

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ResourceQuota, Secret, Service, ServiceAccount,
};

use crate::strategy::{Typed, no_defaults, no_validation};

pub(crate) static NAMESPACE: Typed<Namespace> = Typed::new(no_defaults, no_validation);
pub(crate) static POD: Typed<Pod> = Typed::new(no_defaults, no_validation);
pub(crate) static SERVICE: Typed<Service> = Typed::new(no_defaults, no_validation);
pub(crate) static ENDPOINTS: Typed<Endpoints> = Typed::new(no_defaults, no_validation);
pub(crate) static CONFIG_MAP: Typed<ConfigMap> = Typed::new(no_defaults, no_validation);
pub(crate) static SECRET: Typed<Secret> = Typed::new(no_defaults, no_validation);
pub(crate) static NODE: Typed<Node> = Typed::new(no_defaults, no_validation);
pub(crate) static EVENT: Typed<Event> = Typed::new(no_defaults, no_validation);
pub(crate) static SERVICE_ACCOUNT: Typed<ServiceAccount> = Typed::new(no_defaults, no_validation);
pub(crate) static PERSISTENT_VOLUME: Typed<PersistentVolume> = Typed::new(no_defaults, no_validation);
pub(crate) static PERSISTENT_VOLUME_CLAIM: Typed<PersistentVolumeClaim> = Typed::new(no_defaults, no_validation);
pub(crate) static RESOURCE_QUOTA: Typed<ResourceQuota> = Typed::new(no_defaults, no_validation);
pub(crate) static LIMIT_RANGE: Typed<LimitRange> = Typed::new(no_defaults, no_validation);
