//! The proxier: remembers what it last applied and turns a fresh [`RuleSet`] into either a
//! partial `--noflush` restore of the changed chains or a full resync of the tables.
//!
//! A full sync (start, after a failure, every `full_sync_period`) reads `iptables-save` and
//! compares it chain by chain with the desired rules ([`plan_resync`]). Since partial syncs
//! keep the tables exact, this normally finds nothing or a few drifted chains, and restores
//! only those with `--noflush`. The whole tables are restored in flush mode only when none of
//! our chains exist yet (a fresh node), or when the drift is large.
//!
//! Why large restores are flush-mode: `iptables-nft-restore --noflush` (1.8.9) keeps the
//! chains named in its input in a sorted linked list (`cache_chain_list_insert`), so a
//! `--noflush` input that names all of 30 000 chains costs O(chains²) in userspace — about
//! 15 s at 5 000 services and minutes at 10 000. Such a sync therefore keeps every rule of
//! `iptables-save` that is not ours and restores nat and filter whole (flush mode, one
//! transaction), which scales linearly. Partial syncs name only the changed chains, and thanks
//! to the sharded dispatch chains of [`crate::rules`] a one-service change names a handful.

use std::time::{Duration, Instant};

use crate::iptables::{Backend, IptablesError, RestoreMode, ResyncPlan, plan_resync};
use crate::rules::{RuleSet, render_diff};

/// What one sync did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// Restored the whole nat and filter tables.
    Full,
    /// A full resync found our chains in place and rewrote only the `repaired` ones that
    /// differed from the desired rules (0: the tables were exact).
    Resync { repaired: usize },
    /// Restored only the changed chains (`chains` of them were named).
    Partial { chains: usize },
    /// Nothing changed since the last sync.
    Unchanged,
}

/// Applies rule sets through a [`Backend`].
pub struct Proxier<B> {
    backend: B,
    applied: Option<RuleSet>,
    last_full: Option<Instant>,
    full_sync_period: Duration,
}

impl<B: Backend> Proxier<B> {
    /// A proxier whose first sync is full, and which resyncs fully every `full_sync_period`.
    pub fn new(backend: B, full_sync_period: Duration) -> Self {
        Proxier {
            backend,
            applied: None,
            last_full: None,
            full_sync_period,
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Forces the next sync to be full.
    pub fn request_full_sync(&mut self) {
        self.applied = None;
    }

    /// Whether the next sync will be full.
    pub fn needs_full_sync(&self) -> bool {
        self.applied.is_none() || self.last_full.is_none_or(|at| at.elapsed() >= self.full_sync_period)
    }

    /// Brings iptables to `desired`. On failure the next sync is a full one.
    pub async fn sync(&mut self, desired: RuleSet) -> Result<SyncKind, IptablesError> {
        let result = self.try_sync(desired).await;
        if result.is_err() {
            self.applied = None;
        }
        result
    }

    async fn try_sync(&mut self, desired: RuleSet) -> Result<SyncKind, IptablesError> {
        if self.needs_full_sync() {
            let saved = self.backend.save().await?;
            let kind = match plan_resync(&saved, &desired) {
                ResyncPlan::Flush(input) => {
                    self.backend.restore(input, RestoreMode::Flush).await?;
                    SyncKind::Full
                }
                ResyncPlan::Repair { input, chains } => {
                    self.backend.restore(input, RestoreMode::NoFlush).await?;
                    SyncKind::Resync { repaired: chains.len() }
                }
                ResyncPlan::InSync => SyncKind::Resync { repaired: 0 },
            };
            self.applied = Some(desired);
            self.last_full = Some(Instant::now());
            return Ok(kind);
        }
        let Some(applied) = self.applied.as_ref() else {
            return Ok(SyncKind::Unchanged);
        };
        let Some(input) = render_diff(applied, &desired) else {
            return Ok(SyncKind::Unchanged);
        };
        let chains = input.lines().filter(|l| l.starts_with(':')).count();
        self.backend.restore(input, RestoreMode::NoFlush).await?;
        drop_later(self.applied.replace(desired));
        Ok(SyncKind::Partial { chains })
    }
}

/// Frees a replaced rule set (about 100 000 strings at 10 000 services, several
/// milliseconds) on a blocking thread when there is a runtime, so that a sync returns once
/// the kernel has the change.
pub(crate) fn drop_later<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iptables::FakeBackend;

    fn rules(extra: &[(&str, &str)]) -> RuleSet {
        let mut set = RuleSet::default();
        set.nat.insert("KUBE-SERVICES".into(), vec!["-j KUBE-NODEPORTS".into()]);
        for (chain, rule) in extra {
            set.nat.entry(chain.to_string()).or_default().push(rule.to_string());
        }
        set
    }

    #[tokio::test]
    async fn first_sync_is_full_then_partial_then_unchanged() {
        let fake = FakeBackend::default();
        let mut proxier = Proxier::new(fake.clone(), Duration::from_secs(3600));
        assert_eq!(proxier.sync(rules(&[])).await.ok(), Some(SyncKind::Full));
        let calls = fake.take_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, RestoreMode::Flush);

        let next = rules(&[("KUBE-SVC-A", "-j KUBE-SEP-A")]);
        assert_eq!(
            proxier.sync(next.clone()).await.ok(),
            Some(SyncKind::Partial { chains: 1 })
        );
        assert_eq!(
            fake.take_calls(),
            vec![(
                RestoreMode::NoFlush,
                "*nat\n:KUBE-SVC-A - [0:0]\n-A KUBE-SVC-A -j KUBE-SEP-A\nCOMMIT\n".to_string()
            )]
        );
        assert_eq!(proxier.sync(next).await.ok(), Some(SyncKind::Unchanged));
        assert!(fake.take_calls().is_empty());
    }

