//! The storage conformance suite: every backend must pass it.
//!
//! Each behaviour is a public async function taking the backend and a key prefix; it panics with
//! a message naming the behaviour when the backend deviates from the contract (that is how a
//! test suite reports failures, so the usual "no panics in library code" rule does not apply
//! here). Every key a behaviour touches starts with `prefix` followed by a per-behaviour
//! segment, so several behaviours (or several test runs with distinct prefixes) can share one
//! store.
//!
//! Compaction is store-wide: [`list_compacted`] and [`watch_compacted`] make every revision
//! before the current one unreadable, so they must not run concurrently with other behaviours on
//! the same store; [`run_all`] runs them last. Every await on a watch is bounded by
//! [`WATCH_TIMEOUT`] so a broken backend fails instead of hanging.

mod expiry;

use std::time::Duration;

use bytes::Bytes;

pub use expiry::keys_with_a_ttl_expire;

use crate::{
    Event, KeyValue, ListRequest, ListResponse, Result, Revision, Storage, StorageError, WatchItem, WatchStream,
};

/// The longest any single watch operation may take before the behaviour fails.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every behaviour, the store-wide compaction ones last.
pub async fn run_all(storage: &dyn Storage, prefix: &str) {
    run_all_except(storage, prefix, &[]).await;
}

/// [`run_all`] without the behaviours named in `skip` (function names), for a backend with a
/// documented deviation such as an etcd server bug; see the etcd tests.
pub async fn run_all_except(storage: &dyn Storage, prefix: &str, skip: &[&str]) {
    macro_rules! run {
        ($($behaviour:ident),* $(,)?) => {
            $(
                if !skip.contains(&stringify!($behaviour)) {
                    $behaviour(storage, prefix).await;
                }
            )*
        };
    }
    run!(
        create_and_get,
        revisions,
        update_compare_and_swap,
        delete_semantics,
        list_ordering_and_prefix_isolation,
        list_pagination,
        list_past_revision,
        list_future_revision,
        watch_replay,
        watch_live,
        watch_progress,
        watch_progress_after_replay,
        concurrent_watchers,
        concurrent_compare_and_swap,
        prefix_changed,
        keys_with_a_ttl_expire,
        list_compacted,
        watch_compacted,
    );
}

/// `prefix_changed` sees creations, modifications and deletions under the prefix in
/// `(since, at]` and nothing outside that window or outside the prefix.
pub async fn prefix_changed(storage: &dyn Storage, prefix: &str) {
    let mine = format!("{prefix}changed/");
    let sibling = format!("{prefix}changedx/");
    let a = storage
        .create(&format!("{mine}a"), Bytes::from_static(b"1"))
        .await
        .expect("create a");
    let quiet_from = a.mod_revision;
    let other = storage
        .create(&format!("{sibling}x"), Bytes::from_static(b"1"))
        .await
        .expect("create sibling");
    assert!(
        !storage
            .prefix_changed(&mine, quiet_from, other.mod_revision)
            .await
            .expect("prefix_changed"),
        "a write to a sibling prefix is not a change"
    );
    assert!(
        storage
            .prefix_changed(&mine, quiet_from - 1, other.mod_revision)
            .await
            .expect("prefix_changed"),
        "the creation of a is inside (since, at]"
    );
    let modified = storage
        .update(&format!("{mine}a"), a.mod_revision, Bytes::from_static(b"2"))
        .await
        .expect("update");
    assert!(
        storage
            .prefix_changed(&mine, quiet_from, modified.mod_revision)
            .await
            .expect("prefix_changed")
    );
    assert!(
        !storage
            .prefix_changed(&mine, modified.mod_revision, modified.mod_revision)
            .await
            .expect("prefix_changed"),
        "an empty window has no changes"
    );
    let (_, deleted) = storage.delete(&format!("{mine}a"), None).await.expect("delete");
    assert!(
        storage
            .prefix_changed(&mine, modified.mod_revision, deleted)
            .await
            .expect("prefix_changed"),
        "a deletion is a change"
    );
    assert!(
        !storage
            .prefix_changed(&mine, deleted, deleted)
            .await
            .expect("prefix_changed"),
        "nothing happened after the deletion"
    );
}

