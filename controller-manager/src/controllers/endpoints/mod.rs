//! The endpoints controller: the legacy `v1 Endpoints` object of every Service with a
//! selector, named like the Service, deleted with it.

pub mod decide;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::controllers::endpointslice::services_of_namespace;
use crate::controllers::wiring::{EventForwarder, When};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "endpoints";

struct Controller {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let service_informer = ctx.informers.services();
    let pod_informer = ctx.informers.pods();
    let endpoints_informer = ctx.informers.endpoints();
    let service_changes = service_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    let endpoints_changes = endpoints_informer.subscribe();
    service_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    endpoints_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        services: service_informer.store(),
        pods: pod_informer.store(),
        endpoints: endpoints_informer.store(),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = {
        let queue = queue.clone();
        let controller = controller.clone();
        move || {
            for service in controller.services.state() {
                queue.add(util::key_of(service.as_ref()));
            }
            // Leftover Endpoints of Services deleted while we were not watching.
            for endpoints in controller.endpoints.state() {
                if is_managed(&endpoints) {
                    queue.add(util::key_of(endpoints.as_ref()));
                }
            }
        }
    };
    enqueue_all();
    let services = controller.services.clone();
    let workers = ctx.options.concurrent_endpoint_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(service_changes, When::Changed, |service| [util::key_of(service)])
        .on(pod_changes, When::Changed, move |pod| {
            services_of_namespace(&services, pod.namespace().as_deref())
        })
        .on(endpoints_changes, When::Changed, |endpoints| [util::key_of(endpoints)])
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

fn is_managed(endpoints: &Endpoints) -> bool {
    endpoints
        .labels()
        .get(decide::MANAGED_BY_LABEL)
        .is_some_and(|value| value == decide::MANAGED_BY)
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, _) = util::split_key(key);
        let namespace = namespace.unwrap_or_default().to_string();
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &namespace);
        let current = util::get(&self.endpoints, key);
        let Some(service) = util::get(&self.services, key) else {
            // The Service is gone: so are the Endpoints this controller made for it.
            if let Some(endpoints) = current.filter(|endpoints| is_managed(endpoints)) {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: endpoints.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&endpoints.name_any(), &params).await {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                    Err(error) => return Err(Error::api("delete", "Endpoints", key, error)),
                }
            }
            return Ok(None);
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .collect();
        match decide::decide(&service, &pods, current.as_deref()) {
            decide::Action::None => Ok(None),
            decide::Action::Create(endpoints) => match api.create(&PostParams::default(), &endpoints).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(status)) if status.code == 403 && status.reason == "Forbidden" => Ok(None),
                Err(error) => Err(Error::api("create", "Endpoints", key, error)),
            },
            decide::Action::Update(endpoints) => {
                match api
                    .replace(&endpoints.name_any(), &PostParams::default(), &endpoints)
                    .await
                {
                    Ok(_) => Ok(None),
                    Err(error) => Err(Error::api("update", "Endpoints", key, error)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decide::*;
    use crate::util::testing::*;
    use k8s_openapi::api::core::v1::{Pod, PodIP, Service, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::sync::Arc;

    fn service(publish: bool, target: IntOrString) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(target),
                    ..Default::default()
                }]),
                publish_not_ready_addresses: Some(publish),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn with_ip(mut pod: Pod, ip: &str) -> Pod {
        let status = pod.status.get_or_insert_with(Default::default);
        status.pod_ip = Some(ip.into());
        status.pod_ips = Some(vec![PodIP { ip: ip.into() }]);
        pod
    }

    /// (ready ips, not-ready ips, ports) per subset.
    fn summary(action: &Action) -> Vec<(Vec<String>, Vec<String>, Vec<i32>)> {
        let endpoints = match action {
            Action::Create(endpoints) | Action::Update(endpoints) => endpoints,
            Action::None => return Vec::new(),
        };
        let ips = |list: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
            list.iter().flatten().map(|address| address.ip.clone()).collect()
        };
        endpoints
            .subsets
            .iter()
            .flatten()
            .map(|subset| {
                (
                    ips(&subset.addresses),
                    ips(&subset.not_ready_addresses),
                    subset.ports.iter().flatten().map(|port| port.port).collect(),
                )
            })
            .collect()
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn table() {
        let web = |name: &str| pod(name, &[("app", "web")], 10);
        let mut terminating = with_ip(ready(web("t"), 1), "10.0.0.9");
        terminating.metadata.deletion_timestamp = Some(ago(1));
        let pods = vec![
            with_ip(ready(web("a"), 1), "10.0.0.1"),
            with_ip(web("b"), "10.0.0.2"),
            web("no-ip"),
            terminating,
            with_ip(pod("db", &[("app", "db")], 1), "10.0.0.3"),
        ];
        let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
        let cases = [
            (
                "ready and not ready split, terminating left out",
                service(false, IntOrString::Int(8080)),
                vec![(v(&["10.0.0.1"]), v(&["10.0.0.2"]), vec![8080])],
            ),
            (
                "publishNotReadyAddresses: all ready, terminating included",
                service(true, IntOrString::Int(8080)),
                vec![(v(&["10.0.0.1", "10.0.0.2", "10.0.0.9"]), v(&[]), vec![8080])],
            ),
            (
                "a named port no pod has: no subsets",
                service(false, IntOrString::String("missing".into())),
                vec![],
            ),
        ];
        for (name, service, expected) in cases {
            let action = decide(&service, &pods, None);
            assert!(matches!(action, Action::Create(_)), "{name}");
            assert_eq!(summary(&action), expected, "{name}");
        }
    }

    #[test]
    fn unchanged_endpoints_are_not_written_and_selectorless_services_are_ignored() {
        let service = service(false, IntOrString::Int(8080));
        let pods = vec![Arc::new(with_ip(ready(pod("a", &[("app", "web")], 1), 1), "10.0.0.1"))];
        let Action::Create(created) = decide(&service, &pods, None) else {
            panic!("expected a create");
        };
        assert_eq!(
            created
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .map(String::as_str),
            Some(MANAGED_BY)
        );
        assert_eq!(decide(&service, &pods, Some(&created)), Action::None);
        assert!(matches!(decide(&service, &[], Some(&created)), Action::Update(_)));
        let mut manual = service.clone();
        if let Some(spec) = manual.spec.as_mut() {
            spec.selector = None;
        }
        assert_eq!(decide(&manual, &pods, None), Action::None);
    }
}