    #[tokio::test]
    async fn resync_over_applied_tables_restores_only_drift() {
        let fake = FakeBackend::default();
        let mut proxier = Proxier::new(fake.clone(), Duration::from_secs(3600));
        let desired = rules(&[("KUBE-SVC-A", "-j RETURN")]);
        assert_eq!(proxier.sync(desired.clone()).await.ok(), Some(SyncKind::Full));
        // The flush-mode input reads back like `iptables-save` output of the same tables.
        let applied = fake.take_calls().remove(0).1;
        if let Ok(mut saved) = fake.saved.lock() {
            saved.clone_from(&applied);
        }
        proxier.request_full_sync();
        assert_eq!(
            proxier.sync(desired.clone()).await.ok(),
            Some(SyncKind::Resync { repaired: 0 })
        );
        assert!(fake.take_calls().is_empty());

        if let Ok(mut saved) = fake.saved.lock() {
            *saved = applied.replace("-A KUBE-SVC-A -j RETURN\n", "");
        }
        proxier.request_full_sync();
        assert_eq!(proxier.sync(desired).await.ok(), Some(SyncKind::Resync { repaired: 1 }));
        assert_eq!(
            fake.take_calls(),
            vec![(
                RestoreMode::NoFlush,
                "*nat\n:KUBE-SVC-A - [0:0]\n-A KUBE-SVC-A -j RETURN\nCOMMIT\n".to_string()
            )]
        );
    }

    #[tokio::test]
    async fn failure_forces_a_full_sync() {
        let fake = FakeBackend::default();
        let mut proxier = Proxier::new(fake.clone(), Duration::from_secs(3600));
        assert!(proxier.sync(rules(&[])).await.is_ok());
        if let Ok(mut fail) = fake.fail_next.lock() {
            *fail = true;
        }
        assert!(proxier.sync(rules(&[("KUBE-SVC-A", "-j RETURN")])).await.is_err());
        assert_eq!(
            proxier.sync(rules(&[("KUBE-SVC-A", "-j RETURN")])).await.ok(),
            Some(SyncKind::Full)
        );
    }

    #[tokio::test]
    async fn full_sync_period_elapsed_means_full() {
        let fake = FakeBackend::default();
        let mut proxier = Proxier::new(fake.clone(), Duration::ZERO);
        assert_eq!(proxier.sync(rules(&[])).await.ok(), Some(SyncKind::Full));
        assert_eq!(proxier.sync(rules(&[])).await.ok(), Some(SyncKind::Full));
    }
}
