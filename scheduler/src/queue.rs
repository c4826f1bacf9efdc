//! The scheduling queue (upstream's PriorityQueue): an active queue ordered by priority then
//! arrival, a back-off queue (1 s doubling to 10 s per failed attempt), and the unschedulable
//! pods, moved back when a cluster event one of their rejecting plugins cares about happens.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::framework::{ClusterEvent, PodInfo};

/// Upstream's `podInitialBackoffDuration` and `podMaxBackoffDuration` defaults.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often (upstream's
/// `podMaxInUnschedulablePodsDuration`).
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod waiting in (or popped from) the queue.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// Scheduling attempts so far (incremented on pop).
    pub attempts: u32,
    /// When the pod first entered the queue.
    pub initial_add: Instant,
    /// When it last entered the active queue (the tie-break after priority).
    pub timestamp: Instant,
    /// When its last attempt failed.
    pub last_failure: Option<Instant>,
    /// The plugins that rejected it last.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    /// The scheduling cycle it was popped in.
    pub cycle: u64,
}

impl QueuedPod {
    fn new(info: Arc<PodInfo>, now: Instant) -> Self {
        Self {
            info,
            attempts: 0,
            initial_add: now,
            timestamp: now,
            last_failure: None,
            unschedulable_plugins: BTreeSet::new(),
            cycle: 0,
        }
    }

    /// 1 s × 2^(attempts − 1), at most 10 s.
    pub fn backoff_duration(&self) -> Duration {
        let exponent = self.attempts.saturating_sub(1).min(16);
        INITIAL_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF)
    }

    fn backoff_expiry(&self) -> Option<Instant> {
        self.last_failure.map(|failed| failed + self.backoff_duration())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

struct Entry {
    pod: QueuedPod,
    location: Location,
    /// Bumped on every move, so that stale heap entries are skipped.
    generation: u64,
}

/// An active-queue heap entry: higher priority first, then earlier timestamp.
struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    key: String,
    generation: u64,
}

impl PartialEq for ActiveItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ActiveItem {}
impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ActiveItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.key.cmp(&self.key))
    }
}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, Entry>,
    /// Keys of the unschedulable pods (so that events need not scan every pod).
    unschedulable: HashSet<String>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, String, u64)>>,
    next_generation: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    closed: bool,
}

impl Inner {
    fn place(&mut self, key: &str, location: Location, now: Instant) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let Some(entry) = self.pods.get_mut(key) else {
            return;
        };
        if entry.location == Location::Unschedulable && location != Location::Unschedulable {
            self.unschedulable.remove(key);
        } else if location == Location::Unschedulable {
            self.unschedulable.insert(key.to_string());
        }
        entry.location = location;
        entry.generation = generation;
        match location {
            Location::Active => {
                entry.pod.timestamp = now;
                self.active.push(ActiveItem {
                    priority: entry.pod.info.priority,
                    timestamp: now,
                    key: key.to_string(),
                    generation,
                });
            }
            Location::Backoff => {
                let expiry = entry.pod.backoff_expiry().unwrap_or(now);
                self.backoff.push(Reverse((expiry, key.to_string(), generation)));
            }
            Location::Unschedulable | Location::InFlight => {}
        }
    }

    /// Active if the back-off is over, else the back-off queue.
    fn requeue(&mut self, key: &str, now: Instant) {
        let backing_off = self
            .pods
            .get(key)
            .and_then(|e| e.pod.backoff_expiry())
            .is_some_and(|expiry| expiry > now);
        self.place(
            key,
            if backing_off {
                Location::Backoff
            } else {
                Location::Active
            },
            now,
        );
    }

    fn remove(&mut self, key: &str) {
        self.pods.remove(key);
        self.unschedulable.remove(key);
    }

    fn is_current(&self, key: &str, generation: u64, location: Location) -> bool {
        self.pods
            .get(key)
            .is_some_and(|e| e.generation == generation && e.location == location)
    }
}

/// The queue; cheap to share behind an `Arc`.
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Plugin → events that may make the pods it rejected schedulable.
    events: HashMap<&'static str, Vec<ClusterEvent>>,
}

/// Whether an update changed more than status and bookkeeping metadata.
fn is_spec_update(old: &Pod, new: &Pod) -> bool {
    let strip = |pod: &Pod| {
        let mut pod = pod.clone();
        pod.status = None;
        pod.metadata.resource_version = None;
        pod.metadata.managed_fields = None;
        pod.metadata.generation = None;
        pod
    };
    strip(old) != strip(new)
}