/// Create returns the stored key with create = mod revision; get returns it; a second create
/// fails with `AlreadyExists`; a missing key reads as `None`.
pub async fn create_and_get(storage: &dyn Storage, prefix: &str) {
    let key = format!("{prefix}create/a");
    let created = ok(storage.create(&key, bytes("v1")).await, "create");
    assert_eq!(created.key, key, "create: returned key");
    assert_eq!(created.value, bytes("v1"), "create: returned value");
    assert!(created.mod_revision > 1, "create: revision {created:?}");
    assert_eq!(
        created.create_revision, created.mod_revision,
        "create: create_revision != mod_revision"
    );
    let got = ok(storage.get(&key).await, "get");
    assert_eq!(got, Some(created.clone()), "get after create");

    let again = storage.create(&key, bytes("v2")).await;
    assert_eq!(again, Err(StorageError::AlreadyExists(key.clone())), "second create");
    let got = ok(storage.get(&key).await, "get after failed create");
    assert_eq!(got, Some(created), "a failed create must not change the key");

    let missing = ok(storage.get(&format!("{prefix}create/missing")).await, "get");
    assert_eq!(missing, None, "get of a missing key");
}

/// Revisions grow with every write; modifications keep the create revision; deleting and
/// re-creating a key starts a new create revision; the current revision covers every write.
pub async fn revisions(storage: &dyn Storage, prefix: &str) {
    let (a, b) = (format!("{prefix}rev/a"), format!("{prefix}rev/b"));
    let before = ok(storage.current_revision().await, "current_revision");
    let a1 = ok(storage.create(&a, bytes("1")).await, "create a");
    assert!(a1.mod_revision > before, "create after revision {before}: {a1:?}");
    let b1 = ok(storage.create(&b, bytes("1")).await, "create b");
    assert!(
        b1.mod_revision > a1.mod_revision,
        "revisions must grow: {a1:?} then {b1:?}"
    );
    let a2 = ok(storage.update(&a, a1.mod_revision, bytes("2")).await, "update a");
    assert!(a2.mod_revision > b1.mod_revision, "update revision: {a2:?}");
    assert_eq!(a2.create_revision, a1.create_revision, "update keeps create_revision");
    assert_eq!(ok(storage.get(&a).await, "get a"), Some(a2.clone()), "get after update");

    let (deleted, deleted_at) = ok(storage.delete(&a, None).await, "delete a");
    assert_eq!(deleted, a2, "delete returns the last value");
    assert!(deleted_at > a2.mod_revision, "delete revision {deleted_at}");
    let a3 = ok(storage.create(&a, bytes("3")).await, "re-create a");
    assert!(a3.mod_revision > deleted_at, "re-create revision: {a3:?}");
    assert_eq!(
        a3.create_revision, a3.mod_revision,
        "re-create starts a new create_revision"
    );

    let current = ok(storage.current_revision().await, "current_revision");
    assert!(
        current >= a3.mod_revision,
        "current revision {current} < last write {a3:?}"
    );
}

/// Update succeeds only at the key's modification revision; otherwise `Conflict` carries the
/// stored value (or `None` for a missing key) and nothing changes.
pub async fn update_compare_and_swap(storage: &dyn Storage, prefix: &str) {
    let key = format!("{prefix}update/a");
    let v1 = ok(storage.create(&key, bytes("v1")).await, "create");
    let v2 = ok(storage.update(&key, v1.mod_revision, bytes("v2")).await, "update");
    assert_eq!(v2.value, bytes("v2"), "update: returned value");
    assert_eq!(v2.key, key, "update: returned key");
    assert!(v2.mod_revision > v1.mod_revision, "update: revision {v2:?}");

    let stale = storage.update(&key, v1.mod_revision, bytes("v3")).await;
    let expected = StorageError::Conflict {
        key: key.clone(),
        expected: v1.mod_revision,
        current: Some(v2.clone()),
    };
    assert_eq!(stale, Err(expected), "update at a stale revision");
    let future = storage.update(&key, v2.mod_revision + 1000, bytes("v3")).await;
    assert!(
        matches!(&future, Err(StorageError::Conflict { current: Some(c), .. }) if *c == v2),
        "update at a wrong revision: {future:?}"
    );
    assert_eq!(
        ok(storage.get(&key).await, "get"),
        Some(v2),
        "failed updates change nothing"
    );

    let missing = format!("{prefix}update/missing");
    for expected in [0, v1.mod_revision] {
        let result = storage.update(&missing, expected, bytes("x")).await;
        let conflict = StorageError::Conflict {
            key: missing.clone(),
            expected,
            current: None,
        };
        assert_eq!(result, Err(conflict), "update of a missing key (expected {expected})");
    }
    assert_eq!(
        ok(storage.get(&missing).await, "get"),
        None,
        "update must not create keys"
    );
}

