//! A DaemonSet's or StatefulSet's template history as ControllerRevisions, pure (upstream's
//! `constructHistory` and `cleanupHistory`): each distinct template is one revision named
//! `<owner>-<hash>` holding `{"spec":{"template":{…,"$patch":"replace"}}}` (what `kubectl rollout
//! undo` applies), labelled `controller-revision-hash`. The current template's revision gets
//! the highest revision number; DaemonSet pods carry that revision's hash, StatefulSet pods
//! its name, so going back to an old template reuses its revision and its pods count as
//! updated.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use crate::controllers::deployment::util::template_hash;
use crate::util;

/// The label carrying the template hash, on revisions and pods.
pub const REVISION_HASH: &str = "controller-revision-hash";

/// Upstream's default `revisionHistoryLimit`.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// What to do about the current revision.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// A revision holds the current template; raise its revision number to `bump_to` if set.
    Existing {
        name: String,
        hash: String,
        bump_to: Option<i64>,
    },
    /// No revision holds it: create this one.
    Create(Box<ControllerRevision>),
}

impl Current {
    /// The name of the current revision.
    pub fn name(&self) -> String {
        match self {
            Current::Existing { name, .. } => name.clone(),
            Current::Create(revision) => revision.metadata.name.clone().unwrap_or_default(),
        }
    }

    /// The hash pods of the current template carry.
    pub fn hash(&self) -> String {
        match self {
            Current::Existing { hash, .. } => hash.clone(),
            Current::Create(revision) => label_hash(revision).unwrap_or_default(),
        }
    }
}

/// The history plan.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPlan {
    pub current: Current,
    /// Old revisions beyond `revisionHistoryLimit` that no live pod uses, to delete.
    pub delete: Vec<String>,
}

/// What a history belongs to: a DaemonSet or a StatefulSet, seen through its template.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub uid: &'a str,
    pub template: &'a PodTemplateSpec,
    pub collision_count: Option<i32>,
    pub history_limit: Option<i32>,
    /// The controller reference revisions get.
    pub reference: OwnerReference,
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Owner<'a> {
    /// A DaemonSet as a history owner.
    pub fn daemonset(ds: &'a DaemonSet) -> Self {
        Owner {
            name: ds.metadata.name.as_deref().unwrap_or_default(),
            namespace: ds.metadata.namespace.as_deref(),
            uid: ds.metadata.uid.as_deref().unwrap_or_default(),
            template: &ds.spec.template,
            collision_count: ds.status.as_ref().and_then(|status| status.collision_count),
            history_limit: ds.spec.revision_history_limit,
            reference: util::controller_ref(ds),
            annotations: ds.metadata.annotations.as_ref(),
        }
    }
}

/// The template hash (with the collision count).
pub fn hash(owner: &Owner<'_>) -> String {
    template_hash(owner.template, owner.collision_count)
}

