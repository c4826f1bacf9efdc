//! The single writer: group commit, compaction, and giving space back.
//!
//! Callers queue [`Request`]s; the writer takes every request queued (up to
//! `EmbeddedOptions::max_batch`), applies them in order in one `BEGIN IMMEDIATE` transaction,
//! each with its own check (exists / compare-and-swap) against the state including the batch's
//! earlier writes, and commits once: one fsync for the whole batch (`synchronous = FULL` in
//! WAL mode). Only after the commit are the events published to watchers and the callers
//! answered, so an acknowledged write is durable and every watcher has it queued. If the
//! commit fails, nothing of the batch happened and every caller gets the error.
//!
//! Keys written with a ttl get a row in the `expiry` table; when its time comes, the writer
//! deletes the key (if it still is at the revision of that write) in a batch of its own, so
//! watchers see the deletion like any other.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::reads::{BUSY_TIMEOUT, latest, meta, sql_error};
use super::{EmbeddedOptions, Shared};
use crate::{Event, KeyValue, Result, Revision, StorageError};

/// Rows looked at per physical compaction transaction.
const COMPACT_CHUNK: usize = 2000;
/// How long a checkpoint that truncates the log waits for readers to move on.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(1);
/// How long the writer sleeps when it has nothing scheduled.
const IDLE: Duration = Duration::from_secs(3600);
/// A database file larger than this many times its packed estimate is rewritten (`VACUUM`).
const REPACK_RATIO: f64 = 1.25;
/// Files smaller than this are never worth a rewrite.
const REPACK_MIN_BYTES: i64 = 256 * 1024;
/// Files larger than this are not rewritten automatically: the rewrite holds up writes, for
/// 5–12 ms per MiB here (12–27 ms for 2.3 MiB in the storage benchmark), so up to about 0.8 s
/// at this size. etcd leaves defragmentation to its operator for the same reason.
const REPACK_MAX_BYTES: i64 = 64 * 1024 * 1024;
/// The repack check (a scan of every row) and the rewrite are each given at most 1 % of the
/// writer's time: after taking `t`, the next waits `t × REPACK_SPACING`.
const REPACK_SPACING: u32 = 100;
/// What a row costs beyond its name and value, packed: its integer columns, cell headers and
/// its entry in the `(name, id, deleted)` index (which repeats the name).
const ROW_OVERHEAD: i64 = 40;
/// Expired keys deleted per transaction; more wait for the next pass, right after.
const EXPIRE_CHUNK: i64 = 1000;

/// A write (or maintenance request) for the writer.
#[derive(Debug)]
pub(super) enum Op {
    Create {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: String,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    },
    /// Deletes `key` if it still is at `revision`, the write whose ttl has passed, and drops
    /// that write's expiry row.
    Expire {
        key: String,
        revision: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
    /// Finish pending physical compaction and give space back, then answer.
    Settle,
}

/// The writer's answer to an [`Op`].
#[derive(Debug)]
pub(super) enum Done {
    Put(KeyValue),
    Deleted(KeyValue, Revision),
    Maintained,
}

pub(super) struct Request {
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<Result<Done>>,
}

/// What the store holds when it is opened.
pub(super) struct State {
    pub(super) revision: Revision,
    pub(super) compacted: Revision,
    cursor: Revision,
    next_expiry: Option<i64>,
}

impl State {
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<State> {
        // The newest row is never deleted by compaction, so it always carries the revision; a
        // fresh store is at revision 1, like a fresh etcd.
        let revision: Option<i64> = conn.query_row("SELECT MAX(id) FROM kv", [], |row| row.get(0))?;
        Ok(State {
            revision: revision.unwrap_or(1).max(1),
            compacted: meta(conn, "compact_revision")?,
            cursor: meta(conn, "compact_cursor")?,
            next_expiry: next_expiry(conn)?,
        })
    }
}

/// When the next key expires (Unix milliseconds), if any does.
fn next_expiry(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT MIN(at) FROM expiry", [], |row| row.get(0))
}

/// The wall clock in Unix milliseconds: expiry times outlive the process, so they cannot be
/// `Instant`s (etcd's leases likewise survive a restart).
fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// A ttl in milliseconds, saturating.
fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

pub(super) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    options: EmbeddedOptions,
    revision: Revision,
    compacted: Revision,
    /// Rows below it were processed for the current compaction revision. Rows from `cursor`
    /// to `compacted` (inclusive: a tombstone at the compaction revision is only deleted by the
    /// next compaction) still are to be.
    cursor: Revision,
    /// (when, revision) observations for time-based retention, oldest first.
    samples: VecDeque<(Instant, Revision)>,
    next_tick: Option<Instant>,
    /// Settle requests waiting for physical compaction to finish.
    settling: Vec<oneshot::Sender<Result<Done>>>,
    /// After a failed compaction step, the next one waits until then.
    retry_at: Option<Instant>,
    /// The next repack check waits until then.
    repack_at: Option<Instant>,
    /// When the next key expires (Unix milliseconds), or an earlier time.
    next_expiry: Option<i64>,
}