impl SchedulingQueue {
    pub fn new(events: HashMap<&'static str, Vec<ClusterEvent>>) -> Self {
        Self {
            inner: Mutex::default(),
            notify: Notify::new(),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a pending pod, or updates it if already queued. An update that changes more than
    /// the status moves an unschedulable pod back to the active (or back-off) queue.
    pub fn add_or_update(&self, pod: Arc<Pod>) {
        let info = Arc::new(PodInfo::new(pod));
        let now = Instant::now();
        let mut inner = self.lock();
        let key = info.key.clone();
        match inner.pods.get_mut(&key) {
            None => {
                inner.pods.insert(
                    key.clone(),
                    Entry {
                        pod: QueuedPod::new(info, now),
                        location: Location::Active,
                        generation: 0,
                    },
                );
                inner.place(&key, Location::Active, now);
                drop(inner);
                self.notify.notify_one();
            }
            Some(entry) => {
                let changed = is_spec_update(&entry.pod.info.pod, &info.pod);
                entry.pod.info = info;
                let (location, timestamp) = (entry.location, entry.pod.timestamp);
                if changed && location == Location::Unschedulable {
                    inner.requeue(&key, now);
                    drop(inner);
                    self.notify.notify_one();
                } else if changed && location == Location::Active {
                    // Re-push so that the heap orders by the new priority.
                    inner.place(&key, Location::Active, timestamp);
                }
            }
        }
    }

    /// Forgets a pod (deleted, or bound by someone else).
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Waits for the next pod to schedule; `None` once closed.
    pub async fn pop(&self) -> Option<QueuedPod> {
        loop {
            {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                while let Some(item) = inner.active.pop() {
                    if !inner.is_current(&item.key, item.generation, Location::Active) {
                        continue;
                    }
                    inner.scheduling_cycle += 1;
                    let cycle = inner.scheduling_cycle;
                    inner.place(&item.key, Location::InFlight, Instant::now());
                    if let Some(entry) = inner.pods.get_mut(&item.key) {
                        entry.pod.attempts += 1;
                        entry.pod.cycle = cycle;
                        return Some(entry.pod.clone());
                    }
                }
            }
            self.notify.notified().await;
        }
    }

    /// The pod was scheduled (assumed): it leaves the queue.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        if inner.pods.get(key).is_some_and(|e| e.location == Location::InFlight) {
            inner.remove(key);
        }
    }

    /// The attempt failed: the pod waits among the unschedulable pods, or in back-off when a
    /// relevant move happened during its attempt or it failed with an error (no plugins).
    pub fn add_unschedulable(&self, pod: &QueuedPod, plugins: BTreeSet<&'static str>) {
        let now = Instant::now();
        let mut inner = self.lock();
        let move_request_cycle = inner.move_request_cycle;
        let Some(entry) = inner.pods.get_mut(&pod.info.key) else {
            return; // deleted meanwhile
        };
        if entry.location != Location::InFlight {
            return;
        }
        entry.pod.last_failure = Some(now);
        let to_backoff = plugins.is_empty() || move_request_cycle >= pod.cycle;
        entry.pod.unschedulable_plugins = plugins;
        let key = pod.info.key.clone();
        inner.place(
            &key,
            if to_backoff {
                Location::Backoff
            } else {
                Location::Unschedulable
            },
            now,
        );
    }

    /// A cluster event happened: unschedulable pods that one of their rejecting plugins
    /// registered the event for go back to the active (or back-off) queue.
    pub fn move_on_event(&self, event: ClusterEvent) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.move_request_cycle = inner.scheduling_cycle;
        if inner.unschedulable.is_empty() {
            return;
        }
        let keys: Vec<String> = inner
            .unschedulable
            .iter()
            .filter_map(|k| inner.pods.get(k).map(|e| (k, e)))
            .filter(|(_, e)| {
                e.pod.unschedulable_plugins.is_empty()
                    || e.pod
                        .unschedulable_plugins
                        .iter()
                        .any(|p| self.events.get(p).is_none_or(|events| events.contains(&event)))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let moved = !keys.is_empty();
        for key in keys {
            inner.requeue(&key, now);
        }
        drop(inner);
        if moved {
            tracing::debug!(event = event.label(), "moved unschedulable pods");
            self.notify.notify_one();
        }
    }

    /// Moves pods whose back-off is over to the active queue, and pods unschedulable for longer
    /// than [`MAX_IN_UNSCHEDULABLE`] to the active or back-off queue.
    pub fn flush(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut moved = false;
        while let Some(Reverse((expiry, key, generation))) = inner.backoff.peek().cloned() {
            if !inner.is_current(&key, generation, Location::Backoff) {
                inner.backoff.pop();
                continue;
            }
            if expiry > now {
                break;
            }
            inner.backoff.pop();
            inner.place(&key, Location::Active, now);
            moved = true;
        }
        let stale: Vec<String> = inner
            .pods
            .iter()
            .filter(|(_, e)| e.location == Location::Unschedulable)
            .filter(|(_, e)| {
                e.pod
                    .last_failure
                    .is_some_and(|t| now.duration_since(t) >= MAX_IN_UNSCHEDULABLE)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            inner.requeue(&key, now);
            moved = true;
        }
        drop(inner);
        if moved {
            self.notify.notify_one();
        }
    }

    /// Runs [`SchedulingQueue::flush`] every `period` until `shutdown`.
    pub async fn run_flusher(self: Arc<Self>, period: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let mut interval = tokio::time::interval(period);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => self.flush(),
            }
        }
    }

    /// Puts back a pod whose binding failed, in back-off (unless it was deleted or re-added).
    pub fn add_backoff(&self, mut pod: QueuedPod) {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.pods.contains_key(&pod.info.key) {
            return;
        }
        pod.last_failure = Some(now);
        let key = pod.info.key.clone();
        inner.pods.insert(
            key.clone(),
            Entry {
                pod,
                location: Location::Backoff,
                generation: 0,
            },
        );
        inner.place(&key, Location::Backoff, now);
    }

    /// Wakes `pop` with `None` from now on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// (active, backoff, unschedulable, in flight) counts, for logs and tests.
    pub fn lengths(&self) -> (usize, usize, usize, usize) {
        let inner = self.lock();
        let count = |location| inner.pods.values().filter(|e| e.location == location).count();
        (
            count(Location::Active),
            count(Location::Backoff),
            count(Location::Unschedulable),
            count(Location::InFlight),
        )
    }
}

#[cfg(test)]
mod tests;
