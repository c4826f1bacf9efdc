//! Watches: replay from the database, then live events from the writer, without a gap.
//!
//! A watcher is registered in the [`Hub`] under the same lock the writer publishes under, at
//! the published revision `R`: it receives every event after `R` (and after its start) on its
//! live queue, while a task replays `[after + 1, R]` from the database onto a separate queue
//! that the stream drains first. Progress notifications go onto the live queue under that lock
//! too, so `Progress(r)` always comes after every event up to `r`: the replay (all `<= R`)
//! precedes the whole live queue, and the live queue is in publication order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::{Shared, reads};
use crate::{Event, Result, Revision, StorageError, WatchItem, WatchStream};

/// Events fetched from the database per replay step.
const REPLAY_PAGE: usize = 512;
/// Events a replay may have fetched ahead of its consumer.
const REPLAY_QUEUE: usize = 1024;

/// The registered watchers and the last published revision.
pub(super) struct Hub {
    revision: Revision,
    watchers: HashMap<u64, Watcher>,
    next_id: u64,
}

struct Watcher {
    prefix: String,
    /// Only events after this revision (the watch's start, or the revision it was registered
    /// at, whichever is later: the replay covers the rest).
    after: Revision,
    tx: mpsc::Sender<Result<WatchItem>>,
}

impl Hub {
    pub(super) fn new(revision: Revision) -> Self {
        Hub {
            revision,
            watchers: HashMap::new(),
            next_id: 0,
        }
    }

    /// Queues `events` (committed, in revision order) to every interested watcher and records
    /// `revision` as published. A watcher whose queue is full is dropped: its stream ends after
    /// what it has queued, and its consumer resumes from the last revision it saw.
    pub(super) fn publish(&mut self, events: &[Event], revision: Revision) {
        if !events.is_empty() {
            self.watchers.retain(|id, watcher| {
                for event in events {
                    if event.revision() <= watcher.after || !event.key().starts_with(&watcher.prefix) {
                        continue;
                    }
                    match watcher.tx.try_send(Ok(WatchItem::Event(event.clone()))) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::warn!(watch = id, prefix = %watcher.prefix, "embedded store: watcher too slow; ending its watch");
                            return false;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return false,
                    }
                }
                true
            });
        }
        self.revision = revision;
    }
}

/// A watch on an [`super::EmbeddedStorage`]; unregisters itself on drop.
pub(super) struct EmbeddedWatch {
    shared: Arc<Shared>,
    id: u64,
    /// History not yet delivered; `None` once the replay is done.
    replay: Option<mpsc::Receiver<Result<WatchItem>>>,
    live: mpsc::Receiver<Result<WatchItem>>,
    ended: bool,
}

impl EmbeddedWatch {
    /// Registers the watch and starts its replay (must run inside a Tokio runtime).
    pub(super) fn start(shared: &Arc<Shared>, prefix: &str, after: Revision) -> Result<Self> {
        // Like etcd, whose start revision is `after + 1` and never below revision 1.
        let start = after.saturating_add(1).max(1);
        let (tx, live) = mpsc::channel(shared.watch_queue);
        let (id, until) = {
            let mut hub = shared.hub();
            // Updated under this lock by the writer, together with `hub.revision`.
            let compacted = shared.compacted.load(Ordering::Acquire);
            if start < compacted {
                return Err(StorageError::Compacted {
                    requested: start,
                    compacted,
                });
            }
            let until = hub.revision;
            let id = hub.next_id;
            hub.next_id += 1;
            hub.watchers.insert(
                id,
                Watcher {
                    prefix: prefix.to_owned(),
                    after: after.max(until),
                    tx,
                },
            );
            (id, until)
        };
        let replay = (start <= until).then(|| {
            let (tx, rx) = mpsc::channel(REPLAY_QUEUE);
            tokio::spawn(replay(Arc::clone(shared), prefix.to_owned(), start, until, tx));
            rx
        });
        Ok(EmbeddedWatch {
            shared: Arc::clone(shared),
            id,
            replay,
            live,
            ended: false,
        })
    }

    fn end(&mut self) {
        self.ended = true;
        self.shared.hub().watchers.remove(&self.id);
    }
}

/// Sends the changes in `[from, until]` under `prefix`, page by page, then ends (closing the
/// queue). A compaction that overtakes it ends it with the `Compacted` error.
async fn replay(
    shared: Arc<Shared>,
    prefix: String,
    mut from: Revision,
    until: Revision,
    tx: mpsc::Sender<Result<WatchItem>>,
) {
    loop {
        let page_prefix = prefix.clone();
        let page = shared
            .read(move |conn, _| reads::replay_page(conn, &page_prefix, from, until, REPLAY_PAGE))
            .await;
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        };
        for event in page.events {
            if tx.send(Ok(WatchItem::Event(event))).await.is_err() {
                return;
            }
        }
        if let Some(error) = page.error {
            let _ = tx.send(Err(error)).await;
            return;
        }
        match page.next {
            Some(next) => from = next,
            None => return,
        }
    }
}

#[async_trait::async_trait]
impl WatchStream for EmbeddedWatch {
    /// Cancel-safe: only `recv` is awaited, and state changes after it returns.
    async fn next(&mut self) -> Option<Result<WatchItem>> {
        if self.ended {
            return None;
        }
        if let Some(replay) = &mut self.replay {
            match replay.recv().await {
                Some(Ok(item)) => return Some(Ok(item)),
                Some(Err(error)) => {
                    self.end();
                    return Some(Err(error));
                }
                None => self.replay = None,
            }
        }
        let item = self.live.recv().await;
        if item.is_none() {
            self.ended = true;
        }
        item
    }

    async fn request_progress(&mut self) -> Result<()> {
        let hub = self.shared.hub();
        let Some(watcher) = hub.watchers.get(&self.id) else {
            // Ended (too slow, or by an error): the stream ends, and the caller re-watches.
            return Ok(());
        };
        match watcher.tx.try_send(Ok(WatchItem::Progress(hub.revision))) {
            Ok(()) => Ok(()),
            // A full queue means the watcher is about to be ended as too slow anyway.
            Err(_) => Err(StorageError::Unavailable("the watch queue is full".into())),
        }
    }
}

impl Drop for EmbeddedWatch {
    fn drop(&mut self) {
        self.shared.hub().watchers.remove(&self.id);
    }
}