impl Writer {
    pub(super) fn new(conn: Connection, shared: Arc<Shared>, options: EmbeddedOptions, state: State) -> Self {
        let next_tick = (!options.compaction_interval.is_zero()).then(Instant::now);
        Writer {
            conn,
            shared,
            options,
            revision: state.revision,
            compacted: state.compacted,
            cursor: state.cursor,
            samples: VecDeque::new(),
            next_tick,
            settling: Vec::new(),
            retry_at: None,
            repack_at: None,
            next_expiry: state.next_expiry,
        }
    }

    fn physical_work_pending(&self) -> bool {
        self.cursor < self.compacted
    }

    /// How long to wait for requests before the next maintenance step is due.
    fn wait(&self) -> Duration {
        let now = Instant::now();
        let mut tick = self.next_tick.map_or(IDLE, |tick| tick.saturating_duration_since(now));
        if let Some(at) = self.next_expiry {
            let until = u64::try_from(at.saturating_sub(unix_millis())).unwrap_or(0);
            tick = tick.min(Duration::from_millis(until));
        }
        if !self.physical_work_pending() {
            return tick;
        }
        match self.retry_at {
            Some(retry) if retry > now => tick.min(retry - now),
            _ => Duration::ZERO,
        }
    }

    /// Serves requests until every sender is gone.
    pub(super) fn run(mut self, queue: Receiver<Request>) {
        loop {
            match queue.recv_timeout(self.wait()) {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < self.options.max_batch.max(1)
                        && let Ok(request) = queue.try_recv()
                    {
                        batch.push(request);
                    }
                    self.commit_batch(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.maintain();
        }
        if let Err(error) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(%error, "embedded store: final checkpoint failed");
        }
    }

    /// Applies and commits `batch`, then answers its callers; false if the commit failed.
    fn commit_batch(&mut self, batch: Vec<Request>) -> bool {
        let mut revision = self.revision;
        let mut compacted = self.compacted;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let now = unix_millis();
        let committed = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for request in &batch {
                outcomes.push(apply(
                    &tx,
                    &request.op,
                    now,
                    &mut revision,
                    &mut compacted,
                    &mut events,
                )?);
            }
            if compacted != self.compacted {
                set_meta(&tx, "compact_revision", compacted)?;
            }
            tx.commit()
        })();
        if let Err(error) = committed {
            tracing::warn!(%error, writes = batch.len(), "embedded store: commit failed");
            let error = sql_error(error);
            for request in batch {
                let _ = request.reply.send(Err(error.clone()));
            }
            return false;
        }
        if compacted != self.compacted {
            tracing::info!(revision = compacted, "compacted storage history");
        }
        self.revision = revision;
        self.compacted = compacted;
        for (request, outcome) in batch.iter().zip(&outcomes) {
            if let (Op::Create { ttl: Some(ttl), .. } | Op::Update { ttl: Some(ttl), .. }, Ok(_)) =
                (&request.op, outcome)
            {
                let at = now.saturating_add(millis(*ttl));
                self.next_expiry = Some(self.next_expiry.map_or(at, |next| next.min(at)));
            }
        }
        {
            let mut hub = self.shared.hub();
            hub.publish(&events, revision);
            self.shared.compacted.store(compacted, Ordering::Release);
            self.shared.revision.store(revision, Ordering::Release);
        }
        for (request, outcome) in batch.into_iter().zip(outcomes) {
            match (request.op, outcome) {
                (Op::Settle, Ok(_)) => self.settling.push(request.reply),
                (_, outcome) => {
                    // The caller may have given up waiting; the write stands regardless.
                    let _ = request.reply.send(outcome);
                }
            }
        }
        true
    }

    /// Deletes the keys whose ttl has passed, up to [`EXPIRE_CHUNK`] of them, in one batch.
    fn expire(&mut self) {
        let due = || -> rusqlite::Result<Vec<(Vec<u8>, Revision)>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT name, revision FROM expiry WHERE at <= ?1 ORDER BY at LIMIT ?2")?;
            stmt.query_map(params![unix_millis(), EXPIRE_CHUNK], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect()
        };
        let batch: Vec<Request> = match due() {
            Ok(due) => due
                .into_iter()
                .map(|(name, revision)| Request {
                    op: Op::Expire {
                        // Names are written from `&str`s only.
                        key: String::from_utf8_lossy(&name).into_owned(),
                        revision,
                    },
                    reply: oneshot::channel().0,
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "embedded store: reading expired keys failed");
                Vec::new()
            }
        };
        if !batch.is_empty() {
            tracing::debug!(keys = batch.len(), "embedded store: deleting expired keys");
            if !self.commit_batch(batch) {
                // Not spinning on a failing disk: the keys are still due, a second from now.
                self.next_expiry = Some(unix_millis() + 1000);
                return;
            }
        }
        self.next_expiry = match next_expiry(&self.conn) {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(%error, "embedded store: reading the next expiry failed");
                Some(unix_millis() + 1000)
            }
        };
    }

    /// Expired keys, automatic compaction when due, then one chunk of physical compaction if
    /// any is pending.
    fn maintain(&mut self) {
        if self.next_expiry.is_some_and(|at| at <= unix_millis()) {
            self.expire();
        }
        if let Some(tick) = self.next_tick
            && tick <= Instant::now()
        {
            self.next_tick = Some(Instant::now() + self.options.compaction_interval);
            self.auto_compact();
            if !self.physical_work_pending() {
                // An idle store still gets repacked once the last rewrite's spacing has passed.
                self.reclaim();
            }
        }
        if self.physical_work_pending() && self.retry_at.is_none_or(|retry| retry <= Instant::now()) {
            if let Err(error) = self.compact_chunk() {
                tracing::warn!(%error, "embedded store: compaction step failed");
                // Not spinning on a failing disk.
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
            self.retry_at = None;
            if !self.physical_work_pending() {
                self.reclaim();
            }
        }
        if !self.physical_work_pending() && !self.settling.is_empty() {
            // Settling means all the space back now, a due repack included.
            self.repack_at = None;
            self.reclaim();
            for reply in self.settling.drain(..) {
                let _ = reply.send(Ok(Done::Maintained));
            }
        }
    }

    /// Compacts to the newest revision that keeps both `retain_revisions` revisions and
    /// `retain_for` of history.
    fn auto_compact(&mut self) {
        let now = Instant::now();
        self.samples.push_back((now, self.revision));
        let Some(horizon) = now.checked_sub(self.options.retain_for) else {
            return;
        };
        // The newest observation at least `retain_for` old; older ones are no longer needed.
        while self.samples.len() > 1 && self.samples.get(1).is_some_and(|(at, _)| *at <= horizon) {
            self.samples.pop_front();
        }
        let Some(&(at, by_time)) = self.samples.front() else {
            return;
        };
        if at > horizon {
            return;
        }
        let target = by_time.min(self.revision - self.options.retain_revisions.max(0));
        if target <= self.compacted {
            return;
        }
        let (reply, _) = oneshot::channel();
        let request = Request {
            op: Op::Compact { revision: target },
            reply,
        };
        self.commit_batch(vec![request]);
    }

    /// Processes up to [`COMPACT_CHUNK`] rows from the cursor in one transaction: deletes the
    /// row each of them replaced, and tombstones below the compaction revision.
    fn compact_chunk(&mut self) -> rusqlite::Result<()> {
        let target = self.compacted;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, i64, bool)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, prev_revision, deleted FROM kv WHERE id >= ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
            )?;
            let chunk = i64::try_from(COMPACT_CHUNK).unwrap_or(i64::MAX);
            stmt.query_map(params![self.cursor, target, chunk], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        {
            let mut delete = tx.prepare_cached("DELETE FROM kv WHERE id = ?1")?;
            for &(id, prev_revision, deleted) in &rows {
                if prev_revision != 0 {
                    delete.execute([prev_revision])?;
                }
                if deleted && id < target {
                    delete.execute([id])?;
                }
            }
        }
        let next = match rows.last() {
            Some(&(last, _, _)) if rows.len() >= COMPACT_CHUNK && last < target => last + 1,
            _ => target,
        };
        set_meta(&tx, "compact_cursor", next)?;
        tx.commit()?;
        self.cursor = next;
        Ok(())
    }

    /// Gives freed pages back to the file system (`incremental_vacuum` frees one page per step,
    /// so it is stepped to the end) and folds the write-ahead log into the database, truncating
    /// it (waiting at most briefly for readers; the next pass retries if they were in the way).
    fn reclaim(&mut self) {
        let vacuum = || -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        };
        if let Err(error) = vacuum() {
            tracing::warn!(%error, "embedded store: incremental vacuum failed");
        }
        self.repack();
        let checkpoint = || -> rusqlite::Result<bool> {
            self.conn.busy_timeout(CHECKPOINT_WAIT)?;
            let busy = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
            self.conn.busy_timeout(BUSY_TIMEOUT)?;
            Ok(busy? != 0)
        };
        match checkpoint() {
            Ok(false) => {}
            Ok(true) => tracing::debug!("embedded store: readers kept the log from being truncated"),
            Err(error) => tracing::warn!(%error, "embedded store: checkpoint failed"),
        }
    }
}

