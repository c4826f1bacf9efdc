//! The serviceaccount controller: every active namespace has a `default` ServiceAccount,
//! recreated if deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::error::{Error, Result, is_conflict};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "serviceaccount";

/// The ServiceAccounts every namespace gets.
pub const DEFAULT_ACCOUNTS: &[&str] = &["default"];

/// The accounts to create in `namespace`: those of `DEFAULT_ACCOUNTS` it lacks, none while it
/// is being deleted.
pub fn decide(namespace: &Namespace, existing: &[String]) -> Vec<String> {
    let terminating = util::is_deleting(&namespace.metadata)
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Vec::new();
    }
    DEFAULT_ACCOUNTS
        .iter()
        .filter(|name| !existing.iter().any(|existing| existing == *name))
        .map(|name| name.to_string())
        .collect()
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let ns_informer = ctx.informers.namespaces();
    let sa_informer = ctx.informers.serviceaccounts();
    let ns_changes = ns_informer.subscribe();
    let sa_changes = sa_informer.subscribe();
    ns_informer.wait_ready().await?;
    sa_informer.wait_ready().await?;
    let namespaces = ns_informer.store();
    let accounts = sa_informer.store();
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &namespaces, |ns| [ns.name_any()]);
    enqueue_all();
    let client = ctx.client.clone();
    let workers = ctx.options.concurrent_serviceaccount_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(ns_changes, When::Applied, |ns| [ns.name_any()])
        .on(sa_changes, When::Deleted, |sa| [sa.namespace().unwrap_or_default()])
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let (client, namespaces, accounts) = (client.clone(), namespaces.clone(), accounts.clone());
            async move { sync(client, &namespaces, &accounts, &key).await }
        })
        .await;
    Ok(())
}

async fn sync(
    client: kube::Client,
    namespaces: &Store<Namespace>,
    accounts: &Store<ServiceAccount>,
    name: &str,
) -> Result<Option<Duration>> {
    let Some(namespace) = util::get(namespaces, name) else {
        return Ok(None);
    };
    let existing: Vec<String> = accounts
        .state()
        .iter()
        .filter(|sa| sa.namespace().as_deref() == Some(name))
        .map(|sa| sa.name_any())
        .collect();
    let api: Api<ServiceAccount> = Api::namespaced(client, name);
    for account in decide(&namespace, &existing) {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(account.clone()),
                namespace: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            // Exists already (the cache lags), or the namespace started terminating.
            Err(error) if is_conflict(&error) => {}
            Err(kube::Error::Api(status)) if status.code == 403 && status.reason == "Forbidden" => {}
            Err(error) => {
                return Err(Error::api(
                    "create",
                    "ServiceAccount",
                    util::key(Some(name), &account),
                    error,
                ));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    fn namespace(phase: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(NamespaceStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn table() {
        let cases: [(&str, Namespace, Vec<String>, Vec<&str>); 3] = [
            (
                "missing default is created",
                namespace("Active"),
                vec!["other".into()],
                vec!["default"],
            ),
            (
                "present default is left alone",
                namespace("Active"),
                vec!["default".into()],
                vec![],
            ),
            (
                "terminating namespace gets nothing",
                namespace("Terminating"),
                vec![],
                vec![],
            ),
        ];
        for (name, ns, existing, expected) in cases {
            assert_eq!(decide(&ns, &existing), expected, "{name}");
        }
    }
}