/// Unconditional and conditional deletes, `NotFound` for missing keys, `Conflict` on a revision
/// mismatch (leaving the key in place).
pub async fn delete_semantics(storage: &dyn Storage, prefix: &str) {
    let (a, b) = (format!("{prefix}delete/a"), format!("{prefix}delete/b"));
    let a1 = ok(storage.create(&a, bytes("a")).await, "create a");
    let (prev, revision) = ok(storage.delete(&a, None).await, "unconditional delete");
    assert_eq!(prev, a1, "delete returns the deleted value");
    assert!(revision > a1.mod_revision, "delete revision {revision}");
    assert_eq!(ok(storage.get(&a).await, "get"), None, "deleted key is gone");
    assert_eq!(
        storage.delete(&a, None).await,
        Err(StorageError::NotFound(a.clone())),
        "deleting a missing key"
    );
    assert_eq!(
        storage.delete(&a, Some(a1.mod_revision)).await,
        Err(StorageError::NotFound(a.clone())),
        "conditionally deleting a missing key"
    );

    let b1 = ok(storage.create(&b, bytes("b1")).await, "create b");
    let b2 = ok(storage.update(&b, b1.mod_revision, bytes("b2")).await, "update b");
    let conflict = StorageError::Conflict {
        key: b.clone(),
        expected: b1.mod_revision,
        current: Some(b2.clone()),
    };
    assert_eq!(
        storage.delete(&b, Some(b1.mod_revision)).await,
        Err(conflict),
        "delete at a stale revision"
    );
    assert_eq!(
        ok(storage.get(&b).await, "get"),
        Some(b2.clone()),
        "conflict keeps the key"
    );
    let (prev, revision) = ok(storage.delete(&b, Some(b2.mod_revision)).await, "delete b");
    assert_eq!(prev, b2, "conditional delete returns the deleted value");
    assert!(revision > b2.mod_revision, "delete revision {revision}");
    assert_eq!(ok(storage.get(&b).await, "get"), None, "deleted key is gone");
}

/// Lists come back in key order and only contain keys under the prefix, even when a sibling
/// prefix (`a/` vs `ab/`) or the bare prefix key exists.
pub async fn list_ordering_and_prefix_isolation(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}iso/");
    let mut last = 0;
    for name in ["a/m", "ab/x", "a/c", "a", "a/z", "ab/a", "a/a/nested", "a0"] {
        let kv = ok(storage.create(&format!("{base}{name}"), bytes(name)).await, "create");
        last = kv.mod_revision;
    }
    let response = ok(storage.list(list(&format!("{base}a/"))).await, "list a/");
    assert_eq!(
        keys(&response),
        ["a/a/nested", "a/c", "a/m", "a/z"].map(|k| format!("{base}{k}")),
        "list a/: keys in order, no sibling prefixes"
    );
    assert_eq!(response.remaining, 0, "list a/: remaining");
    assert!(
        response.revision >= last,
        "list revision {} < {last}",
        response.revision
    );
    for kv in &response.kvs {
        let suffix = kv.key.strip_prefix(&base).unwrap_or_default();
        assert_eq!(kv.value, bytes(suffix), "list a/: value of {}", kv.key);
    }
    let response = ok(storage.list(list(&format!("{base}ab/"))).await, "list ab/");
    assert_eq!(
        keys(&response),
        ["ab/a", "ab/x"].map(|k| format!("{base}{k}")),
        "list ab/"
    );
    // A start key before the prefix must not widen the range.
    let request = ListRequest {
        start_key: Some(base.clone()),
        ..list(&format!("{base}ab/"))
    };
    let response = ok(storage.list(request).await, "list ab/ from an earlier key");
    assert_eq!(
        response.kvs.len(),
        2,
        "start_key before the prefix: {:?}",
        keys(&response)
    );
    let empty = ok(storage.list(list(&format!("{base}none/"))).await, "list none/");
    assert!(empty.kvs.is_empty() && empty.remaining == 0, "empty list: {empty:?}");
}

