//! Which `k8s-openapi` type describes each served kind, so its JSON schema can be generated
//! (k8s-openapi's `schemars` support names every schema as upstream does:
//! `io.k8s.api.core.v1.Pod`, ...).

#[cfg(test)]
use k8s_openapi::ListableResource;
use k8s_openapi::Resource;
use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, discovery, events, networking, policy, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};

/// One kind with a generated schema.
pub(crate) struct KindSchema {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    /// Adds the kind's schema (and everything it references) to the generator and returns a
    /// `$ref` to it.
    pub(crate) generate: fn(&mut SchemaGenerator) -> Schema,
    /// The upstream schema name, e.g. `io.k8s.api.core.v1.Pod`.
    pub(crate) name: fn() -> String,
}

impl KindSchema {
    pub(crate) fn matches(&self, group: &str, version: &str, kind: &str) -> bool {
        self.group == group && self.version == version && self.kind == kind
    }
}

const fn kind<T: Resource + JsonSchema>() -> KindSchema {
    KindSchema {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        generate: SchemaGenerator::subschema_for::<T>,
        name: schema_name::<T>,
    }
}

fn schema_name<T: JsonSchema>() -> String {
    T::schema_name().into_owned()
}

/// The list kind name of a listable kind (`PodList`); only used to check the table.
#[cfg(test)]
const fn list_kind<T: ListableResource>() -> &'static str {
    T::LIST_KIND
}

/// Every served kind (the registry's) plus the kinds its subresources take and return.
pub(crate) static KINDS: &[KindSchema] = &[
    // core/v1
    kind::<core::v1::Namespace>(),
    kind::<core::v1::Pod>(),
    kind::<core::v1::Service>(),
    kind::<core::v1::Endpoints>(),
    kind::<core::v1::ConfigMap>(),
    kind::<core::v1::Secret>(),
    kind::<core::v1::Node>(),
    kind::<core::v1::Event>(),
    kind::<core::v1::ServiceAccount>(),
    kind::<core::v1::PersistentVolume>(),
    kind::<core::v1::PersistentVolumeClaim>(),
    kind::<core::v1::ResourceQuota>(),
    kind::<core::v1::LimitRange>(),
    kind::<core::v1::Binding>(),
    // apps/v1
    kind::<apps::v1::Deployment>(),
    kind::<apps::v1::ReplicaSet>(),
    kind::<apps::v1::StatefulSet>(),
    kind::<apps::v1::DaemonSet>(),
    kind::<apps::v1::ControllerRevision>(),
    // batch/v1
    kind::<batch::v1::Job>(),
    kind::<batch::v1::CronJob>(),
    // coordination.k8s.io/v1
    kind::<coordination::v1::Lease>(),
    // discovery.k8s.io/v1
    kind::<discovery::v1::EndpointSlice>(),
    // events.k8s.io/v1
    kind::<events::v1::Event>(),
    // autoscaling
    kind::<autoscaling::v2::HorizontalPodAutoscaler>(),
    kind::<autoscaling::v1::HorizontalPodAutoscaler>(),
    kind::<autoscaling::v1::Scale>(),
    // networking.k8s.io/v1
    kind::<networking::v1::Ingress>(),
    kind::<networking::v1::NetworkPolicy>(),
    // rbac.authorization.k8s.io/v1
    kind::<rbac::v1::Role>(),
    kind::<rbac::v1::RoleBinding>(),
    kind::<rbac::v1::ClusterRole>(),
    kind::<rbac::v1::ClusterRoleBinding>(),
    // apiextensions.k8s.io/v1
    kind::<apiextensions::v1::CustomResourceDefinition>(),
    // policy/v1 (pods/eviction)
    kind::<policy::v1::Eviction>(),
];

/// The schema of a kind, if it has one.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static KindSchema> {
    KINDS.iter().find(|k| k.matches(group, version, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_kinds_follow_the_naming_rule() {
        // The generated list schemas are named `<Kind>List`, as k8s-openapi's list kinds are.
        assert_eq!(list_kind::<core::v1::Pod>(), "PodList");
        assert_eq!(list_kind::<apps::v1::Deployment>(), "DeploymentList");
        assert_eq!(
            list_kind::<apiextensions::v1::CustomResourceDefinition>(),
            "CustomResourceDefinitionList"
        );
    }

    #[test]
    fn every_registry_kind_has_a_schema() {
        for def in crate::registry::RESOURCES {
            let found = find(def.group, def.version, def.kind);
            assert!(
                found.is_some(),
                "{} {} {} has no schema",
                def.group,
                def.version,
                def.kind
            );
            assert!(found.map(|k| (k.name)()).is_some_and(|n| n.ends_with(def.kind)));
        }
    }
}
