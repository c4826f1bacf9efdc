//! The endpointslice and endpoints controllers: slices and Endpoints follow pod readiness
//! flipped through pods/status, and go with their Service.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for};

const TIMEOUT: Duration = Duration::from_secs(30);

/// (pod name, ready, serving) of every endpoint in the Service's slices, sorted.
async fn endpoints_of(slices: &Api<EndpointSlice>, service: &str) -> Result<Vec<(String, bool, bool)>> {
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await?;
    let mut found: Vec<(String, bool, bool)> = list
        .items
        .iter()
        .flat_map(|slice| slice.endpoints.iter().flatten())
        .map(|endpoint| {
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            (
                endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
                conditions.ready == Some(true),
                conditions.serving == Some(true),
            )
        })
        .collect();
    found.sort();
    Ok(found)
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) -> Result<()> {
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": jiff::Timestamp::now().to_string()}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[tokio::test]
async fn slices_and_endpoints_follow_pod_readiness() -> Result<()> {
    let harness = Harness::start("endpointslice,endpoints").await?;
    harness.namespace("eps").await?;
    let client = harness.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "eps");
    let services: Api<Service> = Api::namespaced(client.clone(), "eps");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "eps");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "eps");

    for name in ["a", "b"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]},
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))?;
    services.create(&PostParams::default(), &service).await?;
    // A Service without selector is left alone.
    let manual: Service = serde_json::from_value(json!({
        "metadata": {"name": "manual"},
        "spec": {"ports": [{"port": 80}]},
    }))?;
    services.create(&PostParams::default(), &manual).await?;

    // No pod has an IP yet: one placeholder slice, no endpoints.
    wait_for("placeholder slice", TIMEOUT, || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await?;
        Ok((list.items.len() == 1).then_some(()))
    })
    .await?;

    set_ready(&pods, "a", "10.244.1.10", true).await?;
    set_ready(&pods, "b", "10.244.1.11", false).await?;
    wait_for("a ready, b not ready", TIMEOUT, || async {
        let found = endpoints_of(&slices, "web").await?;
        Ok((found == vec![("a".into(), true, true), ("b".into(), false, false)]).then_some(()))
    })
    .await?;
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await?;
    assert_eq!(list.items.len(), 1, "the placeholder was replaced");
    let slice = &list.items[0];
    assert!(slice.metadata.name.as_deref().unwrap_or_default().starts_with("web-"));
    assert_eq!(slice.address_type, "IPv4");
    let ports = slice.ports.clone().unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!((ports[0].name.as_deref(), ports[0].port), (Some("http"), Some(8080)));
    let owners = slice.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners[0].kind, "Service");
    assert_eq!(
        slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("endpointslice.kubernetes.io/managed-by"))
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );

    wait_for("Endpoints with a ready and a not-ready address", TIMEOUT, || async {
        let Some(found) = endpoints.get_opt("web").await? else {
            return Ok(None);
        };
        let subsets = found.subsets.unwrap_or_default();
        let ok = subsets.len() == 1
            && subsets[0]
                .addresses
                .iter()
                .flatten()
                .map(|a| a.ip.as_str())
                .collect::<Vec<_>>()
                == ["10.244.1.10"]
            && subsets[0]
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| a.ip.as_str())
                .collect::<Vec<_>>()
                == ["10.244.1.11"]
            && subsets[0].ports.iter().flatten().map(|p| p.port).collect::<Vec<_>>() == [8080];
        Ok(ok.then_some(()))
    })
    .await?;

    // Flip readiness both ways.
    set_ready(&pods, "a", "10.244.1.10", false).await?;
    set_ready(&pods, "b", "10.244.1.11", true).await?;
    wait_for("a not ready, b ready", TIMEOUT, || async {
        let found = endpoints_of(&slices, "web").await?;
        Ok((found == vec![("a".into(), false, false), ("b".into(), true, true)]).then_some(()))
    })
    .await?;

    // The selectorless Service got neither slices nor Endpoints.
    let manual_slices = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=manual"))
        .await?;
    assert!(manual_slices.items.is_empty());
    assert!(endpoints.get_opt("manual").await?.is_none());

    // Deleting the Service removes its slices and Endpoints.
    services.delete("web", &DeleteParams::default()).await?;
    wait_for("slices and Endpoints gone", TIMEOUT, || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await?;
        Ok((list.items.is_empty() && endpoints.get_opt("web").await?.is_none()).then_some(()))
    })
    .await?;
    Ok(())
}
