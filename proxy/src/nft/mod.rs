//! kube-proxy's nftables mode (`--proxy-mode nftables`): the table is computed as data
//! ([`compute::compute`] → [`table::Table`]), diffed against what was last applied
//! ([`diff::diff`]: only changed chains and map elements) and applied over netlink in one
//! transaction ([`netlink`]). A full sync (start, after a failure, every full-sync period)
//! replaces the whole table in one transaction, which repairs any drift.

pub mod compute;
pub mod diff;
pub mod netlink;
pub mod table;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proxier::SyncKind;
use table::{Op, Table};

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

/// The side effect of the nftables mode: applying one transaction.
pub trait NftBackend: Send + Sync {
    fn apply(&self, ops: Vec<Op>) -> impl Future<Output = Result<(), NftError>> + Send;
}

impl NftBackend for netlink::NetlinkBackend {
    async fn apply(&self, ops: Vec<Op>) -> Result<(), NftError> {
        let backend = self.clone();
        tokio::task::spawn_blocking(move || backend.apply_blocking(&ops))
            .await
            .map_err(|e| NftError::Task(e.to_string()))?
    }
}

/// A recording fake: keeps every transaction as `nft -f` text.
#[derive(Clone, Debug, Default)]
pub struct FakeNftBackend {
    pub calls: Arc<Mutex<Vec<String>>>,
    pub fail_next: Arc<Mutex<bool>>,
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
    async fn apply(&self, ops: Vec<Op>) -> Result<(), NftError> {
        if let Ok(mut fail) = self.fail_next.lock()
            && std::mem::take(&mut *fail)
        {
            return Err(NftError::Fake("injected failure".into()));
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(table::to_nft_script(&ops));
        }
        Ok(())
    }
}

/// Applies tables through an [`NftBackend`], incrementally when it can.
pub struct NftProxier<B> {
    backend: B,
    applied: Option<Table>,
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

    /// Brings the kernel's table to `desired`. On failure the next sync is a full one.
    pub async fn sync(&mut self, desired: Table) -> Result<SyncKind, NftError> {
        let due = self.last_full.is_none_or(|at| at.elapsed() >= self.full_sync_period);
        let incremental = match &self.applied {
            Some(applied) if !due => Some(diff::diff(applied, &desired)),
            _ => None,
        };
        let (ops, kind) = match incremental {
            Some(None) if self.applied.as_ref() == Some(&desired) => return Ok(SyncKind::Unchanged),
            Some(Some(ops)) => {
                let chains = diff::chains_touched(&ops);
                (ops, SyncKind::Partial { chains })
            }
            // No diff possible (or a full sync is due): rewrite everything.
            _ => (diff::full(&desired), SyncKind::Full),
        };
        let result = self.backend.apply(ops).await;
        match result {
            Ok(()) => {
                if kind == SyncKind::Full {
                    self.last_full = Some(Instant::now());
                }
                self.applied = Some(desired);
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
mod tests;