/// The revision data for the current template.
pub fn revision_data(owner: &Owner<'_>) -> Value {
    let mut template = normalize(serde_json::to_value(owner.template).unwrap_or_default());
    if let Value::Object(map) = &mut template {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// True when `revision` holds the current template of `owner`.
pub fn matches(owner: &Owner<'_>, revision: &ControllerRevision) -> bool {
    normalize(revision.data.0.clone()) == revision_data(owner)
}

/// The template a revision holds, if its data can be read.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.0.get("spec")?.get("template")?.clone();
    if let Value::Object(map) = &mut template {
        map.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// The revisions `owner` controls.
pub fn owned(owner: &Owner<'_>, revisions: &[Arc<ControllerRevision>]) -> Vec<Arc<ControllerRevision>> {
    revisions
        .iter()
        .filter(|revision| revision.metadata.namespace.as_deref() == owner.namespace)
        .filter(|revision| util::controller_of(&revision.metadata).is_some_and(|reference| reference.uid == owner.uid))
        .cloned()
        .collect()
}

/// Plans the history of `owner` given the revisions it controls; `in_use` tells which old
/// revisions live pods (or the status) still refer to.
pub fn plan(
    owner: &Owner<'_>,
    revisions: &[Arc<ControllerRevision>],
    in_use: impl Fn(&ControllerRevision) -> bool,
) -> HistoryPlan {
    let (mut current, mut old): (Vec<_>, Vec<_>) =
        revisions.iter().cloned().partition(|revision| matches(owner, revision));
    current.sort_by_key(|revision| revision.revision.unwrap_or(0));
    // Duplicates of the current template (upstream dedups them): keep the newest.
    let kept = current.pop();
    old.extend(current);
    let next = old.iter().filter_map(|revision| revision.revision).max().unwrap_or(0) + 1;
    let current = match kept {
        Some(revision) => Current::Existing {
            name: revision.metadata.name.clone().unwrap_or_default(),
            hash: label_hash(&revision).unwrap_or_else(|| hash(owner)),
            bump_to: (revision.revision.unwrap_or(0) < next).then_some(next),
        },
        None => Current::Create(Box::new(new_revision(owner, next))),
    };
    let current_hash = current.hash();
    let limit = owner.history_limit.unwrap_or(DEFAULT_HISTORY_LIMIT).max(0) as usize;
    let mut delete = Vec::new();
    if old.len() > limit {
        let mut excess = old.len() - limit;
        old.sort_by_key(|revision| revision.revision.unwrap_or(0));
        for revision in &old {
            if excess == 0 {
                break;
            }
            let used = label_hash(revision).is_some_and(|hash| hash == current_hash) || in_use(revision);
            if !used {
                delete.push(revision.metadata.name.clone().unwrap_or_default());
                excess -= 1;
            }
        }
    }
    HistoryPlan { current, delete }
}

/// The revision to create for the current template of `owner`, numbered `revision`.
pub fn new_revision(owner: &Owner<'_>, revision: i64) -> ControllerRevision {
    let hash = hash(owner);
    let mut labels: BTreeMap<String, String> = owner
        .template
        .metadata
        .as_ref()
        .and_then(|meta| meta.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", owner.name)),
            namespace: owner.namespace.map(str::to_string),
            labels: Some(labels),
            annotations: owner.annotations.cloned(),
            owner_references: Some(vec![owner.reference.clone()]),
            ..Default::default()
        },
        data: RawExtension(revision_data(owner)),
        revision: Some(revision),
    }
}

/// The `controller-revision-hash` label of a revision.
pub fn label_hash(revision: &ControllerRevision) -> Option<String> {
    revision.metadata.labels.as_ref()?.get(REVISION_HASH).cloned()
}

/// Drops nulls, empty objects and empty arrays, recursively, so a template read back from
/// the API compares equal to the one that was written.
fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, normalize(value)))
                .filter(|(_, value)| !is_empty(value))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn ds(image: &str, limit: Option<i32>) -> DaemonSet {
        let mut ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "ns", "uid": "uid-agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "c", "image": image}]},
                },
            },
        }))
        .expect("daemonset");
        ds.spec.revision_history_limit = limit;
        ds
    }

    fn revision_of(image: &str, number: i64) -> Arc<ControllerRevision> {
        Arc::new(new_revision(&Owner::daemonset(&ds(image, None)), number))
    }

    fn plan_for(ds: &DaemonSet, revisions: &[Arc<ControllerRevision>], live: &HashSet<String>) -> HistoryPlan {
        plan(&Owner::daemonset(ds), revisions, |revision| {
            label_hash(revision).is_some_and(|hash| live.contains(&hash))
        })
    }

    fn names(plan: &HistoryPlan) -> Vec<String> {
        plan.delete.clone()
    }

    #[test]
    fn first_revision_is_created_with_hash_label_and_owner() {
        let ds = ds("a", None);
        let owner = Owner::daemonset(&ds);
        let plan = plan_for(&ds, &[], &HashSet::new());
        let Current::Create(revision) = &plan.current else {
            panic!("expected a creation, got {plan:?}");
        };
        assert_eq!(revision.revision, Some(1));
        assert_eq!(plan.current.hash(), hash(&owner));
        assert_eq!(revision.metadata.name, Some(format!("agent-{}", hash(&owner))));
        assert!(matches(&owner, revision));
        assert_eq!(template_of(revision).as_ref(), Some(&ds.spec.template));
        assert_eq!(revision.data.0["spec"]["template"]["$patch"], json!("replace"));
    }

    #[test]
    fn history_table() {
        let live = |hashes: &[&str]| hashes.iter().map(|h| h.to_string()).collect::<HashSet<_>>();
        let hash_of = |image: &str| hash(&Owner::daemonset(&ds(image, None)));
        // (name, ds, existing revisions, live pod hashes, want current, want deleted)
        type Case = (
            &'static str,
            DaemonSet,
            Vec<Arc<ControllerRevision>>,
            HashSet<String>,
            Current,
            Vec<String>,
        );
        let cases: Vec<Case> = vec![
            (
                "current is newest: nothing to do",
                ds("b", None),
                vec![revision_of("a", 1), revision_of("b", 2)],
                live(&[]),
                Current::Existing {
                    name: format!("agent-{}", hash_of("b")),
                    hash: hash_of("b"),
                    bump_to: None,
                },
                vec![],
            ),
            (
                "rollback to an old template bumps its revision",
                ds("a", None),
                vec![revision_of("a", 1), revision_of("b", 2)],
                live(&[]),
                Current::Existing {
                    name: format!("agent-{}", hash_of("a")),
                    hash: hash_of("a"),
                    bump_to: Some(3),
                },
                vec![],
            ),
            (
                "limit 1: oldest unused revisions go, used ones stay",
                ds("d", Some(1)),
                vec![
                    revision_of("a", 1),
                    revision_of("b", 2),
                    revision_of("c", 3),
                    revision_of("d", 4),
                ],
                live(&[&hash_of("a")]),
                Current::Existing {
                    name: format!("agent-{}", hash_of("d")),
                    hash: hash_of("d"),
                    bump_to: None,
                },
                vec![format!("agent-{}", hash_of("b")), format!("agent-{}", hash_of("c"))],
            ),
        ];
        for (name, ds, revisions, live, want_current, want_deleted) in cases {
            let plan = plan_for(&ds, &revisions, &live);
            assert_eq!(plan.current, want_current, "{name}");
            assert_eq!(names(&plan), want_deleted, "{name}");
        }
    }

    #[test]
    fn new_template_gets_next_revision_number() {
        let plan = plan_for(
            &ds("c", None),
            &[revision_of("a", 1), revision_of("b", 5)],
            &HashSet::new(),
        );
        match plan.current {
            Current::Create(revision) => assert_eq!(revision.revision, Some(6)),
            other => panic!("expected a creation, got {other:?}"),
        }
    }

    #[test]
    fn data_read_back_with_empty_fields_still_matches() {
        let ds = ds("a", None);
        let owner = Owner::daemonset(&ds);
        let mut data = revision_data(&owner);
        data["spec"]["template"]["spec"]["volumes"] = json!([]);
        data["spec"]["template"]["metadata"]["annotations"] = json!({});
        let revision = ControllerRevision {
            data: RawExtension(data),
            ..new_revision(&owner, 1)
        };
        assert!(matches(&owner, &revision));
    }
}
