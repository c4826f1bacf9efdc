//! The endpointslice controller: for every Service with a selector, EndpointSlices listing
//! the selected pods' addresses, ports and ready / serving / terminating conditions, so that
//! proxies can program the Service. Slices of a Service that is gone are deleted (they also
//! carry an owner reference for the garbage collector).

pub mod decide;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::controllers::endpointutil as eu;
use crate::controllers::expectations::Expectations;
use crate::controllers::wiring::{EventForwarder, When};
use crate::error::{Error, Result, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "endpointslice";

/// How long to wait before re-checking writes the cache does not show yet.
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(1);

struct Controller {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    /// Slices written (`name@resourceVersion`) or deleted (uid), per Service key, until the
    /// cache shows them: acting on an older cache would create duplicate slices.
    expectations: Expectations,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let service_informer = ctx.informers.services();
    let pod_informer = ctx.informers.pods();
    let node_informer = ctx.informers.nodes();
    let slice_informer = ctx.informers.endpointslices();
    let service_changes = service_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    let slice_changes = slice_informer.subscribe();
    service_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    node_informer.wait_ready().await?;
    slice_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        services: service_informer.store(),
        pods: pod_informer.store(),
        nodes: node_informer.store(),
        slices: slice_informer.store(),
        expectations: Expectations::default(),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = {
        let queue = queue.clone();
        let controller = controller.clone();
        move || {
            for service in controller.services.state() {
                queue.add(util::key_of(service.as_ref()));
            }
            for slice in controller.slices.state() {
                if let Some(key) = service_key_of_slice(&slice) {
                    queue.add(key);
                }
            }
        }
    };
    enqueue_all();
    let services = controller.services.clone();
    let workers = ctx.options.concurrent_service_endpoint_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(service_changes, When::Changed, |service| [util::key_of(service)])
        .on(pod_changes, When::Changed, move |pod| {
            services_of_namespace(&services, pod.namespace().as_deref())
        })
        .on(slice_changes, When::Changed, service_key_of_slice)
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

/// Keys of the Services of `namespace` whose endpoints this controller manages (a pod there
/// changed: it may have joined or left any of them, its old labels are unknown).
pub fn services_of_namespace(services: &Store<Service>, namespace: Option<&str>) -> Vec<String> {
    services
        .state()
        .iter()
        .filter(|service| service.namespace().as_deref() == namespace)
        .filter(|service| eu::managed_selector(service).is_some())
        .map(|service| util::key_of(service.as_ref()))
        .collect()
}

/// The key of the Service a slice managed by this controller belongs to.
fn service_key_of_slice(slice: &EndpointSlice) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(decide::MANAGED_BY_LABEL).map(String::as_str) != Some(decide::MANAGED_BY) {
        return None;
    }
    let service = labels.get(decide::SERVICE_NAME_LABEL)?;
    Some(util::key(slice.metadata.namespace.as_deref(), service))
}

/// A resourceVersion as a number, for "at least this new" checks.
fn rv_number(rv: Option<&str>) -> Option<u64> {
    rv?.parse().ok()
}

impl Controller {
    fn managed_slices(&self, key: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .state()
            .into_iter()
            .filter(|slice| service_key_of_slice(slice).as_deref() == Some(key))
            .collect()
    }

    fn cache_caught_up(&self, key: &str) -> bool {
        let slices = self.managed_slices(key);
        self.expectations.satisfied(
            key,
            |written| {
                // `c:name@rv` for a created slice, `u:name@rv` for an updated one.
                let (created, rest) = match written.split_once(':') {
                    Some(("c", rest)) => (true, rest),
                    Some((_, rest)) => (false, rest),
                    None => (false, written),
                };
                let (name, rv) = rest.rsplit_once('@').unwrap_or((rest, ""));
                match slices.iter().find(|slice| slice.metadata.name.as_deref() == Some(name)) {
                    // An updated slice deleted since is nothing to wait for; a created one
                    // not seen yet is.
                    None => !created,
                    Some(slice) => match (
                        rv_number(slice.metadata.resource_version.as_deref()),
                        rv_number(Some(rv)),
                    ) {
                        (Some(have), Some(want)) => have >= want,
                        _ => slice.metadata.resource_version.as_deref() == Some(rv),
                    },
                }
            },
            |uid| !slices.iter().any(|slice| slice.metadata.uid.as_deref() == Some(uid)),
        )
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, _) = util::split_key(key);
        let namespace = namespace.unwrap_or_default().to_string();
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &namespace);
        let Some(service) = util::get(&self.services, key) else {
            // The Service is gone: so are its slices.
            self.expectations.forget(key);
            for slice in self.managed_slices(key) {
                delete_slice(&api, &slice).await?;
            }
            return Ok(None);
        };
        if eu::managed_selector(&service).is_none() {
            return Ok(None);
        }
        if !self.cache_caught_up(key) {
            return Ok(Some(EXPECTATIONS_RECHECK));
        }
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .collect();
        let zones: HashMap<String, String> = self
            .nodes
            .state()
            .iter()
            .filter_map(|node| {
                let zone = node.labels().get(decide::ZONE_LABEL)?;
                Some((node.name_any(), zone.clone()))
            })
            .collect();
        let all = self.managed_slices(key);
        let existing: Vec<&EndpointSlice> = all.iter().map(Arc::as_ref).collect();
        let plan = decide::decide(&service, &pods, &zones, &existing);
        self.apply(&api, key, plan).await
    }

    async fn apply(&self, api: &Api<EndpointSlice>, key: &str, plan: decide::Plan) -> Result<Option<Duration>> {
        let mut written = Vec::new();
        let mut deleted = Vec::new();
        let mut result = Ok(None);
        for slice in &plan.delete {
            match delete_slice(api, slice).await {
                Ok(()) => deleted.push(slice.metadata.uid.clone().unwrap_or_default()),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        if result.is_ok() {
            for slice in &plan.update {
                let name = slice.name_any();
                match api.replace(&name, &PostParams::default(), slice).await {
                    Ok(new) => written.push(format!("u:{name}@{}", new.resource_version().unwrap_or_default())),
                    Err(error) => {
                        result = Err(Error::api("update", "EndpointSlice", util::key_of(slice), error));
                        break;
                    }
                }
            }
        }
        if result.is_ok() {
            for slice in &plan.create {
                match api.create(&PostParams::default(), slice).await {
                    Ok(new) => written.push(format!(
                        "c:{}@{}",
                        new.name_any(),
                        new.resource_version().unwrap_or_default()
                    )),
                    Err(kube::Error::Api(status)) if status.code == 403 && status.reason == "Forbidden" => {
                        // The namespace is terminating: nothing to publish any more.
                        break;
                    }
                    Err(error) => {
                        result = Err(Error::api("create", "EndpointSlice", key, error));
                        break;
                    }
                }
            }
        }
        self.expectations.expect(key, written, deleted);
        result
    }
}

async fn delete_slice(api: &Api<EndpointSlice>, slice: &EndpointSlice) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: slice.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&slice.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(Error::api("delete", "EndpointSlice", util::key_of(slice), error)),
    }
}
