//! API discovery for the controllers that act on every resource (namespace deletion, the
//! garbage collector): the served resources in their preferred versions, through aggregated
//! discovery (two requests) with a fall-back to the per-group documents.

use kube::discovery::{ApiCapabilities, ApiResource, Discovery};

use crate::error::{Error, Result};

/// One served resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub resource: ApiResource,
    pub capabilities: ApiCapabilities,
}

impl Resource {
    /// True when the resource supports `verb` (`list`, `delete`, `deletecollection`, ...).
    pub fn supports(&self, verb: &str) -> bool {
        self.capabilities.supports_operation(verb)
    }

    /// True when the resource is namespaced.
    pub fn namespaced(&self) -> bool {
        self.capabilities.scope == kube::discovery::Scope::Namespaced
    }

    /// `plural.group` (`pods` for core), as upstream prints a GroupResource.
    pub fn group_resource(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

/// Every served resource (no subresources), in its group's preferred version.
pub async fn resources(client: &kube::Client) -> Result<Vec<Resource>> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(discovery) => discovery,
        Err(error) => {
            tracing::debug!(%error, "aggregated discovery failed, using per-group discovery");
            Discovery::new(client.clone()).run().await.map_err(Error::Discovery)?
        }
    };
    Ok(discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .map(|(resource, capabilities)| Resource { resource, capabilities })
        .collect())
}
