//! The pod lifecycle event generator (upstream's generic PLEG): one node-wide relist of the
//! runtime's sandboxes and containers every [`RELIST_PERIOD`], compared with the previous one,
//! wakes the workers of the pods whose containers or sandbox changed (a container started,
//! exited or vanished, a sandbox holder died). Workers sleep between changes instead of each
//! reading the runtime's state on a timer, so an idle node costs one relist per period.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::start::parse_container_id;

/// How often the runtime is relisted: the longest a container exit goes unnoticed.
pub const RELIST_PERIOD: Duration = Duration::from_millis(500);

/// What one relist saw of one pod: its sandbox's state and its containers' states by id.
#[derive(Debug, Default, PartialEq, Eq)]
struct PodRecord {
    sandbox: Option<runtime::SandboxState>,
    containers: BTreeMap<String, runtime::ContainerState>,
}

type Snapshot = HashMap<String, PodRecord>;

/// Relists the runtime and wakes the workers whose pods changed.
#[derive(Default)]
pub struct Pleg {
    subscribers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Pleg {
    /// The wake-up of pod `uid`'s worker, notified whenever a relist finds the pod changed
    /// (a notification that arrives while the worker is busy is kept for its next wait).
    pub fn subscribe(&self, uid: &str) -> Arc<Notify> {
        self.lock().entry(uid.to_string()).or_default().clone()
    }

    /// Forgets pod `uid` (its worker has finished).
    pub fn unsubscribe(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Relists until `cancel`.
    pub async fn run(self: Arc<Self>, runtime: Arc<runtime::Runtime>, cancel: CancellationToken) {
        let mut previous = Snapshot::new();
        let mut ticks = tokio::time::interval(RELIST_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let rt = runtime.clone();
            let Ok(current) = tokio::task::spawn_blocking(move || relist(&rt)).await else {
                continue;
            };
            let subscribers = self.lock();
            for uid in changed(&previous, &current) {
                if let Some(wake) = subscribers.get(uid) {
                    wake.notify_one();
                }
            }
            drop(subscribers);
            previous = current;
        }
    }
}

/// The state of every sandbox and container on the node, by pod UID.
fn relist(runtime: &runtime::Runtime) -> Snapshot {
    let mut snapshot = Snapshot::new();
    for sandbox in runtime.list_sandboxes() {
        let state = runtime.sandbox_state(&sandbox.id).ok();
        snapshot.entry(sandbox.id).or_default().sandbox = state;
    }
    for (id, state) in runtime.list() {
        if let Some((uid, _, _)) = parse_container_id(&id) {
            snapshot
                .entry(uid.to_string())
                .or_default()
                .containers
                .insert(id, state);
        }
    }
    snapshot
}

/// The pods that appeared, vanished or differ between two relists.
fn changed<'a>(previous: &'a Snapshot, current: &'a Snapshot) -> impl Iterator<Item = &'a String> {
    let gone_or_changed = previous
        .iter()
        .filter(|(uid, record)| current.get(*uid) != Some(record))
        .map(|(uid, _)| uid);
    let appeared = current.keys().filter(|uid| !previous.contains_key(*uid));
    gone_or_changed.chain(appeared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(pid: u32) -> runtime::ContainerState {
        runtime::ContainerState::Running {
            pid,
            started_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    /// (pod UID, sandbox state, [(container id, state)]).
    type Pod<'a> = (
        &'a str,
        Option<runtime::SandboxState>,
        &'a [(&'a str, runtime::ContainerState)],
    );

    fn snapshot(pods: &[Pod<'_>]) -> Snapshot {
        pods.iter()
            .map(|(uid, sandbox, containers)| {
                let record = PodRecord {
                    sandbox: *sandbox,
                    containers: containers
                        .iter()
                        .map(|(id, state)| (id.to_string(), state.clone()))
                        .collect(),
                };
                (uid.to_string(), record)
            })
            .collect()
    }

    fn check(previous: &Snapshot, current: &Snapshot, expect: &[&str]) {
        let mut got: Vec<&str> = changed(previous, current).map(String::as_str).collect();
        got.sort();
        assert_eq!(got, expect);
    }

    #[test]
    fn only_pods_that_changed_are_woken() {
        let ready = Some(runtime::SandboxState::Ready);
        let exited = runtime::ContainerState::Exited {
            exit_code: 1,
            signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let before = snapshot(&[
            ("same", ready, &[("same_c_0", running(1))]),
            ("exits", ready, &[("exits_c_0", running(2))]),
            ("holder-dies", ready, &[]),
            ("removed", ready, &[("removed_c_0", exited.clone())]),
        ]);
        let after = snapshot(&[
            ("same", ready, &[("same_c_0", running(1))]),
            ("exits", ready, &[("exits_c_0", exited.clone())]),
            ("holder-dies", Some(runtime::SandboxState::NotReady), &[]),
            ("new", ready, &[]),
        ]);
        check(&before, &after, &["exits", "holder-dies", "new", "removed"]);
        check(&after, &after, &[]);
        check(&Snapshot::new(), &after, &["exits", "holder-dies", "new", "same"]);
    }
}