/// Pages of `limit` keys, continued with `start_key`, all served at the first page's revision:
/// `remaining` counts what is left and later writes stay invisible.
pub async fn list_pagination(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}page/");
    let all: Vec<String> = (0..10).map(|i| format!("{base}k{i:02}")).collect();
    for key in &all {
        ok(storage.create(key, bytes(key)).await, "create");
    }
    ok(
        storage.create(&format!("{prefix}page0"), bytes("sibling")).await,
        "create sibling",
    );

    let mut seen = Vec::new();
    let mut request = ListRequest {
        limit: 3,
        ..list(&base)
    };
    let mut pinned = 0;
    for (page, expected_remaining) in [7, 4, 1, 0].into_iter().enumerate() {
        let response = ok(storage.list(request.clone()).await, "list page");
        assert_eq!(response.kvs.len(), 3.min(10 - 3 * page), "page {page} size");
        assert_eq!(response.remaining, expected_remaining, "page {page} remaining");
        if page == 0 {
            pinned = response.revision;
            // Writes after the first page must not show up in the pinned pages.
            ok(
                storage.create(&format!("{base}k05a"), bytes("late")).await,
                "late create",
            );
            let (k09, _) = ok(storage.delete(&all[9], None).await, "late delete");
            assert_eq!(k09.key, all[9], "late delete");
        } else {
            assert_eq!(response.revision, pinned, "page {page} served at the pinned revision");
        }
        seen.extend(keys(&response));
        let Some(last) = response.kvs.last() else {
            break;
        };
        request = ListRequest {
            start_key: Some(format!("{}\0", last.key)),
            revision: pinned,
            ..request
        };
    }
    assert_eq!(seen, all, "pages cover the prefix exactly once, in order");

    let current = ok(storage.list(list(&base)).await, "list current");
    assert_eq!(current.kvs.len(), 10, "current list sees the late create and delete");
    let big = ListRequest {
        limit: 100,
        ..list(&base)
    };
    let response = ok(storage.list(big).await, "list with a large limit");
    assert_eq!((response.kvs.len(), response.remaining), (10, 0), "large limit");
}

/// A list at a past revision sees the state as of then, and reports that revision.
pub async fn list_past_revision(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}past/");
    let a1 = ok(storage.create(&format!("{base}a"), bytes("a1")).await, "create a");
    let c1 = ok(storage.create(&format!("{base}c"), bytes("c1")).await, "create c");
    let then = c1.mod_revision;
    ok(storage.update(&a1.key, a1.mod_revision, bytes("a2")).await, "update a");
    ok(storage.create(&format!("{base}b"), bytes("b1")).await, "create b");
    ok(storage.delete(&c1.key, None).await, "delete c");

    let request = ListRequest {
        revision: then,
        ..list(&base)
    };
    let response = ok(storage.list(request).await, "list at a past revision");
    assert_eq!(response.kvs, vec![a1.clone(), c1], "state as of revision {then}");
    assert_eq!(response.revision, then, "revision of a past read");
    let request = ListRequest {
        revision: a1.mod_revision,
        ..list(&base)
    };
    let response = ok(storage.list(request).await, "list at the first write");
    assert_eq!(response.kvs, vec![a1], "state as of revision {}", response.revision);
    let now = ok(storage.list(list(&base)).await, "list now");
    assert_eq!(keys(&now), [format!("{base}a"), format!("{base}b")], "current state");
}

