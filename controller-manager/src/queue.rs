//! A work queue with client-go's guarantees: a key is queued at most once, never processed by
//! two workers at the same time, re-queued if it was added while being processed, and retried
//! with exponential back-off after failures.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// First retry delay after a failure; doubles per consecutive failure.
const BASE_DELAY: Duration = Duration::from_millis(50);
/// Longest retry delay.
const MAX_DELAY: Duration = Duration::from_secs(120);

struct Inner<T> {
    queue: VecDeque<T>,
    queued: HashSet<T>,
    processing: HashSet<T>,
    dirty: HashSet<T>,
    failures: HashMap<T, u32>,
    shutdown: bool,
}

/// The queue.
pub struct WorkQueue<T> {
    inner: Mutex<Inner<T>>,
    notify: Notify,
}

impl<T: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<T> {
    /// An empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new(WorkQueue {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                failures: HashMap::new(),
                shutdown: false,
            }),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `key` unless it is already queued; a key being processed is queued again once
    /// its worker is done.
    pub fn add(&self, key: T) {
        let mut inner = self.lock();
        if inner.shutdown {
            return;
        }
        if inner.processing.contains(&key) {
            inner.dirty.insert(key);
            return;
        }
        if inner.queued.insert(key.clone()) {
            inner.queue.push_back(key);
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(queue) = queue.upgrade() {
                queue.add(key);
            }
        });
    }

    /// Queues `key` after a back-off that grows with its consecutive failures.
    pub fn add_rate_limited(self: &Arc<Self>, key: T) {
        let delay = {
            let mut inner = self.lock();
            let failures = inner.failures.entry(key.clone()).or_insert(0);
            *failures = failures.saturating_add(1);
            let exponent = (*failures - 1).min(20);
            BASE_DELAY.saturating_mul(1u32 << exponent).min(MAX_DELAY)
        };
        self.add_after(key, delay);
    }

    /// Clears the failure count of `key`.
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// The next key to process, or `None` after `shutdown`.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.shutdown {
                    return None;
                }
                if let Some(key) = inner.queue.pop_front() {
                    inner.queued.remove(&key);
                    inner.processing.insert(key.clone());
                    let more = !inner.queue.is_empty();
                    drop(inner);
                    if more {
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; re-queues it if it was added meanwhile.
    pub fn done(&self, key: &T) {
        let mut inner = self.lock();
        inner.processing.remove(key);
        if inner.dirty.remove(key) && inner.queued.insert(key.clone()) {
            inner.queue.push_back(key.clone());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Stops handing out keys.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.notify.notify_waiters();
    }

    /// Number of keys waiting.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// True when no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `workers` concurrent workers on `queue` until `token` is cancelled. The handler returns
/// `Ok(Some(delay))` to be called again for the key after `delay`, `Ok(None)` when done, and
/// an error to be retried with back-off.
pub async fn run_workers<T, F, Fut>(
    controller: &'static str,
    queue: Arc<WorkQueue<T>>,
    workers: usize,
    token: CancellationToken,
    handler: F,
) where
    T: Clone + Eq + Hash + Send + Sync + std::fmt::Display + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, Error>> + Send + 'static,
{
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let handler = handler.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(key) = queue.get().await {
                tracing::debug!(controller, object = %key, "sync");
                match handler(key.clone()).await {
                    Ok(again) => {
                        queue.forget(&key);
                        if let Some(delay) = again {
                            queue.add_after(key.clone(), delay);
                        }
                    }
                    Err(error) => {
                        if error.code() == Some(409) {
                            // Written from a stale cache: normal, the retry sees fresher data.
                            tracing::debug!(controller, object = %key, %error, "sync conflicted, will retry");
                        } else {
                            tracing::warn!(controller, object = %key, %error, "sync failed, will retry");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        }));
    }
    token.cancelled().await;
    queue.shutdown();
    for task in tasks {
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_requeues_dirty_keys() {
        let queue = WorkQueue::<String>::new();
        queue.add("a".into());
        queue.add("a".into());
        queue.add("b".into());
        assert_eq!(queue.len(), 2);
        let first = queue.get().await.unwrap();
        assert_eq!(first, "a");
        // Added while processing: not handed out, queued again when done.
        queue.add("a".into());
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.get().await.unwrap(), "b");
        queue.done(&first);
        assert_eq!(queue.get().await.unwrap(), "a");
        queue.shutdown();
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_exponentially() {
        let queue = WorkQueue::<u32>::new();
        queue.add_rate_limited(1);
        queue.add_rate_limited(1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        // The first retry (50ms) has fired; the second (100ms) only queues the same key again.
        assert_eq!(queue.len(), 1);
        queue.forget(&1);
        assert!(queue.lock().failures.is_empty());
    }
}
