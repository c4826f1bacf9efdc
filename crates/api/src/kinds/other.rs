//! Kinds of the smaller groups: coordination, discovery, events, autoscaling, networking,
//! apiextensions; and the conversions between served and stored versions.

use k8s_openapi::api::autoscaling::{v1 as autoscaling_v1, v2 as autoscaling_v2};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1 as events_v1;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::registry::Conversion;
use crate::strategy::{Typed, no_defaults, no_validation};

pub(crate) static LEASE: Typed<Lease> = Typed::new(no_defaults, no_validation);
pub(crate) static ENDPOINT_SLICE: Typed<EndpointSlice> = Typed::new(no_defaults, no_validation);
pub(crate) static EVENTS_V1_EVENT: Typed<events_v1::Event> = Typed::new(no_defaults, no_validation);
pub(crate) static HPA_V2: Typed<autoscaling_v2::HorizontalPodAutoscaler> = Typed::new(no_defaults, no_validation);
pub(crate) static HPA_V1: Typed<autoscaling_v1::HorizontalPodAutoscaler> = Typed::new(no_defaults, no_validation);
pub(crate) static INGRESS: Typed<Ingress> = Typed::new(no_defaults, no_validation);
pub(crate) static NETWORK_POLICY: Typed<NetworkPolicy> = Typed::new(no_defaults, no_validation);
pub(crate) static CUSTOM_RESOURCE_DEFINITION: Typed<CustomResourceDefinition> = Typed::new(no_defaults, no_validation);

fn identity(value: Value) -> Value {
    value
}

/// events.k8s.io/v1 Event ⇄ core/v1 Event (the stored form).
pub(crate) static EVENTS_V1_CONVERSION: Conversion = Conversion {
    to_storage: identity,
    from_storage: identity,
};

/// autoscaling/v1 HPA ⇄ autoscaling/v2 HPA (the stored form).
pub(crate) static HPA_V1_CONVERSION: Conversion = Conversion {
    to_storage: identity,
    from_storage: identity,
};