/// A list beyond the current revision fails with `FutureRevision`.
pub async fn list_future_revision(storage: &dyn Storage, prefix: &str) {
    let kv = ok(storage.create(&format!("{prefix}future/a"), bytes("a")).await, "create");
    let requested = kv.mod_revision + 1000;
    let request = ListRequest {
        revision: requested,
        ..list(&format!("{prefix}future/"))
    };
    match storage.list(request).await {
        Err(StorageError::FutureRevision { requested: r, current }) => {
            assert_eq!(r, requested, "FutureRevision.requested");
            assert!(current >= kv.mod_revision && current < requested, "current {current}");
        }
        other => panic!("list at a future revision: expected FutureRevision, got {other:?}"),
    }
}

/// A watch from a past revision replays exactly the later changes under its prefix, in order,
/// with the right `prev` values, and then has nothing more to say.
pub async fn watch_replay(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}replay/");
    let start = ok(storage.current_revision().await, "current_revision");
    let a1 = ok(storage.create(&format!("{base}a"), bytes("1")).await, "create a");
    ok(
        storage.create(&format!("{prefix}replay-sibling"), bytes("x")).await,
        "sibling",
    );
    let a2 = ok(storage.update(&a1.key, a1.mod_revision, bytes("2")).await, "update a");
    let (_, deleted_at) = ok(storage.delete(&a1.key, None).await, "delete a");
    let b1 = ok(storage.create(&format!("{base}b"), bytes("1")).await, "create b");

    let expected = vec![
        Event::Put {
            kv: a1.clone(),
            prev: None,
        },
        Event::Put {
            kv: a2.clone(),
            prev: Some(a1.clone()),
        },
        Event::Delete {
            prev: a2.clone(),
            revision: deleted_at,
        },
        Event::Put { kv: b1, prev: None },
    ];
    let mut watch = ok(storage.watch(&base, start).await, "watch from the start");
    assert_eq!(next_events(&mut *watch, 4).await, expected, "replay from {start}");
    expect_quiet(&mut *watch, expected[3].revision()).await;

    // Starting right after the create replays only what came later.
    let mut watch = ok(storage.watch(&base, a1.mod_revision).await, "watch after create");
    assert_eq!(
        next_events(&mut *watch, 3).await,
        expected[1..],
        "replay from the middle"
    );
    expect_quiet(&mut *watch, expected[3].revision()).await;
}

/// A watch from the current revision delivers new changes as they happen, and nothing from a
/// sibling prefix.
pub async fn watch_live(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}live/a/");
    let start = ok(storage.current_revision().await, "current_revision");
    let mut watch = ok(storage.watch(&base, start).await, "watch");
    let sibling = format!("{prefix}live/ab/x");

    let a1 = ok(storage.create(&format!("{base}k"), bytes("1")).await, "create");
    ok(storage.create(&sibling, bytes("x")).await, "sibling create");
    let put = Event::Put {
        kv: a1.clone(),
        prev: None,
    };
    assert_eq!(next_events(&mut *watch, 1).await, [put], "live create");
    let a2 = ok(storage.update(&a1.key, a1.mod_revision, bytes("2")).await, "update");
    let (_, deleted_at) = ok(storage.delete(&a1.key, Some(a2.mod_revision)).await, "delete");
    ok(storage.delete(&sibling, None).await, "sibling delete");
    let expected = [
        Event::Put {
            kv: a2.clone(),
            prev: Some(a1),
        },
        Event::Delete {
            prev: a2,
            revision: deleted_at,
        },
    ];
    assert_eq!(next_events(&mut *watch, 2).await, expected, "live update and delete");
    expect_quiet(&mut *watch, deleted_at).await;
}