impl Writer {
    /// Rewrites the database packed when compaction left its pages mostly holes.
    ///
    /// Revisions are rows in id order, so new rows always go to the last pages, while
    /// compaction deletes old revisions scattered over the whole file: the pages it thins out
    /// are never refilled, and `incremental_vacuum` only returns pages that became empty. After
    /// 100 000 updates of 1 000 objects the file was 2.15× the live data, with pages about 60 %
    /// full. `VACUUM` copies the rows into fresh, full pages (keeping their ids, which are the
    /// revisions). It runs in the writer, between batches, as one transaction; readers keep
    /// their snapshots.
    fn repack(&mut self) {
        if self.repack_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let started = Instant::now();
        let sizes = || -> rusqlite::Result<(i64, i64)> {
            let file = self.file_bytes()?;
            // An expiry row holds its name twice too (the table and the `at` index).
            let packed: i64 = self.conn.query_row(
                "SELECT (SELECT COALESCE(SUM(2 * length(name) + length(value)), 0) + COUNT(*) * ?1 FROM kv) \
                      + (SELECT COALESCE(SUM(2 * length(name)), 0) + COUNT(*) * ?1 FROM expiry)",
                [ROW_OVERHEAD],
                |row| row.get(0),
            )?;
            Ok((file, packed))
        };
        let (file, packed) = match sizes() {
            Ok(sizes) => sizes,
            Err(error) => {
                tracing::warn!(%error, "embedded store: measuring the database failed");
                self.repack_at = Some(Instant::now() + started.elapsed() * REPACK_SPACING);
                return;
            }
        };
        // Lossy only for files of petabytes.
        #[allow(clippy::cast_precision_loss)]
        let sparse = file as f64 > packed as f64 * REPACK_RATIO;
        if !sparse || !(REPACK_MIN_BYTES..=REPACK_MAX_BYTES).contains(&file) {
            self.repack_at = Some(Instant::now() + started.elapsed() * REPACK_SPACING);
            return;
        }
        let rewrite = Instant::now();
        let result = self.conn.execute_batch("VACUUM;");
        let took = rewrite.elapsed();
        match result {
            Ok(()) => {
                let after = self.file_bytes().unwrap_or_default();
                tracing::info!(before = file, after, ?took, "embedded store: repacked the database");
            }
            Err(error) => tracing::warn!(%error, "embedded store: repacking the database failed"),
        }
        self.repack_at = Some(Instant::now() + started.elapsed() * REPACK_SPACING);
    }

