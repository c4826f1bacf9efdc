//! The resourcequota controller: keeps every ResourceQuota's `status.hard` equal to its
//! `spec.hard` and `status.used` equal to what its namespace's objects use (`api::quota`
//! decides what counts). The apiserver's quota admission charges creates as they happen;
//! this controller releases what deleted or finished objects held (pods, services,
//! configmaps, secrets and claims are watched, so that happens at once) and recounts
//! everything every `--resource-quota-sync-period`, which also corrects charges for creates
//! that failed after admission.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::context::Context;
use crate::controllers::wiring::{EventForwarder, Forward, When, resync_each};
use crate::error::{Error, Result};
use crate::informer::Change;
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "resourcequota";

/// The resources whose objects come from the shared informers; any other `count/...` name is
/// counted with a LIST of its resource.
const WATCHED: &[&str] = &["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"];

/// The `(group, plural)` of a `count/<plural>[.<group>]` resource name.
fn counted_resource(name: &str) -> Option<(&str, &str)> {
    let resource = name.strip_prefix("count/")?;
    Some(match resource.split_once('.') {
        Some((plural, group)) => (group, plural),
        None => ("", resource),
    })
}

/// The status the quota should have given the usage counted; `None` when it has it already.
pub fn decide(quota: &ResourceQuota, used: &api::quota::Usage) -> Option<ResourceQuotaStatus> {
    let hard = quota.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let used = used
        .iter()
        .filter(|(name, _)| hard.contains_key(*name))
        .map(|(name, q)| (name.clone(), K8sQuantity(q.to_string())))
        .collect();
    let wanted = ResourceQuotaStatus {
        hard: Some(hard),
        used: Some(used),
    };
    let current = quota.status.clone().unwrap_or_default();
    let same = |a: &Option<std::collections::BTreeMap<String, K8sQuantity>>,
                b: &Option<std::collections::BTreeMap<String, K8sQuantity>>| {
        let canonical = |m: &Option<std::collections::BTreeMap<String, K8sQuantity>>| -> Vec<(String, String)> {
            m.iter()
                .flatten()
                .map(|(k, v)| (k.clone(), api::quantity::canonical(&Value::from(v.0.clone()))))
                .collect()
        };
        canonical(a) == canonical(b)
    };
    (!(same(&current.hard, &wanted.hard) && same(&current.used, &wanted.used))).then_some(wanted)
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let quotas = ctx.informers.resourcequotas();
    let pods = ctx.informers.pods();
    let services = ctx.informers.services();
    let configmaps = ctx.informers.configmaps();
    let secrets = ctx.informers.secrets();
    let claims = ctx.informers.persistentvolumeclaims();
    let changes = (
        quotas.subscribe(),
        pods.subscribe(),
        services.subscribe(),
        configmaps.subscribe(),
        secrets.subscribe(),
        claims.subscribe(),
    );
    quotas.wait_ready().await?;
    pods.wait_ready().await?;
    services.wait_ready().await?;
    configmaps.wait_ready().await?;
    secrets.wait_ready().await?;
    claims.wait_ready().await?;
    let stores = Stores {
        quotas: quotas.store(),
        pods: pods.store(),
        services: services.store(),
        configmaps: configmaps.store(),
        secrets: secrets.store(),
        claims: claims.store(),
    };
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &stores.quotas, |q| [util::key_of(q)]);
    // Admission charges creates, so only what gives usage back leads to a recount: deleted
    // objects and pods that finished. (Recounting on a create could race with admission and
    // write down a count that misses the object just charged, as upstream also avoids.)
    let in_namespace = |quotas: Store<ResourceQuota>| {
        move |namespace: Option<String>| -> Vec<String> {
            quotas
                .state()
                .iter()
                .filter(|q| q.namespace() == namespace)
                .map(|q| util::key_of(q.as_ref()))
                .collect()
        }
    };
    let (for_pods, for_services, for_configmaps, for_secrets, for_claims) = (
        in_namespace(stores.quotas.clone()),
        in_namespace(stores.quotas.clone()),
        in_namespace(stores.quotas.clone()),
        in_namespace(stores.quotas.clone()),
        in_namespace(stores.quotas.clone()),
    );
    let client = ctx.client.clone();
    let stores = Arc::new(stores);
    EventForwarder::new(&queue, enqueue_all)
        // A new quota, or one whose spec.hard changed (not the usage admission writes).
        .on(changes.0, When::Applied, |q| {
            let hard = q.spec.as_ref().and_then(|s| s.hard.as_ref());
            let mirrored = q.status.as_ref().and_then(|s| s.hard.as_ref());
            (hard != mirrored).then(|| util::key_of(q))
        })
        .watch(changes.1, move |change| match change {
            Change::Deleted(pod) => Forward::Keys(for_pods(pod.namespace())),
            Change::Applied(pod)
                if matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                ) || pod.metadata.deletion_timestamp.is_some() =>
            {
                Forward::Keys(for_pods(pod.namespace()))
            }
            Change::Applied(_) => Forward::Nothing,
            Change::Resynced => Forward::ResyncAll,
        })
        .on(changes.2, When::Deleted, move |o| for_services(o.namespace()))
        .on(changes.3, When::Deleted, move |o| for_configmaps(o.namespace()))
        .on(changes.4, When::Deleted, move |o| for_secrets(o.namespace()))
        .on(changes.5, When::Deleted, move |o| for_claims(o.namespace()))
        .every(ctx.options.resource_quota_sync_period)
        .run_workers(
            NAME,
            ctx.options.concurrent_resource_quota_syncs,
            &ctx.token,
            move |key: String| {
                let (client, stores) = (client.clone(), stores.clone());
                async move { sync(client, &stores, &key).await }
            },
        )
        .await;
    Ok(())
}

