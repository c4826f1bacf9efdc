//! The controllers and their registry, selectable with `--controllers`.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointutil;
pub mod expectations;
pub mod garbagecollector;
pub mod horizontalpodautoscaling;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod ownership;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod statefulset;
pub mod ttlafterfinished;
pub mod wiring;

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::Context;
use crate::error::Result;

/// A registered controller: its name and how to run it.
pub struct Descriptor {
    /// The name used in `--controllers`.
    pub name: &'static str,
    /// Off unless named explicitly.
    pub disabled_by_default: bool,
    /// Runs the controller until the context's token is cancelled.
    pub run: fn(Arc<Context>) -> BoxFuture<'static, Result<()>>,
}

/// Every controller, in start order.
pub const REGISTRY: &[Descriptor] = &[
    Descriptor {
        name: replicaset::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(replicaset::run(ctx)),
    },
    Descriptor {
        name: deployment::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(deployment::run(ctx)),
    },
    Descriptor {
        name: job::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(job::run(ctx)),
    },
    Descriptor {
        name: daemonset::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(daemonset::run(ctx)),
    },
    Descriptor {
        name: statefulset::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(statefulset::run(ctx)),
    },
    Descriptor {
        name: cronjob::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(cronjob::run(ctx)),
    },
    Descriptor {
        name: resourcequota::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(resourcequota::run(ctx)),
    },
    Descriptor {
        name: horizontalpodautoscaling::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(horizontalpodautoscaling::run(ctx)),
    },
    Descriptor {
        name: ttlafterfinished::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(ttlafterfinished::run(ctx)),
    },
    Descriptor {
        name: serviceaccount::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(serviceaccount::run(ctx)),
    },
    Descriptor {
        name: endpointslice::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(endpointslice::run(ctx)),
    },
    Descriptor {
        name: endpoints::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(endpoints::run(ctx)),
    },
    Descriptor {
        name: namespace::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(namespace::run(ctx)),
    },
    Descriptor {
        name: garbagecollector::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(garbagecollector::run(ctx)),
    },
    Descriptor {
        name: nodeipam::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(nodeipam::run(ctx)),
    },
    Descriptor {
        name: nodelifecycle::NAME,
        disabled_by_default: false,
        run: |ctx| Box::pin(nodelifecycle::run(ctx)),
    },
];

/// The names of every registered controller.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|descriptor| descriptor.name).collect()
}

/// The names of the controllers off by default.
pub fn disabled_by_default() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|descriptor| descriptor.disabled_by_default)
        .map(|descriptor| descriptor.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_non_empty() {
        let names = names();
        for (index, name) in names.iter().enumerate() {
            assert!(!name.is_empty());
            assert!(!names[index + 1..].contains(name), "{name} registered twice");
        }
    }
}