/// `request_progress` answers with `Progress(rev)` where `rev` covers every write so far, and
/// only after the events up to `rev` were delivered.
pub async fn watch_progress(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}progress/");
    let start = ok(storage.current_revision().await, "current_revision");
    let mut watch = ok(storage.watch(&base, start).await, "watch");
    // An idle watch.
    expect_quiet(&mut *watch, start).await;
    // A write not read yet: its event must come before the progress notification.
    let kv = ok(storage.create(&format!("{base}a"), bytes("1")).await, "create");
    ok(watch.request_progress().await, "request_progress");
    let mut saw_event = false;
    loop {
        match next_item(&mut *watch, "progress after a write").await {
            WatchItem::Event(event) => {
                let put = Event::Put {
                    kv: kv.clone(),
                    prev: None,
                };
                assert_eq!(event, put, "the only event");
                assert!(!saw_event, "event delivered twice");
                saw_event = true;
            }
            WatchItem::Progress(revision) if revision >= kv.mod_revision => {
                assert!(saw_event, "Progress({revision}) came before the event it covers");
                break;
            }
            // An earlier notification (e.g. answering an older request) is harmless.
            WatchItem::Progress(_) => {}
        }
    }
}

/// A progress request made while a watch is still replaying history is answered only after the
/// replay: every change up to the reported revision comes first. (etcd before 3.4.31 / 3.5.13
/// answers immediately, etcd-io/etcd#15220 and #17507.)
pub async fn watch_progress_after_replay(storage: &dyn Storage, prefix: &str) {
    const KEYS: usize = 50;
    let base = format!("{prefix}progress-replay/");
    let start = ok(storage.current_revision().await, "current_revision");
    let mut expected = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let kv = ok(storage.create(&format!("{base}k{i:02}"), bytes("x")).await, "create");
        expected.push(Event::Put { kv, prev: None });
    }
    let last = expected.last().map_or(start, Event::revision);
    let mut watch = ok(storage.watch(&base, start).await, "watch from the past");
    ok(watch.request_progress().await, "request_progress");
    let mut events = Vec::with_capacity(KEYS);
    loop {
        match next_item(&mut *watch, "replay then progress").await {
            WatchItem::Event(event) => events.push(event),
            WatchItem::Progress(revision) => {
                assert!(
                    events.len() == KEYS || revision < last,
                    "Progress({revision}) after only {} of {KEYS} replayed events up to {last}",
                    events.len()
                );
                if revision >= last {
                    break;
                }
            }
        }
    }
    assert_eq!(events, expected, "replayed events");
}

/// Two watchers on the same prefix each see every change, in order.
pub async fn concurrent_watchers(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}watchers/");
    let start = ok(storage.current_revision().await, "current_revision");
    let mut first = ok(storage.watch(&base, start).await, "first watch");
    let mut second = ok(storage.watch(&base, start).await, "second watch");
    let mut expected = Vec::new();
    for i in 0..20 {
        let key = format!("{base}k{}", i % 5);
        let event = match ok(storage.get(&key).await, "get") {
            None => {
                let kv = ok(storage.create(&key, bytes("0")).await, "create");
                Event::Put { kv, prev: None }
            }
            Some(_) if i % 3 == 0 => {
                let (prev, revision) = ok(storage.delete(&key, None).await, "delete");
                Event::Delete { prev, revision }
            }
            Some(prev) => {
                let value = bytes(&i.to_string());
                let kv = ok(storage.update(&key, prev.mod_revision, value).await, "update");
                Event::Put { kv, prev: Some(prev) }
            }
        };
        expected.push(event);
    }
    let (a, b) = futures::join!(next_events(&mut *first, 20), next_events(&mut *second, 20));
    assert_eq!(a, expected, "first watcher");
    assert_eq!(b, expected, "second watcher");
}

