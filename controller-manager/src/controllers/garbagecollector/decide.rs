//! The garbage collector's pure decision for one object, as upstream's `attemptToDeleteItem`,
//! `processDeletingDependentsItem` and `orphanDependents`: orphan its dependents, wait for or
//! push its foreground dependents, or judge it by its owners (solid, dangling, or waiting for
//! their dependents to go).

use super::graph::{FOREGROUND, Node, ORPHAN};

/// The state of one owner of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not going away through its dependents: keeps the object alive.
    Solid,
    /// Gone (or replaced by an object of the same name with another uid).
    Dangling,
    /// Being deleted in the foreground: waits for its dependents to go.
    Waiting,
}

/// The propagation policy of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Remove the references to these owner uids from `dependent` (a dependent node).
    RemoveOwners { dependent: Box<Node>, owners: Vec<String> },
    /// Delete the object.
    Delete(Policy),
    /// Remove this finalizer from the object.
    RemoveFinalizer(&'static str),
    /// Look at these dependents (they must go before their foreground-deleted owner).
    Enqueue(Vec<String>),
}

/// Decides for `node` being deleted with a collector finalizer, given its dependents. `None`
/// when it carries none of the collector's finalizers.
pub fn decide_deleting(node: &Node, dependents: &[Node]) -> Option<Vec<Action>> {
    if !node.deleting {
        return None;
    }
    if node.has_finalizer(ORPHAN) {
        let mut actions: Vec<Action> = dependents
            .iter()
            .map(|dependent| Action::RemoveOwners {
                dependent: Box::new(dependent.clone()),
                owners: vec![node.uid.clone()],
            })
            .collect();
        actions.push(Action::RemoveFinalizer(ORPHAN));
        return Some(actions);
    }
    if node.has_finalizer(FOREGROUND) {
        let blocking = dependents.iter().any(|dependent| {
            dependent
                .owners
                .iter()
                .any(|owner| owner.uid == node.uid && owner.block_owner_deletion == Some(true))
        });
        if !blocking {
            // Dependents that do not block are left to background collection once we are gone.
            return Some(vec![Action::RemoveFinalizer(FOREGROUND)]);
        }
        let pending: Vec<String> = dependents
            .iter()
            .filter(|dependent| !dependent.deleting || dependent.deleting_dependents())
            .map(|dependent| dependent.uid.clone())
            .collect();
        return Some(if pending.is_empty() {
            Vec::new()
        } else {
            vec![Action::Enqueue(pending)]
        });
    }
    Some(Vec::new())
}

/// Decides for an object not being deleted, given the state of each of its owners (by uid,
/// in `node.owners` order) and whether it has dependents itself.
pub fn decide_dependent(node: &Node, owners: &[(String, OwnerState)], has_dependents: bool) -> Vec<Action> {
    if node.deleting || owners.is_empty() {
        return Vec::new();
    }
    let of = |state: OwnerState| -> Vec<String> {
        owners
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(uid, _)| uid.clone())
            .collect()
    };
    let (solid, dangling, waiting) = (of(OwnerState::Solid), of(OwnerState::Dangling), of(OwnerState::Waiting));
    if !solid.is_empty() {
        let mut remove = dangling;
        remove.extend(waiting);
        if remove.is_empty() {
            return Vec::new();
        }
        return vec![Action::RemoveOwners {
            dependent: Box::new(node.clone()),
            owners: remove,
        }];
    }
    if !waiting.is_empty() && has_dependents {
        return vec![Action::Delete(Policy::Foreground)];
    }
    let policy = if node.has_finalizer(ORPHAN) {
        Policy::Orphan
    } else if node.has_finalizer(FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    };
    vec![Action::Delete(policy)]
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::{node, owner_ref};
    use super::*;

    fn deleting(uid: &str, finalizer: &str) -> Node {
        let mut owner = node(uid, &[]);
        owner.deleting = true;
        owner.finalizers = vec![finalizer.into()];
        owner
    }

    #[test]
    fn dependents_are_judged_by_their_owners() {
        use OwnerState::*;
        let pod = node("pod", &["a", "b"]);
        let s = |uid: &str, state| (uid.to_string(), state);
        type Case = (&'static str, Vec<(String, OwnerState)>, bool, Vec<Action>);
        let cases: Vec<Case> = vec![
            (
                "all owners solid: kept",
                vec![s("a", Solid), s("b", Solid)],
                false,
                vec![],
            ),
            (
                "one solid, one dangling: the dangling reference goes",
                vec![s("a", Solid), s("b", Dangling)],
                false,
                vec![Action::RemoveOwners {
                    dependent: Box::new(pod.clone()),
                    owners: vec!["b".into()],
                }],
            ),
            (
                "one solid, one waiting: the waiting reference goes",
                vec![s("a", Waiting), s("b", Solid)],
                false,
                vec![Action::RemoveOwners {
                    dependent: Box::new(pod.clone()),
                    owners: vec!["a".into()],
                }],
            ),
            (
                "all dangling: deleted in the background",
                vec![s("a", Dangling), s("b", Dangling)],
                false,
                vec![Action::Delete(Policy::Background)],
            ),
            (
                "waiting owner, own dependents: deleted in the foreground",
                vec![s("a", Waiting), s("b", Dangling)],
                true,
                vec![Action::Delete(Policy::Foreground)],
            ),
            (
                "waiting owner, no dependents: deleted in the background",
                vec![s("a", Waiting)],
                false,
                vec![Action::Delete(Policy::Background)],
            ),
        ];
        for (name, owners, has_dependents, expected) in cases {
            assert_eq!(decide_dependent(&pod, &owners, has_dependents), expected, "{name}");
        }
        let mut orphaning = node("rs", &["d"]);
        orphaning.finalizers = vec![ORPHAN.into()];
        assert_eq!(
            decide_dependent(&orphaning, &[("d".into(), Dangling)], true),
            vec![Action::Delete(Policy::Orphan)]
        );
        assert!(decide_dependent(&node("free", &[]), &[], true).is_empty());
    }

    #[test]
    fn owners_being_deleted_orphan_or_wait() {
        let pods = vec![node("p1", &["rs"]), node("p2", &["rs"])];
        let orphan = decide_deleting(&deleting("rs", ORPHAN), &pods).expect("ours");
        assert_eq!(orphan.len(), 3);
        assert_eq!(orphan[2], Action::RemoveFinalizer(ORPHAN));

        let foreground = deleting("rs", FOREGROUND);
        let mut gone_soon = node("p2", &["rs"]);
        gone_soon.deleting = true;
        assert_eq!(
            decide_deleting(&foreground, &[node("p1", &["rs"]), gone_soon.clone()]),
            Some(vec![Action::Enqueue(vec!["p1".into()])])
        );
        // Only dependents on their way out: wait.
        assert_eq!(decide_deleting(&foreground, &[gone_soon]), Some(vec![]));
        // Non-blocking dependents do not hold the owner back.
        let mut loose = node("p3", &[]);
        loose.owners = vec![owner_ref("rs", false)];
        assert_eq!(
            decide_deleting(&foreground, &[loose]),
            Some(vec![Action::RemoveFinalizer(FOREGROUND)])
        );
        assert_eq!(decide_deleting(&node("rs", &[]), &pods), None);
    }
}
