//! Keys written with a ttl: the store deletes them itself, and watchers see it.

use std::time::Duration;

use super::{bytes, expect_quiet, next_events, ok};
use crate::{Event, Storage};

/// The ttl the behaviour writes with: etcd's minimum lease TTL (with its default election
/// timeout), so every backend keeps it as asked.
const TTL: Duration = Duration::from_secs(2);

/// A key written with a ttl is deleted once the ttl has passed, with a Delete event carrying
/// its last value, unless it was written again without a ttl (then it stays) or deleted (then
/// nothing more happens). A write with a ttl restarts the clock. Keys written without a ttl are
/// untouched.
pub async fn keys_with_a_ttl_expire(storage: &dyn Storage, prefix: &str) {
    let base = format!("{prefix}ttl/");
    let key = |name: &str| format!("{base}{name}");
    let ttl = Some(TTL);
    ok(
        storage.create_with_ttl(&key("expires"), bytes("e"), ttl).await,
        "create with a ttl",
    );
    let kept = ok(
        storage.create_with_ttl(&key("kept"), bytes("k1"), ttl).await,
        "create kept",
    );
    let kept = ok(
        storage
            .update_with_ttl(&key("kept"), kept.mod_revision, bytes("k2"), None)
            .await,
        "update kept without a ttl",
    );
    let plain = ok(storage.create(&key("plain"), bytes("p")).await, "create without a ttl");
    ok(
        storage.create_with_ttl(&key("deleted"), bytes("d"), ttl).await,
        "create deleted",
    );
    ok(storage.delete(&key("deleted"), None).await, "delete before the ttl");
    let renewed = ok(
        storage.create_with_ttl(&key("renewed"), bytes("r1"), ttl).await,
        "create renewed",
    );
    // Half-way, a write with a ttl again: the key now lives until half a ttl after the first
    // one expired.
    tokio::time::sleep(TTL / 2).await;
    let renewed = ok(
        storage
            .update_with_ttl(&key("renewed"), renewed.mod_revision, bytes("r2"), ttl)
            .await,
        "update renewed with a ttl",
    );
    let after = ok(storage.current_revision().await, "current revision");
    let mut watch = ok(storage.watch(&base, after).await, "watch");

    let first = next_events(watch.as_mut(), 1).await;
    let second = next_events(watch.as_mut(), 1).await;
    let deleted: Vec<(String, String)> = first
        .iter()
        .chain(&second)
        .map(|event| match event {
            Event::Delete { prev, .. } => (prev.key.clone(), String::from_utf8_lossy(&prev.value).into_owned()),
            Event::Put { kv, .. } => panic!("expiry: unexpected put of {}", kv.key),
        })
        .collect();
    assert_eq!(
        deleted,
        [(key("expires"), "e".to_owned()), (key("renewed"), "r2".to_owned())],
        "the keys whose ttl passed are deleted, in the order they expire, with their last values"
    );
    assert!(
        second[0].revision() > renewed.mod_revision,
        "an expiry is a change of its own"
    );
    expect_quiet(watch.as_mut(), second[0].revision()).await;
    assert_eq!(ok(storage.get(&key("expires")).await, "get expired"), None);
    assert_eq!(ok(storage.get(&key("renewed")).await, "get renewed"), None);
    assert_eq!(
        ok(storage.get(&key("kept")).await, "get kept"),
        Some(kept),
        "written without a ttl"
    );
    assert_eq!(ok(storage.get(&key("plain")).await, "get plain"), Some(plain));
    assert_eq!(ok(storage.get(&key("deleted")).await, "get deleted"), None);
    // The name is free again, and a key made without a ttl stays.
    let again = ok(
        storage.create(&key("expires"), bytes("e2")).await,
        "create the expired key again",
    );
    tokio::time::sleep(TTL + TTL / 2).await;
    assert_eq!(ok(storage.get(&key("expires")).await, "get re-created"), Some(again));
}
