//! The schema, connections, and every read: each runs in one read transaction (one snapshot)
//! on a pooled read connection, and checks the compaction revision inside that snapshot, so a
//! compaction committed concurrently can never make it read half-deleted history.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{Event, KeyValue, ListRequest, ListResponse, Result, Revision, StorageError};

/// How long a connection waits for a lock held by another connection (only checkpoints and
/// the writer's own transactions take them; readers never block each other).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys are UTF-8, which never contains the byte 0xFF: an upper bound above every key.
const ABOVE_ALL_KEYS: &[u8] = &[0xFF];

/// One row per revision (kine's schema without old values, and expiry instead of leases): `id` is the revision
/// of the write; `prev_revision` the revision of the value a modification or deletion replaced
/// (0 for a creation); a deletion is a row with `deleted = 1` and an empty value. Names are
/// BLOBs so that SQLite compares them bytewise, like etcd and like Rust's `str` ordering.
///
/// `expiry` holds a row per key last written with a ttl: the revision of that write and when it
/// expires (Unix milliseconds). Rows are only ever removed by the expiry pass, which deletes the
/// key only if it still is at that revision: a later write without a ttl, or a deletion, needs
/// no bookkeeping of its own (the stale row is dropped when its time comes).
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS kv (
        id INTEGER PRIMARY KEY,
        name BLOB NOT NULL,
        created INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        value BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id, deleted);
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS expiry (
        name BLOB PRIMARY KEY,
        revision INTEGER NOT NULL,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS expiry_at ON expiry (at);
    INSERT OR IGNORE INTO meta (key, value) VALUES
        ('schema_version', 1), ('compact_revision', 0), ('compact_cursor', 0);
";

/// Maps SQLite's failures: lock timeouts and I/O trouble are worth retrying, the rest is not.
pub(super) fn sql_error(error: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::CannotOpen
            ) =>
        {
            StorageError::Unavailable(format!("embedded store: {error}"))
        }
        _ => StorageError::Internal(format!("embedded store: {error}")),
    }
}

/// Opens the write connection, creating the schema on first use. `auto_vacuum` only takes
/// effect before the first table exists, which is why it comes first.
pub(super) fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 4194304;",
    )?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only = 1;")?;
    Ok(conn)
}

/// Idle read connections, opened on demand; at most `max_idle` are kept (callers bound how many
/// are in use at once to that, so none is opened twice).
pub(super) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Pool {
    pub(super) fn new(path: PathBuf, max_idle: usize) -> Self {
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Runs `f` on an idle connection (blocking).
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path).map_err(sql_error)?,
        };
        let result = f(&mut conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result
    }
}

/// The first key after every key starting with `prefix` (exclusive upper bound of the range).
pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    ABOVE_ALL_KEYS.to_vec()
}

pub(super) fn meta(tx: &Connection, key: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
}

fn name(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| StorageError::Internal("a stored key is not UTF-8".into()))
}

fn read_tx(conn: &mut Connection) -> Result<Transaction<'_>> {
    conn.transaction().map_err(sql_error)
}

/// The current value of `key`: its newest row, unless that is a deletion.
pub(super) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>> {
    latest(conn, key).map_err(sql_error)
}

/// The newest row of `key` as a live value (`None` if absent or deleted).
pub(super) fn latest(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    let row = conn
        .prepare_cached("SELECT id, deleted, create_revision, value FROM kv WHERE name = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([key.as_bytes()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })
        .optional()?;
    Ok(match row {
        Some((id, false, create_revision, value)) => Some(KeyValue {
            key: key.to_owned(),
            value: super::codec::decode(value).map_err(|error| {
                rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, Box::new(error))
            })?,
            create_revision,
            mod_revision: id,
        }),
        _ => None,
    })
}

/// Checks that `revision` is readable in this snapshot; returns the compaction revision.
fn check_readable(tx: &Connection, revision: Revision, current: Revision) -> Result<Revision> {
    let compacted = meta(tx, "compact_revision").map_err(sql_error)?;
    if revision < compacted {
        return Err(StorageError::Compacted {
            requested: revision,
            compacted,
        });
    }
    if revision > current.max(compacted) {
        return Err(StorageError::FutureRevision {
            requested: revision,
            current,
        });
    }
    Ok(compacted)
}

/// A range read at a revision: for every name in the range, its newest row at or below the
/// revision, unless that row is a deletion.
pub(super) fn list(conn: &mut Connection, request: &ListRequest, current: Revision) -> Result<ListResponse> {
    let tx = read_tx(conn)?;
    let revision = if request.revision > 0 {
        check_readable(&tx, request.revision, current)?;
        request.revision
    } else {
        // A compaction committed after `current` was read may be newer; everything up to it
        // is in this snapshot.
        current.max(meta(&tx, "compact_revision").map_err(sql_error)?)
    };
    // A start key before the prefix must not widen the range beyond the prefix.
    let start = match &request.start_key {
        Some(start) if start.as_str() > request.prefix.as_str() => start.as_bytes(),
        _ => request.prefix.as_bytes(),
    };
    let end = prefix_end(&request.prefix);
    let limit = usize::try_from(request.limit).ok().filter(|limit| *limit > 0);
    let mut ids = Vec::new();
    let mut remaining: i64 = 0;
    {
        // SQLite takes a bare column of an aggregate query with a single max() from the row
        // holding the maximum: `deleted` is that of each name's newest row.
        let mut names = tx
            .prepare_cached(
                "SELECT MAX(id), deleted FROM kv WHERE name >= ?1 AND name < ?2 AND id <= ?3 \
                 GROUP BY name ORDER BY name",
            )
            .map_err(sql_error)?;
        let mut rows = names.query(params![start, end, revision]).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            if row.get::<_, bool>(1).map_err(sql_error)? {
                continue;
            }
            if limit.is_some_and(|limit| ids.len() >= limit) {
                remaining += 1;
            } else {
                ids.push(row.get::<_, i64>(0).map_err(sql_error)?);
            }
        }
    }
    let mut kvs = Vec::with_capacity(ids.len());
    let mut row_by_id = tx
        .prepare_cached("SELECT name, create_revision, value FROM kv WHERE id = ?1")
        .map_err(sql_error)?;
    for id in ids {
        let (key, create_revision, value) = row_by_id
            .query_row([id], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(sql_error)?;
        kvs.push(KeyValue {
            key: name(key)?,
            value: super::codec::decode(value)?,
            create_revision,
            mod_revision: id,
        });
    }
    Ok(ListResponse {
        kvs,
        revision,
        remaining,
    })
}

