//! The namespace controller: a deleted namespace loses its content, then disappears.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for, web_workload};

#[tokio::test]
async fn deleted_namespace_is_emptied_then_removed() -> Result<()> {
    let harness = Harness::start("namespace").await?;
    harness.namespace("doomed").await?;
    let client = harness.client.clone();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "doomed");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "doomed");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"a": "b"}}))?,
        )
        .await?;
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}}))?,
        )
        .await?;
    let deployment: Deployment = web_workload(1)?;
    deployments.create(&PostParams::default(), &deployment).await?;

    namespaces.delete("doomed", &DeleteParams::default()).await?;
    let namespace = namespaces.get("doomed").await?;
    assert_eq!(
        namespace.status.and_then(|status| status.phase).as_deref(),
        Some("Terminating")
    );
    wait_for("namespace gone", Duration::from_secs(30), || async {
        Ok(namespaces.get_opt("doomed").await?.is_none().then_some(()))
    })
    .await?;
    assert!(configmaps.get_opt("cm").await?.is_none());
    assert!(secrets.get_opt("s").await?.is_none());
    assert!(deployments.get_opt("web").await?.is_none());
    Ok(())
}
