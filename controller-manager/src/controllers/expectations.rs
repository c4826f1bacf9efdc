//! Expectations: what a controller has just written and waits to see in its cache, so it
//! never acts twice on a lagging cache (upstream's `ControllerExpectations`, level-based:
//! an expectation is met when the cache shows the created object or no longer shows the
//! deleted one, or after a timeout).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long an unmet expectation blocks a controller (upstream: 5 minutes).
pub const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

/// Per-owner pending creations (by object name) and deletions (by uid).
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Records that `owner` created objects named `creates` and deleted those with uids
    /// `deletes`.
    pub fn expect(&self, owner: &str, creates: Vec<String>, deletes: Vec<String>) {
        if creates.is_empty() && deletes.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = pending.entry(owner.to_string()).or_insert_with(|| Pending {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        entry.creates.extend(creates);
        entry.deletes.extend(deletes);
        entry.since = Instant::now();
    }

    /// True when the cache reflects every write of `owner`: `created_seen(name)` tells whether
    /// a created object is in the cache, `deleted_seen(uid)` whether a deleted one is gone
    /// (or being deleted).
    pub fn satisfied(
        &self,
        owner: &str,
        created_seen: impl Fn(&str) -> bool,
        deleted_seen: impl Fn(&str) -> bool,
    ) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(entry) = pending.get_mut(owner) else {
            return true;
        };
        entry.creates.retain(|name| !created_seen(name));
        entry.deletes.retain(|uid| !deleted_seen(uid));
        if (entry.creates.is_empty() && entry.deletes.is_empty()) || entry.since.elapsed() > EXPECTATIONS_TTL {
            pending.remove(owner);
            return true;
        }
        false
    }

    /// Drops everything expected for `owner` (it was deleted).
    pub fn forget(&self, owner: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn met_when_cache_catches_up_or_after_ttl() {
        let expectations = Expectations::default();
        assert!(expectations.satisfied("rs", |_| false, |_| false));
        expectations.expect("rs", vec!["a".into(), "b".into()], vec!["uid-c".into()]);
        assert!(!expectations.satisfied("rs", |name| name == "a", |_| true));
        assert!(!expectations.satisfied("rs", |_| false, |_| false));
        assert!(expectations.satisfied("rs", |name| name == "b", |_| false));
        expectations.expect("rs", vec!["d".into()], vec![]);
        tokio::time::advance(EXPECTATIONS_TTL + Duration::from_secs(1)).await;
        assert!(expectations.satisfied("rs", |_| false, |_| false));
    }
}