    /// The database file's size in bytes: its pages times the page size.
    fn file_bytes(&self) -> rusqlite::Result<i64> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        Ok(pages * page_size)
    }
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")?
        .execute(params![key, value])
        .map(drop)
}

/// Applies one operation inside the batch's transaction. The outer error aborts the batch (the
/// database failed); the inner one is the operation's own answer (exists, conflict, ...).
fn apply(
    tx: &Connection,
    op: &Op,
    now: i64,
    revision: &mut Revision,
    compacted: &mut Revision,
    events: &mut Vec<Event>,
) -> rusqlite::Result<Result<Done>> {
    Ok(match op {
        Op::Create { key, value, ttl } => {
            if latest(tx, key)?.is_some() {
                return Ok(Err(StorageError::AlreadyExists(key.clone())));
            }
            let next = *revision + 1;
            insert(tx, next, key, false, next, 0, value)?;
            expire_at(tx, key, next, now, *ttl)?;
            *revision = next;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: next,
                mod_revision: next,
            };
            events.push(Event::Put {
                kv: kv.clone(),
                prev: None,
            });
            Ok(Done::Put(kv))
        }
        Op::Update {
            key,
            expected,
            value,
            ttl,
        } => {
            let prev = match latest(tx, key)? {
                Some(current) if current.mod_revision == *expected => current,
                current => {
                    return Ok(Err(StorageError::Conflict {
                        key: key.clone(),
                        expected: *expected,
                        current,
                    }));
                }
            };
            let next = *revision + 1;
            insert(tx, next, key, false, prev.create_revision, prev.mod_revision, value)?;
            expire_at(tx, key, next, now, *ttl)?;
            *revision = next;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: next,
            };
            events.push(Event::Put {
                kv: kv.clone(),
                prev: Some(prev),
            });
            Ok(Done::Put(kv))
        }
        Op::Delete { key, expected } => {
            let Some(prev) = latest(tx, key)? else {
                return Ok(Err(StorageError::NotFound(key.clone())));
            };
            if let Some(expected) = expected
                && prev.mod_revision != *expected
            {
                return Ok(Err(StorageError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: Some(prev),
                }));
            }
            let next = tombstone(tx, key, &prev, revision, events)?;
            Ok(Done::Deleted(prev, next))
        }
        Op::Expire { key, revision: written } => {
            tx.prepare_cached("DELETE FROM expiry WHERE name = ?1 AND revision = ?2")?
                .execute(params![key.as_bytes(), written])?;
            match latest(tx, key)? {
                Some(current) if current.mod_revision == *written => {
                    let next = tombstone(tx, key, &current, revision, events)?;
                    Ok(Done::Deleted(current, next))
                }
                // Written again, or deleted, since: the ttl no longer applies.
                _ => Ok(Done::Maintained),
            }
        }
        Op::Compact { revision: target } => {
            if *target <= *compacted {
                Err(StorageError::Compacted {
                    requested: *target,
                    compacted: *compacted,
                })
            } else if *target > *revision {
                Err(StorageError::FutureRevision {
                    requested: *target,
                    current: *revision,
                })
            } else {
                *compacted = *target;
                Ok(Done::Maintained)
            }
        }
        Op::Settle => Ok(Done::Maintained),
    })
}