/// 8 concurrent writers each increment a counter 25 times with read-modify-write and retry on
/// `Conflict`; the result must be exactly 200 (no lost updates).
pub async fn concurrent_compare_and_swap(storage: &dyn Storage, prefix: &str) {
    const WRITERS: usize = 8;
    const INCREMENTS: usize = 25;
    let key = format!("{prefix}cas/counter");
    ok(storage.create(&key, bytes("0")).await, "create counter");
    let writer = |_| async {
        let mut conflicts = 0;
        for _ in 0..INCREMENTS {
            loop {
                let current = ok(storage.get(&key).await, "get counter");
                let current = current.unwrap_or_else(|| panic!("counter {key} vanished"));
                let value = parse_counter(&current.value);
                // Let the other writers interleave between our read and our write, also on
                // backends that never yield on their own.
                tokio::task::yield_now().await;
                let next = bytes(&(value + 1).to_string());
                match storage.update(&key, current.mod_revision, next).await {
                    Ok(_) => break,
                    Err(StorageError::Conflict { current: Some(c), .. }) => {
                        assert!(c.mod_revision > current.mod_revision, "stale conflict {c:?}");
                        conflicts += 1;
                    }
                    Err(other) => panic!("increment: unexpected {other:?}"),
                }
            }
        }
        conflicts
    };
    let conflicts: usize = futures::future::join_all((0..WRITERS).map(writer))
        .await
        .into_iter()
        .sum();
    let stored = ok(storage.get(&key).await, "get counter");
    let value = stored.map(|kv| parse_counter(&kv.value));
    assert_eq!(
        value,
        Some((WRITERS * INCREMENTS) as u64),
        "counter after concurrent increments ({conflicts} conflicts retried)"
    );
}

/// After `compact(c)`, reads below `c` fail with `Compacted { compacted: c }`, `c` itself is
/// still readable; compacting again at `c` fails with `Compacted`, beyond the current revision
/// with `FutureRevision`. Store-wide.
pub async fn list_compacted(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}compact-list/");
    let a1 = ok(storage.create(&format!("{base}a"), bytes("1")).await, "create");
    let a2 = ok(storage.update(&a1.key, a1.mod_revision, bytes("2")).await, "update");
    let b1 = ok(storage.create(&format!("{base}b"), bytes("1")).await, "create b");
    // Two revisions between the read and the compaction, so `compacted` is really reported.
    let compacted = b1.mod_revision;
    ok(storage.compact(compacted).await, "compact");

    let request = ListRequest {
        revision: a1.mod_revision,
        ..list(&base)
    };
    let expected = StorageError::Compacted {
        requested: a1.mod_revision,
        compacted,
    };
    assert_eq!(storage.list(request).await, Err(expected), "list below compaction");
    let request = ListRequest {
        revision: compacted,
        ..list(&base)
    };
    let response = ok(storage.list(request).await, "list at the compaction revision");
    assert_eq!(response.kvs, vec![a2, b1], "state at the compaction revision");

    let again = StorageError::Compacted {
        requested: compacted,
        compacted,
    };
    assert_eq!(storage.compact(compacted).await, Err(again), "compacting twice");
    let current = ok(storage.current_revision().await, "current_revision");
    match storage.compact(current + 1000).await {
        Err(StorageError::FutureRevision { requested, .. }) => {
            assert_eq!(requested, current + 1000, "FutureRevision.requested");
        }
        other => panic!("compacting the future: expected FutureRevision, got {other:?}"),
    }
}

/// A watch that needs compacted history fails with `Compacted`; one starting exactly at the
/// compaction revision replays from there, except that a modification made exactly at the
/// compaction revision has lost its previous value, which is also `Compacted` (etcd cannot
/// deliver it); a watch established before the compaction keeps working. Store-wide.
pub async fn watch_compacted(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}compact-watch/");
    let start = ok(storage.current_revision().await, "current_revision");
    let mut live = ok(storage.watch(&base, start).await, "watch before compaction");
    let a1 = ok(storage.create(&format!("{base}a"), bytes("1")).await, "create a");
    let a2 = ok(storage.update(&a1.key, a1.mod_revision, bytes("2")).await, "update a");
    let b1 = ok(storage.create(&format!("{base}b"), bytes("1")).await, "create b");
    let (create_a, update_a, create_b) = (
        Event::Put {
            kv: a1.clone(),
            prev: None,
        },
        Event::Put {
            kv: a2.clone(),
            prev: Some(a1),
        },
        Event::Put { kv: b1, prev: None },
    );
    let expected = [create_a, update_a, create_b.clone()];
    // Read before compacting: a backend may fetch previous values lazily when sending.
    assert_eq!(next_events(&mut *live, 3).await, expected, "live watch");
    let compacted = create_b.revision();
    ok(storage.compact(compacted).await, "compact");

    // `after + 1` is the first revision the watch needs; two revisions below the compaction.
    let expected = StorageError::Compacted {
        requested: compacted - 2,
        compacted,
    };
    expect_compacted(storage, &base, compacted - 3, expected, "from a compacted revision").await;

    let mut watch = ok(storage.watch(&base, compacted - 1).await, "watch at compaction");
    assert_eq!(next_events(&mut *watch, 1).await, [create_b], "replay from compaction");
    expect_quiet(&mut *watch, compacted).await;

    // A modification exactly at the compaction revision: its previous value is gone.
    let a3 = ok(storage.update(&a2.key, a2.mod_revision, bytes("3")).await, "update a");
    let update = Event::Put {
        kv: a3.clone(),
        prev: Some(a2),
    };
    assert_eq!(next_events(&mut *live, 1).await, [update], "live update");
    ok(storage.compact(a3.mod_revision).await, "second compaction");
    let lost = StorageError::Compacted {
        requested: a3.mod_revision,
        compacted: a3.mod_revision,
    };
    expect_compacted(storage, &base, a3.mod_revision - 1, lost, "lost previous value").await;

    let (_, deleted_at) = ok(storage.delete(&a3.key, None).await, "delete a");
    let delete = Event::Delete {
        prev: a3,
        revision: deleted_at,
    };
    assert_eq!(next_events(&mut *live, 1).await, [delete], "live after compaction");
}

