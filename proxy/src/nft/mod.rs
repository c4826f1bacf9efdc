//! kube-proxy's nftables mode (`--proxy-mode nftables`): the tables are computed as data
//! ([`compute::compute`] → [`table::Ruleset`]: the main table and its shards), diffed against
//! what was last applied ([`diff::diff`]: only changed chains and map elements) and applied
//! over netlink in one transaction ([`netlink`]). A full sync (start, after a failure, every
//! full-sync period) replaces every table in one transaction, which repairs any drift, and
//! deletes tables of ours the ruleset no longer has, keeping what the data path learnt for
//! session affinity ([`affinity`]).

pub mod affinity;
pub mod compute;
pub mod diff;
pub mod netlink;
pub mod table;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proxier::{SyncKind, drop_later};
use affinity::Remembered;
use table::{Ruleset, Transaction};

/// Why applying an nftables transaction failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("netlink socket: {0}")]
    Socket(String),
    #[error("the kernel refused `{op}`: {errno}")]
    Kernel { errno: nix::errno::Errno, op: String },
    #[error("{0}")]
    Fake(String),
    #[error("the netlink task failed: {0}")]
    Task(String),
}

/// The side effects of the nftables mode: applying one transaction, and before a full sync,
/// listing the tables of ours that exist (to delete the ones it no longer wants) and reading
/// the session-affinity sets (to put their entries back).
pub trait NftBackend: Send + Sync {
    fn apply(&self, transaction: Transaction) -> impl Future<Output = Result<(), NftError>> + Send;
    fn our_tables(&self) -> impl Future<Output = Result<Vec<String>, NftError>> + Send;
    /// The entries of the given (table, set) affinity sets; missing sets have none.
    fn affinity(&self, sets: Vec<(String, String)>) -> impl Future<Output = Result<Vec<Remembered>, NftError>> + Send;
}

impl NftBackend for netlink::NetlinkBackend {
    async fn apply(&self, transaction: Transaction) -> Result<(), NftError> {
        let backend = self.clone();
        tokio::task::spawn_blocking(move || backend.apply_blocking(&transaction))
            .await
            .map_err(|e| NftError::Task(e.to_string()))?
    }

    async fn our_tables(&self) -> Result<Vec<String>, NftError> {
        let backend = self.clone();
        tokio::task::spawn_blocking(move || backend.our_tables_blocking())
            .await
            .map_err(|e| NftError::Task(e.to_string()))?
    }

    async fn affinity(&self, sets: Vec<(String, String)>) -> Result<Vec<Remembered>, NftError> {
        let backend = self.clone();
        tokio::task::spawn_blocking(move || backend.affinity_blocking(&sets))
            .await
            .map_err(|e| NftError::Task(e.to_string()))?
    }
}

/// A recording fake: keeps every transaction as `nft -f` text; `tables` is what
/// [`NftBackend::our_tables`] answers, `remembered` what [`NftBackend::affinity`] does (for
/// the sets asked about).
#[derive(Clone, Debug, Default)]
pub struct FakeNftBackend {
    pub calls: Arc<Mutex<Vec<String>>>,
    pub fail_next: Arc<Mutex<bool>>,
    pub tables: Arc<Mutex<Vec<String>>>,
    pub remembered: Arc<Mutex<Vec<Remembered>>>,
}

impl FakeNftBackend {
    pub fn take_calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

impl NftBackend for FakeNftBackend {
    async fn apply(&self, transaction: Transaction) -> Result<(), NftError> {
        if let Ok(mut fail) = self.fail_next.lock()
            && std::mem::take(&mut *fail)
        {
            return Err(NftError::Fake("injected failure".into()));
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(transaction.to_nft_script());
        }
        Ok(())
    }

    async fn our_tables(&self) -> Result<Vec<String>, NftError> {
        Ok(self.tables.lock().map(|t| t.clone()).unwrap_or_default())
    }

    async fn affinity(&self, sets: Vec<(String, String)>) -> Result<Vec<Remembered>, NftError> {
        let remembered = self.remembered.lock().map(|r| r.clone()).unwrap_or_default();
        Ok(remembered
            .into_iter()
            .filter(|r| sets.iter().any(|(table, set)| *table == r.table && *set == r.set))
            .collect())
    }
}

/// Applies tables through an [`NftBackend`], incrementally when it can.
pub struct NftProxier<B> {
    backend: B,
    applied: Option<Ruleset>,
    last_full: Option<Instant>,
    full_sync_period: Duration,
}

impl<B: NftBackend> NftProxier<B> {
    /// A proxier whose first sync is full, and which resyncs fully every `full_sync_period`.
    pub fn new(backend: B, full_sync_period: Duration) -> Self {
        NftProxier {
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

    /// What the last successful sync applied: the tables the next compute may reuse
    /// ([`compute::compute_reusing`]).
    pub fn applied(&self) -> Option<&Ruleset> {
        self.applied.as_ref()
    }

    /// Brings the kernel's tables to `desired`. On failure the next sync is a full one.
    pub async fn sync(&mut self, desired: Ruleset) -> Result<SyncKind, NftError> {
        let due = self.last_full.is_none_or(|at| at.elapsed() >= self.full_sync_period);
        let change = match &self.applied {
            Some(applied) if !due => diff::changes(applied, &desired),
            _ => diff::Change::Full,
        };
        let (transaction, kind) = match change {
            diff::Change::Equal => {
                drop_later(desired);
                return Ok(SyncKind::Unchanged);
            }
            diff::Change::Incremental(transaction) => {
                let chains = diff::chains_touched(&transaction);
                (transaction, SyncKind::Partial { chains })
            }
            // No diff possible (or a full sync is due): rewrite everything.
            diff::Change::Full => match self.backend.our_tables().await {
                Ok(existing) => {
                    let sets: Vec<(String, String)> = affinity::affinity_sets(&desired)
                        .into_iter()
                        .filter(|(table, _)| existing.contains(table))
                        .collect();
                    let remembered = if sets.is_empty() {
                        Vec::new()
                    } else {
                        // Losing them only rebalances clients: not a reason to fail the sync.
                        self.backend.affinity(sets).await.unwrap_or_else(|error| {
                            tracing::warn!(%error, "could not read the session affinity sets; clients may move");
                            Vec::new()
                        })
                    };
                    (diff::full(&desired, &existing, &remembered), SyncKind::Full)
                }
                Err(error) => {
                    self.applied = None;
                    return Err(error);
                }
            },
        };
        let result = self.backend.apply(transaction).await;
        match result {
            Ok(()) => {
                if kind == SyncKind::Full {
                    self.last_full = Some(Instant::now());
                }
                drop_later(self.applied.replace(desired));
                Ok(kind)
            }
            Err(error) => {
                self.applied = None;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod shard_tests;
#[cfg(test)]
mod tests;