/// Deletes `key` (currently `prev`) at the next revision; returns that revision.
fn tombstone(
    tx: &Connection,
    key: &str,
    prev: &KeyValue,
    revision: &mut Revision,
    events: &mut Vec<Event>,
) -> rusqlite::Result<Revision> {
    let next = *revision + 1;
    insert(
        tx,
        next,
        key,
        true,
        prev.create_revision,
        prev.mod_revision,
        &Bytes::new(),
    )?;
    *revision = next;
    events.push(Event::Delete {
        prev: prev.clone(),
        revision: next,
    });
    Ok(next)
}

/// Records that `key`, written at `written`, expires `ttl` after `now`. Without a ttl nothing
/// is written: an earlier expiry row of the key names an older revision and is dropped unused.
fn expire_at(tx: &Connection, key: &str, written: Revision, now: i64, ttl: Option<Duration>) -> rusqlite::Result<()> {
    let Some(ttl) = ttl else { return Ok(()) };
    tx.prepare_cached("INSERT OR REPLACE INTO expiry (name, revision, at) VALUES (?1, ?2, ?3)")?
        .execute(params![key.as_bytes(), written, now.saturating_add(millis(ttl))])
        .map(drop)
}

fn insert(
    tx: &Connection,
    id: Revision,
    key: &str,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
) -> rusqlite::Result<()> {
    let created = !deleted && prev_revision == 0;
    let value =
        super::codec::encode(value).map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
    tx.prepare_cached(
        "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        key.as_bytes(),
        created,
        deleted,
        create_revision,
        prev_revision,
        value.as_ref()
    ])
    .map(drop)
}
