//! `kubectl apply --prune`: after applying, deletes the objects of the pruned kinds that
//! match the selector, were made by `apply` (they carry the last-applied annotation) and
//! were not in this apply, in the namespaces applied to (and cluster-wide for
//! cluster-scoped kinds); upstream's default allowlist or `--prune-allowlist`.

use std::collections::BTreeSet;

use http::Method;
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::cmd::apply::{DryRun, LAST_APPLIED};
use crate::cmd::select::Printer;
use crate::discovery::{Discovery, Resource};
use crate::error::Error;
use crate::request;

/// Upstream's default allowlist: (group, version, kind, namespaced), namespaced first.
const DEFAULT: &[(&str, &str, &str, bool)] = &[
    ("", "v1", "ConfigMap", true),
    ("", "v1", "Endpoints", true),
    ("", "v1", "PersistentVolumeClaim", true),
    ("", "v1", "Pod", true),
    ("", "v1", "ReplicationController", true),
    ("", "v1", "Secret", true),
    ("", "v1", "Service", true),
    ("batch", "v1", "Job", true),
    ("batch", "v1", "CronJob", true),
    ("networking.k8s.io", "v1", "Ingress", true),
    ("apps", "v1", "DaemonSet", true),
    ("apps", "v1", "Deployment", true),
    ("apps", "v1", "ReplicaSet", true),
    ("apps", "v1", "StatefulSet", true),
    ("", "v1", "Namespace", false),
    ("", "v1", "PersistentVolume", false),
];

/// What the apply visited: the uids of the applied objects and their namespaces.
#[derive(Debug, Default)]
pub struct Visited {
    pub uids: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
}

impl Visited {
    /// Records one applied object.
    pub fn add(&mut self, resource: &Resource, object: &Value) {
        if let Some(uid) = object["metadata"]["uid"].as_str() {
            self.uids.insert(uid.to_string());
        }
        if resource.namespaced
            && let Some(ns) = object["metadata"]["namespace"].as_str()
        {
            self.namespaces.insert(ns.to_string());
        }
    }
}

/// Checks the prune flags before anything is applied (upstream's `Complete`/`Validate`):
/// `--all` and `-l` exclude each other, pruning needs one of them, and every allowlist
/// entry is `group/version/Kind` of a served kind.
pub fn check(
    discovery: &Discovery,
    prune: bool,
    all: bool,
    selector: Option<&str>,
    allowlist: &[String],
) -> Result<(), Error> {
    for entry in allowlist {
        let parts: Vec<&str> = entry.split('/').collect();
        let [group, version, kind] = parts.as_slice() else {
            return Err(Error::Usage(format!(
                "invalid GroupVersionKind format: {entry}, please follow <group/version/kind>"
            )));
        };
        let group = if *group == "core" { "" } else { group };
        lookup(discovery, group, version, kind)?;
    }
    if all && selector.is_some() {
        return Err(Error::Usage("cannot set --all and --selector at the same time".into()));
    }
    if prune && !all && selector.is_none() {
        return Err(Error::Usage(
            "all resources selected for prune without explicitly passing --all. To prune all resources, pass the --all flag. If you did not mean to prune all resources, specify a label selector".into(),
        ));
    }
    Ok(())
}

fn lookup<'a>(discovery: &'a Discovery, group: &str, version: &str, kind: &str) -> Result<&'a Resource, Error> {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    discovery
        .resources()
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .ok_or_else(|| Error::Message(format!("no matches for kind \"{kind}\" in version \"{api_version}\"")))
}

/// Prunes after an apply.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: &mut Context,
    discovery: &Discovery,
    visited: &Visited,
    selector: Option<&str>,
    allowlist: &[String],
    dry_run: DryRun,
    printer: &mut Printer,
) -> Result<(), Error> {
    let mut kinds = Vec::new();
    if allowlist.is_empty() {
        if ctx.connection().await?.namespace_explicit {
            ctx.err(&crate::printer::klog_warning(
                "prune.go:71",
                "Deprecated: kubectl apply will no longer prune non-namespaced resources by default when used with the --namespace flag in a future release. To preserve the current behaviour, list the resources you want to target explicitly in the --prune-allowlist flag.",
            ));
        }
        for (group, version, kind, namespaced) in DEFAULT {
            let resource = lookup(discovery, group, version, kind).map_err(|e| {
                Error::Message(format!(
                    "error retrieving RESTMappings to prune: invalid resource {group}/{version}, Kind={kind}, Namespaced={namespaced}: {e}"
                ))
            })?;
            kinds.push(resource.clone());
        }
    } else {
        for entry in allowlist {
            let parts: Vec<&str> = entry.split('/').collect();
            let group = if parts[0] == "core" { "" } else { parts[0] };
            kinds.push(lookup(discovery, group, parts[1], parts[2])?.clone());
        }
    }
    let (namespaced, cluster): (Vec<Resource>, Vec<Resource>) = kinds.into_iter().partition(|r| r.namespaced);
    let client = ctx.client().await?;
    let mut scopes: Vec<(Option<String>, Resource)> = Vec::new();
    for ns in &visited.namespaces {
        scopes.extend(namespaced.iter().map(|r| (Some(ns.clone()), r.clone())));
    }
    scopes.extend(cluster.into_iter().map(|r| (None, r)));
    for (ns, resource) in scopes {
        let url = request::with_query(
            &resource.collection_url(ns.as_deref()),
            &[("labelSelector", selector.unwrap_or_default())],
        );
        let list = request::get(&client, &url, "application/json").await?;
        for mut item in list["items"].as_array().cloned().unwrap_or_default() {
            if item["metadata"]["annotations"].get(LAST_APPLIED).is_none() {
                continue;
            }
            if item["metadata"]["uid"]
                .as_str()
                .is_some_and(|uid| visited.uids.contains(uid))
            {
                continue;
            }
            let name = item["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if dry_run != DryRun::Client {
                let mut options =
                    json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
                if dry_run == DryRun::Server {
                    options["dryRun"] = json!(["All"]);
                }
                let url = resource.object_url(ns.as_deref(), &name);
                let body = serde_json::to_vec(&options)?;
                request::send(
                    &client,
                    Method::DELETE,
                    &url,
                    "application/json",
                    Some("application/json"),
                    body,
                )
                .await?;
            }
            item["apiVersion"] = json!(resource.api_version());
            item["kind"] = json!(resource.kind);
            printer.print(ctx, Some(discovery), &resource, &item, "pruned")?;
        }
    }
    Ok(())
}
