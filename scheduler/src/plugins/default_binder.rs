//! DefaultBinder: binds through `POST /api/v1/namespaces/{ns}/pods/{name}/binding`.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::framework::{BindPlugin, Code, Plugin, Status};

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    client: kube::Client,
}

impl DefaultBinder {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl BindPlugin for DefaultBinder {
    fn bind(&self, pod: Arc<Pod>, node: String) -> BoxFuture<'static, Status> {
        let client = self.client.clone();
        Box::pin(async move {
            let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
            let name = pod.metadata.name.clone().unwrap_or_default();
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace, "uid": pod.metadata.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let api: Api<Pod> = Api::namespaced(client, &namespace);
            match api
                .create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding)
                .await
            {
                Ok(_) => Status::success(),
                // Gone, or bound by someone else: nothing to retry.
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Status::new(
                    Code::UnschedulableAndUnresolvable,
                    format!("binding {namespace}/{name} to {node}: {}", status.message),
                ),
                Err(error) => Status::error(format!("binding {namespace}/{name} to {node}: {error}")),
            }
        })
    }
}