/// Whether any row under `prefix` has a revision in `(since, at]`. Rows above the compaction
/// revision are never deleted, so the answer is exact once `since` is not compacted.
pub(super) fn prefix_changed(conn: &mut Connection, prefix: &str, since: Revision, at: Revision) -> Result<bool> {
    let tx = read_tx(conn)?;
    let compacted = meta(&tx, "compact_revision").map_err(sql_error)?;
    if since < compacted {
        return Err(StorageError::Compacted {
            requested: since,
            compacted,
        });
    }
    // `+name` keeps SQLite on the primary key: the window is usually far smaller than the
    // prefix's history.
    tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM kv WHERE id > ?1 AND id <= ?2 AND +name >= ?3 AND +name < ?4)")
        .and_then(|mut stmt| {
            stmt.query_row(params![since, at, prefix.as_bytes(), prefix_end(prefix)], |row| {
                row.get(0)
            })
        })
        .map_err(sql_error)
}

/// One page of a watch replay.
pub(super) struct Page {
    pub(super) events: Vec<Event>,
    /// Set when the replay cannot go on: history it needs is compacted.
    pub(super) error: Option<StorageError>,
    /// Where the next page starts; `None` when `until` was reached.
    pub(super) next: Option<Revision>,
}

/// The changes under `prefix` with revisions in `[from, until]`, at most `limit` of them,
/// with the previous values of modifications and deletions.
pub(super) fn replay_page(
    conn: &mut Connection,
    prefix: &str,
    from: Revision,
    until: Revision,
    limit: usize,
) -> Result<Page> {
    let tx = read_tx(conn)?;
    let compacted = meta(&tx, "compact_revision").map_err(sql_error)?;
    let mut page = Page {
        events: Vec::new(),
        error: None,
        next: None,
    };
    if from < compacted {
        page.error = Some(StorageError::Compacted {
            requested: from,
            compacted,
        });
        return Ok(page);
    }
    let mut stmt = tx
        .prepare_cached(
            "SELECT k.id, k.name, k.deleted, k.create_revision, k.prev_revision, k.value, \
                    p.create_revision, p.value \
             FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision AND k.prev_revision != 0 \
             WHERE k.id >= ?1 AND k.id <= ?2 AND +k.name >= ?3 AND +k.name < ?4 \
             ORDER BY k.id LIMIT ?5",
        )
        .map_err(sql_error)?;
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![from, until, prefix.as_bytes(), prefix_end(prefix), limit_sql])
        .map_err(sql_error)?;
    let mut count = 0;
    let mut last = from;
    while let Some(row) = rows.next().map_err(sql_error)? {
        count += 1;
        let id: i64 = row.get(0).map_err(sql_error)?;
        last = id;
        let key = name(row.get(1).map_err(sql_error)?)?;
        let deleted: bool = row.get(2).map_err(sql_error)?;
        let create_revision: i64 = row.get(3).map_err(sql_error)?;
        let prev_revision: i64 = row.get(4).map_err(sql_error)?;
        let value: Vec<u8> = row.get(5).map_err(sql_error)?;
        let prev = if prev_revision == 0 {
            None
        } else {
            let prev_create: Option<i64> = row.get(6).map_err(sql_error)?;
            let prev_value: Option<Vec<u8>> = row.get(7).map_err(sql_error)?;
            match (prev_create, prev_value) {
                // The value replaced exactly at the compaction revision was written below it:
                // gone (logically, even before the physical deletion), as on etcd.
                (Some(prev_create), Some(prev_value)) if id != compacted => Some(KeyValue {
                    key: key.clone(),
                    value: super::codec::decode(prev_value)?,
                    create_revision: prev_create,
                    mod_revision: prev_revision,
                }),
                _ => {
                    page.error = Some(StorageError::Compacted {
                        requested: id,
                        compacted,
                    });
                    return Ok(page);
                }
            }
        };
        let event = match (deleted, prev) {
            (true, Some(prev)) => Event::Delete { prev, revision: id },
            (true, None) => {
                return Err(StorageError::Internal(format!(
                    "deletion at {id} without a previous value"
                )));
            }
            (false, prev) => Event::Put {
                kv: KeyValue {
                    key,
                    value: super::codec::decode(value)?,
                    create_revision,
                    mod_revision: id,
                },
                prev,
            },
        };
        page.events.push(event);
    }
    if count >= limit && last < until {
        page.next = Some(last + 1);
    }
    Ok(page)
}
