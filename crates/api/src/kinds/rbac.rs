//! rbac.authorization.k8s.io/v1 kinds.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use crate::strategy::{Typed, no_defaults, no_validation};

pub(crate) static ROLE: Typed<Role> = Typed::new(no_defaults, no_validation);
pub(crate) static ROLE_BINDING: Typed<RoleBinding> = Typed::new(no_defaults, no_validation);
pub(crate) static CLUSTER_ROLE: Typed<ClusterRole> = Typed::new(no_defaults, no_validation);
pub(crate) static CLUSTER_ROLE_BINDING: Typed<ClusterRoleBinding> = Typed::new(no_defaults, no_validation);