/// The informer caches a recount reads.
struct Stores {
    quotas: Store<ResourceQuota>,
    pods: Store<k8s_openapi::api::core::v1::Pod>,
    services: Store<k8s_openapi::api::core::v1::Service>,
    configmaps: Store<k8s_openapi::api::core::v1::ConfigMap>,
    secrets: Store<k8s_openapi::api::core::v1::Secret>,
    claims: Store<k8s_openapi::api::core::v1::PersistentVolumeClaim>,
}

/// The objects of `store` in `namespace`, as JSON.
fn values_in<K>(store: &Store<K>, namespace: &str) -> Vec<Value>
where
    K: Resource<DynamicType = ()> + kube::runtime::reflector::Lookup<DynamicType = ()> + Serialize + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
        .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
        .collect()
}

async fn sync(client: kube::Client, stores: &Stores, key: &str) -> Result<Option<Duration>> {
    let Some(quota) = util::get(&stores.quotas, key) else {
        return Ok(None);
    };
    let namespace = quota.namespace().unwrap_or_default();
    let quota_json = serde_json::to_value(quota.as_ref()).map_err(|source| Error::Encode {
        what: format!("ResourceQuota {key}"),
        source,
    })?;
    let hard: BTreeSet<String> = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default();

    let mut objects: Vec<(String, String, Value)> = Vec::new();
    for (plural, values) in [
        ("pods", values_in(&stores.pods, &namespace)),
        ("services", values_in(&stores.services, &namespace)),
        ("configmaps", values_in(&stores.configmaps, &namespace)),
        ("secrets", values_in(&stores.secrets, &namespace)),
        ("persistentvolumeclaims", values_in(&stores.claims, &namespace)),
    ] {
        objects.extend(values.into_iter().map(|v| (String::new(), plural.to_string(), v)));
    }
    let others: BTreeSet<(String, String)> = hard
        .iter()
        .filter_map(|name| counted_resource(name))
        .filter(|(group, plural)| !(group.is_empty() && WATCHED.contains(plural)))
        .map(|(g, p)| (g.to_string(), p.to_string()))
        .collect();
    if !others.is_empty() {
        let served = crate::discovery::resources(&client).await?;
        for (group, plural) in others {
            let Some(resource) = served
                .iter()
                .find(|r| r.resource.group == group && r.resource.plural == plural && r.namespaced())
            else {
                continue;
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource.resource);
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| Error::api("list", "objects", format!("{namespace}/{plural}"), e))?;
            objects.extend(
                list.items
                    .into_iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .map(|v| (group.clone(), plural.clone(), v)),
            );
        }
    }
    let used = api::quota::recompute(
        &quota_json,
        objects.iter().map(|(g, p, v)| (g.as_str(), p.as_str(), v)),
        jiff::Timestamp::now(),
    );
    let Some(status) = decide(&quota, &used) else {
        return Ok(None);
    };
    let api: Api<ResourceQuota> = Api::namespaced(client, &namespace);
    let patch = json!({"status": status});
    api.patch_status(&quota.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::api("update status of", "ResourceQuota", key.to_string(), e))?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn quota(hard: &[(&str, &str)], used: Option<&[(&str, &str)]>) -> ResourceQuota {
        let list = |pairs: &[(&str, &str)]| -> BTreeMap<String, K8sQuantity> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), K8sQuantity(v.to_string())))
                .collect()
        };
        ResourceQuota {
            spec: Some(k8s_openapi::api::core::v1::ResourceQuotaSpec {
                hard: Some(list(hard)),
                ..Default::default()
            }),
            status: used.map(|u| ResourceQuotaStatus {
                hard: Some(list(hard)),
                used: Some(list(u)),
            }),
            ..Default::default()
        }
    }

    fn usage(pairs: &[(&str, &str)]) -> api::quota::Usage {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), api::quantity::Quantity::parse(v).unwrap()))
            .collect()
    }

    #[test]
    fn table() {
        type Case = (
            &'static str,
            ResourceQuota,
            api::quota::Usage,
            Option<Vec<(&'static str, &'static str)>>,
        );
        let cases: [Case; 4] = [
            (
                "new quota gets hard and used",
                quota(&[("pods", "2")], None),
                usage(&[("pods", "1"), ("count/pods", "1")]),
                Some(vec![("pods", "1")]),
            ),
            (
                "up to date (same amounts written differently) is left alone",
                quota(&[("requests.memory", "1Gi")], Some(&[("requests.memory", "1024Mi")])),
                usage(&[("requests.memory", "1Gi")]),
                None,
            ),
            (
                "released usage is written down",
                quota(&[("pods", "2")], Some(&[("pods", "2")])),
                usage(&[("pods", "0")]),
                Some(vec![("pods", "0")]),
            ),
            (
                "spec change is mirrored",
                {
                    let mut q = quota(&[("pods", "5")], Some(&[("pods", "1")]));
                    q.status.as_mut().unwrap().hard = Some([("pods".to_string(), K8sQuantity("2".into()))].into());
                    q
                },
                usage(&[("pods", "1")]),
                Some(vec![("pods", "1")]),
            ),
        ];
        for (name, q, used, want) in cases {
            let got = decide(&q, &used).map(|s| s.used.unwrap().into_iter().map(|(k, v)| (k, v.0)).collect::<Vec<_>>());
            let want = want.map(|w| {
                w.into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn count_names() {
        assert_eq!(
            counted_resource("count/deployments.apps"),
            Some(("apps", "deployments"))
        );
        assert_eq!(counted_resource("count/pods"), Some(("", "pods")));
        assert_eq!(counted_resource("pods"), None);
    }
}