/// `watch(prefix, after)` fails with `expected`, either right away or as the stream's first and
/// last item (the contract allows both).
async fn expect_compacted(storage: &dyn Storage, prefix: &str, after: Revision, expected: StorageError, what: &str) {
    match storage.watch(prefix, after).await {
        Err(error) => assert_eq!(error, expected, "watch {what}"),
        Ok(mut watch) => {
            let item = timeout(watch.next(), what).await;
            assert_eq!(item, Some(Err(expected)), "first item of watch {what}");
            let end = timeout(watch.next(), what).await;
            assert_eq!(end, None, "a Compacted error ends the watch ({what})");
        }
    }
}

/// Reads `count` events, skipping progress notifications but checking that none of them claims
/// a revision an event later contradicts.
pub async fn next_events(watch: &mut dyn WatchStream, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    let mut progress = 0;
    while events.len() < count {
        match next_item(watch, "waiting for events").await {
            WatchItem::Event(event) => {
                assert!(
                    event.revision() > progress,
                    "event {event:?} after Progress({progress})"
                );
                if let Some(last) = events.last().map(Event::revision) {
                    assert!(event.revision() > last, "event {event:?} out of order");
                }
                events.push(event);
            }
            WatchItem::Progress(revision) => progress = progress.max(revision),
        }
    }
    events
}

/// Requests progress and expects it without any event first: the watch has nothing pending.
pub async fn expect_quiet(watch: &mut dyn WatchStream, at_least: Revision) {
    ok(watch.request_progress().await, "request_progress");
    match next_item(watch, "expecting only a progress notification").await {
        WatchItem::Progress(revision) => assert!(
            revision >= at_least,
            "Progress({revision}) does not cover revision {at_least}"
        ),
        WatchItem::Event(event) => panic!("unexpected event {event:?}"),
    }
}

/// The next item, failing on errors, the end of the stream, or [`WATCH_TIMEOUT`].
pub async fn next_item(watch: &mut dyn WatchStream, what: &str) -> WatchItem {
    match timeout(watch.next(), what).await {
        Some(Ok(item)) => item,
        Some(Err(error)) => panic!("{what}: watch failed: {error}"),
        None => panic!("{what}: watch ended"),
    }
}

async fn timeout<T>(future: impl Future<Output = T>, what: &str) -> T {
    match tokio::time::timeout(WATCH_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: watch gave nothing within {WATCH_TIMEOUT:?}"),
    }
}

#[track_caller]
fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: unexpected error: {error:?}"),
    }
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn list(prefix: &str) -> ListRequest {
    ListRequest {
        prefix: prefix.to_owned(),
        ..ListRequest::default()
    }
}

fn keys(response: &ListResponse) -> Vec<String> {
    response.kvs.iter().map(|kv: &KeyValue| kv.key.clone()).collect()
}

fn parse_counter(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("counter holds {value:?}, not a number"))
}
