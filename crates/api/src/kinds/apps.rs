//! apps/v1 kinds.

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};

use crate::strategy::{Typed, no_defaults, no_validation};

pub(crate) static DEPLOYMENT: Typed<Deployment> = Typed::new(no_defaults, no_validation);
pub(crate) static REPLICA_SET: Typed<ReplicaSet> = Typed::new(no_defaults, no_validation);
pub(crate) static STATEFUL_SET: Typed<StatefulSet> = Typed::new(no_defaults, no_validation);
pub(crate) static DAEMON_SET: Typed<DaemonSet> = Typed::new(no_defaults, no_validation);
pub(crate) static CONTROLLER_REVISION: Typed<ControllerRevision> = Typed::new(no_defaults, no_validation);
